"""HDFS throughput through both doors, WebHDFS and the native protocols (hdfs-native over
Hadoop IPC and DataTransferProtocol), beside the disk's own bandwidth, in one run.

    python -m lab.bench.hdfs [--size-mb 128] [--rounds 3] [--dir /var/tmp] [--no-native] [--aa]
                             [--reference-source DIR] [--json]

Each round, in this order, on the directory the DataNodes store blocks in:
1. fio: sequential 1 MiB writes ending in an fsync, then sequential reads with the
   file's page cache dropped first (invalidate=1). Like with like: the DataNodes run with
   dfs.datanode.synconclose=true, so they too fsync each block when it is finished
   (Hadoop's default, and racklab's, is not to).
2. WebHDFS through a MiniCluster (NameNode + 3 DataNodes on loopback addresses, 128 MiB
   blocks): one file of the same size written (307 to a DataNode, upload with a
   Content-Length, write pipeline) at replication 1 and at replication 3, then read back
   after dropping its block files from the page cache (posix_fadvise DONTNEED). The timed
   read only receives the bytes, as fio's does; a second, untimed read checks every byte.
3. The same through the native doors with the unmodified hdfs-native client (PyPI):
   create/addBlock/complete over IPC, OP_WRITE_BLOCK packets down the pipeline, and
   OP_READ_BLOCK from the DataNodes, whose CRC32C chunk checksums the client verifies.
   The client writes from outside the cluster (its address is no DataNode's), so its
   first replica is on a DataNode chosen at random, over loopback TCP; WebHDFS's upload
   lands on a DataNode that keeps the first replica itself.
Figures are medians over the rounds; each ratio is the median of the rounds' HDFS/fio
ratios. With --aa each round runs fio a second time after HDFS, and the second fio over
the first (an A/A ratio: the disk against itself) says how far apart two measurements of
the same thing land at this moment of the machine. For the native doors the CPU seconds each side spent are shown too (the
DataNodes' processes from /proc, the client's from getrusage: hdfs-native's Rust threads
run inside it), a steadier figure than throughput on a shared machine. The three replicas of replication 3 all land on this one disk, so its write
figure carries three times the disk traffic, and no network.

The client's ceiling: each round, fio's time for the bytes over hdfs-native's own CPU time
for them (replication 1). Even a DataNode that cost nothing could not take the native
door's ratio to fio above it, while the client has the machine's cores to share.

With --reference-source DIR a second MiniCluster runs the daemons of the `lab` package
in DIR (another version: `git archive COMMIT lab | tar -x -C DIR`), and each round
writes and reads the native doors' files on both clusters, in turns (which goes first
alternates between rounds): a change measured side by side with the code before it, as
`hdfs-native before` rows and the per-round ratios new/before. `--reference-source .`
runs this checkout against itself: the comparison's own noise (A/A).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.services.hdfs.minicluster import MiniCluster

MiB = 1 << 20
# sample key prefix -> row name
DOORS = {"": "WebHDFS", "native_": "hdfs-native", "before_native_": "hdfs-native before"}
SETTINGS = {
    "dfs.blocksize": "128m",
    "dfs.heartbeat.interval": "3s",
    # fio's write ends in an fsync: the DataNodes fsync each finished block too.
    "dfs.datanode.synconclose": "true",
}


def fio(directory: Path, size_mb: int) -> dict:
    if shutil.which("fio") is None:
        raise SystemExit("fio is not installed (Debian package fio; `make setup` installs it)")
    common = [
        "--directory",
        str(directory),
        "--filename",
        "fio-bench",
        "--bs=1M",
        f"--size={size_mb}M",
        "--ioengine=psync",
        "--output-format=json",
        "--numjobs=1",
    ]
    os.sync()
    w = json.loads(
        subprocess.run(
            ["fio", "--name=write", "--rw=write", "--end_fsync=1", *common],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    os.sync()
    r = json.loads(
        subprocess.run(
            ["fio", "--name=read", "--rw=read", "--invalidate=1", *common],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    (directory / "fio-bench").unlink(missing_ok=True)
    return {
        "write_MBps": w["jobs"][0]["write"]["bw_bytes"] / MiB,
        "read_MBps": r["jobs"][0]["read"]["bw_bytes"] / MiB,
    }


def drop_block_cache(root: Path) -> None:
    for path in root.glob("data-*/current/finalized/blk_*"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # a deleted file's block, removed meanwhile
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def hdfs_run(c: MiniCluster, size_mb: int) -> dict:
    payload = os.urandom(8 * MiB)
    doubled = payload + payload  # any piece of the file, wherever it starts, is a slice of this
    pieces = size_mb // 8

    def body():
        for _ in range(pieces):
            yield payload

    results = {}
    client = c.client()
    try:
        for rep in (1, 3):
            path = f"/bench/r{rep}"
            os.sync()  # start each measurement with no writeback of earlier ones in flight
            t0 = time.perf_counter()
            client.write(
                path, body(), overwrite=True, replication=rep, length=pieces * len(payload)
            )
            wt = time.perf_counter() - t0
            os.sync()
            drop_block_cache(c.root)
            t0 = time.perf_counter()
            n = 0
            for piece in client.read(path):  # timed like fio's read: bytes arrive, nothing else
                n += len(piece)
            rt = time.perf_counter() - t0
            ok, pos = True, 0
            for piece in client.read(path):  # then, untimed, every byte checked
                off = pos % len(payload)
                ok &= piece == doubled[off : off + len(piece)]
                pos += len(piece)
            if n != pieces * len(payload) or pos != n or not ok:
                raise SystemExit(
                    f"read back {n} bytes of {path}, content {'ok' if ok else 'WRONG'}"
                )
            results[rep] = {"write_MBps": size_mb / wt, "read_MBps": size_mb / rt}
            client.delete(path)
    finally:
        client.close()
    return results


def datanodes_cpu(c: MiniCluster) -> float:
    """CPU seconds the cluster's DataNode processes have used so far."""
    total = 0.0
    for d in c.datanodes:
        with open(f"/proc/{d.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def native_run(c: MiniCluster, size_mb: int) -> dict:
    """Write and read one file per replication through the native doors (hdfs-native)."""
    import hdfs_native

    payload = os.urandom(8 * MiB)
    doubled = payload + payload
    pieces = size_mb // 8
    client = hdfs_native.Client(f"hdfs://{c.nn_ip}:{c.nn_rpc}")
    results = {}
    for rep in (1, 3):
        path = f"/bench/native-r{rep}"
        os.sync()
        dn0, me0 = datanodes_cpu(c), own_cpu()
        t0 = time.perf_counter()
        options = hdfs_native.WriteOptions(replication=rep, overwrite=True)
        with client.create(path, options) as f:
            for _ in range(pieces):
                f.write(payload)
        wt = time.perf_counter() - t0
        dn1, me1 = datanodes_cpu(c), own_cpu()
        os.sync()
        drop_block_cache(c.root)
        dn2, me2 = datanodes_cpu(c), own_cpu()
        t0 = time.perf_counter()
        n = 0
        with client.read(path) as r:
            # Iterating is the client's streaming read (read_range_stream: "the most
            # efficient way to iteratively read a file"), as fio reads with its own best
            # way; bytes arrive in this process, their CRCs checked by the client.
            for piece in r:
                n += len(piece)
        rt = time.perf_counter() - t0
        dn3, me3 = datanodes_cpu(c), own_cpu()
        ok, pos = True, 0
        with client.read(path) as r:
            for piece in r:
                off = pos % len(payload)
                ok &= piece == doubled[off : off + len(piece)]
                pos += len(piece)
        if n != pieces * len(payload) or pos != n or not ok:
            raise SystemExit(f"read back {n} bytes of {path}, content {'ok' if ok else 'WRONG'}")
        results[rep] = {
            "write_MBps": size_mb / wt,
            "read_MBps": size_mb / rt,
            "write_dn_cpu": dn1 - dn0,
            "write_client_cpu": me1 - me0,
            "read_dn_cpu": dn3 - dn2,
            "read_client_cpu": me3 - me2,
        }
        client.delete(path)
    return results


def median_spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lab.bench.hdfs", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--size-mb", type=int, default=128, help="bytes per measurement, MiB (multiple of 8)"
    )
    p.add_argument(
        "--dir", default=None, help="where fio and the DataNodes write (default: a temp dir)"
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--no-native", action="store_true", help="WebHDFS only (without hdfs-native installed)"
    )
    p.add_argument(
        "--aa", action="store_true", help="fio again after HDFS each round: the A/A noise ratio"
    )
    p.add_argument(
        "--reference-source",
        metavar="DIR",
        help="also run the native doors on a MiniCluster of the `lab` package in DIR "
        "(the code before a change), side by side with this one",
    )
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    size = max(8, a.size_mb - a.size_mb % 8)
    root = Path(tempfile.mkdtemp(prefix="racklab-hdfs-bench-", dir=a.dir))
    samples: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        samples.setdefault(key, []).append(value)

    try:
        with contextlib.ExitStack() as stack:
            c = stack.enter_context(
                MiniCluster(root / "dfs", racks={"/rack1": 2, "/rack2": 1}, settings=SETTINGS)
            )
            c.start()
            natives = [("native_", c)]
            if a.reference_source:
                ref = stack.enter_context(
                    MiniCluster(root / "ref", racks={"/rack1": 2, "/rack2": 1}, settings=SETTINGS)
                )
                # `python -m lab.services.hdfs` finds `lab` in its working directory first.
                with contextlib.chdir(a.reference_source):
                    ref.start()
                natives.append(("before_native_", ref))
            for _, cluster in natives:
                cluster.wait_active()
            # Rounds alternate fio and HDFS so that both see the same moments of a shared machine.
            for i in range(a.rounds):
                disk = fio(root, size)
                add("fio_write", disk["write_MBps"])
                add("fio_read", disk["read_MBps"])
                for rep, v in hdfs_run(c, size).items():
                    add(f"r{rep}_write", v["write_MBps"])
                    add(f"r{rep}_read", v["read_MBps"])
                # Both clusters' turns alternate: neither is always the one after fio.
                turns = [] if a.no_native else natives[::-1] if i % 2 else natives
                for prefix, cluster in turns:
                    for rep, v in native_run(cluster, size).items():
                        add(f"{prefix}r{rep}_write", v["write_MBps"])
                        add(f"{prefix}r{rep}_read", v["read_MBps"])
                        for kind in ("write", "read"):
                            for side in ("dn", "client"):
                                cpu = v[f"{kind}_{side}_cpu"]
                                add(f"cpu_{prefix}r{rep}_{kind}_{side}", cpu)
                            if prefix == "native_" and rep == 1:
                                # The ratio hdfs-native could reach this round if its
                                # DataNode cost nothing: fio's time over the client's own
                                # CPU time for the same bytes.
                                fio_time = size / samples[f"fio_{kind}"][-1]
                                add(f"ceiling_{kind}", fio_time / v[f"{kind}_client_cpu"])
                if a.aa:
                    again = fio(root, size)
                    add("fio_again_write", again["write_MBps"])
                    add("fio_again_read", again["read_MBps"])
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def per_round(top: str, bottom: str) -> dict:
        """Each round's `top` over the same round's `bottom`, then the median: the pairs
        saw the same moment of a shared machine, so their ratio is steadier."""
        pairs = zip(samples[top], samples[bottom], strict=True)
        return median_spread([t / b if b else float("nan") for t, b in pairs])

    cpu = {k[4:]: median_spread(v) for k, v in samples.items() if k.startswith("cpu_")}
    stats = {
        k: median_spread(v) for k, v in samples.items() if not k.startswith(("cpu_", "ceiling_"))
    }
    out = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, kernel {platform.release()}",
        "size_MiB": size,
        "rounds": a.rounds,
        "MBps": stats,
        "cpu_seconds": cpu,
        "load_average": os.getloadavg(),
        "ratios": {
            f"{door}replication_{r}": {
                kind: per_round(f"{door}r{r}_{kind}", f"fio_{kind}") for kind in ("write", "read")
            }
            for door in DOORS
            if f"{door}r1_write" in samples
            for r in (1, 3)
        },
    }
    if "ceiling_write" in samples:
        out["ratios"]["client_ceiling_replication_1"] = {
            kind: median_spread(samples[f"ceiling_{kind}"]) for kind in ("write", "read")
        }
    if a.aa:
        out["ratios"]["fio_again"] = {
            kind: per_round(f"fio_again_{kind}", f"fio_{kind}") for kind in ("write", "read")
        }
    if "before_native_r1_write" in samples:
        # This code over the code before it, round by round (MB/s; CPU: below 1 is less).
        out["ratios"]["native_over_before"] = {
            f"r{r}_{kind}": per_round(f"native_r{r}_{kind}", f"before_native_r{r}_{kind}")
            for r in (1, 3)
            for kind in ("write", "read")
        } | {
            f"cpu_r{r}_{kind}_{side}": per_round(
                f"cpu_native_r{r}_{kind}_{side}", f"cpu_before_native_r{r}_{kind}_{side}"
            )
            for r in (1, 3)
            for kind in ("write", "read")
            for side in ("dn", "client")
        }
    if a.json:
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"{out['machine']}; {size} MiB per measurement, median of {a.rounds} rounds [min-max]; ratios: median of per-round ratios"
    )
    print(f"{'':34}{'write MB/s':>20}{'read MB/s':>20}{'write/fio':>11}{'read/fio':>10}")

    def cell(key: str) -> str:
        st = stats[key]
        return f"{st['median']:.0f} [{st['min']:.0f}-{st['max']:.0f}]".rjust(20)

    print(f"{'fio (disk, 1 MiB seq)':34}{cell('fio_write')}{cell('fio_read')}")
    for door, name in DOORS.items():
        for r in (1, 3):
            if f"{door}replication_{r}" not in out["ratios"]:
                continue
            ratio = {k: v["median"] for k, v in out["ratios"][f"{door}replication_{r}"].items()}
            print(
                f"{f'{name} replication {r}':34}{cell(f'{door}r{r}_write')}"
                f"{cell(f'{door}r{r}_read')}{ratio['write']:11.2f}{ratio['read']:10.2f}"
            )
    if a.aa:
        aa = out["ratios"]["fio_again"]
        print(
            f"{'fio again (A/A)':34}{cell('fio_again_write')}{cell('fio_again_read')}"
            f"{aa['write']['median']:11.2f}{aa['read']['median']:10.2f}"
        )
        print(
            "A/A: fio again / fio, per round [min-max]: write "
            f"{aa['write']['min']:.2f}-{aa['write']['max']:.2f}, "
            f"read {aa['read']['min']:.2f}-{aa['read']['max']:.2f}"
        )
    if cpu:
        print(f"CPU seconds per {size} MiB, median [min-max]:")
        print(f"{'':24}{'DataNodes':>20}{'client':>20}")

        def cpu_cell(key: str) -> str:
            st = cpu[key]
            return f"{st['median']:.2f} [{st['min']:.2f}-{st['max']:.2f}]".rjust(20)

        for prefix, name in (("native_", "hdfs-native"), ("before_native_", "before")):
            for r in (1, 3):
                for kind in ("write", "read"):
                    key = f"{prefix}r{r}_{kind}"
                    if key + "_dn" in cpu:
                        print(
                            f"{f'{name} r{r} {kind}':24}{cpu_cell(key + '_dn')}"
                            f"{cpu_cell(key + '_client')}"
                        )
    if "client_ceiling_replication_1" in out["ratios"]:
        cc = out["ratios"]["client_ceiling_replication_1"]
        print(
            "hdfs-native's own CPU alone allows at most, per round (fio's time / the client's "
            "CPU, r1): write "
            + ", read ".join(
                f"{cc[k]['median']:.2f} [{cc[k]['min']:.2f}-{cc[k]['max']:.2f}]"
                for k in ("write", "read")
            )
        )
    if "native_over_before" in out["ratios"]:
        nb = out["ratios"]["native_over_before"]
        print("hdfs-native, this code / the code before, per round: median [min-max]")
        print(f"{'':24}{'MB/s':>20}{'DataNode CPU':>20}{'client CPU':>20}")

        def ratio_cell(key: str) -> str:
            st = nb[key]
            return f"{st['median']:.2f} [{st['min']:.2f}-{st['max']:.2f}]".rjust(20)

        for r in (1, 3):
            for kind in ("write", "read"):
                print(
                    f"{f'r{r} {kind}':24}{ratio_cell(f'r{r}_{kind}')}"
                    f"{ratio_cell(f'cpu_r{r}_{kind}_dn')}{ratio_cell(f'cpu_r{r}_{kind}_client')}"
                )
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in out['load_average'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
