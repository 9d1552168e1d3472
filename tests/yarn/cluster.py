"""Start racklab's YARN daemons (and HDFS, when present) as subprocesses for tests."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from lab.services.hadoop.conf import render_site_xml
from lab.services.hdfs.minicluster import MiniCluster
from lab.services.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def wait_until(pred, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except (requests.RequestException, KeyError, ValueError) as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Daemon:
    def __init__(self, role: str, conf_dir: Path, log: Path):
        self.role = role
        self.conf_dir = conf_dir
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Daemon:
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lab.services.yarn", self.role, "--config", str(self.conf_dir)],
            stdout=self.logf,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if hasattr(self, "logf"):
            self.logf.close()


class YarnCluster:
    """An RM and NodeManagers on 127.0.0.x, each NM in its own loopback address."""

    def __init__(
        self,
        base: Path,
        *,
        rm_conf: dict | None = None,
        capacity: dict | None = None,
        racks: dict | None = None,
    ):
        self.base = base
        self.rm_port = free_port()
        self.rpc_port = free_port()
        self.sched_port = free_port()
        self.tracker_port = free_port()
        self.cg_prefix = f"racklab-test-{os.getpid()}-{self.rm_port}"
        self.common = {
            "yarn.resourcemanager.hostname": "127.0.0.1",
            "yarn.resourcemanager.webapp.address": f"127.0.0.1:{self.rm_port}",
            "yarn.resourcemanager.address": f"127.0.0.1:{self.rpc_port}",
            "yarn.resourcemanager.scheduler.address": f"127.0.0.1:{self.sched_port}",
            "yarn.resourcemanager.resource-tracker.address": f"127.0.0.1:{self.tracker_port}",
            "yarn.resourcemanager.nodemanagers.heartbeat-interval-ms": "100",
            "yarn.nm.liveness-monitor.expiry-interval-ms": "3000",
            "yarn.scheduler.minimum-allocation-mb": "64",
            "yarn.scheduler.maximum-allocation-mb": "2048",
            "yarn.scheduler.capacity.node-locality-delay": "3",
            "yarn.nodemanager.container-monitor.interval-ms": "200",
        }
        self.common.update(rm_conf or {})
        self.capacity = capacity or {}
        self.racks = racks or {}
        self.rm: Daemon | None = None
        self.nms: dict[str, Daemon] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rm_port}"

    def start_rm(self) -> Daemon:
        d = self.base / "rm"
        d.mkdir(parents=True, exist_ok=True)
        conf = dict(self.common)
        if self.racks:
            table = d / "topology.table"
            table.write_text("".join(f"{h} {r}\n" for h, r in self.racks.items()))
            conf["net.topology.table.file.name"] = str(table)
        (d / "yarn-site.xml").write_text(render_site_xml(conf))
        (d / "capacity-scheduler.xml").write_text(render_site_xml(self.capacity))
        self.rm = Daemon("resourcemanager", d, self.base / "rm.log").start()
        wait_until(
            lambda: requests.get(self.url + "/ws/v1/cluster/info", timeout=2).ok, what="RM up"
        )
        return self.rm

    def start_nm(
        self, host: str, memory_mb: int = 1024, vcores: int = 4, extra: dict | None = None
    ) -> Daemon:
        d = self.base / f"nm-{host}"
        d.mkdir(parents=True, exist_ok=True)
        conf = dict(self.common)
        conf.update(
            {
                "yarn.nodemanager.hostname": host,
                "yarn.nodemanager.address": f"{host}:0",
                "yarn.nodemanager.webapp.address": f"{host}:0",
                "mapreduce.shuffle.port": "0",
                "yarn.nodemanager.resource.memory-mb": str(memory_mb),
                "yarn.nodemanager.resource.cpu-vcores": str(vcores),
                "yarn.nodemanager.local-dirs": str(d / "local"),
                "yarn.nodemanager.log-dirs": str(d / "logs"),
                "yarn.nodemanager.linux-container-executor.cgroups.hierarchy": f"/{self.cg_prefix}-{host}",
            }
        )
        conf.update(extra or {})
        (d / "yarn-site.xml").write_text(render_site_xml(conf))
        nm = Daemon("nodemanager", d, self.base / f"nm-{host}.log").start()
        self.nms[host] = nm
        return nm

    def nodes(self, states: str = "RUNNING") -> list[dict]:
        r = requests.get(
            self.url + "/ws/v1/cluster/nodes", params={"states": states}, timeout=5
        ).json()
        return (r["nodes"] or {}).get("node", [])

    def wait_nodes(self, n: int, timeout: float = 20) -> list[dict]:
        return wait_until(
            lambda: len(self.nodes()) >= n and self.nodes(), timeout, what=f"{n} nodes"
        )

    def app(self, app_id: str) -> dict:
        return requests.get(f"{self.url}/ws/v1/cluster/apps/{app_id}", timeout=5).json()["app"]

    def wait_app(
        self, app_id: str, states=("FINISHED", "FAILED", "KILLED"), timeout: float = 60
    ) -> dict:
        return wait_until(
            lambda: (a := self.app(app_id))["state"] in states and a,
            timeout,
            0.2,
            f"{app_id} in {states}",
        )

    def submit(
        self,
        command: str,
        *,
        memory: int = 128,
        queue: str = "default",
        name: str = "test",
        max_attempts: int = 2,
        env: dict | None = None,
        local: dict | None = None,
    ) -> str:
        aid = requests.post(self.url + "/ws/v1/cluster/apps/new-application", timeout=5).json()[
            "application-id"
        ]
        body = {
            "application-id": aid,
            "application-name": name,
            "queue": queue,
            "am-container-spec": {
                "commands": {"command": command},
                "environment": {"entry": [{"key": k, "value": v} for k, v in (env or {}).items()]},
                "local-resources": {
                    "entry": [{"key": k, "value": v} for k, v in (local or {}).items()]
                },
            },
            "max-app-attempts": max_attempts,
            "resource": {"memory": memory, "vCores": 1},
            "application-type": "YARN",
        }
        r = requests.post(self.url + "/ws/v1/cluster/apps", json=body, timeout=5)
        assert r.status_code == 202, r.text
        return aid

    def leftover_cgroups(self, host: str = "") -> list[Path]:
        out = []
        pattern = f"{self.cg_prefix}-{host}" if host else f"{self.cg_prefix}*"
        for root in (Path("/sys/fs/cgroup"), *Path("/sys/fs/cgroup").iterdir()):
            if root.is_dir():
                out += list(root.glob(pattern))
        return out

    def stop(self) -> None:
        for nm in self.nms.values():
            nm.stop()
        if self.rm:
            self.rm.stop()
        # Fixture-level cleanup: no cgroup may survive a test, even after a crash.
        for d in sorted(self.leftover_cgroups(), key=lambda p: -len(p.parts)):
            for child in sorted(d.rglob("*"), key=lambda p: -len(p.parts)):
                if child.is_dir():
                    _kill_and_rmdir(child)
            _kill_and_rmdir(d)


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


WORDS = [f"w{i:03d}" for i in range(400)] + ["grün", "naïve", "日本"]


def make_text(rnd: random.Random, lines: int) -> str:
    return "".join(
        " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(0, 14))) + "\n" for _ in range(lines)
    )


def start_stack(root, nm_memory=1024, nm_extra=None, yarn_kw=None):
    dfs = MiniCluster(
        root / "dfs",
        racks={"/rack1": 2, "/rack2": 1},
        settings={"dfs.blocksize": "64k", "dfs.replication": "1"},
    )
    dfs.start()
    y = None
    try:
        dfs.wait_active()
        y = YarnCluster(root / "yarn", racks=dfs.dn_racks, **(yarn_kw or {}))
        y.start_rm()
        for ip in dfs.dn_racks:  # a NodeManager beside every DataNode, as in a real cluster
            y.start_nm(ip, memory_mb=nm_memory, vcores=8, extra=nm_extra)
        y.wait_nodes(3)
    except BaseException:
        if y:
            y.stop()
        dfs.stop()
        raise
    return dfs, y
