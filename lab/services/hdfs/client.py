"""The DFSClient a DataNode runs on behalf of a WebHDFS caller (as Hadoop's DataNode does
in its WebHdfsHandler): writes go block by block through a pipeline the NameNode chose,
reads go replica by replica, nearest first, checking every chunk's CRC and reporting bad
replicas to the NameNode."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import struct

from ..hadoop import errors
from .checksum import ChecksumError
from .datatransfer import PipelineError, PipelineWriter, read_remote_block
from .rpc import NameNodeClient

log = logging.getLogger("hdfs.client")
_counter = 0


def client_name() -> str:
    global _counter
    _counter += 1
    return f"DFSClient_NONMAPREDUCE_{secrets.randbelow(2**31)}_{_counter}"


class FileWriter:
    """DFSOutputStream: create() or append(), write() any number of times, close()."""

    def __init__(
        self,
        nn: NameNodeClient,
        path: str,
        user: str,
        client_ip: str,
        bpc: int,
        packet_size: int = 65536,
        pipeline_factory=None,
    ) -> None:
        self.nn, self.path, self.user, self.client_ip = nn, path, user, client_ip
        self.bpc, self.packet_size = bpc, packet_size
        # A DataNode writing on a client's behalf passes a factory that keeps the first
        # replica in process when it is the node itself (no loopback hop to its own port).
        self.pipeline_factory = pipeline_factory or PipelineWriter
        self.client = client_name()
        self.block_size = 0
        self.block: dict | None = None  # the block being written, numBytes kept current
        self.pipe: PipelineWriter | None = None
        self.last: dict | None = None  # last block handed to the NameNode

    async def create(
        self,
        overwrite: bool,
        replication: int | None,
        block_size: int | None,
        permission: int | None,
        unmasked: int | None = None,
    ) -> None:
        """`unmasked`: the mode asked for before the client's umask (WebHDFS's
        unmaskedpermission), for a default ACL's inheritance."""
        await self.nn.call(
            "create",
            src=self.path,
            user=self.user,
            clientName=self.client,
            overwrite=overwrite,
            replication=replication,
            blockSize=block_size,
            permission=permission,
            unmasked=unmasked,
            clientMachine=self.client_ip,
        )
        status = await self.nn.call(
            "getBlockLocations", src=self.path, user=self.user, offset=0, length=0
        )
        self.block_size = status["blockSize"]

    async def append(self) -> None:
        res = await self.nn.call(
            "append",
            src=self.path,
            user=self.user,
            clientName=self.client,
            clientMachine=self.client_ip,
        )
        self.block_size = res["blockSize"]
        lb = res.get("lastBlock")
        if lb:
            blk = dict(lb["block"])
            header = {
                "block": blk,
                "stage": "append",
                "newGenStamp": lb["newGenStamp"],
                "client": self.client,
            }
            self.pipe = self.pipeline_factory(lb["locations"], header, self.bpc, self.packet_size)
            self.block = dict(blk, genStamp=lb["newGenStamp"])
            try:
                await self.pipe.open()
            except PipelineError as exc:
                await self._recover(exc)
        else:
            # The last block is full (or there is none): appended bytes start a new block.
            status = await self.nn.call(
                "getBlockLocations", src=self.path, user=self.user, offset=0, length=1 << 62
            )
            if status["blocks"]:
                self.last = status["blocks"][-1]["block"]

    async def _next_block(self) -> None:
        excluded: list[str] = []
        for _ in range(3):
            res = await self.nn.call(
                "addBlock",
                src=self.path,
                clientName=self.client,
                previous=self.last,
                excludeNodes=excluded,
                clientMachine=self.client_ip,
            )
            blk = res["block"]
            pipe = self.pipeline_factory(
                res["locations"],
                {"block": blk, "stage": "create", "client": self.client},
                self.bpc,
                self.packet_size,
            )
            try:
                await pipe.open()
            except PipelineError as exc:
                # DFSOutputStream.nextBlockOutputStream: abandon, exclude the bad node, ask again.
                pipe.abort()
                bad = res["locations"][exc.bad_index or 0]
                log.warning("pipeline for %s failed at %s: %s", blk["blockId"], bad["ip"], exc)
                await self.nn.call("abandonBlock", src=self.path, clientName=self.client, block=blk)
                excluded.append(bad["uuid"])
                continue
            self.pipe, self.block = pipe, dict(blk)
            return
        raise errors.IOException(
            f"Unable to create new block for {self.path}: pipelines kept failing"
        )

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while len(view):
            if self.pipe is None:
                await self._next_block()
            room = self.block_size - self.block["numBytes"]
            piece = view[:room]
            try:
                await self.pipe.write(piece)
            except PipelineError as exc:
                await self._recover(exc)  # the piece is among what the new pipeline resent
            self.block["numBytes"] += len(piece)
            view = view[len(piece) :]
            if self.block["numBytes"] >= self.block_size:
                await self._finish_block()

    async def _recover(self, exc: PipelineError) -> None:
        """DataStreamer's pipeline recovery: drop the failed DataNode, have the NameNode
        bump the block's generation stamp, let the survivors cut their replicas back to the
        acknowledged length and send them what was not acknowledged. With no survivor the
        write fails. No replacement node is added (Hadoop's DEFAULT policy adds none either
        while at least half of a 3-node pipeline survives); the NameNode re-replicates the
        block once the file is closed."""
        for _ in range(len(self.pipe.targets)):
            old = self.pipe
            acked, unacked = old.unacknowledged()
            old.abort()
            bad = exc.bad_index if exc.bad_index is not None else 0
            survivors = [t for i, t in enumerate(old.targets) if i != bad]
            log.warning(
                "pipeline for blk_%s lost %s (%s); recovering with %s at %d bytes",
                self.block["blockId"],
                old.targets[bad]["ip"],
                exc,
                [t["ip"] for t in survivors],
                acked,
            )
            if not survivors:
                break
            res = await self.nn.call(
                "updatePipeline",
                src=self.path,
                clientName=self.client,
                block=self.block,
                newNodes=[t["uuid"] for t in survivors],
            )
            header = {
                "block": dict(self.block, numBytes=acked),
                "stage": "recovery",
                "newGenStamp": res["newGenStamp"],
                "client": self.client,
            }
            self.block["genStamp"] = res["newGenStamp"]
            self.pipe = self.pipeline_factory(survivors, header, self.bpc, self.packet_size)
            try:
                await self.pipe.open()
                if unacked:
                    await self.pipe.write(unacked)
                return
            except PipelineError as again:
                exc = again
        raise errors.IOException(
            f"All datanodes of the pipeline for {self.path} are bad. Aborting..."
        )

    async def _finish_block(self) -> None:
        while True:
            try:
                length = await self.pipe.close()
                break
            except PipelineError as exc:
                await self._recover(exc)
        if length != self.block["numBytes"]:
            raise errors.IOException(
                f"pipeline acknowledged {length} of {self.block['numBytes']} bytes"
            )
        self.last, self.pipe = dict(self.block), None

    async def close(self) -> None:
        if self.pipe is not None:
            await self._finish_block()
        delay = 0.05
        for _ in range(40):
            res = await self.nn.call(
                "complete", src=self.path, clientName=self.client, last=self.last
            )
            if res["result"]:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
        raise errors.IOException(
            f"Unable to close file {self.path} because the last block does not have "
            "enough number of replicas."
        )

    def abort(self) -> None:
        if self.pipe is not None:
            self.pipe.abort()

    async def abandon(self) -> None:
        if self.pipe is not None:
            await self.pipe.cancel()  # the replicas roll back now rather than after a timeout
            self.pipe = None
        try:
            await self.nn.call("abandonFile", src=self.path, clientName=self.client, last=self.last)
        except Exception as exc:  # the lease's hard limit will close the file instead
            log.warning("could not hand %s back to the NameNode: %r", self.path, exc)


class Reader:
    """DFSInputStream over located blocks; local replicas are read straight from disk."""

    def __init__(self, nn: NameNodeClient, local, bpc: int, my_uuid: str) -> None:
        self.nn, self.local, self.bpc, self.my_uuid = nn, local, bpc, my_uuid

    async def locate(
        self, path: str, user: str, offset: int, length: int | None, client_ip: str
    ) -> dict:
        return await self.nn.call(
            "getBlockLocations",
            src=path,
            user=user,
            offset=offset,
            length=(1 << 62) if length is None else length,
            clientMachine=client_ip,
        )

    async def stream(self, located: dict, offset: int, length: int):
        end = offset + length
        for lb in located["blocks"]:
            blk, bstart = lb["block"], lb["offset"]
            lo, hi = max(offset, bstart) - bstart, min(end, bstart + blk["numBytes"]) - bstart
            if hi <= lo:
                continue
            pos = lo
            tried: list[str] = []
            for loc in lb["locations"]:
                tried.append(loc["ip"])
                try:
                    async for piece in self._read_replica(loc, blk, pos, hi - pos):
                        pos += len(piece)
                        yield piece
                    break
                except ChecksumError as exc:
                    log.warning("%s: %s; reporting and trying another replica", loc["ip"], exc)
                    await self.nn.call(
                        "reportBadBlocks", blocks=[{"blockId": blk["blockId"], "uuid": loc["uuid"]}]
                    )
                except (TimeoutError, OSError, PipelineError, asyncio.IncompleteReadError) as exc:
                    log.warning("reading blk_%s from %s failed: %r", blk["blockId"], loc["ip"], exc)
            else:
                raise errors.BlockMissingException(
                    f"Could not obtain block: BP:blk_{blk['blockId']}_{blk['genStamp']} file={located.get('path')} "
                    f"No live nodes contain current block; tried {tried}"
                )

    async def _read_replica(self, loc: dict, blk: dict, offset: int, length: int):
        rep = self.local.get(blk["blockId"]) if loc["uuid"] == self.my_uuid else None
        if loc["uuid"] == self.my_uuid and (rep is None or rep.state == "finalized"):
            # (A local replica still being written is read through this DataNode's own
            # READ_BLOCK below, which serves its visible length only.)
            if rep is None or rep.gen_stamp < blk["genStamp"]:
                raise OSError(f"local replica of blk_{blk['blockId']} is gone")
            # Disk reads and CRC checks run in a worker thread one slab ahead of the socket,
            # so that the second core verifies while the event loop sends.
            gen = self.local.read_verified(rep, offset, length)
            loop = asyncio.get_running_loop()
            pending = loop.run_in_executor(None, next, gen, None)
            try:
                while True:
                    piece = await pending
                    if piece is None:
                        return
                    pending = loop.run_in_executor(None, next, gen, None)
                    yield piece
            finally:
                if not pending.done():
                    await asyncio.wait([pending])
                gen.close()
        async for piece in read_remote_block(loc, blk, offset, length, self.bpc):
            yield piece


async def file_checksum(nn: NameNodeClient, path: str, user: str, block_checksum) -> dict:
    """MD5-of-MD5-of-CRC32C over the file's blocks, as DFSClient.getFileChecksum builds it."""
    located = await nn.call("getBlockLocations", src=path, user=user, offset=0, length=1 << 62)
    md5s, bpc, crc_per_block = b"", 512, 0
    for lb in located["blocks"]:
        last_exc = None
        for loc in lb["locations"]:
            try:
                res = await block_checksum(loc, lb["block"])
                break
            except Exception as exc:  # try the next replica
                last_exc = exc
        else:
            raise errors.IOException(
                f"Fail to get block MD5 for blk_{lb['block']['blockId']}: {last_exc}"
            )
        md5s += bytes.fromhex(res["md5"])
        bpc = res["bytesPerCrc"]
        if len(located["blocks"]) > 1 and not md5s[16:]:
            crc_per_block = res["crcPerBlock"]  # from the first block, as FileChecksumHelper does
    md5 = hashlib.md5(md5s).digest()
    data = struct.pack(">iq", bpc, crc_per_block) + md5
    return {
        "FileChecksum": {
            "algorithm": f"MD5-of-{crc_per_block}MD5-of-{bpc}CRC32C",
            "bytes": data.hex(),
            "length": len(data),
        }
    }
