"""WebHDFS on a DataNode's HTTP address (Hadoop's WebHdfsHandler): CREATE and APPEND
uploads written through a pipeline the NameNode chose (the first replica kept in process
when this node is its head), OPEN streamed replica by replica, GETFILECHECKSUM from the
blocks' checksums. A mixin of DataNode."""

from __future__ import annotations

import asyncio
import logging

from ..hadoop import errors
from ..hadoop.errors import HadoopException, IllegalArgumentException
from ..hadoop.http import BadRequest, Request, Response
from . import webhdfs
from .client import FileWriter, file_checksum
from .datatransfer import PipelineWriter, recv_msg, send_msg
from .localpipeline import LocalPipelineHead

log = logging.getLogger("hdfs.datanode")


class DatanodeWebHdfs:
    async def handle_http(self, req: Request) -> Response:
        try:
            if not req.path.startswith(webhdfs.PREFIX):
                if req.path == "/":
                    return Response(200, {"Content-Type": "text/plain"}, b"DataNode is running\n")
                raise errors.FileNotFoundException(f"no such resource {req.path}")
            op = webhdfs.parse_op(req.method, req.query)
            path = webhdfs.hdfs_path(req.path)
            user = webhdfs.get_user(req.query, self.conf.get("hadoop.http.staticuser.user"))
            if op == "CREATE":
                return await self._create(req, path, user)
            if op == "APPEND":
                return await self._append(req, path, user)
            if op == "OPEN":
                return await self._open(req, path, user)
            if op == "GETFILECHECKSUM":
                return Response.json(
                    await file_checksum(self.nn, path, user, self._remote_block_checksum)
                )
            raise IllegalArgumentException(f"Invalid operation {op} on a DataNode")
        except HadoopException as exc:
            return Response.json(exc.to_json(), exc.status)
        except (BadRequest, ConnectionError):
            raise  # the server answers these itself, or the client is gone
        except Exception as exc:
            log.exception("WebHDFS %s failed", req.target)
            return Response.json(errors.IOException(repr(exc)).to_json(), 500)

    def _pipeline(self, targets: list[dict], header: dict, bpc: int, packet_size: int):
        if targets and targets[0]["uuid"] == self.uuid:
            return LocalPipelineHead(self, targets, header, bpc, packet_size)
        return PipelineWriter(targets, header, bpc, packet_size)

    def _client_ip(self) -> str:
        return self.ip

    async def _create(self, req: Request, path: str, user: str) -> Response:
        q = req.query
        writer = FileWriter(
            self.nn, path, user, self._client_ip(), self.bpc, self.packet_size, self._pipeline
        )
        opened = writer.create(
            webhdfs.get_bool(q, "overwrite", False),
            webhdfs.get_long(q, "replication", None, 1, 32767),
            webhdfs.get_long(q, "blocksize", None, 1),
            webhdfs.get_permission(q, None),
            webhdfs.get_permission(q, None, "unmaskedpermission"),
        )
        await self._pump(req, writer, opened)
        nn_host, nn_port = self.nn.host, self.nn.port
        return Response(
            201,
            {"Location": f"hdfs://{nn_host}:{nn_port}{path}", "Content-Type": "application/json"},
        )

    async def _append(self, req: Request, path: str, user: str) -> Response:
        writer = FileWriter(
            self.nn, path, user, self._client_ip(), self.bpc, self.packet_size, self._pipeline
        )
        await self._pump(req, writer, writer.append())
        return Response(200)

    async def _pump(self, req: Request, writer: FileWriter, opened) -> None:
        try:
            await opened
            async for piece in req.iter_body():
                await writer.write(piece)
            await writer.close()
        except BaseException:
            # Not acknowledged: give the file back to the NameNode as it was before this
            # request's unfinished block, so the lease does not outlive this writer.
            await asyncio.shield(writer.abandon())
            raise

    async def _open(self, req: Request, path: str, user: str) -> Response:
        offset = webhdfs.get_long(req.query, "offset", 0, 0)
        length = webhdfs.get_long(req.query, "length", None, 0)
        located = await self.reader.locate(path, user, offset, length, self._client_ip())
        located["path"] = path
        available = max(0, located["fileLength"] - offset)
        n = available if length is None else min(length, available)
        return Response(
            200,
            {"Content-Type": "application/octet-stream"},
            stream=self.reader.stream(located, offset, n),
            length=n,
        )

    async def _remote_block_checksum(self, loc: dict, blk: dict) -> dict:
        if loc["uuid"] == self.uuid:
            res = self._block_checksum(blk)
        else:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(loc["ip"], loc["xferPort"]), 30
            )
            try:
                await send_msg(writer, {"op": "BLOCK_CHECKSUM", "block": blk})
                res = await asyncio.wait_for(recv_msg(reader), 60)
            finally:
                writer.close()
        if res.get("status") != "SUCCESS":
            raise errors.IOException(res.get("message", "block checksum failed"))
        return res
