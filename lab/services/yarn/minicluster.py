"""MiniYARNCluster: a ResourceManager and NodeManagers as subprocesses on loopback
addresses, for benchmarks and demos on one host (tests keep their own harness)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from ..hadoop.conf import render_site_xml
from ..ports import free_port
from . import http


class MiniYarnCluster:
    def __init__(
        self,
        root: Path,
        nodes: dict[str, str],
        *,
        memory_mb: int = 1024,
        vcores: int = 4,
        settings: dict | None = None,
    ):
        """nodes: NodeManager address -> rack (put them beside the DataNodes for locality)."""
        self.root = Path(root)
        self.nodes = nodes
        self.memory_mb = memory_mb
        self.vcores = vcores
        ports = [free_port() for _ in range(4)]
        self.url = f"http://127.0.0.1:{ports[0]}"
        self.conf = {
            "yarn.resourcemanager.hostname": "127.0.0.1",
            "yarn.resourcemanager.webapp.address": f"127.0.0.1:{ports[0]}",
            "yarn.resourcemanager.address": f"127.0.0.1:{ports[1]}",
            "yarn.resourcemanager.scheduler.address": f"127.0.0.1:{ports[2]}",
            "yarn.resourcemanager.resource-tracker.address": f"127.0.0.1:{ports[3]}",
            "yarn.resourcemanager.nodemanagers.heartbeat-interval-ms": "200",
            "yarn.scheduler.minimum-allocation-mb": "128",
            "yarn.scheduler.maximum-allocation-mb": str(memory_mb),
            "yarn.scheduler.capacity.node-locality-delay": "3",
            "yarn.nodemanager.container-monitor.interval-ms": "500",
        }
        self.conf.update(settings or {})
        self.procs: list[subprocess.Popen] = []

    def _spawn(self, role: str, conf_dir: Path, values: dict) -> None:
        conf_dir.mkdir(parents=True, exist_ok=True)
        (conf_dir / "yarn-site.xml").write_text(render_site_xml(values))
        log = open(self.root / f"{conf_dir.name}.log", "ab")
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "lab.services.yarn", role, "--config", str(conf_dir)],
                stdout=log,
                stderr=log,
            )
        )
        log.close()

    def start(self, timeout: float = 30) -> MiniYarnCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        table = self.root / "topology.table"
        table.write_text("".join(f"{h} {r}\n" for h, r in self.nodes.items()))
        self._spawn(
            "resourcemanager",
            self.root / "rm",
            dict(self.conf, **{"net.topology.table.file.name": str(table)}),
        )
        for i, host in enumerate(self.nodes):
            d = self.root / f"nm{i}"
            values = dict(self.conf)
            values.update(
                {
                    "yarn.nodemanager.hostname": host,
                    "yarn.nodemanager.address": f"{host}:0",
                    "yarn.nodemanager.webapp.address": f"{host}:0",
                    "mapreduce.shuffle.port": "0",
                    "yarn.nodemanager.resource.memory-mb": str(self.memory_mb),
                    "yarn.nodemanager.resource.cpu-vcores": str(self.vcores),
                    "yarn.nodemanager.local-dirs": str(d / "local"),
                    "yarn.nodemanager.log-dirs": str(d / "logs"),
                    "yarn.nodemanager.linux-container-executor.cgroups.hierarchy": f"/racklab-mini-{self.url.rsplit(':', 1)[1]}-{i}",
                }
            )
            self._spawn("nodemanager", d, values)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if http.call(f"{self.url}/ws/v1/cluster/metrics", timeout=2)["clusterMetrics"][
                    "activeNodes"
                ] == len(self.nodes):
                    return self
            except http.RpcError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"YARN did not come up; logs in {self.root}")

    def stop(self) -> None:
        for p in reversed(self.procs):  # NodeManagers first: they remove their cgroups
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self) -> MiniYarnCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
