"""MiniDFSCluster: a NameNode, DataNodes and optionally a secondary as subprocesses on
their own loopback addresses (127.a.b.x), for tests, benchmarks and demos on one host."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..hadoop.conf import render_rack_table, render_site_xml
from ..hadoop.webclient import WebHdfsClient
from ..ports import free_port


@dataclass
class Daemon:
    role: str
    ip: str
    conf_dir: Path
    proc: subprocess.Popen | None = None
    ready: dict = field(default_factory=dict)
    log_path: Path | None = None


class MiniCluster:
    def __init__(
        self,
        root: Path,
        racks: dict[str, int] | None = None,
        settings: dict | None = None,
        secondary: bool = False,
    ) -> None:
        self.root = Path(root)
        self.racks = racks or {"/rack1": 3}
        self.net = f"127.{random.randint(20, 250)}.{random.randint(1, 250)}"
        self.nn_ip = f"{self.net}.1"
        self.settings = dict(settings or {})
        self.secondary_wanted = secondary
        self.datanodes: list[Daemon] = []
        self.dn_racks: dict[str, str] = {}
        i = 10
        for rack, count in self.racks.items():
            for _ in range(count):
                self.dn_racks[f"{self.net}.{i}"] = rack
                i += 1
        self.client_ip = (
            f"{self.net}.200"  # an address no DataNode has: a writer outside the cluster
        )

    # ------------------------------------------------------------ configuration
    def base_settings(self) -> dict:
        http, rpc = free_port(self.nn_ip), free_port(self.nn_ip)
        self.nn_http, self.nn_rpc = http, rpc
        table = self.root / "topology.table"
        table.write_text(render_rack_table(self.dn_racks))
        s = {
            "fs.defaultFS": f"hdfs://{self.nn_ip}:{rpc}",
            "dfs.namenode.http-address": f"{self.nn_ip}:{http}",
            "dfs.namenode.name.dir": str(self.root / "name"),
            "dfs.namenode.checkpoint.dir": str(self.root / "namesecondary"),
            "dfs.namenode.secondary.http-address": f"{self.nn_ip}:0",
            "net.topology.table.file.name": str(table),
            "dfs.blocksize": "1m",
            "dfs.namenode.fs-limits.min-block-size": "0",
            "dfs.heartbeat.interval": "1s",
            "dfs.namenode.heartbeat.recheck-interval": "2000",
            "dfs.namenode.redundancy.interval.seconds": "1s",
            "dfs.namenode.reconstruction.pending.timeout-sec": "10",
            "dfs.namenode.safemode.extension": "1000",
        }
        s.update(self.settings)
        return s

    def write_conf(self, directory: Path, values: dict) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        core = {k: v for k, v in values.items() if k.startswith(("fs.", "hadoop.", "net."))}
        hdfs = {k: v for k, v in values.items() if k not in core}
        (directory / "core-site.xml").write_text(render_site_xml(core))
        (directory / "hdfs-site.xml").write_text(render_site_xml(hdfs))
        return directory

    # ------------------------------------------------------------ processes
    def start(self, timeout: float = 30) -> MiniCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        self.conf = self.base_settings()
        self.namenode = Daemon(
            "namenode", self.nn_ip, self.write_conf(self.root / "conf-nn", self.conf)
        )
        self._spawn(self.namenode, timeout)
        for ip in self.dn_racks:
            self.add_datanode(ip, timeout)
        if self.secondary_wanted:
            self.secondary = Daemon(
                "secondarynamenode", self.nn_ip, self.write_conf(self.root / "conf-snn", self.conf)
            )
            self._spawn(self.secondary, timeout)
        return self

    def add_datanode(self, ip: str, timeout: float = 30) -> Daemon:
        values = dict(self.conf)
        values.update(
            {
                "dfs.datanode.data.dir": str(self.root / f"data-{ip}"),
                "dfs.datanode.address": f"{ip}:0",
                "dfs.datanode.http.address": f"{ip}:0",
                "dfs.datanode.ipc.address": f"{ip}:0",
                # One host runs them all: name each DataNode by its address, as distinct
                # machines would be by their host names.
                "dfs.datanode.hostname": ip,
            }
        )
        d = Daemon("datanode", ip, self.write_conf(self.root / f"conf-dn-{ip}", values))
        self._spawn(d, timeout)
        self.datanodes.append(d)
        return d

    def _spawn(self, d: Daemon, timeout: float) -> None:
        d.log_path = self.root / f"{d.role}-{d.ip}.log"
        log = open(d.log_path, "ab")
        d.proc = subprocess.Popen(
            [sys.executable, "-m", "lab.services.hdfs", d.role, "--config", str(d.conf_dir)],
            stdout=subprocess.PIPE,
            stderr=log,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = d.proc.stdout.readline()
            if not line:
                break
            if line.startswith(b"READY "):
                d.ready = json.loads(line[6:])
                return
        self.stop()
        raise RuntimeError(
            f"{d.role} on {d.ip} did not start; log:\n{d.log_path.read_text()[-3000:]}"
        )

    def kill(self, d: Daemon, sig: int = signal.SIGKILL) -> None:
        if d.proc and d.proc.poll() is None:
            d.proc.send_signal(sig)
            try:
                d.proc.wait(10)
            except subprocess.TimeoutExpired:
                d.proc.kill()
                d.proc.wait()

    def restart(self, d: Daemon, timeout: float = 30, sig: int = signal.SIGTERM) -> None:
        """Stop a daemon and start it again on the same configuration and data."""
        self.kill(d, sig)
        if d.proc and d.proc.stdout:
            d.proc.stdout.close()
        self._spawn(d, timeout)

    def restart_namenode(self, timeout: float = 30) -> None:
        self.kill(self.namenode, signal.SIGTERM)
        self._spawn(self.namenode, timeout)

    def stop(self) -> None:
        # Clients of this cluster that nobody can reach any more are finalized now, while
        # the daemons still answer. An hdfs-native FileWriter is an io.RawIOBase: its
        # finalizer calls close() again, and a writer left open (or whose close failed)
        # then retries an absent NameNode for about three minutes, in whichever later test
        # the cyclic garbage collector happens to run (the 180 s stalls of issue 18).
        gc.collect()
        daemons = (
            list(self.datanodes)
            + [self.namenode]
            + ([self.secondary] if hasattr(self, "secondary") else [])
        )
        for d in daemons:
            if d.proc and d.proc.poll() is None:
                d.proc.terminate()
        for d in daemons:
            if d.proc:
                try:
                    d.proc.wait(10)
                except subprocess.TimeoutExpired:
                    d.proc.kill()
                    d.proc.wait()
                if d.proc.stdout:
                    d.proc.stdout.close()

    # ------------------------------------------------------------ helpers
    @property
    def url(self) -> str:
        return f"http://{self.nn_ip}:{self.nn_http}"

    def client(self, user: str = "root") -> WebHdfsClient:
        return WebHdfsClient(self.url, user=user)

    def jmx(self, name: str) -> dict:
        c = self.client()
        try:
            return c.jmx(name)
        finally:
            c.close()

    def fsck(self, path: str = "/") -> dict:
        c = self.client()
        try:
            return c.fsck(path, as_json=True)
        finally:
            c.close()

    def wait(self, predicate, timeout: float, what: str, interval: float = 0.2):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")

    def wait_active(self, timeout: float = 30, datanodes: int | None = None) -> None:
        want = len(self.datanodes) if datanodes is None else datanodes
        self.wait(
            lambda: self.jmx("FSNamesystem")["NumLiveDataNodes"] >= want,
            timeout,
            "DataNodes to register",
        )
        self.wait(lambda: self.jmx("NameNodeInfo")["Safemode"] == "", timeout, "safe mode to end")

    @contextlib.contextmanager
    def running(self, timeout: float = 30):
        """Started, every DataNode registered and safe mode over; stopped on the way out."""
        try:
            self.start(timeout)
            self.wait_active(timeout)
            yield self
        finally:
            self.stop()

    def __enter__(self) -> MiniCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
