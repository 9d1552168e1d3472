"""LineRecordReader semantics: every line is read by exactly one split, wherever the cuts fall."""

import json
import random
import zlib

from lab.services.yarn.mapreduce.jobs import choose_split_points, hash_partition
from lab.services.yarn.mapreduce.splits import read_split


class FakeFs:
    def __init__(self, data: bytes):
        self.data = data

    def read_bytes(self, path, offset=0, length=None):
        return self.data[offset : offset + length if length is not None else None]


def test_every_line_in_exactly_one_split():
    rnd = random.Random(5)
    for trial in range(30):
        lines = ["x" * rnd.randint(0, 30) for _ in range(rnd.randint(1, 60))]
        data = ("\n".join(lines) + ("\n" if trial % 2 else "")).encode()
        fs = FakeFs(data)
        block = rnd.randint(1, 40)
        got = []
        for off in range(0, len(data), block):
            split = {"path": "/f", "offset": off, "length": min(block, len(data) - off)}
            got += list(read_split(fs, split, chunk=rnd.randint(1, 16)))
        assert got == data.decode().split("\n")[: len(lines)], (trial, block)


def test_crlf_and_non_utf8_bytes_survive():
    fs = FakeFs(b"a\r\nb\xff\n")
    lines = list(read_split(fs, {"path": "/f", "offset": 0, "length": 6}))
    assert lines[0] == "a"
    assert lines[1].encode("utf-8", "surrogateescape") == b"b\xff"


def test_partitioners():
    # crc32, not the per-process salted hash(): every map must agree on a key's reducer
    assert hash_partition("word", 7) == zlib.crc32(b"word") % 7
    assert choose_split_points([f"{i:02d}" for i in range(100)], 4) == ["25", "50", "75"]
    assert choose_split_points(["a"], 1) == []


def _map_outputs(tmp_path, kind, sort_mb, data, reduces=3, extra=None):
    from lab.services.yarn.mapreduce.task import run_map

    conf = {
        "mapreduce.job.kind": kind,
        "mapreduce.job.reduces": reduces,
        "mapreduce.task.io.sort.mb": sort_mb,
    }
    conf.update(extra or {})
    task = {
        "attempt": f"attempt_1_0001_m_000000_{sort_mb}",
        "split": {"path": "/f", "offset": 0, "length": len(data)},
    }
    counters = run_map(task, conf, fs=FakeFs(data), local_dir=str(tmp_path))
    out = tmp_path / "output" / task["attempt"]
    return (
        counters,
        [(out / f"part-{r}").read_text() for r in range(reduces)],
        sorted(p.name for p in out.iterdir()),
    )


def test_map_spills_and_merges_to_the_same_output(tmp_path):
    rnd = random.Random(9)
    data = "".join(
        " ".join(f"k{rnd.randint(0, 300)}" for _ in range(8)) + "\n" for _ in range(3000)
    ).encode()
    for kind in ("wordcount", "sort"):
        whole, parts, _ = _map_outputs(tmp_path, kind, 100, data)
        spilled, spilled_parts, names = _map_outputs(tmp_path, kind, 0.01, data)  # ~10 KB buffer
        assert whole["SPILLS"] == 0 and spilled["SPILLS"] > 3
        assert spilled_parts == parts  # spills + merge (+ combiner) change nothing
        assert names == ["part-0", "part-1", "part-2"]  # spill files are gone
        for text in parts:
            keys = [json.loads(line)[0] for line in text.splitlines()]
            assert keys == sorted(keys)
