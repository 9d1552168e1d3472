"""Side-by-side benchmark: kazoo against Debian's Apache ZooKeeper and against
racklab's, in one run, same machine, same client code.

    python -m lab.bench.zookeeper [--ops 2000] [--pipeline 2000] [--ensemble]

Workloads (all bounded in count and in time):
  sync create / sync get / sync set   one request at a time (kazoo's blocking API)
  pipelined get                       --pipeline get_async calls in flight, then wait

Prints ops/s per server and racklab/Apache ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

APACHE_JAR = "/usr/share/java/zookeeper.jar"
APACHE_CONF_DIR = "/etc/zookeeper/conf"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_ruok(host: str, port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=1) as s:
                s.sendall(b"ruok")
                if s.recv(4) == b"imok":
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{host}:{port} did not answer ruok")


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
            main = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
            return [
                "java",
                "-Xmx512m",
                f"-Dzookeeper.log.dir={self.data_dir}",
                "-cp",
                f"{APACHE_CONF_DIR}:{APACHE_JAR}",
                main,
                self.cfg_path,
            ]
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
            wait_ruok(self.host, self.port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def apache_available() -> bool:
    return os.path.exists(APACHE_JAR) and shutil.which("java") is not None


# --- workloads ---------------------------------------------------------------------


def run_workloads(hosts: str, ops: int, pipeline: int, time_limit: float) -> dict[str, float]:
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=hosts, timeout=10)
    zk.start(timeout=30)
    results: dict[str, float] = {}
    try:
        zk.ensure_path("/bench")
        value = b"v" * 100

        def timed(name, fn, n):
            t0 = time.perf_counter()
            done = 0
            for i in range(n):
                fn(i)
                done += 1
                if time.perf_counter() - t0 > time_limit:
                    break
            results[name] = done / (time.perf_counter() - t0)

        timed("sync create", lambda i: zk.create(f"/bench/n{i}", value), ops)
        created = len(zk.get_children("/bench"))
        timed("sync get", lambda i: zk.get(f"/bench/n{i % created}"), ops)
        timed("sync set", lambda i: zk.set(f"/bench/n{i % created}", value), ops)
        t0 = time.perf_counter()
        total = 0
        while total < pipeline * 5 and time.perf_counter() - t0 < time_limit:
            batch = [zk.get_async(f"/bench/n{i % created}") for i in range(pipeline)]
            for r in batch:
                r.get(timeout=30)
            total += len(batch)
        results["pipelined get"] = total / (time.perf_counter() - t0)
    finally:
        zk.stop()
        zk.close()
    return results


def bench_standalone(kind: str, root: str, args) -> dict[str, float]:
    srv = Server(kind, os.path.join(root, f"{kind}-standalone"), free_port()).start()
    try:
        return run_workloads(srv.hosts, args.ops, args.pipeline, args.time_limit)
    finally:
        srv.stop()


def bench_ensemble(kind: str, root: str, args, base: int) -> dict[str, float]:
    hosts = [f"127.0.0.{base + i}" for i in range(3)]
    specs = {}
    ports = []
    for i, h in enumerate(hosts, 1):
        specs[i] = f"{h}:{free_port(h)}:{free_port(h)}"
        ports.append(free_port(h))
    servers = [
        Server(kind, os.path.join(root, f"{kind}-ens{i}"), ports[i - 1], hosts[i - 1], specs, i)
        for i in (1, 2, 3)
    ]
    try:
        for s in servers:
            s.start(wait=False)
        for s in servers:
            wait_ruok(s.host, s.port, s.proc)
        # Wait for a leader: a write must succeed through every server.
        connect = ",".join(s.hosts for s in servers)
        return run_workloads(connect, args.ops, args.pipeline, args.time_limit)
    finally:
        for s in servers:
            s.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lab.bench.zookeeper",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--ops", type=int, default=2000, help="requests per synchronous workload")
    ap.add_argument("--pipeline", type=int, default=2000, help="async gets in flight per batch")
    ap.add_argument("--time-limit", type=float, default=20.0, help="seconds per workload, at most")
    ap.add_argument("--ensemble", action="store_true", help="also 3-server ensembles on 127.0.0.x")
    args = ap.parse_args(argv)
    if not apache_available():
        print("Apache ZooKeeper not found (Debian package `zookeeper`)", file=sys.stderr)
        return 2
    rows: list[tuple[str, str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="zkbench-") as root:
        setups = [("standalone", lambda k: bench_standalone(k, root, args))]
        if args.ensemble:
            setups.append(
                ("3 servers", lambda k: bench_ensemble(k, root, args, 20 if k == "apache" else 30))
            )
        for setup, fn in setups:
            apache = fn("apache")
            ours = fn("racklab")
            for name in apache:
                rows.append((setup, name, apache[name], ours[name]))
    print(
        f"{'setup':<11} {'workload':<14} {'Apache ZK ops/s':>16} {'racklab ops/s':>14} {'ratio':>6}"
    )
    for setup, name, a, o in rows:
        print(f"{setup:<11} {name:<14} {a:>16.0f} {o:>14.0f} {o / a:>5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
