"""YARN under fuzz: the ResourceManager's REST API (every resource, method, parameter and
a submission body mutated field by field; the per-application, per-attempt, per-container,
per-node and administrative resources each with a body of its own to mutate) and its RPCs
(ResourceTracker and AM protocol bodies of every wrong type); the RM's web proxy in front of
a MapReduce ApplicationMaster's web services; and a NodeManager's web services. yarn-api-client
checks between batches that the RM still answers and still knows every application it
accepted.

Nothing the fuzzer submits runs: the one NodeManager has less room than the smallest
container and the fuzzer never names it, and the node whose resource the fuzzer changes
is one it registered itself (an address with no NodeManager behind it). The ApplicationMaster is racklab's own AppMaster,
serving its web services in a process of its own, registered for an unmanaged application
and with no job set up."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from lab.services.yarn import http as yarn_http
from lab.services.yarn.minicluster import MiniYarnCluster

from .core import Daemon, Probe, Target, http_ok
from .mutate import garbage, http_junk, http_request, json_value, mutate_json

RESOURCES = [
    "/ws/v1/cluster", "/ws/v1/cluster/info", "/ws/v1/cluster/metrics", "/ws/v1/cluster/scheduler",
    "/ws/v1/cluster/apps", "/ws/v1/cluster/apps/new-application", "/ws/v1/cluster/appstatistics",
    "/ws/v1/cluster/nodes", "/ws/v1/cluster/nodes/nope:1", "/ws/v1/cluster/apps/{app}",
    "/ws/v1/cluster/apps/{app}/state", "/ws/v1/cluster/apps/{app}/appattempts",
    "/ws/v1/cluster/apps/application_1_1", "/ws/v1/cluster/apps/%00", "/ws/v1/node", "/", "/ws/v2",
    "/cluster", "/cluster/app/{app}",
]  # fmt: skip
# Resources with a body of their own: path -> the body a client sends (mutated field by
# field); {app}, {attempt}, {container}, {node} are filled with live ids or mangled ones.
BODIES = {
    "/ws/v1/cluster/apps/{app}/appattempts/{attempt}": None,
    "/ws/v1/cluster/apps/{app}/appattempts/{attempt}/containers": None,
    "/ws/v1/cluster/apps/{app}/appattempts/{attempt}/containers/{container}": None,
    "/ws/v1/cluster/apps/{app}/queue": {"queue": "default"},
    "/ws/v1/cluster/apps/{app}/priority": {"priority": 1},
    "/ws/v1/cluster/apps/{app}/timeout": {"timeout": {"type": "LIFETIME", "expiryTime": "2099-01-01T00:00:00.000+0000", "remainingTimeInSeconds": 5}},
    "/ws/v1/cluster/apps/{app}/timeouts": None,
    "/ws/v1/cluster/apps/{app}/timeouts/{timeout_type}": None,
    "/ws/v1/cluster/containers/{container}/signal/{signal}": None,
    "/ws/v1/cluster/nodes/{node}": None,
    "/ws/v1/cluster/nodes/{node}/resource": {"resource": {"memory": 256, "vCores": 1}, "overCommitTimeout": -1},
    "/ws/v1/cluster/get-node-labels": None,
    "/ws/v1/cluster/get-node-to-labels": None,
    "/ws/v1/cluster/label-mappings": None,
    "/ws/v1/cluster/add-node-labels": {"nodeLabelInfo": [{"name": "x", "exclusivity": True}]},
    "/ws/v1/cluster/remove-node-labels": None,
    "/ws/v1/cluster/replace-node-to-labels": {"nodeToLabels": {"entry": [{"key": "{node}", "value": {"nodeLabels": ["x"]}}]}},
    "/ws/v1/cluster/nodes/{node}/get-labels": None,
    "/ws/v1/cluster/nodes/{node}/replace-labels": {"nodeLabelName": ["x"]},
    "/ws/v1/cluster/scheduler-conf": {"update-queue": {"queue-name": "root.default", "params": {"entry": [{"key": "capacity", "value": "50"}]}}},
    "/ws/v1/cluster/delegation-token": {"renewer": "fuzz"},
    "/ws/v1/cluster/delegation-token/expiration": {"token": "x"},
    "/ws/v1/cluster/reservation/new-reservation": None,
    "/ws/v1/cluster/reservation/list": None,
    "/ws/v1/cluster/reservation/submit": {"queue": "default", "reservation-id": "reservation_1_1", "reservation-definition": {"arrival": 0, "deadline": 1, "reservation-name": "r", "reservation-requests": {"reservation-request-interpreter": 0, "reservation-request": [{"capability": {"memory": 64, "vCores": 1}, "num-containers": 1, "min-concurrency": 1, "duration": 1}]}}},
    "/ws/v1/cluster/reservation/update": {"reservation-id": "reservation_1_1"},
    "/ws/v1/cluster/reservation/delete": {"reservation-id": "reservation_1_1"},
}  # fmt: skip
# The MapReduce AM's web services, reached through the RM's proxy (/proxy/{app}...).
AM_PATHS = [
    "", "/", "/ws/v1/mapreduce", "/ws/v1/mapreduce/info", "/ws/v1/mapreduce/jobs",
    "/ws/v1/mapreduce/jobs/{job}", "/ws/v1/mapreduce/jobs/{job}/jobattempts",
    "/ws/v1/mapreduce/jobs/{job}/counters", "/ws/v1/mapreduce/jobs/{job}/conf",
    "/ws/v1/mapreduce/jobs/{job}/tasks", "/ws/v1/mapreduce/jobs/{job}/tasks/{task}",
    "/ws/v1/mapreduce/jobs/{job}/tasks/{task}/counters",
    "/ws/v1/mapreduce/jobs/{job}/tasks/{task}/attempts",
    "/ws/v1/mapreduce/jobs/{job}/tasks/{task}/attempts/{task_attempt}",
    "/ws/v1/mapreduce/jobs/{job}/tasks/{task}/attempts/{task_attempt}/counters",
    "/ws/v1/mapreduce/jobs/{job}/tasks/{task}/attempts/{task_attempt}/state",
    "/ws/v1/mapreduce/jobs/{job}/tasks/{task}/attempts/{task_attempt}/nope",
]  # fmt: skip
NM_PATHS = [
    "/ws/v1/node", "/ws/v1/node/info", "/ws/v1/node/apps", "/ws/v1/node/apps/{app}",
    "/ws/v1/node/containers", "/ws/v1/node/containers/{container}",
    "/ws/v1/node/containers/{container}/logs", "/ws/v1/node/containerlogs/{container}/stdout",
    "/ws/v1/node/containerlogs/{container}/../../x", "/ws/v1/node/auxiliaryservices",
    "/ws/v1/node/apps/{app}/nope", "/node", "/",
]  # fmt: skip
QUERY = ["states", "state", "finalStatus", "user", "queue", "limit", "startedTimeBegin", "startedTimeEnd", "finishedTimeBegin", "finishedTimeEnd", "applicationTypes", "applicationTags", "user.name", "deSelects", "name", "activitiesCount", "groupBy", "action"]  # fmt: skip
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
    "resourceRequests",
    "resourceRequests,appNodeLabelExpression,amNodeLabelExpression,timeouts,resourceInfo",
    "RESOURCEREQUESTS, bogus",
    "MAPREDUCE",
    "mapreduce,yarn",
    "NEW,NEW_SAVING,SUBMITTED,ACCEPTED,RUNNING,FINISHED,FAILED,KILLED",
    ",",
]
SIGNALS = ["OUTPUT_THREAD_DUMP", "GRACEFUL_SHUTDOWN", "FORCEFUL_SHUTDOWN", "output_thread_dump", "KILL", "", "%00"]  # fmt: skip
TIMEOUT_TYPES = ["LIFETIME", "lifetime", "BOGUS", "", "%20LIFETIME"]
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
        # Containers never fit: the RM's smallest is 128 MB, the NodeManager offers 32.
        self.cluster = MiniYarnCluster(
            workdir, {}, settings={"hadoop.http.idle_timeout.ms": "5000"}
        )
        self.cluster.start()
        self.nm = self.cluster.start_nm(NM_HOST, memory_mb=32, vcores=1)
        [node] = self.cluster.wait_nodes(1)
        self.nm_port = int(node["nodeHTTPAddress"].rsplit(":", 1)[1])
        from yarn_api_client.resource_manager import ResourceManager  # the real client

        self.rm = ResourceManager(service_endpoints=[self.cluster.url], timeout=30)
        self.host, self.port = "127.0.0.1", int(self.cluster.url.rsplit(":", 1)[1])
        self.accepted: list[str] = []
        self.app_ids: list[str] = []
        # Never the real NodeManager's id: a resource the fuzzer gave it would let the
        # RM start the containers of the submissions the fuzzer mutated.
        self.nodes = [FAKE_NODE, "nope:1"]
        self.am_app = self.rm.cluster_new_application().data["application-id"]
        self.rm.cluster_submit_application(submission(self.am_app))
        self.am, self.am_log = start_am(workdir, self.am_app, self.cluster)
        am = self.rm.cluster_application(self.am_app).data["app"]
        self.am_port = int(am["amRPCAddress"].rsplit(":", 1)[1])
        self.check()

    def stop(self) -> None:
        self.am.kill()
        self.am.wait()
        self.cluster.stop()

    def daemons(self) -> list[Daemon]:
        rm = self.cluster.rm
        return [
            Daemon("resourcemanager", rm.pid, self.host, self.port, rm.log),
            Daemon("nodemanager", self.nm.pid, NM_HOST, self.nm_port, self.nm.log),
            Daemon("mapreduce-am", self.am.pid, self.host, self.am_port, self.am_log),
        ]

    def alive(self, d: Daemon, timeout: float) -> bool:
        if d.name == "nodemanager":
            return http_ok(f"http://{NM_HOST}:{self.nm_port}/ws/v1/node/info", timeout)
        if d.name == "mapreduce-am":  # through the proxy, as clients reach it
            return http_ok(f"{self.cluster.url}/proxy/{self.am_app}/ws/v1/mapreduce/info", timeout)
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
        lost = [a for a in [self.am_app, *self.accepted] if a not in known]
        assert not lost, f"accepted applications no longer listed: {lost[:5]}"
        started = yarn_http.call(f"http://{NM_HOST}:{self.nm_port}/ws/v1/node/containers")
        assert started["containers"] is None, f"a fuzzed submission ran: {started}"
        # The node whose resource the fuzzer changes: registered (again, if it expired or
        # a fuzzed RPC unregistered it) at an address no NodeManager answers on.
        yarn_http.call(
            f"{self.cluster.url}/rpc/ResourceTracker/registerNodeManager",
            {
                "nodeId": FAKE_NODE,
                "resource": {"memory": 64, "vCores": 1},
                "httpAddress": FAKE_NODE,
            },
        )

    def probes(self, rng: random.Random) -> Iterator[Probe]:
        makers = (
            [self._rest] * 3
            + [self._submit] * 3
            + [self._rpc] * 3
            + [self._junk]
            + [self._resource] * 4
            + [self._proxy] * 2
            + [self._node_manager] * 2
        )
        while True:
            yield rng.choice(makers)(rng)

    def _app(self, rng: random.Random) -> str:
        pool = self.accepted + self.app_ids
        return rng.choice(pool) if pool and rng.random() < 0.8 else "application_0_0000"

    def _ids(self, rng: random.Random, app: str) -> dict[str, str]:
        """The ids a path names, derived from ``app`` (so they exist or nearly do), or
        mangled ones."""
        ts, seq = (app.split("_") + ["0", "0"])[1:3]
        ids = {
            "app": app,
            "attempt": f"appattempt_{ts}_{seq}_{rng.choice(['000001', '000002', '1'])}",
            "container": f"container_{ts}_{seq}_01_{rng.choice(['000001', '000002'])}",
            "node": rng.choice(self.nodes),
            "signal": rng.choice(SIGNALS),
            "timeout_type": rng.choice(TIMEOUT_TYPES),
            "job": f"job_{ts}_{seq}",
            "task": f"task_{ts}_{seq}_{rng.choice('mr')}_000000",
            "task_attempt": f"attempt_{ts}_{seq}_m_000000_{rng.choice('01')}",
        }
        if rng.random() < 0.3:
            key = rng.choice(list(ids))
            ids[key] = rng.choice(
                ["", "x", "%00", "application_", "appattempt_1", "container_e1_1_1_1_1",
                 ids[key] + "_9", ids[key].upper(), "9" * 30, ids[key].replace("_", "__")]
            )  # fmt: skip
        return ids

    def _query(self, rng: random.Random) -> str:
        return "&".join(f"{k}={rng.choice(VALUES)}" for k in rng.sample(QUERY, rng.randint(0, 3)))

    def _request(
        self,
        rng: random.Random,
        kind: str,
        path: str,
        body_of,
        methods: list[str],
        host: str,
        port: int,
    ) -> Probe:
        method = rng.choice(methods)
        body = b""
        if method in ("PUT", "POST"):
            value = mutate_json(rng, body_of) if body_of is not None else json_value(rng)
            body = json.dumps(value).encode() if rng.random() < 0.9 else garbage(rng)
        headers = {
            "Accept": rng.choice(["application/json", "application/xml", "*/*", "text/x"]),
            "Content-Type": rng.choice(["application/json", "application/xml", "text/plain"]),
        }
        return Probe(
            kind, host, port, [http_request(method, f"{path}?{self._query(rng)}", headers, body)]
        )

    def _rest(self, rng: random.Random) -> Probe:
        path = rng.choice(RESOURCES).replace("{app}", self._app(rng))
        method = rng.choice(["GET", "GET", "PUT", "POST", "DELETE", "HEAD"])
        body = b""
        if method in ("PUT", "POST"):
            body = json.dumps(
                rng.choice([{"state": json_value(rng)}, json_value(rng), {}])
            ).encode()
        headers = {"Accept": rng.choice(["application/json", "application/xml", "*/*", "text/x"])}
        return Probe(
            "rest",
            self.host,
            self.port,
            [http_request(method, f"{path}?{self._query(rng)}", headers, body)],
        )

    def _resource(self, rng: random.Random) -> Probe:
        """A resource added to the RM's API with its ids filled in and a body of its own."""
        template = rng.choice(list(BODIES))
        ids = self._ids(rng, self._app(rng))
        body = BODIES[template]
        if body is not None:
            body = json.loads(json.dumps(body).replace("{node}", ids["node"]))
        methods = ["GET", "GET", "PUT", "POST", "POST", "DELETE", "HEAD"]
        return self._request(
            rng, "resource", template.format(**ids), body, methods, self.host, self.port
        )

    def _proxy(self, rng: random.Random) -> Probe:
        """The RM's web proxy: mostly to the MapReduce AM, sometimes to other applications
        (no tracking URL, unknown, malformed)."""
        app = self.am_app if rng.random() < 0.8 else self._app(rng)
        ids = self._ids(rng, app)
        path = f"/proxy/{ids['app']}" + rng.choice(AM_PATHS).format(**ids)
        body = {"state": rng.choice(["KILLED", "RUNNING", ""])}
        methods = ["GET", "GET", "GET", "PUT", "POST", "DELETE", "HEAD"]
        return self._request(rng, "proxy", path, body, methods, self.host, self.port)

    def _node_manager(self, rng: random.Random) -> Probe:
        ids = self._ids(rng, self._app(rng))
        path = rng.choice(NM_PATHS).format(**ids)
        methods = ["GET", "GET", "GET", "PUT", "POST", "DELETE", "HEAD"]
        return self._request(rng, "nodemanager", path, None, methods, NM_HOST, self.nm_port)

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


NM_HOST = "127.0.0.41"
# Where nothing listens: an AM container the RM places there fails at once to launch.
FAKE_NODE = "127.0.0.42:1"


def start_am(workdir: Path, app: str, cluster: MiniYarnCluster) -> tuple[subprocess.Popen, Path]:
    """racklab's MapReduce AppMaster for the unmanaged application ``app``, in a process of
    its own (its log is the fuzz campaign's to read), once it has registered."""
    log = workdir / "am.log"
    ts, seq = app.split("_")[1:]
    env = {
        "APPLICATION_ATTEMPT_ID": f"appattempt_{ts}_{seq}_000001",
        "YARN_RM_SCHEDULER_ADDRESS": f"127.0.0.1:{cluster.sched_port}",
        "NM_HOST": "127.0.0.1",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lab.testing.fuzz.yarn", json.dumps(env)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while yarn_http.call(f"{cluster.url}/ws/v1/cluster/apps/{app}")["app"]["state"] != "RUNNING":
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the ApplicationMaster did not register: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, log


def serve_am(env: dict[str, str]) -> None:
    """The AppMaster's web services, registered with the RM, heartbeating until killed."""
    from lab.services.yarn.mapreduce.appmaster import AppMaster

    conf = {"fs.webhdfs.address": "127.0.0.1:9", "mapreduce.output.fileoutputformat.outputdir": "/fuzz", "mapreduce.job.name": "fuzz"}  # fmt: skip
    am = AppMaster(conf, env)
    am.url = am.serve_umbilical()
    port = am.server.server_address[1]
    am.rpc(
        "registerApplicationMaster", {"host": "127.0.0.1", "rpcPort": port, "trackingUrl": am.url}
    )
    am.state = "RUNNING"
    while True:  # within the AM liveness expiry, however long the campaign
        try:
            am.rpc("allocate", {"progress": 0.0, "ask": [], "release": []})
        except yarn_http.RpcError as e:
            print("allocate:", e, flush=True)
        time.sleep(5)


if __name__ == "__main__":
    serve_am(json.loads(sys.argv[1]))
