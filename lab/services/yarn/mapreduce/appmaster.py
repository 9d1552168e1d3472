"""The MapReduce ApplicationMaster (MRAppMaster's job, in Python).

Started by the RM in the job's first container with the job's configuration
localized as job.json. It registers with the RM, computes input splits from HDFS
block locations, asks for one container per map naming the split's hosts and
racks (the RM's delay scheduling places it node-local, rack-local or
off-switch), launches tasks on the NodeManagers, and once every map has
succeeded asks for the reducers. Tasks report to the AM's umbilical HTTP server.

Failures: a failed attempt is retried (mapreduce.map|reduce.maxattempts, attempts
on a lost node are killed, not failed, and do not count); completed maps whose
output lived on a lost node, or that reducers could not fetch, run again. When
all reducers are done their outputs are committed (renamed out of _temporary),
_SUCCESS is written, and a job report with the counters goes to HDFS.

One concept, MRAppMaster's job, in one module of a little over 600 lines: the task
attempts' life and the AM's umbilical are what it is.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sys
import threading
import time
import traceback
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ...hadoop.errors import HadoopException
from ...hadoop.webclient import WebHdfsClient
from .. import http
from ..conf import Configuration
from ..records import ABORTED, KILLED_BY_RESOURCEMANAGER, attempt_number
from .amweb import AMWebServices
from .jobs import choose_split_points, make_job
from .splits import InputPathMissing, compute_splits, read_split

log = logging.getLogger("mapreduce.am")

PRIORITY_FAST_FAIL_MAP, PRIORITY_REDUCE, PRIORITY_MAP = 5, 10, 20


@dataclass
class Attempt:
    id: str
    task: Task
    request_id: int
    state: str = "ASKED"  # ASKED RUNNING SUCCEEDED FAILED KILLED
    container: dict | None = None
    host: str = ""
    shuffle: str = ""
    locality: str = ""
    counters: dict = field(default_factory=dict)
    diagnostics: str = ""
    started: int = 0  # ms since the epoch: given a container
    finished: int = 0


@dataclass
class Task:
    id: str
    type: str  # MAP | REDUCE
    index: int
    split: dict | None = None
    state: str = "PENDING"  # PENDING SCHEDULED SUCCEEDED
    attempts: list[Attempt] = field(default_factory=list)
    failures: int = 0
    success: Attempt | None = None


class JobFailed(Exception):
    pass


class AppMaster:
    def __init__(self, conf: dict, env: dict[str, str]):
        self.conf = conf
        self.env = env
        self.attempt_id = env["APPLICATION_ATTEMPT_ID"]
        self.am_attempt = attempt_number(self.attempt_id)
        ts, seq = self.attempt_id.split("_")[1:3]
        self.job_id = f"job_{ts}_{seq}"
        self.app_id = f"application_{ts}_{seq}"
        sched = env.get("YARN_RM_SCHEDULER_ADDRESS")
        if not sched:
            yconf = Configuration.load(env.get("HADOOP_CONF_DIR", "."))
            sched = "{}:{}".format(*yconf.get_address("yarn.resourcemanager.scheduler.address"))
        self.rm = f"http://{sched}/rpc/ApplicationMasterProtocol"
        self.fs = WebHdfsClient(conf["fs.webhdfs.address"], user=conf.get("user", "root"))
        self.job = None  # made in setup(), where a bad configuration fails the job, not the AM
        self.reduces = int(conf.get("mapreduce.job.reduces", 1))
        self.max_map_attempts = int(conf.get("mapreduce.map.maxattempts", 4))
        self.max_reduce_attempts = int(conf.get("mapreduce.reduce.maxattempts", 4))
        self.map_res = {
            "memory": int(conf.get("mapreduce.map.memory.mb", 256)),
            "vCores": int(conf.get("mapreduce.map.cpu.vcores", 1)),
        }
        self.reduce_res = {
            "memory": int(conf.get("mapreduce.reduce.memory.mb", 256)),
            "vCores": int(conf.get("mapreduce.reduce.cpu.vcores", 1)),
        }
        self.interval = (
            int(conf.get("yarn.app.mapreduce.am.scheduler.heartbeat.interval-ms", 1000)) / 1000
        )
        self.output = conf["mapreduce.output.fileoutputformat.outputdir"].rstrip("/")
        self.temp = f"{self.output}/_temporary/{self.am_attempt}"
        self.maps: list[Task] = []
        self.reduce_tasks: list[Task] = []
        self.by_request: dict[int, Attempt] = {}
        self.by_container: dict[str, Attempt] = {}
        self.attempts: dict[str, Attempt] = {}
        self.next_request = 1
        self.asks: list[dict] = []
        self.releases: list[str] = []
        self.racks: dict[str, str] = {}
        self.split_points: list[str] = []
        self.lock = threading.RLock()
        self.pool = ThreadPoolExecutor(4)
        self.counters: dict[str, int] = {
            "TOTAL_LAUNCHED_MAPS": 0,
            "TOTAL_LAUNCHED_REDUCES": 0,
            "DATA_LOCAL_MAPS": 0,
            "RACK_LOCAL_MAPS": 0,
            "OTHER_LOCAL_MAPS": 0,
            "NUM_FAILED_MAPS": 0,
            "NUM_KILLED_MAPS": 0,
            "NUM_FAILED_REDUCES": 0,
            "NUM_KILLED_REDUCES": 0,
            "MAPS_RERUN_FOR_LOST_OUTPUT": 0,
        }
        self.events: list[str] = []
        self.started = time.time()
        self.state = "INITED"
        self.diagnostics = ""
        self.fatal = ""
        self.node_failures: dict[str, int] = {}
        # TaskCompletionEvents for reducers: map outputs as they appear and go obsolete.
        self.map_events: list[dict] = []
        self.slowstart = float(conf.get("mapreduce.job.reduce.slowstart.completedmaps", 0.05))
        self.starved = 0  # heartbeats a map has waited with no room while reducers run
        self.blacklisted: set[str] = set()
        self.web = AMWebServices(self)

    # -- umbilical ------------------------------------------------------------
    def serve_umbilical(self) -> str:
        am = self

        class Handler(BaseHTTPRequestHandler):
            # A request left half-sent frees its thread after this, as Jetty's idle
            # timeout frees a Hadoop AM's.
            timeout = 60

            def log_message(self, *a):
                pass

            def handle(self):
                try:
                    super().handle()
                except ConnectionError:  # the client hung up before its answer: not ours
                    pass

            def _reply(self, code: int, body: dict, head: bool = False) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not head:
                    self.wfile.write(data)

            def _body(self) -> bytes:
                try:
                    size = int(self.headers.get("Content-Length", 0) or 0)
                except ValueError:
                    raise http.bad_request("Content-Length is not a number") from None
                return self.rfile.read(min(max(size, 0), 1 << 20)) if size else b""

            def _answer(self, method: str) -> None:
                """The umbilical (racklab's tasks), else the web services; a request
                either cannot parse is refused, not a traceback in the AM's log."""
                try:
                    status, answer = self._route(method)
                except http.HttpError as e:
                    status, answer = e.status, e.body()
                self._reply(status, answer, head=method == "HEAD")

            def _route(self, method: str) -> tuple[int, dict]:
                url = urllib.parse.urlsplit(self.path)
                if method == "POST" and url.path in ("/umbilical/done", "/umbilical/fetchFailure"):
                    try:
                        body = json.loads(self._body() or b"{}")
                    except ValueError:
                        raise http.bad_request("the body is not JSON") from None
                    if not isinstance(body, dict):
                        raise http.bad_request("the body is not a JSON object")
                    if url.path == "/umbilical/done":
                        am.task_done(body)
                    else:
                        am.fetch_failure(body)
                    return 200, {}
                if method == "GET" and url.path == "/umbilical/events":
                    q = urllib.parse.parse_qs(url.query)
                    try:
                        start = int(q.get("from", ["0"])[0])
                    except ValueError:
                        raise http.bad_request("from is not a number") from None
                    return 200, am.map_completion_events(start)
                if method == "GET" and (url.path.rstrip("/") or "/") == "/":
                    return 200, {"job": am.report()}  # racklab's own report
                # Hadoop's MapReduce AM web services (amweb.py), errors included
                return am.web.handle(method, url.path, self._body())

            def do_GET(self):
                self._answer("GET")

            def do_HEAD(self):
                self._answer("HEAD")

            def do_PUT(self):
                self._answer("PUT")

            def do_POST(self):
                self._answer("POST")

            def do_DELETE(self):
                self._answer("DELETE")

        host = self.env.get("NM_HOST") or socket.gethostname()

        class Server(ThreadingHTTPServer):
            # hadoop.http.socket.backlog.size's default in Hadoop 3 (128 before): with
            # socketserver's 5, clients beyond the fifth waiting to be accepted retried
            # their connection for seconds
            request_queue_size = 500

        self.server = Server((host, 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://{host}:{self.server.server_address[1]}"

    # -- RM protocol --------------------------------------------------------------
    def rpc(self, name: str, body: dict) -> dict:
        body = dict(body, attemptId=self.attempt_id)
        return http.call(f"{self.rm}/{name}", body, timeout=30)

    def run(self) -> int:
        self.url = self.serve_umbilical()
        self.rpc(
            "registerApplicationMaster",
            {
                "host": self.env.get("NM_HOST", ""),
                "rpcPort": self.server.server_address[1],
                "trackingUrl": self.url,
            },
        )
        self.state = "RUNNING"
        try:
            self.setup()
            while not self.finished():
                self.heartbeat()
                if self.fatal:
                    raise JobFailed(self.fatal)
                time.sleep(self.interval)
            self.commit()
            self.state = "SUCCEEDED"
        except JobFailed as e:
            self.state, self.diagnostics = "FAILED", str(e)
        except http.RpcError as e:
            if e.exception == "ApplicationAttemptNotFoundException":
                log.warning("the RM no longer knows this attempt (killed?): %s", e.message)
                return 0
            self.state, self.diagnostics = "FAILED", f"{e}"
        except Exception as e:
            traceback.print_exc()
            self.state, self.diagnostics = (
                "FAILED",
                f"ApplicationMaster error: {type(e).__name__}: {e}",
            )
        self.write_report()
        log.info("job %s %s %s", self.job_id, self.state, self.diagnostics)
        self.rpc(
            "finishApplicationMaster",
            {
                "finalApplicationStatus": self.state,
                "diagnostics": self.diagnostics,
                "trackingUrl": self.url,
            },
        )
        self.server.shutdown()
        return 0

    def setup(self) -> None:
        try:
            self.job = make_job(self.conf)
        except (ValueError, re.error) as e:
            raise JobFailed(f"invalid job configuration: {e}") from None
        inputs = self.conf["mapreduce.input.fileinputformat.inputdir"]
        inputs = inputs.split(",") if isinstance(inputs, str) else inputs
        try:
            if self.am_attempt == 1 and self.fs.status(self.output, strict=False) is not None:
                raise JobFailed(f"Output directory {self.output} already exists")
            splits = compute_splits(self.fs, inputs)
        except InputPathMissing as e:
            raise JobFailed(str(e)) from None
        except HadoopException as e:
            raise JobFailed(f"could not read the input from HDFS: {e}") from None
        if self.job.name == "sort" and self.reduces > 1:
            self.split_points = choose_split_points(self.sample(splits), self.reduces)
        ts_seq = self.job_id[4:]
        self.maps = [Task(f"task_{ts_seq}_m_{i:06d}", "MAP", i, s) for i, s in enumerate(splits)]
        self.reduce_tasks = [
            Task(f"task_{ts_seq}_r_{i:06d}", "REDUCE", i) for i in range(self.reduces)
        ]
        self.fs.mkdirs(self.temp)
        self.events.append(f"{len(self.maps)} splits, {self.reduces} reduces")
        log.info("%s: %d maps, %d reduces", self.job_id, len(self.maps), self.reduces)

    def sample(self, splits: list[dict], per_split: int = 1000, max_splits: int = 10) -> list[str]:
        """InputSampler.SplitSampler: the first records of up to max_splits splits, spread out."""
        step = max(1, len(splits) // max_splits)
        out: list[str] = []
        for s in splits[::step][:max_splits]:
            for i, line in enumerate(read_split(self.fs, s)):
                if i >= per_split:
                    break
                out.append(line)
        return out

    def finished(self) -> bool:
        with self.lock:
            return all(t.state == "SUCCEEDED" for t in self.maps + self.reduce_tasks)

    # -- scheduling ---------------------------------------------------------------
    def _new_attempt(self, task: Task) -> None:
        n = len(task.attempts)
        kind = "m" if task.type == "MAP" else "r"
        aid = task.id.replace("task_", "attempt_", 1) + f"_{n}"
        assert f"_{kind}_" in aid
        att = Attempt(aid, task, self.next_request)
        self.next_request += 1
        task.attempts.append(att)
        task.state = "SCHEDULED"
        self.by_request[att.request_id] = att
        self.attempts[att.id] = att
        failed_on = {a.host for a in task.attempts if a.state == "FAILED"}
        if task.type == "MAP":
            rerun = n > 0
            self.asks.append(
                {
                    "allocationRequestId": att.request_id,
                    "priority": PRIORITY_FAST_FAIL_MAP if rerun else PRIORITY_MAP,
                    "capability": self.map_res,
                    "numContainers": 1,
                    # a retry prefers the other replicas' hosts to the ones it failed on
                    "nodes": [h for h in task.split.get("hosts", []) if h not in failed_on]
                    or task.split.get("hosts", []),
                    "racks": task.split.get("racks", []),
                    "relaxLocality": True,
                }
            )
        else:
            self.asks.append(
                {
                    "allocationRequestId": att.request_id,
                    "priority": PRIORITY_REDUCE,
                    "capability": self.reduce_res,
                    "numContainers": 1,
                }
            )

    def heartbeat(self) -> None:
        with self.lock:
            for t in self.maps:
                if t.state == "PENDING":
                    self._new_attempt(t)
            if self._reduces_may_start():
                if self.reduce_tasks and not self.reduce_tasks[0].attempts:
                    done = sum(t.state == "SUCCEEDED" for t in self.maps)
                    self.events.append(
                        f"reduces scheduled with {done} of {len(self.maps)} maps done"
                    )
                for t in self.reduce_tasks:
                    if t.state == "PENDING":
                        self._new_attempt(t)
            asks, self.asks = self.asks, []
            releases, self.releases = self.releases, []
            progress = self.progress()
            blacklist = self._blacklist_update()
        body = {"ask": asks, "release": releases, "progress": progress}
        if blacklist:
            body["blacklistRequest"] = blacklist
        resp = self.rpc("allocate", body)
        with self.lock:
            self.racks.update(resp.get("nodes") or {})
            for node in resp.get("updatedNodes") or []:
                if node.get("nodeState") in (
                    "LOST",
                    "UNHEALTHY",
                    "DECOMMISSIONED",
                    "SHUTDOWN",
                    "REBOOTED",
                ):
                    self.node_lost(node["nodeId"].rsplit(":", 1)[0])
            for st in resp.get("completedContainersStatuses") or []:
                self.container_completed(st)
            self._preempt_reducer_if_starved(
                int((resp.get("availableResources") or {}).get("memory", 0))
            )
            for c in resp.get("allocatedContainers") or []:
                att = self.by_request.get(c.get("allocationRequestId"))
                if att is None or att.state != "ASKED" or att.container is not None:
                    self.releases.append(c["id"])
                    continue
                att.container = c
                att.host = c["nodeId"].rsplit(":", 1)[0]
                att.state = "RUNNING"
                att.started = int(time.time() * 1000)
                self.by_container[c["id"]] = att
                self.pool.submit(self.launch, att)

    def _maps_waiting(self) -> bool:
        return any(a.state == "ASKED" for t in self.maps for a in t.attempts[-1:])

    def _reduces_may_start(self) -> bool:
        """Slow start: reducers (which shuffle as maps finish) once the configured share of
        maps is done, and not while maps still wait for containers they would take."""
        done = sum(t.state == "SUCCEEDED" for t in self.maps)
        if done == len(self.maps):
            return True
        return done >= self.slowstart * len(self.maps) and not self._maps_waiting()

    def _preempt_reducer_if_starved(self, available_mb: int) -> None:
        """RMContainerAllocator's reduce preemption: maps that cannot get a container
        while reducers hold the room would wait forever; give a reducer back."""
        running = [a for t in self.reduce_tasks for a in t.attempts[-1:] if a.state == "RUNNING"]
        if not running or not self._maps_waiting() or available_mb >= self.map_res["memory"]:
            self.starved = 0
            return
        self.starved += 1
        if self.starved < 5:
            return
        self.starved = 0
        victim = running[-1]
        self.events.append(f"{victim.id} preempted: maps need the room")
        self.pool.submit(self._stop_container, victim.container)
        self.attempt_ended(
            victim, "KILLED", "Reducer preempted to make room for pending map attempts"
        )

    def _stop_container(self, c: dict) -> None:
        try:
            http.call(
                f"http://{c['nodeId']}/rpc/ContainerManagementProtocol/stopContainers",
                {"containerIds": [c["id"]]},
            )
        except http.RpcError as e:
            log.warning("could not stop %s: %s", c["id"], e)

    def map_completion_events(self, start: int) -> dict:
        with self.lock:
            return {
                "events": self.map_events[start:],
                "next": len(self.map_events),
                "totalMaps": len(self.maps),
            }

    def _blacklist_update(self) -> dict | None:
        """Nodes where this job's tasks failed mapreduce.job.maxtaskfailures.per.tracker
        times get no more of its containers, unless that would shut out more than
        the ignore-threshold share of the cluster (then the blacklist is lifted)."""
        limit = int(self.conf.get("mapreduce.job.maxtaskfailures.per.tracker", 3))
        threshold = float(
            self.conf.get(
                "yarn.app.mapreduce.am.job.node-blacklisting.ignore-threshold-node-percent", 33
            )
        )
        bad = {h for h, n in self.node_failures.items() if n >= limit}
        cluster = max(1, len(self.racks))
        if bad and 100.0 * len(bad) / cluster > threshold:
            bad = set()
        add, remove = sorted(bad - self.blacklisted), sorted(self.blacklisted - bad)
        if not add and not remove:
            return None
        if add:
            self.events.append(f"blacklisting {', '.join(add)} after {limit} task failures there")
        self.blacklisted = bad
        return {"blacklistAdditions": add, "blacklistRemovals": remove}

    def _locality(self, att: Attempt) -> str:
        split = att.task.split or {}
        if att.host in split.get("hosts", []):
            return "DATA_LOCAL_MAPS"
        rack = self.racks.get(att.host)
        racks = set(split.get("racks", [])) | {
            self.racks[h] for h in split.get("hosts", []) if h in self.racks
        }
        if rack and rack in racks:
            return "RACK_LOCAL_MAPS"
        return "OTHER_LOCAL_MAPS"

    def launch(self, att: Attempt) -> None:
        c = att.container
        task = att.task
        spec: dict = {"attempt": att.id, "type": task.type}
        with self.lock:
            if task.type == "MAP":
                spec["split"] = task.split
                spec["splitPoints"] = self.split_points
                att.locality = self._locality(att)
                self.counters[att.locality] += 1
                self.counters["TOTAL_LAUNCHED_MAPS"] += 1
            else:
                spec["partition"] = task.index
                spec["umbilical"] = self.url  # map outputs arrive as completion events
                spec["tempOutput"] = f"{self.temp}/{att.id}/part-r-{task.index:05d}"
                self.counters["TOTAL_LAUNCHED_REDUCES"] += 1
        request = {
            "containerId": c["id"],
            "user": self.conf.get("user", "root"),
            "resource": c["resource"],
            "launchContext": {
                "commands": [
                    "{{PYTHON}} -m lab.services.yarn.mapreduce.task 1><LOG_DIR>/stdout 2><LOG_DIR>/stderr"
                ],
                "environment": {"MR_TASK": json.dumps(spec), "MR_UMBILICAL": self.url},
                "localResources": {
                    "job.json": {"resource": self.conf["mapreduce.job.conf.uri"], "type": "FILE"}
                },
            },
        }
        try:
            reply = http.call(
                f"http://{c['nodeId']}/rpc/ContainerManagementProtocol/startContainers",
                {"requests": [request]},
            )
            if reply.get("failed"):
                raise http.RpcError("YarnException", reply["failed"][0].get("exception", ""))
            att.shuffle = f"{att.host}:{reply['servicesMetaData']['mapreduce_shuffle']}"
        except http.RpcError as e:
            with self.lock:
                self.releases.append(c["id"])
                self.attempt_ended(att, "FAILED", f"Container launch failed for {c['id']}: {e}")

    # -- events -------------------------------------------------------------------
    def task_done(self, body: dict) -> None:
        with self.lock:
            att = self.attempts.get(body.get("attempt", ""))
            if att is None or att.state != "RUNNING":
                return
            att.state = "SUCCEEDED"
            att.finished = int(time.time() * 1000)
            att.counters = body.get("counters") or {}
            att.shuffle = body.get("shuffle") or att.shuffle
            task = att.task
            task.state = "SUCCEEDED"
            task.success = att
            if task.type == "MAP":
                self.map_events.append(
                    {
                        "type": "SUCCEEDED",
                        "index": task.index,
                        "attempt": att.id,
                        "shuffle": att.shuffle,
                    }
                )

    def fetch_failure(self, body: dict) -> None:
        with self.lock:
            reducer = self.attempts.get(body.get("attempt", ""))
            for map_attempt in body.get("maps") or []:
                att = self.attempts.get(map_attempt)
                if att and att.task.success is att:
                    self.events.append(
                        f"{att.task.id}: output of {att.id} on {att.host} could not be fetched; re-running"
                    )
                    self._rerun_map(att.task)
            if reducer:
                # The reducer goes on: it fetches the re-run map's output when its event comes.
                self.events.append(
                    f"{reducer.id} reported a fetch failure: {body.get('diagnostics', '')[:300]}"
                )

    def _rerun_map(self, task: Task) -> None:
        if task.state != "SUCCEEDED":
            return
        task.success.state = "KILLED"
        self.map_events.append(
            {"type": "OBSOLETE", "index": task.index, "attempt": task.success.id}
        )
        task.success = None
        task.state = "PENDING"
        self.counters["MAPS_RERUN_FOR_LOST_OUTPUT"] += 1

    def node_lost(self, host: str) -> None:
        self.events.append(f"node {host} lost")
        if all(t.state == "SUCCEEDED" for t in self.reduce_tasks):
            return
        for t in self.maps:
            if t.state == "SUCCEEDED" and t.success.host == host:
                self.events.append(f"{t.id}: its output was on lost node {host}; re-running")
                self._rerun_map(t)

    def container_completed(self, st: dict) -> None:
        att = self.by_container.get(st.get("containerId"))
        if att is None or att.state not in ("RUNNING", "ASKED"):
            return
        status = int(st.get("exitStatus", -1))
        diag = st.get("diagnostics", "")
        # Lost node / RM cleanup: not the task's fault (KILLED, not counted as a failure).
        how = "KILLED" if status in (ABORTED, KILLED_BY_RESOURCEMANAGER) else "FAILED"
        self.attempt_ended(att, how, f"exit status {status}: {diag}")

    def attempt_ended(self, att: Attempt, how: str, diagnostics: str) -> None:
        if att.state in ("SUCCEEDED", "FAILED", "KILLED"):
            return
        att.state, att.diagnostics = how, diagnostics
        att.finished = int(time.time() * 1000)
        task = att.task
        kind = "MAPS" if task.type == "MAP" else "REDUCES"
        self.counters[f"NUM_{how}_{kind}"] += 1
        self.events.append(f"{att.id} {how} on {att.host or '?'}: {diagnostics.strip()[:500]}")
        if task.state == "SUCCEEDED":
            return
        if how == "FAILED":
            task.failures += 1
            if att.host:
                self.node_failures[att.host] = self.node_failures.get(att.host, 0) + 1
            limit = self.max_map_attempts if task.type == "MAP" else self.max_reduce_attempts
            if task.failures >= limit:
                self.fatal = (
                    f"Task failed {task.id}\nJob failed as tasks failed. failedMaps:{int(task.type == 'MAP')} "
                    f"failedReduces:{int(task.type == 'REDUCE')}\nLast attempt: {diagnostics.strip()[:2000]}"
                )
                task.state = "FAILED"
                return
        task.state = "PENDING"

    def progress(self) -> float:
        total = len(self.maps) + len(self.reduce_tasks)
        done = sum(t.state == "SUCCEEDED" for t in self.maps + self.reduce_tasks)
        return done / total if total else 0.0

    # -- commit and report ----------------------------------------------------------
    def commit(self) -> None:
        for t in self.reduce_tasks:
            src = f"{self.temp}/{t.success.id}/part-r-{t.index:05d}"
            dst = f"{self.output}/part-r-{t.index:05d}"
            if not self.fs.rename(src, dst):
                raise JobFailed(f"could not commit {src} to {dst}")
        self.fs.write(f"{self.output}/_SUCCESS", b"", overwrite=True)
        self.fs.delete(f"{self.output}/_temporary", recursive=True)

    def report(self) -> dict:
        with self.lock:
            counters = dict(self.counters)
            for t in self.maps + self.reduce_tasks:
                if t.success:
                    for k, v in t.success.counters.items():
                        if k != "ELAPSED_MS":
                            counters[k] = counters.get(k, 0) + v
            return {
                "id": self.job_id,
                "name": self.conf.get("mapreduce.job.name", self.conf.get("mapreduce.job.kind")),
                "state": self.state,
                "diagnostics": self.diagnostics,
                "startTime": int(self.started * 1000),
                "finishTime": int(time.time() * 1000)
                if self.state in ("SUCCEEDED", "FAILED")
                else 0,
                "amAttempt": self.am_attempt,
                "mapsTotal": len(self.maps),
                "mapsCompleted": sum(t.state == "SUCCEEDED" for t in self.maps),
                "reducesTotal": len(self.reduce_tasks),
                "reducesCompleted": sum(t.state == "SUCCEEDED" for t in self.reduce_tasks),
                "counters": counters,
                "splitPoints": self.split_points,
                "events": self.events[-200:],
                "tasks": [
                    {
                        "id": t.id,
                        "state": t.state,
                        "attempts": [
                            {
                                "id": a.id,
                                "state": a.state,
                                "host": a.host,
                                "locality": a.locality,
                                "diagnostics": a.diagnostics[:300],
                            }
                            for a in t.attempts
                        ],
                    }
                    for t in self.maps + self.reduce_tasks
                ],
            }

    def write_report(self) -> None:
        done = self.conf.get(
            "mapreduce.jobhistory.done-dir", "/tmp/hadoop-yarn/staging/history/done"
        )
        try:
            self.fs.mkdirs(done)
            self.fs.write(
                f"{done}/{self.job_id}.json",
                json.dumps(self.report(), indent=1).encode(),
                overwrite=True,  # a second AM attempt writes the report again
            )
        except HadoopException as e:
            log.warning("could not write the job report: %s", e)


def main() -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    conf = json.loads(Path(os.environ.get("MR_JOB_CONF", "job.json")).read_text())
    return AppMaster(conf, dict(os.environ)).run()


if __name__ == "__main__":
    sys.exit(main())
