"""The MapReduce ApplicationMaster's web services (Hadoop's AMWebServices,
/ws/v1/mapreduce/...), rendered from the AppMaster's own state: info, the job, its AM
attempts, counters and configuration, tasks, task attempts, their counters, and an
attempt's state (PUT {"state": "KILLED"} kills it). Clients reach it through the RM's
web proxy (/proxy/{app}/ws/v1/mapreduce/...), as yarn-api-client's ApplicationMaster does.

Hadoop's shapes and texts: a malformed or unknown id is NotFoundException (404) with
"job, X, is not found" and the like, as AMWebServices answers.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING

from .. import http

if TYPE_CHECKING:
    from .appmaster import AppMaster, Attempt, Task

_JOB = re.compile(r"^job_\d+_\d+$")
_TASK = re.compile(r"^task_\d+_\d+_[mr]_\d+$")
_ATTEMPT = re.compile(r"^attempt_\d+_\d+_[mr]_\d+_\d+$")
_PATH = re.compile(
    r"^/ws/v1/mapreduce/jobs/(?P<job>[^/]+)"
    r"(?:/(?P<what>jobattempts|counters|conf|tasks)"
    r"(?:/(?P<task>[^/]+)(?:/(?P<twhat>counters|attempts)"
    r"(?:/(?P<att>[^/]+)(?:/(?P<awhat>state|counters))?)?)?)?)?$"
)

# Where Hadoop files the counters racklab's job and tasks count.
JOB_COUNTERS = "org.apache.hadoop.mapreduce.JobCounter"
TASK_COUNTERS = "org.apache.hadoop.mapreduce.TaskCounter"
FS_COUNTERS = "org.apache.hadoop.mapreduce.FileSystemCounter"
_GROUP = {"HDFS_BYTES_READ": FS_COUNTERS, "HDFS_BYTES_WRITTEN": FS_COUNTERS}
_JOB_ONLY = {"MAPS_RERUN_FOR_LOST_OUTPUT": "racklab"}  # no Hadoop counter says this
_ATTEMPT_STATE = {"ASKED": "STARTING"}


def _ms() -> int:
    return int(time.time() * 1000)


def _elapsed(start: int, finish: int) -> int:
    return (finish or _ms()) - start if start else 0


class AMWebServices:
    def __init__(self, am: AppMaster):
        self.am = am

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict]:
        try:
            return self._handle(method, path, body)
        except http.HttpError as e:
            raise e.web_service() from None

    def _handle(self, method: str, path: str, body: bytes) -> tuple[int, dict]:
        am = self.am
        p = path.rstrip("/")
        # Every resource is read with GET (HEAD too, as Jersey answers it) and only an
        # attempt's state takes a PUT: any other method is Jersey's 405.
        read = method in ("GET", "HEAD")
        if p in ("/ws/v1/mapreduce", "/ws/v1/mapreduce/info", "/ws/v1/mapreduce/jobs"):
            if not read:
                raise http.not_allowed(method, path)
            if p.endswith("/jobs"):
                with am.lock:
                    return 200, {"jobs": {"job": [self.job()]}}
            return 200, {"info": self.info()}
        m = _PATH.match(p)
        if not m:
            raise http.not_found(f"Cannot find resource {path}")
        self._job_id(m["job"])
        if not read and not (method == "PUT" and m["awhat"] == "state"):
            raise http.not_allowed(method, path)
        with am.lock:
            if m["what"] is None:
                return 200, {"job": self.job()}
            if m["what"] == "jobattempts":
                return 200, {"jobAttempts": {"jobAttempt": [self.am_attempt()]}}
            if m["what"] == "counters":
                return 200, {"jobCounters": self.job_counters()}
            if m["what"] == "conf":
                return 200, {"conf": self.conf()}
            if m["task"] is None:
                return 200, {"tasks": {"task": [self.task(t) for t in self.tasks()]}}
            task = self._task(m["task"])
            if m["twhat"] is None:
                return 200, {"task": self.task(task)}
            if m["twhat"] == "counters":
                counters = task.success.counters if task.success else {}
                return 200, {
                    "jobTaskCounters": {
                        "id": task.id,
                        "taskCounterGroup": self.groups(counters, "value"),
                    }
                }
            if m["att"] is None:
                return 200, {
                    "taskAttempts": {"taskAttempt": [self.attempt(a) for a in task.attempts]}
                }
            att = self._attempt(task, m["att"])
            if m["awhat"] is None:
                return 200, {"taskAttempt": self.attempt(att)}
            if m["awhat"] == "counters":
                return 200, {
                    "jobTaskAttemptCounters": {
                        "id": att.id,
                        "taskAttemptCounterGroup": self.groups(att.counters, "value"),
                    }
                }
            # JobTaskAttemptState: its JSON has no root element (the XML's is
            # <jobTaskAttemptState>), as the MapReduce AM REST docs show
            if method == "PUT":
                return 200, {"state": self.kill(att, body)}
            return 200, {"state": self.attempt_state(att)}

    # -- ids ----------------------------------------------------------------------
    def _job_id(self, text: str) -> None:
        if not _JOB.match(text):
            raise http.not_found(f"JobId string : {text} is not properly formed")
        if text != self.am.job_id:
            raise http.not_found(f"job, {text}, is not found")

    def _task(self, text: str) -> Task:
        if not _TASK.match(text):
            raise http.not_found(f"TaskId string : {text} is not properly formed")
        for t in self.tasks():
            if t.id == text:
                return t
        raise http.not_found(f"task not found with id {text}")

    def _attempt(self, task: Task, text: str) -> Attempt:
        if not _ATTEMPT.match(text):
            raise http.not_found(f"TaskAttemptId string : {text} is not properly formed")
        for a in task.attempts:
            if a.id == text:
                return a
        raise http.not_found(f"Error getting info on task attempt id {text}")

    def tasks(self) -> list[Task]:
        return self.am.maps + self.am.reduce_tasks

    # -- resources ------------------------------------------------------------------
    def info(self) -> dict:
        am = self.am
        started = int(am.started * 1000)
        return {
            "appId": am.app_id,
            "startedOn": started,
            "name": self._name(),
            "user": am.conf.get("user", "root"),
            "elapsedTime": _ms() - started,
        }

    def _name(self) -> str:
        return str(self.am.conf.get("mapreduce.job.name") or self.am.conf.get("mapreduce.job.kind"))

    def job(self) -> dict:
        am = self.am
        start = int(am.started * 1000)
        done = am.state in ("SUCCEEDED", "FAILED")
        out = {
            "startTime": start,
            "finishTime": _ms() if done else 0,
            "elapsedTime": _ms() - start,
            "id": am.job_id,
            "name": self._name(),
            "user": am.conf.get("user", "root"),
            "state": am.state,
            "uberized": False,
            "diagnostics": am.diagnostics,
            # the job's ACLs, as its configuration sets them (" ": nobody beyond the owner)
            "acls": [
                {"name": name, "value": str(am.conf.get(name, " "))}
                for name in ("mapreduce.job.acl-modify-job", "mapreduce.job.acl-view-job")
            ],
        }
        for kind, tasks in (("map", am.maps), ("reduce", am.reduce_tasks)):
            states = [self.task_state(t) for t in tasks]
            attempts = [self.attempt_state(a) for t in tasks for a in t.attempts]
            done_n = states.count("SUCCEEDED")
            out[f"{kind}sTotal"] = len(tasks)
            out[f"{kind}sCompleted"] = done_n
            out[f"{kind}sPending"] = sum(s in ("NEW", "SCHEDULED") for s in states)
            out[f"{kind}sRunning"] = states.count("RUNNING")
            out[f"{kind}Progress"] = 100.0 * done_n / len(tasks) if tasks else 100.0
            cap = kind.capitalize()
            out[f"new{cap}Attempts"] = attempts.count("STARTING")
            out[f"running{cap}Attempts"] = attempts.count("RUNNING")
            out[f"failed{cap}Attempts"] = attempts.count("FAILED")
            out[f"killed{cap}Attempts"] = attempts.count("KILLED")
            out[f"successful{cap}Attempts"] = attempts.count("SUCCEEDED")
        return out

    def am_attempt(self) -> dict:
        env = self.am.env
        host = env.get("NM_HOST", "")
        http_address = f"{host}:{env.get('NM_HTTP_PORT', '')}"
        cid = env.get("CONTAINER_ID", "")
        return {
            "nodeHttpAddress": http_address,
            "nodeId": f"{host}:{env.get('NM_PORT', '')}",
            "id": self.am.am_attempt,
            "startTime": int(self.am.started * 1000),
            "containerId": cid,
            "logsLink": f"http://{http_address}/node/containerlogs/{cid}/{self.am.conf.get('user', 'root')}",
        }

    def groups(self, counters: dict, value_key: str, by_kind: dict | None = None) -> list[dict]:
        """Counters by Hadoop's group; by_kind, for the job, adds the map and reduce shares."""
        groups: dict[str, list[dict]] = {}
        for name, value in sorted(counters.items()):
            if name == "ELAPSED_MS":
                continue
            group = _JOB_ONLY.get(name) or _GROUP.get(name) or TASK_COUNTERS
            if by_kind is not None and name in self.am.counters:
                group = _JOB_ONLY.get(name, JOB_COUNTERS)
            item = {"name": name, value_key: value}
            if by_kind is not None:
                item["mapCounterValue"] = by_kind.get(("MAP", name), 0)
                item["reduceCounterValue"] = by_kind.get(("REDUCE", name), 0)
            groups.setdefault(group, []).append(item)
        return [{"counterGroupName": g, "counter": c} for g, c in groups.items()]

    def job_counters(self) -> dict:
        totals = dict(self.am.counters)
        by_kind: dict = {}
        for t in self.tasks():
            for name, v in (t.success.counters if t.success else {}).items():
                totals[name] = totals.get(name, 0) + v
                by_kind[(t.type, name)] = by_kind.get((t.type, name), 0) + v
        return {
            "id": self.am.job_id,
            "counterGroup": self.groups(totals, "totalCounterValue", by_kind),
        }

    def conf(self) -> dict:
        am = self.am
        return {
            "path": am.conf.get("mapreduce.job.conf.uri", "job.json"),
            "property": [
                {
                    "name": k,
                    "value": v if isinstance(v, str) else json.dumps(v),
                    "source": ["job.json"],
                }
                for k, v in sorted(am.conf.items())
            ],
        }

    def task_state(self, t: Task) -> str:
        if t.state in ("SUCCEEDED", "FAILED"):
            return t.state
        if any(a.state == "RUNNING" for a in t.attempts):
            return "RUNNING"
        return "SCHEDULED" if t.attempts else "NEW"

    def task(self, t: Task) -> dict:
        start = min((a.started for a in t.attempts if a.started), default=0)
        finish = t.success.finished if t.success else 0
        state = self.task_state(t)
        return {
            "startTime": start,
            "finishTime": finish,
            "elapsedTime": _elapsed(start, finish),
            "progress": 100.0 if state == "SUCCEEDED" else 0.0,
            "id": t.id,
            "state": state,
            "type": t.type,
            "successfulAttempt": t.success.id if t.success else "",
            "status": "",
        }

    def attempt_state(self, a: Attempt) -> str:
        return _ATTEMPT_STATE.get(a.state, a.state)

    def attempt(self, a: Attempt) -> dict:
        c = a.container or {}
        out = {
            "startTime": a.started,
            "finishTime": a.finished,
            "elapsedTime": _elapsed(a.started, a.finished),
            "progress": 100.0 if a.state == "SUCCEEDED" else 0.0,
            "id": a.id,
            "rack": self.am.racks.get(a.host, "/default-rack"),
            "state": self.attempt_state(a),
            "status": "",
            "nodeHttpAddress": c.get("nodeHttpAddress", ""),
            "diagnostics": a.diagnostics,
            "type": a.task.type,
            "assignedContainerId": c.get("id", ""),
        }
        if a.task.type == "REDUCE":
            out.update(
                shuffleFinishTime=0,
                mergeFinishTime=0,
                elapsedShuffleTime=0,
                elapsedMergeTime=0,
                elapsedReduceTime=0,
            )
        return out

    def kill(self, a: Attempt, body: bytes) -> str:
        try:
            target = json.loads(body or b"{}").get("state")
        except (ValueError, AttributeError):
            target = None
        if target != "KILLED":
            raise http.bad_request("Only 'KILLED' is allowed as a target state.")
        if a.state in ("ASKED", "RUNNING"):
            if a.container:
                self.am.releases.append(a.container["id"])
            self.am.attempt_ended(a, "KILLED", "Task Attempt killed via REST API")
        return self.attempt_state(a)
