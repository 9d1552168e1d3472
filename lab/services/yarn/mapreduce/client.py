"""Submitting a MapReduce job: what `lab yarn jar` and the tests use.

Like Hadoop's JobClient/YARNRunner: get an application id from the RM, upload
the job configuration to a staging directory in HDFS, and submit an application
whose AM container localizes it and runs the MapReduce AM. All over the RM's
public REST API and WebHDFS.
"""

from __future__ import annotations

import json
import re
import time

from ...hadoop.webclient import WebHdfsClient
from .. import http
from .jobs import JOBS, make_job

DONE_DIR = "/tmp/hadoop-yarn/staging/history/done"


class JobError(Exception):
    pass


def submit_job(
    rm_url: str,
    webhdfs: str,
    kind: str,
    inputs: list[str],
    output: str,
    *,
    reduces: int = 1,
    queue: str = "default",
    user: str = "root",
    name: str | None = None,
    conf: dict | None = None,
    am_memory: int = 256,
    check_paths: bool = True,
) -> str:
    if kind not in JOBS:
        raise JobError(f"unknown job {kind!r}; known: {', '.join(sorted(JOBS))}")
    if check_paths:  # the client-side checks (check_paths=False leaves them to the AM)
        try:  # what the job's own code would refuse (a grep without a pattern, a bad regex)
            make_job({"mapreduce.job.kind": kind, **(conf or {})})
        except (ValueError, re.error) as e:
            raise JobError(f"invalid job configuration: {e}") from None
    if reduces < 1:
        raise JobError("a job needs at least one reduce (mapreduce.job.reduces >= 1)")
    rm_url = rm_url.rstrip("/")
    if "://" not in rm_url:
        rm_url = "http://" + rm_url
    fs = WebHdfsClient(webhdfs, user=user)
    if check_paths:
        # What FileInputFormat/FileOutputFormat check at submission in Hadoop.
        for p in inputs:
            if fs.status(p, strict=False) is None:
                raise JobError(f"Input path does not exist: {p}")
        if fs.status(output, strict=False) is not None:
            raise JobError(f"Output directory {output} already exists")
    app = http.call(f"{rm_url}/ws/v1/cluster/apps/new-application", {})["application-id"]
    job_id = "job_" + app[len("application_") :]
    staging = f"/tmp/hadoop-yarn/staging/{user}/.staging/{job_id}"
    job_conf = {
        "mapreduce.job.kind": kind,
        "mapreduce.job.name": name or kind,
        "mapreduce.input.fileinputformat.inputdir": list(inputs),
        "mapreduce.output.fileoutputformat.outputdir": output,
        "mapreduce.job.reduces": reduces,
        "mapreduce.job.queuename": queue,
        "mapreduce.jobhistory.done-dir": DONE_DIR,
        "fs.webhdfs.address": fs.url,
        "user": user,
        "job.id": job_id,
    }
    job_conf.update(conf or {})
    conf_path = f"{staging}/job.json"
    job_conf["mapreduce.job.conf.uri"] = f"webhdfs://{fs.host}:{fs.port}{conf_path}"
    data = json.dumps(job_conf, indent=1).encode()
    fs.mkdirs(staging)
    fs.write(conf_path, data, overwrite=True)
    body = {
        "application-id": app,
        "application-name": name or f"{kind}",
        "queue": queue,
        "application-type": "MAPREDUCE",
        "max-app-attempts": int(job_conf.get("mapreduce.am.max-attempts", 2)),
        "resource": {"memory": am_memory, "vCores": 1},
        "am-container-spec": {
            "local-resources": {
                "entry": [
                    {
                        "key": "job.json",
                        "value": {
                            "resource": job_conf["mapreduce.job.conf.uri"],
                            "type": "FILE",
                            "visibility": "APPLICATION",
                            "size": len(data),
                        },
                    }
                ]
            },
            "commands": {
                "command": "{{PYTHON}} -m lab.services.yarn.mapreduce.appmaster 1><LOG_DIR>/stdout 2><LOG_DIR>/stderr"
            },
        },
    }
    http.call(f"{rm_url}/ws/v1/cluster/apps?user.name={user}", body)
    return app


def wait_for_job(
    rm_url: str, app_id: str, timeout: float = 600, interval: float = 0.5, on_progress=None
) -> dict:
    """Poll the RM until the application ends; returns the RM's app report."""
    rm_url = rm_url.rstrip("/")
    if "://" not in rm_url:
        rm_url = "http://" + rm_url
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app = http.call(f"{rm_url}/ws/v1/cluster/apps/{app_id}")["app"]
        if on_progress:
            on_progress(app)
        if app["state"] in ("FINISHED", "FAILED", "KILLED"):
            return app
        time.sleep(interval)
    raise JobError(f"{app_id} did not finish within {timeout:.0f}s")


def job_report(webhdfs: str, app_id: str, user: str = "root") -> dict | None:
    """The report the AM wrote to the history directory (counters, task attempts)."""
    fs = WebHdfsClient(webhdfs, user=user)
    job_id = "job_" + app_id[len("application_") :]
    if fs.status(f"{DONE_DIR}/{job_id}.json", strict=False) is None:
        return None
    return json.loads(fs.read_bytes(f"{DONE_DIR}/{job_id}.json"))


def read_output(webhdfs: str, output: str, user: str = "root") -> str:
    fs = WebHdfsClient(webhdfs, user=user)
    parts = sorted(
        st["pathSuffix"] for st in fs.list(output) if st["pathSuffix"].startswith("part-")
    )
    return "".join(fs.read_bytes(f"{output}/{p}").decode("utf-8", "surrogateescape") for p in parts)
