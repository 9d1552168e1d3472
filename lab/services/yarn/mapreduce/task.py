"""A map or reduce task attempt, run in a YARN container by the MapReduce AM.

``python -m lab.services.yarn.mapreduce.task`` reads its assignment from the
MR_TASK environment variable (JSON), does the work, and reports to the AM's
umbilical URL (MR_UMBILICAL) before exiting 0. Any failure exits non-zero with a
traceback on stderr, which the NodeManager keeps and the AM sees as diagnostics.

Map output: one sorted file per reduce partition under
$LOCAL_DIRS/output/<attempt>/part-<r>, JSON lines [key, value], served to
reducers by the NodeManager's shuffle handler.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import sys
import time
import traceback
import urllib.request
from pathlib import Path

from ...hadoop.webclient import WebHdfsClient
from ..http import RpcError, call
from .jobs import make_job
from .splits import read_split


def _report(umbilical: str, what: str, body: dict) -> None:
    call(f"{umbilical}/umbilical/{what}", body, timeout=30)


# Rough bytes a buffered record costs in Python (tuple, str header, dict slot), used to
# hold the map's buffer to mapreduce.task.io.sort.mb as Hadoop's MapOutputBuffer does.
RECORD_OVERHEAD = 80


def _write_run(path: Path, items) -> int:
    with open(path, "w", encoding="utf-8") as f:
        for kv in items:
            f.write(json.dumps(kv))
            f.write("\n")
    return path.stat().st_size


def _read_run(path: Path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def _sum_adjacent(items):
    """The combiner over a sorted stream: one [key, total] per key."""
    for key, group in itertools.groupby(items, key=lambda kv: kv[0]):
        yield [key, sum(v for _, v in group)]


def run_map(
    task: dict, conf: dict, fs: WebHdfsClient | None = None, local_dir: str | None = None
) -> dict:
    """Map a split; buffer output per partition, sort and spill it to disk whenever the
    buffer passes mapreduce.task.io.sort.mb, then merge the spills into one sorted file
    per partition (the combiner runs on every spill and on the merge)."""
    job = make_job(conf)
    fs = fs or WebHdfsClient(conf["fs.webhdfs.address"], user=conf.get("user", "root"))
    reduces = int(conf["mapreduce.job.reduces"])
    part = job.partitioner(reduces, task.get("splitPoints"))
    limit = float(conf.get("mapreduce.task.io.sort.mb", 100)) * (1 << 20)
    out = Path(local_dir or os.environ["LOCAL_DIRS"]) / "output" / task["attempt"]
    out.mkdir(parents=True, exist_ok=True)
    counters = {
        "MAP_INPUT_RECORDS": 0,
        "MAP_OUTPUT_RECORDS": 0,
        "HDFS_BYTES_READ": 0,
        "SPILLED_RECORDS": 0,
    }
    combine = job.combine_sums
    sums: list[dict[str, int]] = [dict() for _ in range(reduces)]
    lists: list[list] = [[] for _ in range(reduces)]
    spills: list[list[Path]] = []
    buffered = 0

    def sorted_partition(r: int):
        if combine:
            return sorted(sums[r].items())
        lists[r].sort(key=lambda kv: kv[0])
        return lists[r]

    def spill() -> None:
        nonlocal buffered, sums, lists
        n = len(spills)
        files = []
        for r in range(reduces):
            items = sorted_partition(r)
            counters["SPILLED_RECORDS"] += len(items)
            path = out / f"spill{n}.{r}"
            _write_run(path, items)
            files.append(path)
        spills.append(files)
        sums = [dict() for _ in range(reduces)]
        lists = [[] for _ in range(reduces)]
        buffered = 0

    for line in read_split(fs, task["split"]):
        counters["MAP_INPUT_RECORDS"] += 1
        counters["HDFS_BYTES_READ"] += len(line) + 1
        for k, v in job.map(line):
            counters["MAP_OUTPUT_RECORDS"] += 1
            r = part(k)
            if combine:
                d = sums[r]
                if k in d:
                    d[k] += v
                    continue
                d[k] = v
            else:
                lists[r].append((k, v))
            buffered += len(k) + RECORD_OVERHEAD
            if buffered > limit:
                spill()
    written = 0
    for r in range(reduces):
        tmp = out / f".part-{r}.tmp"
        if not spills:
            written += _write_run(tmp, sorted_partition(r))
        else:
            runs = [_read_run(files[r]) for files in spills]
            items = sorted_partition(r)
            merged = heapq.merge(*runs, iter(items), key=lambda kv: kv[0])
            written += _write_run(tmp, _sum_adjacent(merged) if combine else merged)
        tmp.rename(out / f"part-{r}")
    for files in spills:
        for f in files:
            f.unlink()
    counters["MAP_OUTPUT_BYTES"] = written
    counters["SPILLS"] = len(spills)
    return counters


class FetchFailed(Exception):
    def __init__(self, maps: list[str], why: str):
        super().__init__(why)
        self.maps = maps


def _fetch_to(job_id: str, reduce_: int, attempt: str, address: str, path: Path) -> int:
    """Shuffle one map's partition to a local file (disk-backed, not held in memory)."""
    url = f"http://{address}/mapOutput?job={job_id}&reduce={reduce_}&map={attempt}"
    last = None
    for i in range(3):  # a short retry for a busy NM; a dead one fails fast
        try:
            with urllib.request.urlopen(url, timeout=20) as r, open(path, "wb") as f:
                return _copy(r, f)
        except OSError as e:
            last = e
            time.sleep(0.2 * (i + 1))
    raise FetchFailed([attempt], f"fetch of {attempt} from {address} failed: {last}")


def _copy(src, dst, bufsize: int = 1 << 20) -> int:
    n = 0
    while chunk := src.read(bufsize):
        dst.write(chunk)
        n += len(chunk)
    return n


def run_reduce(task: dict, conf: dict, local_dir: str | None = None) -> dict:
    """Shuffle: follow the AM's map-completion events and fetch this partition of each
    map's output to a local file as soon as the map is done (a fetch that fails is
    reported, the AM re-runs that map, and its new output comes as a later event).
    Then merge the sorted runs as streams, reduce each key group, and stream the
    result to HDFS."""
    job = make_job(conf)
    fs = WebHdfsClient(conf["fs.webhdfs.address"], user=conf.get("user", "root"))
    r = int(task["partition"])
    umbilical = task["umbilical"]
    work = Path(local_dir or os.environ["LOCAL_DIRS"]) / "shuffle" / task["attempt"]
    work.mkdir(parents=True, exist_ok=True)
    fetched: dict[int, Path] = {}  # map index -> its segment; kept even if the map re-runs later
    shuffled = 0
    cursor = 0
    total = None
    deadline = time.monotonic() + float(conf.get("mapreduce.reduce.shuffle.wait-s", 3600))
    while total is None or len(fetched) < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"shuffle incomplete: {len(fetched)} of {total} map outputs")
        reply = call(f"{umbilical}/umbilical/events?from={cursor}", timeout=30)
        cursor, total = reply["next"], reply["totalMaps"]
        for ev in reply["events"]:
            i = ev["index"]
            if ev["type"] != "SUCCEEDED" or i in fetched:
                continue  # OBSOLETE: a new SUCCEEDED follows; fetched ones stay valid
            path = work / f"map-{i}"
            try:
                shuffled += _fetch_to(conf["job.id"], r, ev["attempt"], ev["shuffle"], path)
                fetched[i] = path
            except FetchFailed as e:
                print(f"fetch failure: {e}", file=sys.stderr)
                _report(
                    umbilical,
                    "fetchFailure",
                    {"attempt": task["attempt"], "maps": e.maps, "diagnostics": str(e)},
                )
        if len(fetched) < total:
            time.sleep(0.2)
    segments = [fetched[i] for i in sorted(fetched)]
    counters = {
        "REDUCE_SHUFFLE_BYTES": shuffled,
        "REDUCE_INPUT_RECORDS": 0,
        "REDUCE_INPUT_GROUPS": 0,
        "REDUCE_OUTPUT_RECORDS": 0,
    }

    def counted(run):
        for kv in run:
            counters["REDUCE_INPUT_RECORDS"] += 1
            yield kv

    result = work / "part"
    with open(result, "w", encoding="utf-8", errors="surrogateescape") as out:
        merged = heapq.merge(*(counted(_read_run(p)) for p in segments), key=lambda kv: kv[0])
        for key, kvs in itertools.groupby(merged, key=lambda kv: kv[0]):
            counters["REDUCE_INPUT_GROUPS"] += 1
            for line in job.reduce(key, (v for _, v in kvs)):
                out.write(line)
                out.write("\n")
                counters["REDUCE_OUTPUT_RECORDS"] += 1
    fs.write(task["tempOutput"], result, overwrite=True)
    counters["HDFS_BYTES_WRITTEN"] = result.stat().st_size
    for p in [*segments, result]:
        p.unlink()
    return counters


def main() -> int:
    task = json.loads(os.environ["MR_TASK"])
    conf = json.loads(Path(os.environ.get("MR_JOB_CONF", "job.json")).read_text())
    umbilical = os.environ["MR_UMBILICAL"]
    attempt = task["attempt"]
    started = time.time()
    try:
        counters = run_map(task, conf) if task["type"] == "MAP" else run_reduce(task, conf)
    except FetchFailed as e:
        print(f"fetch failure: {e}", file=sys.stderr)
        try:
            _report(
                umbilical,
                "fetchFailure",
                {"attempt": attempt, "maps": e.maps, "diagnostics": str(e)},
            )
        except RpcError:
            pass
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    counters["ELAPSED_MS"] = int((time.time() - started) * 1000)
    done = {"attempt": attempt, "counters": counters}
    if os.environ.get("NM_SHUFFLE_PORT"):  # where reducers fetch this map's output
        done["shuffle"] = f"{os.environ['NM_HOST']}:{os.environ['NM_SHUFFLE_PORT']}"
    _report(umbilical, "done", done)
    print(f"{attempt} done: {counters}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
