"""yarn-jobs: MapReduce wordcount jobs submitted to the lab's YARN, outputs checked.

Setup writes a seeded text to HDFS (with the `hdfs` package) and counts its words
locally. Client threads submit wordcount jobs (racklab's job client, which stages the
job configuration in HDFS and submits through the ResourceManager's public REST API,
as Hadoop's YARNRunner does). After healing, each accepted application is followed to
its end with yarn-api-client (unmodified) against the RM REST API, and the output of
every job that says it succeeded is compared with the local count.

A submission that failed before the RM gave the application back is a "fail" when the
RM refused it, "info" when the connection broke (the application may exist).
"""

from __future__ import annotations

import collections
import itertools
import random
import threading
import time

from hdfs import InsecureClient
from yarn_api_client.resource_manager import ResourceManager

from lab.chaos.checkers import jobs
from lab.chaos.history import FAIL, INFO, OK

from .base import Workload

RM_WEBAPP = 8088
NAMENODE_HTTP = 9870
HDFS_USER = "root"  # the user the lab's daemons run as: HDFS's superuser in a lab
FAST = {
    "mapreduce.map.memory.mb": 128,
    "mapreduce.reduce.memory.mb": 128,
    "yarn.app.mapreduce.am.scheduler.heartbeat.interval-ms": 200,
}
ENDED = ("FINISHED", "FAILED", "KILLED")


class YarnJobs(Workload):
    name = "yarn-jobs"
    known_options = ()
    service = "yarn"
    default_concurrency = 2

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.dir = f"/racklab-chaos/yarn-{int(time.time())}-{self.seed}"
        self._n = itertools.count()
        self._lock = threading.Lock()
        self.expected: collections.Counter = collections.Counter()
        self.op_timeout = float(self.options.get("op_timeout", 15.0))

    def validate(self) -> None:
        super().validate()
        if not self.ctx.services("hdfs", "namenode"):
            raise self._no_hdfs()

    def _no_hdfs(self):
        from lab.chaos.labctx import ChaosError

        return ChaosError(f"workload yarn-jobs needs HDFS too, and lab {self.ctx.name} runs none")

    def rm(self) -> str:
        [rm] = self.ctx.service_nodes("yarn", "resourcemanager")
        return f"http://{self.addr(rm)}:{RM_WEBAPP}"

    def webhdfs(self) -> str:
        [nn] = self.ctx.service_nodes("hdfs", "namenode")
        return f"http://{self.addr(nn)}:{NAMENODE_HTTP}"

    def setup(self) -> None:
        rng = random.Random(self.seed)
        words = [f"w{i}" for i in range(200)]
        lines = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(2000)]
        text = "\n".join(lines) + "\n"
        self.expected = collections.Counter(text.split())
        fs = InsecureClient(self.webhdfs(), user=HDFS_USER, timeout=30)
        fs.makedirs(f"{self.dir}/in")
        fs.write(f"{self.dir}/in/words.txt", text.encode(), overwrite=True)

    def open_client(self, worker):
        return None

    def step(self, _client, process, rng):
        from lab.services.yarn.mapreduce import client as jobclient

        with self._lock:
            out = f"{self.dir}/out-{next(self._n):04d}"

        def submit():
            return jobclient.submit_job(
                self.rm(), self.webhdfs(), "wordcount", [f"{self.dir}/in"], out,
                reduces=2, conf=FAST, user=HDFS_USER,
            )  # fmt: skip

        def classify(e: Exception) -> str:
            return FAIL if isinstance(e, jobclient.JobError | ValueError) else INFO

        inv = self.history.invoke(process, "submit", {"job": "wordcount", "output": out})
        try:
            app = submit()
        except Exception as e:  # noqa: BLE001
            kind = classify(e)
            self.history.complete(inv, kind, None, error=f"{type(e).__name__}: {e}"[:300])
            return kind
        self.history.complete(inv, OK, app, output=out)
        return OK

    def final(self) -> None:
        from lab.services.yarn.mapreduce import client as jobclient

        rm = ResourceManager(service_endpoints=[self.rm()], timeout=10)
        accepted = [
            (op.value, op.extra.get("output"))
            for op in list(self.history)
            if op.f == "submit" and op.type == OK
        ]
        for app, out in accepted:
            inv = self.history.invoke("final", "final", app)

            def ended(app=app):
                a = rm.cluster_application(app).data["app"]
                if a["state"] not in ENDED and time.monotonic() + 1 < self.final_deadline:
                    raise _NotYet(f"{app} is {a['state']}")
                return a

            try:
                a = self.retry_until_deadline(ended, pause=1.0)
            except Exception as e:  # noqa: BLE001
                self.history.complete(inv, FAIL, None, error=f"{type(e).__name__}: {e}"[:300])
                continue
            value = {
                "app": app,
                "state": a["state"],
                "final_status": a.get("finalStatus"),
                "diagnostics": a.get("diagnostics", ""),
                "output_ok": None,
            }
            if a.get("finalStatus") == "SUCCEEDED":
                try:
                    got = collections.Counter()
                    for line in jobclient.read_output(self.webhdfs(), out, HDFS_USER).splitlines():
                        word, n = line.split("\t")
                        got[word] += int(n)
                    value["output_ok"] = got == self.expected
                    if got != self.expected:
                        diff = (got - self.expected) + (self.expected - got)
                        value["output_error"] = f"{len(diff)} words counted wrong"
                except Exception as e:  # noqa: BLE001
                    value["output_ok"] = False
                    value["output_error"] = f"output unreadable: {e}"[:300]
            self.history.complete(inv, OK, value)

    def check(self):
        return [jobs.check(self.history)]


class _NotYet(Exception):
    pass
