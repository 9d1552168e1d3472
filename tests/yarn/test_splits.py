"""LineRecordReader semantics: every line is read by exactly one split, wherever the cuts fall."""

import random
import zlib

from lab.services.yarn.mapreduce.jobs import choose_split_points, hash_partition
from lab.services.yarn.mapreduce.splits import read_split


class FakeFs:
    def __init__(self, data: bytes):
        self.data = data

    def read(self, path, offset=0, length=None):
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
