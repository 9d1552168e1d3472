"""Side-by-side benchmark: kazoo against Debian's Apache ZooKeeper and against
racklab's, in one run, same machine, same client code.

    python -m lab.bench.zookeeper [--rounds 3] [--ops 2000] [--pipeline 2000]
                                  [--ensemble [--servers 3|5]]
                                  [--reference apache|racklab [--reference-source DIR]]

Workloads (all bounded in count and in time):
  sync create / sync get / sync set   one request at a time (kazoo's blocking API)
  pipelined get                       --pipeline get_async calls in flight, then wait
For an ensemble (3 servers, or --servers 5) the client is connected to a follower.

Both servers of a setup run at once. Each round of a workload gives each server --ops
requests (or 3 pipelined batches) in short slices taken in turns (Apache, racklab,
racklab, Apache, ...), so that load from elsewhere on a shared machine falls on both
alike even when it comes and goes within seconds. A round's figure is requests over
the time the server took; the median round is reported with the lowest and highest,
and the ratio is racklab's median over Apache's. For the synchronous workloads the
median time of one request (median of the rounds' medians) is shown too: bursts of
load from elsewhere move it much less than they move a mean.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time

from lab.bench.reference import apache_zk_argv, apache_zk_available, wait_zk_serving
from lab.services.zookeeper.minicluster import Ensemble, ServerProcess, standalone
from lab.testing.apache_zookeeper import APACHE_DEFAULTS, quorum_argv

TICK_MS = 2000  # ZooKeeper's default tickTime, on both servers


def racklab_argv(cfg: str, source: str | None = None) -> list[str]:
    """A racklab server's command line; from another source tree (the `lab` package
    in `source`) when given, to compare two versions of racklab side by side."""
    if source is None:
        return [sys.executable, "-m", "lab.services.zookeeper", cfg, "--log-level", "WARNING"]
    run = (
        "import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
        "runpy.run_module('lab.services.zookeeper', run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-c", run, os.path.abspath(source), cfg, "--log-level", "WARNING"]


def apache_argv(cfg: str) -> list[str]:
    return apache_zk_argv(cfg, heap="512m")


# --- workloads ---------------------------------------------------------------------

WORKLOADS = ("sync create", "sync get", "sync set", "pipelined get")
VALUE = b"v" * 100


class Subject:
    """One server setup under test, with its kazoo client."""

    def __init__(self, kind: str, hosts: str, servers: list[ServerProcess]):
        from kazoo.client import KazooClient

        self.kind = kind
        self.servers = servers
        self.zk = KazooClient(hosts=hosts, timeout=10)
        self.zk.start(timeout=60)
        # An ensemble may still be electing: retry the first write until it lands.
        deadline = time.monotonic() + 60
        while True:
            try:
                self.zk.ensure_path("/bench")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self.created = 0
        self.round = 0
        self.done = 0
        self.seconds = 0.0
        self.latencies: list[float] = []

    def close(self) -> None:
        try:
            self.zk.stop()
            self.zk.close()
        finally:
            for s in self.servers:
                s.kill()

    def warm_up(self, pipeline: int, n: int = 1000) -> None:
        """Every workload's path once before the figures, so the JVM has compiled them
        (its JIT otherwise compiles in the background during the other server's turns)."""
        zk = self.zk
        zk.ensure_path("/warm")
        for i in range(n):
            zk.create(f"/warm/n{i}", VALUE)
        for i in range(n):
            zk.get(f"/warm/n{i}")
            zk.set(f"/warm/n{i}", VALUE)
        for res in [zk.get_async(f"/warm/n{i % n}") for i in range(pipeline)]:
            res.get(timeout=60)

    def begin_round(self) -> None:
        self.round += 1
        self.done = 0
        self.seconds = 0.0
        self.latencies = []

    def slice(self, workload: str, count: int, pipeline: int) -> None:
        """`count` more requests of the round (one batch for the pipelined get)."""
        zk = self.zk
        r = self.round
        start = self.done
        clock = time.perf_counter
        lat = self.latencies
        t0 = clock()
        if workload == "sync create":
            for i in range(start, start + count):
                t = clock()
                zk.create(f"/bench/r{r}-n{i}", VALUE)
                lat.append(clock() - t)
        elif workload == "sync get":
            for i in range(start, start + count):
                t = clock()
                zk.get(f"/bench/r1-n{i % self.created}")
                lat.append(clock() - t)
        elif workload == "sync set":
            for i in range(start, start + count):
                t = clock()
                zk.set(f"/bench/r1-n{i % self.created}", VALUE)
                lat.append(clock() - t)
        else:
            batch = [zk.get_async(f"/bench/r1-n{i % self.created}") for i in range(pipeline)]
            for res in batch:
                res.get(timeout=60)
            count = pipeline
        self.seconds += clock() - t0
        self.done += count
        if workload == "sync create" and r == 1:
            self.created = self.done


SLICE = 100  # synchronous requests per turn


class Figures:
    """One server's rounds of one workload: ops/s, and the median request time."""

    def __init__(self):
        self.ops: list[float] = []
        self.p50: list[float] = []


def compare(subjects: list[Subject], args) -> dict[tuple[str, str], Figures]:
    """Every round of every workload in turns of SLICE requests (one pipelined batch),
    alternating the order (A B B A ...), so both servers see the same load; each
    server's rounds in ops/s, and for the synchronous workloads the median time one
    request took in each round."""
    for s in subjects:
        s.warm_up(args.pipeline)
    out: dict[tuple[str, str], list[float]] = {}
    for w in WORKLOADS:
        pipelined = w == "pipelined get"
        total = 3 * args.pipeline if pipelined else args.ops
        step = args.pipeline if pipelined else SLICE
        for _ in range(args.rounds):
            for s in subjects:
                s.begin_round()
            turn = 0

            def active(s: Subject, total: int = total) -> bool:
                return s.done < total and s.seconds < args.time_limit

            while any(active(s) for s in subjects):
                order = subjects if turn % 2 == 0 else subjects[::-1]
                turn += 1
                for s in order:
                    if active(s):
                        s.slice(w, min(step, total - s.done), args.pipeline)
            for s in subjects:
                fig = out.setdefault((s.kind, w), Figures())
                fig.ops.append(s.done / s.seconds)
                if s.latencies:
                    fig.p50.append(statistics.median(s.latencies))
    return out


def _racklab(source: str | None):
    return lambda cfg: racklab_argv(cfg, source)


def one_server(kind: str, root: str, label: str, source: str | None = None) -> Subject:
    if kind == "apache":
        srv = standalone(
            os.path.join(root, f"{label}-standalone"),
            tick_time=TICK_MS,
            argv=apache_argv,
            **APACHE_DEFAULTS,
        )
    else:
        srv = standalone(
            os.path.join(root, f"{label}-standalone"), tick_time=TICK_MS, argv=_racklab(source)
        )
    srv.start(wait=False)
    wait_zk_serving(srv.host, srv.port, srv.proc)
    return Subject(label, srv.hosts, [srv])


def ensemble(
    kind: str, root: str, n: int, base: int, label: str, source: str | None = None
) -> Subject:
    where = os.path.join(root, f"{label}-ens")
    if kind == "apache":
        ens = Ensemble(
            where, n, base, TICK_MS, lambda cfg: quorum_argv(cfg, "512m"), **APACHE_DEFAULTS
        )
    else:
        ens = Ensemble(where, n, base, TICK_MS, _racklab(source))
    servers = list(ens.servers.values())
    for s in servers:
        s.start(wait=False)
    for s in servers:
        wait_zk_serving(s.host, s.port, s.proc, 60)
    # The client talks to a follower, so writes take the forwarding path in both.
    return Subject(label, ens.servers[ens.follower(60)].hosts, servers)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lab.bench.zookeeper",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--ops", type=int, default=2000, help="requests per synchronous workload")
    ap.add_argument("--pipeline", type=int, default=2000, help="async gets in flight per batch")
    ap.add_argument(
        "--time-limit", type=float, default=10.0, help="seconds per server and round, at most"
    )
    ap.add_argument("--rounds", type=int, default=3, help="rounds per workload (median reported)")
    ap.add_argument("--ensemble", action="store_true", help="also ensembles on 127.0.0.x")
    ap.add_argument("--servers", type=int, choices=(3, 5), default=3, help="servers of an ensemble")
    ap.add_argument(
        "--reference",
        choices=("apache", "racklab"),
        default="apache",
        help="what racklab is compared with; racklab against itself (an A/A run) shows "
        "how far apart two identical servers measure on this machine now",
    )
    ap.add_argument(
        "--reference-source",
        metavar="DIR",
        help="with --reference racklab: run the reference from the `lab` package in DIR "
        "(another version, e.g. `git worktree add DIR COMMIT`), to measure a change "
        "side by side with the code before it",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # kazoo warns on every server we stop
    if args.reference == "apache" and not apache_zk_available():
        print("Apache ZooKeeper not found (Debian package `zookeeper`)", file=sys.stderr)
        return 2
    rows: list[tuple[str, str, Figures, Figures]] = []
    with tempfile.TemporaryDirectory(prefix="zkbench-") as root:
        ref = args.reference
        if args.reference_source and ref != "racklab":
            ap.error("--reference-source goes with --reference racklab")

        def source(label: str) -> str | None:
            return args.reference_source if label == "ref" else None

        setups = [("standalone", lambda k, label: one_server(k, root, label, source(label)))]
        if args.ensemble:
            setups.append(
                (
                    f"{args.servers} servers",
                    lambda k, label: ensemble(
                        k, root, args.servers, 20 if label == "ref" else 30, label, source(label)
                    ),
                )
            )
        for setup, make in setups:
            subjects = []
            try:
                subjects = [make(ref, "ref"), make("racklab", "racklab")]
                res = compare(subjects, args)
            finally:
                for s in subjects:
                    s.close()
            for w in WORKLOADS:
                rows.append((setup, w, res[("ref", w)], res[("racklab", w)]))
    ref_name = "Apache ZK" if args.reference == "apache" else "racklab A/A"
    if args.reference_source:
        ref_name = "racklab before"
    print(
        f"{'setup':<11} {'workload':<14} {ref_name + ' ops/s (low-high)':>29}"
        f" {'racklab ops/s (low-high)':>25} {'ratio':>6}   {'median request ms':>17} {'ratio':>6}"
    )
    for setup, name, a, o in rows:
        ratio = statistics.median(o.ops) / statistics.median(a.ops)
        line = f"{setup:<11} {name:<14} {_fig(a.ops):>29} {_fig(o.ops):>25} {ratio:>5.2f}x"
        if a.p50 and o.p50:
            ap, op = statistics.median(a.p50) * 1e3, statistics.median(o.p50) * 1e3
            line += f"   {ap:>8.3f} {op:>8.3f} {ap / op:>5.2f}x"
        print(line)
    return 0


def _fig(xs: list[float]) -> str:
    return f"{statistics.median(xs):.0f} ({min(xs):.0f}-{max(xs):.0f})"


if __name__ == "__main__":
    sys.exit(main())
