"""Wordcount on racklab's YARN beside a single-process wordcount of the same data.

    python -m lab.bench.yarn [--mb 32] [--block-mb 8] [--reduces 2] [--runs 3] [--json]
    python -m lab.bench.yarn --rm http://RM:8088 --webhdfs http://NN:9870   # on a running lab

Generates a text input (words drawn from a Zipf-like vocabulary, fixed seed),
counts it once in one Python process (read the local file, split, count), then
uploads it to HDFS and runs the wordcount MapReduce job on YARN, in the same run.
Without --rm/--webhdfs it starts its own HDFS (3 DataNodes on 2 racks) and YARN
(a NodeManager beside each DataNode) on loopback addresses. The two results are
compared word for word; the figures are only printed when they agree.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lab.services.hadoop.webclient import WebHdfsClient
from lab.services.yarn.mapreduce import client


def generate(path: Path, mb: int, seed: int = 1) -> int:
    rnd = random.Random(seed)
    vocab = [f"w{i}" for i in range(50000)]
    weights = [1 / (i + 1) for i in range(len(vocab))]  # Zipf-like, as natural text
    target = mb << 20
    size = 0
    with open(path, "w") as f:
        while size < target:
            words = rnd.choices(vocab, weights, k=20000)
            lines = [" ".join(words[i : i + 10]) for i in range(0, len(words), 10)]
            chunk = "\n".join(lines) + "\n"
            f.write(chunk)
            size += len(chunk)
    return size


def single_process_wordcount(path: Path) -> tuple[collections.Counter, float]:
    t = time.perf_counter()
    counts: collections.Counter = collections.Counter()
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        while True:
            lines = f.readlines(8 << 20)
            if not lines:
                break
            for line in lines:
                counts.update(line.split())
    return counts, time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lab.bench.yarn", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument(
        "--mb",
        type=int,
        default=32,
        help="input size in MB (default 32; a few hundred is fine on a bigger host)",
    )
    ap.add_argument(
        "--block-mb",
        type=int,
        default=8,
        help="HDFS block size of the uploaded input = split size, in MB (default 8)",
    )
    ap.add_argument("--reduces", type=int, default=2)
    ap.add_argument("--map-mb", type=int, default=384, help="map container memory")
    ap.add_argument("--rm", help="ResourceManager web URL of a running lab")
    ap.add_argument("--webhdfs", help="NameNode web URL of a running lab")
    ap.add_argument(
        "--runs", type=int, default=1, help="repeat both counts, alternating; report medians"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not 1 <= args.runs <= 20:
        ap.error("--runs must be between 1 and 20")
    if not 1 <= args.mb <= 2048:
        ap.error("--mb must be between 1 and 2048")
    if bool(args.rm) != bool(args.webhdfs):
        ap.error("give both --rm and --webhdfs, or neither")
    work = Path(tempfile.mkdtemp(prefix="racklab-bench-yarn-"))
    stack = []
    try:
        log = (lambda s: None) if args.json else (lambda s: print(f"· {s}", file=sys.stderr))
        log(f"generating {args.mb} MB of text")
        data = work / "input.txt"
        size = generate(data, args.mb)
        if args.rm:
            rm, webhdfs = args.rm, args.webhdfs
            where = f"running lab (RM {rm}), {args.block_mb} MB blocks"
        else:
            from lab.services.hdfs.minicluster import MiniCluster
            from lab.services.yarn.minicluster import MiniYarnCluster

            log("starting HDFS (3 DataNodes, 2 racks) and YARN (3 NodeManagers beside them)")
            dfs = MiniCluster(
                work / "dfs",
                racks={"/rack1": 2, "/rack2": 1},
                settings={"dfs.blocksize": f"{args.block_mb}m", "dfs.replication": "2"},
            )
            stack.append(dfs)
            dfs.start()
            dfs.wait_active()
            yarn = MiniYarnCluster(
                work / "yarn", dfs.dn_racks, memory_mb=max(1024, 2 * args.map_mb + 256)
            )
            stack.append(yarn)
            yarn.start()
            rm, webhdfs = yarn.url, dfs.url
            where = (
                f"loopback: {len(dfs.dn_racks)} DataNodes + NodeManagers, {args.block_mb} MB blocks"
            )
        fs = WebHdfsClient(webhdfs, user="root")
        base = f"/bench/yarn-{os.getpid()}-{int(time.time())}"
        log(f"uploading to HDFS {base}/in")
        t = time.perf_counter()
        # The block size is the file's own (WebHDFS CREATE's blocksize), so on a running
        # lab it sets the split size without touching the cluster's dfs.blocksize.
        fs.write(f"{base}/in/input.txt", data, blocksize=args.block_mb << 20, overwrite=True)
        upload_s = time.perf_counter() - t

        local_times, yarn_times = [], []
        for run in range(args.runs):
            log(f"run {run + 1}/{args.runs}: single-process wordcount")
            local, local_s = single_process_wordcount(data)
            local_times.append(local_s)

            log(f"run {run + 1}/{args.runs}: wordcount on YARN")
            out_dir = f"{base}/out{run}"
            t = time.perf_counter()
            app = client.submit_job(
                rm, webhdfs, "wordcount", [f"{base}/in"], out_dir, reduces=args.reduces,
                conf={"mapreduce.map.memory.mb": args.map_mb, "mapreduce.reduce.memory.mb": args.map_mb,
                      "yarn.app.mapreduce.am.scheduler.heartbeat.interval-ms": 200},
            )  # fmt: skip
            rm_app = client.wait_for_job(rm, app, timeout=3600, interval=0.2)
            yarn_times.append(time.perf_counter() - t)
            if rm_app["finalStatus"] != "SUCCEEDED":
                print(f"the job failed: {rm_app['diagnostics']}", file=sys.stderr)
                return 1
            report = client.job_report(webhdfs, app) or {}
            out = client.read_output(webhdfs, out_dir)
            got = collections.Counter(
                {w: int(n) for w, n in (ln.split("\t") for ln in out.splitlines())}
            )
            if got != local:
                print(
                    "YARN's counts differ from the single-process counts: not reporting figures",
                    file=sys.stderr,
                )
                return 1
        local_s, yarn_s = statistics.median(local_times), statistics.median(yarn_times)
        fs.delete(base, recursive=True)
        c = report.get("counters", {})
        result = {
            "where": where,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}",
            "input_mb": round(size / 2**20, 1),
            "distinct_words": len(local),
            "maps": report.get("mapsTotal"),
            "reduces": args.reduces,
            "node_local_maps": c.get("DATA_LOCAL_MAPS"),
            "rack_local_maps": c.get("RACK_LOCAL_MAPS"),
            "off_switch_maps": c.get("OTHER_LOCAL_MAPS"),
            "hdfs_upload_s": round(upload_s, 2),
            "runs": args.runs,
            "single_process_s": round(local_s, 2),
            "single_process_range_s": [round(min(local_times), 2), round(max(local_times), 2)],
            "yarn_s": round(yarn_s, 2),
            "yarn_range_s": [round(min(yarn_times), 2), round(max(yarn_times), 2)],
            "yarn_over_single": round(yarn_s / local_s, 2),
        }
        if args.json:
            print(json.dumps(result, indent=1))
        else:
            print(
                f"wordcount, {result['input_mb']} MB, {result['distinct_words']} distinct words — {result['where']}"
            )
            print(f"machine: {result['machine']}")
            print(f"median of {args.runs} run(s) [min .. max]; map locality of the last run")
            print(
                f"{'single process':<16} {local_s:8.2f} s  [{min(local_times):.2f} .. {max(local_times):.2f}]"
            )
            print(
                f"{'YARN MapReduce':<16} {yarn_s:8.2f} s  [{min(yarn_times):.2f} .. {max(yarn_times):.2f}]   ({result['maps']} maps: {result['node_local_maps']} node-local, "
                f"{result['rack_local_maps']} rack-local, {result['off_switch_maps']} off-switch; {args.reduces} reduces)"
            )
            print(
                f"ratio YARN / single process: {result['yarn_over_single']:.2f}   (results identical)"
            )
        return 0
    finally:
        for s in reversed(stack):
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
