"""YARN under fuzz: the ResourceManager's REST API (every resource, method, parameter and
a submission body mutated field by field) and its RPCs (ResourceTracker and AM protocol
bodies of every wrong type), with yarn-api-client checking between batches that the RM
still answers and still knows every application it accepted."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

from lab.services.yarn.minicluster import MiniYarnCluster

from .core import Daemon, Probe, Target, http_ok
from .mutate import garbage, http_junk, http_request, json_value, mutate_json

RESOURCES = [
    "/ws/v1/cluster", "/ws/v1/cluster/info", "/ws/v1/cluster/metrics", "/ws/v1/cluster/scheduler",
    "/ws/v1/cluster/apps", "/ws/v1/cluster/apps/new-application", "/ws/v1/cluster/appstatistics",
    "/ws/v1/cluster/nodes", "/ws/v1/cluster/nodes/nope:1", "/ws/v1/cluster/apps/{app}",
    "/ws/v1/cluster/apps/{app}/state", "/ws/v1/cluster/apps/{app}/appattempts",
    "/ws/v1/cluster/apps/application_1_1", "/ws/v1/cluster/apps/%00", "/ws/v1/node", "/", "/ws/v2",
]  # fmt: skip
QUERY = ["states", "state", "finalStatus", "user", "queue", "limit", "startedTimeBegin", "startedTimeEnd", "finishedTimeBegin", "applicationTypes", "applicationTags", "user.name", "deSelects"]  # fmt: skip
VALUES = [
    "-1",
    "0",
    "abc",
    "",
    "RUNNING",
    "RUNNING,BOGUS",
    "9223372036854775808",
    "%00",
    "x" * 3000,
]
RPCS = {
    "registerNodeManager": {"nodeId": "fuzz:1", "resource": {"memory": 64, "vCores": 1}, "httpAddress": "fuzz:2"},
    "nodeHeartbeat": {"nodeId": "fuzz:1", "containersStatuses": [{"containerId": "container_1_0001_01_000001", "state": "COMPLETE", "exitStatus": 0}]},
    "unRegisterNodeManager": {"nodeId": "fuzz:1"},
    "registerApplicationMaster": {"attemptId": "appattempt_1_0001_000001", "host": "h", "rpcPort": 1, "trackingUrl": ""},
    "allocate": {"attemptId": "appattempt_1_0001_000001", "progress": 0.5, "ask": [{"allocationRequestId": 1, "capability": {"memory": 64, "vCores": 1}}], "release": [], "blacklistRequest": {"blacklistAdditions": []}},
    "finishApplicationMaster": {"attemptId": "appattempt_1_0001_000001", "finalApplicationStatus": "SUCCEEDED"},
    "getApplicationReport": {"applicationId": "application_1_0001"},
}  # fmt: skip


def submission(app_id: str) -> dict:
    # An unmanaged AM: an accepted submission starts no container.
    return {
        "application-id": app_id,
        "application-name": "fuzz",
        "unmanaged-AM": True,
        "am-container-spec": {
            "commands": {"command": "true"},
            "environment": {"entry": [{"key": "A", "value": "1"}]},
            "local-resources": {"entry": []},
        },
        "resource": {"memory": 64, "vCores": 1},
        "application-tags": {"tag": ["fuzz"]},
        "max-app-attempts": 1,
        "priority": 0,
        "queue": "default",
    }


class YarnTarget(Target):
    service = "yarn"

    def start(self, workdir: Path) -> None:
        # The ResourceManager alone: NodeManagers would run what the fuzzer submits.
        self.cluster = MiniYarnCluster(
            workdir, {}, settings={"hadoop.http.idle_timeout.ms": "5000"}
        )
        self.cluster.start()
        from yarn_api_client.resource_manager import ResourceManager  # the real client

        self.rm = ResourceManager(service_endpoints=[self.cluster.url], timeout=30)
        self.host, self.port = "127.0.0.1", int(self.cluster.url.rsplit(":", 1)[1])
        self.accepted: list[str] = []
        self.app_ids: list[str] = []
        self.check()

    def stop(self) -> None:
        self.cluster.stop()

    def daemons(self) -> list[Daemon]:
        rm = self.cluster.rm
        return [Daemon("resourcemanager", rm.pid, self.host, self.port, rm.log)]

    def alive(self, d: Daemon, timeout: float) -> bool:
        return http_ok(f"{self.cluster.url}/ws/v1/cluster/info", timeout)

    def check(self) -> None:
        info = self.rm.cluster_information().data["clusterInfo"]
        assert info["state"] == "STARTED", info
        aid = self.rm.cluster_new_application().data["application-id"]
        self.rm.cluster_submit_application(submission(aid))
        self.accepted.append(aid)
        for _ in range(4):  # ids the fuzzer may submit with
            self.app_ids.append(self.rm.cluster_new_application().data["application-id"])
        known = {
            a["id"] for a in (self.rm.cluster_applications().data["apps"] or {"app": []})["app"]
        }
        lost = [a for a in self.accepted if a not in known]
        assert not lost, f"accepted applications no longer listed: {lost[:5]}"

    def probes(self, rng: random.Random) -> Iterator[Probe]:
        makers = [self._rest] * 3 + [self._submit] * 3 + [self._rpc] * 3 + [self._junk]
        while True:
            yield rng.choice(makers)(rng)

    def _app(self, rng: random.Random) -> str:
        pool = self.accepted + self.app_ids
        return rng.choice(pool) if pool and rng.random() < 0.8 else "application_0_0000"

    def _rest(self, rng: random.Random) -> Probe:
        path = rng.choice(RESOURCES).replace("{app}", self._app(rng))
        q = "&".join(f"{k}={rng.choice(VALUES)}" for k in rng.sample(QUERY, rng.randint(0, 3)))
        method = rng.choice(["GET", "GET", "PUT", "POST", "DELETE", "HEAD"])
        body = b""
        if method in ("PUT", "POST"):
            body = json.dumps(
                rng.choice([{"state": json_value(rng)}, json_value(rng), {}])
            ).encode()
        headers = {"Accept": rng.choice(["application/json", "application/xml", "*/*", "text/x"])}
        return Probe(
            "rest", self.host, self.port, [http_request(method, f"{path}?{q}", headers, body)]
        )

    def _submit(self, rng: random.Random) -> Probe:
        ctx = submission(self._app(rng))
        for _ in range(rng.randint(1, 3)):
            ctx = mutate_json(rng, ctx)
        body = json.dumps(ctx).encode()
        if rng.random() < 0.1:
            body = rng.choice([b"[" * 100_000, b"{", garbage(rng)])
        req = http_request(
            "POST", "/ws/v1/cluster/apps", {"Content-Type": "application/json"}, body
        )
        return Probe("submit", self.host, self.port, [req])

    def _rpc(self, rng: random.Random) -> Probe:
        name = rng.choice(list(RPCS))
        body = mutate_json(rng, RPCS[name])
        req = http_request(
            "POST", f"/rpc/{name}", {"Content-Type": "application/json"}, json.dumps(body).encode()
        )
        return Probe("rpc", self.host, self.port, [req])

    def _junk(self, rng: random.Random) -> Probe:
        return Probe("http-junk", self.host, self.port, [http_junk(rng, "/ws/v1/cluster/apps")])
