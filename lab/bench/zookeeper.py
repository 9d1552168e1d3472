"""Side-by-side benchmark: kazoo against Debian's Apache ZooKeeper and against
racklab's, in one run, same machine, same client code.

    python -m lab.bench.zookeeper [--ops 2000] [--pipeline 2000] [--ensemble]

Workloads (all bounded in count and in time):
  sync create / sync get / sync set   one request at a time (kazoo's blocking API)
  pipelined get                       --pipeline get_async calls in flight, then wait
For 3 servers the client is connected to a follower.

Both servers of a setup run at once; each workload runs in alternating rounds
(Apache, racklab, Apache, ...) and the median round is reported, so that load from
elsewhere on a shared machine falls on both alike. Prints ops/s and the ratio.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time

from lab.bench.reference import (
    APACHE_ZK_QUORUM,
    apache_zk_argv,
    apache_zk_available,
    wait_zk_serving,
)
from lab.services.ports import free_port


def _write_cfg(path: str, lines: dict) -> None:
    with open(path, "w") as f:
        f.write("".join(f"{k}={v}\n" for k, v in lines.items()))


class Server:
    """A ZooKeeper server process (Apache's or racklab's) on loopback."""

    def __init__(
        self, kind: str, data_dir: str, port: int, host: str = "127.0.0.1", servers=None, myid=None
    ):
        self.kind = kind
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.proc: subprocess.Popen | None = None
        os.makedirs(data_dir, exist_ok=True)
        cfg = {
            "tickTime": 2000,
            "initLimit": 10,
            "syncLimit": 5,
            "dataDir": data_dir,
            "clientPort": port,
            "clientPortAddress": host,
        }
        if kind == "apache":
            cfg["admin.enableServer"] = "false"
            cfg["4lw.commands.whitelist"] = "*"
        for sid, spec in (servers or {}).items():
            cfg[f"server.{sid}"] = spec
        if myid is not None:
            with open(os.path.join(data_dir, "myid"), "w") as f:
                f.write(f"{myid}\n")
        self.cfg_path = os.path.join(data_dir, "zoo.cfg")
        _write_cfg(self.cfg_path, cfg)

    @property
    def hosts(self) -> str:
        return f"{self.host}:{self.port}"

    def argv(self) -> list[str]:
        if self.kind == "apache":
            return apache_zk_argv(self.cfg_path, APACHE_ZK_QUORUM, heap="512m")
        return [
            sys.executable,
            "-m",
            "lab.services.zookeeper",
            self.cfg_path,
            "--log-level",
            "WARNING",
        ]

    def start(self, wait: bool = True) -> Server:
        log = open(os.path.join(self.data_dir, "server.log"), "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if wait:
            wait_zk_serving(self.host, self.port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


# --- workloads ---------------------------------------------------------------------

WORKLOADS = ("sync create", "sync get", "sync set", "pipelined get")
VALUE = b"v" * 100


class Subject:
    """One server setup under test, with its kazoo client."""

    def __init__(self, kind: str, hosts: str, servers: list[Server]):
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

    def close(self) -> None:
        try:
            self.zk.stop()
            self.zk.close()
        finally:
            for s in self.servers:
                s.stop()

    def run(self, workload: str, ops: int, pipeline: int, time_limit: float) -> float:
        zk = self.zk
        self.round += 1
        r = self.round
        if workload == "sync create":
            fn = lambda i: zk.create(f"/bench/r{r}-n{i}", VALUE)  # noqa: E731
        elif workload == "sync get":
            fn = lambda i: zk.get(f"/bench/r1-n{i % self.created}")  # noqa: E731
        elif workload == "sync set":
            fn = lambda i: zk.set(f"/bench/r1-n{i % self.created}", VALUE)  # noqa: E731
        else:
            t0 = time.perf_counter()
            total = 0
            while total < pipeline * 3 and time.perf_counter() - t0 < time_limit:
                batch = [zk.get_async(f"/bench/r1-n{i % self.created}") for i in range(pipeline)]
                for res in batch:
                    res.get(timeout=60)
                total += len(batch)
            return total / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        done = 0
        for i in range(ops):
            fn(i)
            done += 1
            if time.perf_counter() - t0 > time_limit:
                break
        if workload == "sync create" and r == 1:
            self.created = done
        return done / (time.perf_counter() - t0)


def compare(subjects: list[Subject], args) -> dict[tuple[str, str], float]:
    """Each workload in `rounds` rounds, alternating servers within a round, so load
    from elsewhere on a shared machine hits both alike; the median round counts."""
    for s in subjects:  # warm up (the JVM's JIT, Python's caches) outside the figures
        for i in range(200):
            s.zk.exists(f"/bench/warm{i}")
    out = {}
    for w in WORKLOADS:
        samples: dict[str, list[float]] = {s.kind: [] for s in subjects}
        for _ in range(args.rounds):
            for s in subjects:
                samples[s.kind].append(s.run(w, args.ops, args.pipeline, args.time_limit))
        for kind, xs in samples.items():
            out[(kind, w)] = statistics.median(xs)
    return out


def standalone(kind: str, root: str) -> Subject:
    srv = Server(kind, os.path.join(root, f"{kind}-standalone"), free_port()).start()
    return Subject(kind, srv.hosts, [srv])


def ensemble(kind: str, root: str, base: int) -> Subject:
    hosts = [f"127.0.0.{base + i}" for i in range(3)]
    specs = {i: f"{h}:{free_port(h)}:{free_port(h)}" for i, h in enumerate(hosts, 1)}
    servers = [
        Server(kind, os.path.join(root, f"{kind}-ens{i}"), free_port(h), h, specs, i)
        for i, h in enumerate(hosts, 1)
    ]
    for s in servers:
        s.start(wait=False)
    for s in servers:
        wait_zk_serving(s.host, s.port, s.proc)
    # The client talks to server 1, a follower in both implementations (the highest
    # id wins the first election), so writes take the forwarding path.
    return Subject(kind, servers[0].hosts, servers)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lab.bench.zookeeper",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--ops", type=int, default=2000, help="requests per synchronous workload")
    ap.add_argument("--pipeline", type=int, default=2000, help="async gets in flight per batch")
    ap.add_argument(
        "--time-limit", type=float, default=10.0, help="seconds per workload round, at most"
    )
    ap.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds per workload (median reported)"
    )
    ap.add_argument("--ensemble", action="store_true", help="also 3-server ensembles on 127.0.0.x")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # kazoo warns on every server we stop
    if not apache_zk_available():
        print("Apache ZooKeeper not found (Debian package `zookeeper`)", file=sys.stderr)
        return 2
    rows: list[tuple[str, str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="zkbench-") as root:
        setups = [("standalone", lambda k: standalone(k, root))]
        if args.ensemble:
            setups.append(("3 servers", lambda k: ensemble(k, root, 20 if k == "apache" else 30)))
        for setup, make in setups:
            subjects = []
            try:
                subjects = [make("apache"), make("racklab")]
                res = compare(subjects, args)
            finally:
                for s in subjects:
                    s.close()
            for w in WORKLOADS:
                rows.append((setup, w, res[("apache", w)], res[("racklab", w)]))
    print(
        f"{'setup':<11} {'workload':<14} {'Apache ZK ops/s':>16} {'racklab ops/s':>14} {'ratio':>6}"
    )
    for setup, name, a, o in rows:
        print(f"{setup:<11} {name:<14} {a:>16.0f} {o:>14.0f} {o / a:>5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
