"""Start racklab's YARN daemons (and HDFS, when present) as subprocesses for tests."""

from __future__ import annotations

import random
import time
from pathlib import Path

import requests

from lab.services.hdfs.minicluster import MiniCluster
from lab.services.yarn.minicluster import MiniYarnCluster


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


class YarnCluster(MiniYarnCluster):
    """The tests' cluster: lab/services/yarn/minicluster.py with quicker timings (a
    100 ms heartbeat, NodeManagers lost after 3 s) and what tests ask of the RM."""

    def __init__(
        self,
        base: Path,
        *,
        rm_conf: dict | None = None,
        capacity: dict | None = None,
        racks: dict | None = None,
    ):
        settings = {
            "yarn.resourcemanager.nodemanagers.heartbeat-interval-ms": "100",
            "yarn.nm.liveness-monitor.expiry-interval-ms": "3000",
            "yarn.scheduler.minimum-allocation-mb": "64",
            "yarn.scheduler.maximum-allocation-mb": "2048",
            "yarn.nodemanager.container-monitor.interval-ms": "200",
            **(rm_conf or {}),
        }
        super().__init__(base, racks, settings=settings, capacity=capacity)

    @property
    def base(self) -> Path:
        return self.root

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
