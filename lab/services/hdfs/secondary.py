"""The secondary NameNode: every dfs.namenode.checkpoint.check.period it asks the NameNode
how many transactions are not in an fsimage yet; after dfs.namenode.checkpoint.txns of
them, or dfs.namenode.checkpoint.period since the last checkpoint, it has the NameNode
roll its edit log, downloads the latest fsimage and the finalized edit segments, replays
them into a new fsimage and uploads it, after which the NameNode drops the old edits."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time

from ..hadoop.conf import split_hostport
from ..hadoop.http import HttpClient, Request, Response, serve
from .config import Configuration
from .namespace import Namespace
from .rpc import NameNodeClient
from .storage import NNStorage

log = logging.getLogger("hdfs.secondary")


class SecondaryNameNode:
    def __init__(self, conf: Configuration) -> None:
        self.conf = conf
        self.nn = NameNodeClient(*conf.namenode_rpc_address())
        self.nn_http = split_hostport(conf.get("dfs.namenode.http-address"), 9870)
        self.http = HttpClient(timeout=120)
        self.storage = NNStorage(conf.checkpoint_dir())
        self.storage.current.mkdir(parents=True, exist_ok=True)
        self.period = conf.get_seconds("dfs.namenode.checkpoint.period", "s")
        self.txns = conf.get_int("dfs.namenode.checkpoint.txns")
        self.check_period = conf.get_seconds("dfs.namenode.checkpoint.check.period", "s")
        self.last_checkpoint = time.monotonic()
        self.checkpoints = 0
        self.last_txid = 0
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        host, port = split_hostport(self.conf.get("dfs.namenode.secondary.http-address"), 9868)
        self.server = await serve(host, port, self.handle_http)
        self.http_address = self.server.sockets[0].getsockname()[:2]
        self.tasks = [asyncio.create_task(self._loop(), name="snn-checkpointer")]

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        self.server.close()

    async def handle_http(self, req: Request) -> Response:
        return Response.json(
            {
                "checkpoints": self.checkpoints,
                "lastCheckpointTxId": self.last_txid,
                "secondsSinceLastCheckpoint": int(time.monotonic() - self.last_checkpoint),
            }
        )

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.check_period)
            try:
                info = await self.nn.call("getTransactionId")
                uncheckpointed = info["txid"] - info["mostRecentCheckpointTxId"]
                due = time.monotonic() - self.last_checkpoint >= self.period
                if uncheckpointed >= self.txns or (due and uncheckpointed > 1):
                    await self.checkpoint()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("checkpoint attempt failed: %r", exc)

    async def _get(self, query: dict) -> bytes:
        status, _, body = await self.http.request("GET", *self.nn_http, "/imagetransfer", query)
        if status != 200:
            raise OSError(f"imagetransfer {query} answered {status}: {body[:200]!r}")
        return body

    async def checkpoint(self) -> int:
        roll = await self.nn.call("rollEditLog")
        image_txid = roll["imageTxId"]
        if not self.storage.image_path(image_txid).exists():
            self.storage.store_image_bytes(
                image_txid, await self._get({"getimage": 1, "txid": image_txid})
            )
        ns = Namespace("hdfs", "supergroup")
        ns.load_image(json.loads(self.storage.image_path(image_txid).read_bytes()))
        last = image_txid
        for start, end in roll["segments"]:
            data = await self._get({"getedit": 1, "startTxId": start, "endTxId": end})
            for line in data.splitlines():
                op = json.loads(line)
                if op["txid"] <= last:
                    continue
                if op["txid"] != last + 1:
                    raise RuntimeError(f"edit gap at txid {last + 1}")
                ns.apply(op)
                last = op["txid"]
        path = self.storage.save_image(last, ns.to_image())
        data = path.read_bytes()
        status, _, body = await self.http.request(
            "PUT",
            *self.nn_http,
            "/imagetransfer",
            {"txid": last, "storageInfo": roll["storageInfo"]},
            body=data,
            headers={"X-MD5-Digest": hashlib.md5(data).hexdigest()},
        )
        if status != 200:
            raise OSError(f"uploading fsimage {last} answered {status}: {body[:200]!r}")
        self.storage.purge(1, 0)
        self.checkpoints += 1
        self.last_txid = last
        self.last_checkpoint = time.monotonic()
        log.info("checkpoint done: fsimage txid %d (%d bytes)", last, len(data))
        return last
