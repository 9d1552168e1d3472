"""hdfs-files: the `hdfs` package (HdfsCLI's InsecureClient, unmodified) over WebHDFS.

Clients write new files of seeded random bytes (1 to 256 KiB, so some span several
packets and a small dfs.blocksize several blocks) and read back files that were
acknowledged, comparing SHA-256 checksums. After healing, every acknowledged file is
read once more and its block locations asked for (GETFILEBLOCKLOCATIONS), waiting up
to the recovery time for the NameNode to bring every block back to full replication.

A write whose request failed in a way that leaves its fate unknown (a timeout, a
dropped connection, a DataNode lost mid-pipeline) is "info": the file may exist.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import threading
import time

import requests
from hdfs import InsecureClient
from hdfs.util import HdfsError

from lab.chaos.checkers import files
from lab.chaos.history import FAIL, INFO, OK

from .base import Workload

NAMENODE_HTTP = 9870
ROOT = "/racklab-chaos"
# the NameNode runs as root in a lab, which makes root its superuser (as "hdfs" is on a
# real cluster): the workload writes under its own directory at the top of the namespace
HDFS_USER = "root"


class HdfsFiles(Workload):
    name = "hdfs-files"
    known_options = ("max_size",)
    service = "hdfs"
    default_concurrency = 3

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.dir = f"{ROOT}/run-{int(time.time())}-{self.seed}"
        self._n = itertools.count()
        self._lock = threading.Lock()
        self.acked: list[str] = []
        self.max_size = int(self.options.get("max_size", 256 << 10))

    def namenode(self) -> str:
        [nn] = self.ctx.service_nodes("hdfs", "namenode")
        return f"http://{self.addr(nn)}:{NAMENODE_HTTP}"

    def client(self) -> InsecureClient:
        return InsecureClient(self.namenode(), user=HDFS_USER, timeout=self.op_timeout)

    def setup(self) -> None:
        self.client().makedirs(self.dir)

    def open_client(self, worker):
        return self.client()

    def step(self, client, process, rng: random.Random):
        with self._lock:
            known = list(self.acked)
        if known and rng.random() < 0.4:
            path = rng.choice(known)

            def read():
                with client.read(path) as r:
                    data = r.read()
                return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

            return self.record(process, "read", path, read, lambda e: FAIL)
        with self._lock:
            path = f"{self.dir}/f{next(self._n):05d}"
        data = rng.randbytes(rng.randint(1, self.max_size))
        value = {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

        def write():
            client.write(path, data, overwrite=False)
            with self._lock:
                self.acked.append(path)
            return None

        return self.record(process, "write", value, write, _write_outcome)

    def final(self) -> None:
        client = self.client()
        with self._lock:
            paths = list(self.acked)
        for path in paths:
            inv = self.history.invoke("final", "final-read", path)
            try:
                value = self.retry_until_deadline(lambda p=path: self._final_read(client, p))
            except Exception as e:  # noqa: BLE001 - unreadable after healing: the checker's call
                self.history.complete(inv, FAIL, None, error=f"{type(e).__name__}: {e}"[:300])
            else:
                self.history.complete(inv, OK, value)

    def _final_read(self, client, path: str) -> dict:
        with client.read(path) as r:
            data = r.read()
        status = client.status(path)
        expected = int(status.get("replication", 0))
        rep = self._live_replicas(path)
        if rep < expected and time.monotonic() + 1 < self.final_deadline:
            raise _NotYet(f"{path}: {rep} of {expected} replicas")  # wait for re-replication
        return {
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "replication": rep,
            "expected": expected,
        }

    def _live_replicas(self, path: str) -> int:
        r = requests.get(
            f"{self.namenode()}/webhdfs/v1{path}",
            params={"op": "GETFILEBLOCKLOCATIONS", "user.name": HDFS_USER},
            timeout=self.op_timeout,
        )
        r.raise_for_status()
        blocks = r.json()["BlockLocations"]["BlockLocation"]
        return min((len(b.get("hosts", [])) for b in blocks), default=0)

    def check(self):
        return [files.check(self.history)]


class _NotYet(Exception):
    pass


def _write_outcome(e: Exception) -> str:
    # The NameNode refusing the create (file exists, safe mode, permission) means the
    # file was not written; anything later (a pipeline or connection failure) may have
    # left it complete, partial or absent.
    if isinstance(e, HdfsError) and any(
        s in str(e) for s in ("SafeModeException", "FileAlreadyExists", "AccessControl")
    ):
        return FAIL
    return INFO
