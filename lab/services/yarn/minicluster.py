"""MiniYARNCluster: a ResourceManager and NodeManagers as subprocesses on loopback
addresses (each NodeManager on its own 127.0.0.x), for the tests, the benchmarks, the
fuzzer and the demos alike, as Hadoop's MiniYARNCluster serves its own tests.

Either all at once (``start()``: the RM and one NodeManager per address of ``nodes``,
waited for until every one has registered) or daemon by daemon (``start_rm()``,
``start_nm(host, ...)``), each a ``YarnDaemon`` a test may kill, stop or start again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..hadoop.conf import render_site_xml
from ..ports import free_port
from . import http

CGROUP_ROOT = Path("/sys/fs/cgroup")


class YarnDaemon:
    """One `python -m lab.services.yarn ROLE --config DIR`, its output in ``log``."""

    def __init__(self, role: str, conf_dir: Path, log: Path):
        self.role = role
        self.conf_dir = conf_dir
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> YarnDaemon:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lab.services.yarn",
                    self.role,
                    "--config",
                    str(self.conf_dir),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: nothing said on the way out (a crash)."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (a NodeManager unregisters, removes its cgroups), then SIGKILL."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()


class MiniYarnCluster:
    def __init__(
        self,
        root: Path,
        nodes: dict[str, str] | None = None,
        *,
        memory_mb: int = 1024,
        vcores: int = 4,
        settings: dict | None = None,
        capacity: dict | None = None,
    ):
        """nodes: NodeManager address -> rack (put them beside the DataNodes for
        locality); the rack table is given to the RM. settings: yarn-site.xml values
        over the defaults here (a 200 ms heartbeat: a test or a demo should not wait);
        capacity: capacity-scheduler.xml."""
        self.root = Path(root)
        self.racks = dict(nodes or {})
        self.memory_mb = memory_mb
        self.vcores = vcores
        self.capacity = capacity or {}
        self.rm_port, self.rpc_port, self.sched_port, self.tracker_port = (
            free_port() for _ in range(4)
        )
        # NodeManagers' container cgroups: under a name of this cluster's own, so that
        # stop() finds whatever a crashed NodeManager left
        self.cg_prefix = f"racklab-mini-{os.getpid()}-{self.rm_port}"
        self.conf = {
            "yarn.resourcemanager.hostname": "127.0.0.1",
            "yarn.resourcemanager.webapp.address": f"127.0.0.1:{self.rm_port}",
            "yarn.resourcemanager.address": f"127.0.0.1:{self.rpc_port}",
            "yarn.resourcemanager.scheduler.address": f"127.0.0.1:{self.sched_port}",
            "yarn.resourcemanager.resource-tracker.address": f"127.0.0.1:{self.tracker_port}",
            "yarn.resourcemanager.nodemanagers.heartbeat-interval-ms": "200",
            "yarn.scheduler.minimum-allocation-mb": "128",
            "yarn.scheduler.maximum-allocation-mb": str(memory_mb),
            # what a client reads from the RM's yarn-site.xml, as in a real cluster's one file
            "yarn.nodemanager.resource.memory-mb": str(memory_mb),
            "yarn.scheduler.capacity.node-locality-delay": "3",
            "yarn.nodemanager.container-monitor.interval-ms": "500",
        }
        self.conf.update(settings or {})
        self.rm: YarnDaemon | None = None
        self.nms: dict[str, YarnDaemon] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rm_port}"

    # daemon by daemon

    def start_rm(self, timeout: float = 30) -> YarnDaemon:
        """The ResourceManager (again, after a kill: its state store is kept), waited
        for until its REST API answers."""
        d = self.root / "rm"
        d.mkdir(parents=True, exist_ok=True)
        conf = dict(self.conf)
        if self.racks:
            table = d / "topology.table"
            table.write_text("".join(f"{h} {r}\n" for h, r in self.racks.items()))
            conf["net.topology.table.file.name"] = str(table)
        (d / "yarn-site.xml").write_text(render_site_xml(conf))
        (d / "capacity-scheduler.xml").write_text(render_site_xml(self.capacity))
        self.rm = YarnDaemon("resourcemanager", d, self.root / "rm.log").start()
        self._wait(lambda: http.call(f"{self.url}/ws/v1/cluster/info", timeout=2), timeout, "RM")
        return self.rm

    def start_nm(
        self,
        host: str,
        memory_mb: int | None = None,
        vcores: int | None = None,
        extra: dict | None = None,
    ) -> YarnDaemon:
        """A NodeManager on ``host`` (a 127.0.0.x address), not waited for."""
        d = self.root / f"nm-{host}"
        d.mkdir(parents=True, exist_ok=True)
        conf = dict(self.conf)
        conf.update(
            {
                "yarn.nodemanager.hostname": host,
                "yarn.nodemanager.address": f"{host}:0",
                "yarn.nodemanager.webapp.address": f"{host}:0",
                "mapreduce.shuffle.port": "0",
                "yarn.nodemanager.resource.memory-mb": str(memory_mb or self.memory_mb),
                "yarn.nodemanager.resource.cpu-vcores": str(vcores or self.vcores),
                "yarn.nodemanager.local-dirs": str(d / "local"),
                "yarn.nodemanager.log-dirs": str(d / "logs"),
                "yarn.nodemanager.linux-container-executor.cgroups.hierarchy": f"/{self.cg_prefix}-{host}",
            }
        )
        conf.update(extra or {})
        (d / "yarn-site.xml").write_text(render_site_xml(conf))
        self.nms[host] = YarnDaemon("nodemanager", d, self.root / f"nm-{host}.log").start()
        return self.nms[host]

    def nodes(self, states: str = "RUNNING") -> list[dict]:
        """The RM's nodes in ``states`` (its REST API's words: RUNNING, LOST, ...)."""
        r = http.call(f"{self.url}/ws/v1/cluster/nodes?states={states}", timeout=5)
        return (r["nodes"] or {}).get("node", [])

    def wait_nodes(self, n: int, timeout: float = 30) -> list[dict]:
        """Until at least ``n`` NodeManagers have registered and run."""
        return self._wait(lambda: len(nodes := self.nodes()) >= n and nodes, timeout, f"{n} nodes")

    def _wait(self, pred, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = pred()
                if last:
                    return last
            except (http.RpcError, OSError, KeyError, ValueError) as e:
                last = e
            time.sleep(0.1)
        raise TimeoutError(
            f"YARN: no {what} within {timeout:.0f}s (last: {last!r}); logs in {self.root}"
        )

    # all at once

    def start(self, timeout: float = 30) -> MiniYarnCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self.start_rm(timeout)
            for host in self.racks:
                self.start_nm(host)
            if self.racks:
                self.wait_nodes(len(self.racks), timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def leftover_cgroups(self, host: str = "") -> list[Path]:
        """Container cgroups of this cluster's NodeManagers (of ``host``'s) still there."""
        pattern = f"{self.cg_prefix}-{host}" if host else f"{self.cg_prefix}*"
        out = []
        if CGROUP_ROOT.is_dir():
            for root in (CGROUP_ROOT, *CGROUP_ROOT.iterdir()):
                if root.is_dir():
                    out += list(root.glob(pattern))
        return out

    def stop(self) -> None:
        for nm in self.nms.values():  # NodeManagers first: they remove their cgroups
            nm.stop()
        if self.rm:
            self.rm.stop()
        # whatever a NodeManager that crashed left: no cgroup outlives the cluster
        for d in sorted(self.leftover_cgroups(), key=lambda p: -len(p.parts)):
            for child in sorted(d.rglob("*"), key=lambda p: -len(p.parts)):
                if child.is_dir():
                    _kill_and_rmdir(child)
            _kill_and_rmdir(d)

    def __enter__(self) -> MiniYarnCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _kill_and_rmdir(d: Path) -> None:
    for _ in range(50):
        try:
            for pid in (d / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)
