"""The NameNode's image servlet (Hadoop's ImageServlet on /imagetransfer): the secondary
downloads the newest fsimage and the finalized edit segments, and uploads the checkpoint
it made; only a checkpoint of this namespace that loads is ever stored."""

from __future__ import annotations

import hashlib
import logging
import time

from ..hadoop import errors, fields
from ..hadoop.errors import FileNotFoundException, IllegalArgumentException, IOException
from ..hadoop.http import Request, Response
from . import webhdfs
from .namespace import Namespace

log = logging.getLogger("hdfs.namenode")


class ImageServlet:
    def __init__(self, nn) -> None:
        self.nn = nn

    async def handle(self, req: Request) -> Response:
        q = req.query
        if req.method == "GET" and q.get("getimage"):
            txid = webhdfs.get_long(q, "txid", None, 0) if q.get("txid") != "latest" else None
            txid = self.nn.storage.images()[-1] if txid is None else txid
            path = self.nn.storage.image_path(txid)
            if not path.exists():
                raise FileNotFoundException(f"no fsimage for txid {txid}")
            return Response(
                200,
                {"Content-Type": "application/octet-stream", "X-Image-TxId": str(txid)},
                path.read_bytes(),
            )
        if req.method == "GET" and q.get("getedit"):
            start = webhdfs.get_long(q, "startTxId", None, 0)
            end = webhdfs.get_long(q, "endTxId", None, 0)
            for a, b, path in self.nn.storage.segments():
                if a == start and b == end:
                    return Response(
                        200, {"Content-Type": "application/octet-stream"}, path.read_bytes()
                    )
            raise FileNotFoundException(f"no finalized edit segment {start}-{end}")
        if req.method == "PUT":
            return await self._receive_checkpoint(req)
        raise IllegalArgumentException("imagetransfer: use getimage, getedit or PUT with txid")

    async def _receive_checkpoint(self, req: Request) -> Response:
        """ImageServlet's PUT: only a checkpointer of this namespace (its storage info),
        only a txid newer than the last checkpoint and not beyond the log, and only an
        image that matches its digest and loads; anything else is refused and nothing is
        stored."""
        q = req.query
        webhdfs.get_required(q, "txid")
        txid = webhdfs.get_long(q, "txid", None, 0)
        mine, theirs = self.nn.storage.storage_info(), q.get("storageInfo", "")
        if theirs != mine:
            raise IOException(
                f"This namenode has storage info {mine} but the secondary expected {theirs}"
            )
        latest = self.nn.storage.images()[-1]
        if txid <= latest:
            raise errors.with_status(
                IOException(f"Another checkpointer already uploaded an checkpoint for txid {txid}"),
                409,
            )
        if txid > self.nn.editlog.last_txid:
            raise IllegalArgumentException(
                f"Checkpoint for txid {txid} is beyond the last transaction "
                f"{self.nn.editlog.last_txid} of this namespace"
            )
        data = await req.read_body(1 << 31)
        digest = req.headers.get("x-md5-digest")
        if digest is not None and digest != hashlib.md5(data).hexdigest():
            raise IOException(f"File fsimage_{txid} computed digest does not match {digest}")
        try:
            image = fields.parse_json(data, f"fsimage for txid {txid}")
            Namespace(self.nn.superuser, self.nn.supergroup).load_image(image)
            if image.get("txid") != txid:
                raise fields.FieldError("fsimage.txid", f"is {image.get('txid')}, not {txid}")
        except fields.FieldError as exc:
            raise IOException(f"Rejecting fsimage for txid {txid}: {exc}") from None
        self.nn.storage.store_image_bytes(txid, data)
        self.nn.storage.purge(
            self.nn.conf.get_int("dfs.namenode.num.checkpoints.retained"),
            self.nn.conf.get_int("dfs.namenode.num.extra.edits.retained"),
        )
        self.nn.last_checkpoint_time = time.time()
        log.info(
            "checkpoint image for txid %d stored (%d bytes); edit log now %d bytes",
            txid,
            len(data),
            self.nn.storage.edits_bytes(),
        )
        return Response(200)
