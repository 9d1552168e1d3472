"""DataNode-to-DataNode (and writer-to-DataNode) streaming protocol on dfs.datanode.address.

Hadoop's DataTransferProtocol shape, with JSON op headers instead of protobuf:

  request   u32 length + JSON {"op": "WRITE_BLOCK" | "READ_BLOCK" | "BLOCK_CHECKSUM", ...}
  reply     u32 length + JSON {"status": "SUCCESS" | "ERROR" | "ERROR_CHECKSUM", ...}
  packet    header (seqno i64, offsetInBlock i64, dataLen u32, flags u8: 1 last, 2 abort,
            4 sync: on disk before acknowledged, a writer's hsync),
            the CRC32C of each chunk piece it carries, then the data
  ack       seqno i64, count u8, one status byte per DataNode from here to the pipeline's end

A WRITE_BLOCK carries the rest of the pipeline in "targets": each DataNode forwards the
packets downstream before writing them, and sends an ack upstream only after its own
write and the downstream ack, so the writer's ack for a packet means every replica has it.

Stages: "create" (new replica), "append" (reopen a finalized one), "transfer" (copy for
re-replication), "transfer_rbw" (a copy of an unfinished replica for a writer's recovery
pipeline, kept unfinished) and "recovery": after a DataNode of the pipeline failed, the writer opens
a new pipeline of the survivors with a new generation stamp, they cut their replica back
to the acknowledged length, and the writer resends what was not acknowledged. A writer
that gives up sends an abort packet, and every replica goes back to where it was.
"""

from __future__ import annotations

import asyncio
import json
import struct

from ..hadoop.fields import Int, List, Str, Struct
from . import checksum
from .namespace import BLOCK_JSON as BLOCK

MSG_LEN = struct.Struct(">I")
PACKET = struct.Struct(">qqIB")
ACK = struct.Struct(">qB")
SUCCESS, ERROR, ERROR_CHECKSUM = 0, 1, 2
LAST, ABORT, SYNC = 1, 2, 4
STATUS_NAMES = {SUCCESS: "SUCCESS", ERROR: "ERROR", ERROR_CHECKSUM: "ERROR_CHECKSUM"}
MAX_MSG = 16 * 1024 * 1024
STAGES = ("create", "append", "transfer", "transfer_rbw", "recovery")

# What each op's header may carry; a header is checked against its op before the
# DataNode touches a replica (Hadoop's protobuf headers are typed the same way).
TARGET = Struct(_extra=True, ip=Str(255, empty=False), xferPort=Int(1, 65535), uuid=Str(100))
HEADERS = {
    "WRITE_BLOCK": Struct(
        op=Str(),
        block=BLOCK,
        stage=Str(choices=STAGES, default="create"),
        targets=List(TARGET, max_len=32, default=[]),
        newGenStamp=Int(0, default=None),
        client=Str(200, default=None),
    ),
    "READ_BLOCK": Struct(op=Str(), block=BLOCK, offset=Int(0), length=Int(0)),
    "BLOCK_CHECKSUM": Struct(op=Str(), block=BLOCK),
    # Lease recovery (InterDatanodeProtocol's two calls in Hadoop), from the NameNode.
    "INIT_REPLICA_RECOVERY": Struct(op=Str(), block=BLOCK, recoveryId=Int(1)),
    "UPDATE_REPLICA_UNDER_RECOVERY": Struct(
        op=Str(), block=BLOCK, recoveryId=Int(1), newLength=Int(0)
    ),
}


class PipelineError(Exception):
    def __init__(self, message: str, bad_index: int | None = None) -> None:
        super().__init__(message)
        self.bad_index = bad_index  # position in the pipeline of the DataNode that failed


async def send_msg(writer: asyncio.StreamWriter, obj: dict) -> None:
    body = json.dumps(obj, separators=(",", ":")).encode()
    writer.write(MSG_LEN.pack(len(body)) + body)
    await writer.drain()


async def recv_msg(reader: asyncio.StreamReader) -> dict:
    (n,) = MSG_LEN.unpack(await reader.readexactly(MSG_LEN.size))
    if n > MAX_MSG:
        raise ValueError(f"message of {n} bytes is larger than {MAX_MSG}")
    obj = json.loads(await reader.readexactly(n))
    if not isinstance(obj, dict):
        raise ValueError("message is not a JSON object")
    return obj


def encode_packet(
    seqno: int,
    offset: int,
    data: bytes | memoryview,
    last: bool,
    bpc: int,
    flags: int | None = None,
) -> list:
    crcs = checksum.piece_crcs(data, offset, bpc) if len(data) else b""
    flags = (LAST if last else 0) if flags is None else flags
    return [PACKET.pack(seqno, offset, len(data), flags), crcs, data]


async def recv_packet(
    reader: asyncio.StreamReader, bpc: int
) -> tuple[int, int, int, bytes, bytes, bytes]:
    """-> seqno, offset, flags, raw header, crcs, data."""
    header = await reader.readexactly(PACKET.size)
    seqno, offset, length, flags = PACKET.unpack(header)
    npieces = checksum.piece_count(offset, length, bpc)
    crcs = await reader.readexactly(npieces * checksum.CRC_SIZE) if npieces else b""
    data = await reader.readexactly(length) if length else b""
    return seqno, offset, flags, header, crcs, data


def encode_ack(seqno: int, statuses: list[int]) -> bytes:
    return ACK.pack(seqno, len(statuses)) + bytes(statuses)


async def recv_ack(reader: asyncio.StreamReader) -> tuple[int, list[int]]:
    seqno, n = ACK.unpack(await reader.readexactly(ACK.size))
    return seqno, list(await reader.readexactly(n))


class PipelineWriter:
    """The writer's end of one block's pipeline: packetises data, keeps at most
    `max_in_flight` packets unacknowledged, and fails on the first bad ack."""

    def __init__(
        self,
        targets: list[dict],
        header: dict,
        bpc: int,
        packet_size: int = 65536,
        max_in_flight: int = 80,
        timeout: float = 60.0,
    ) -> None:
        self.targets = targets
        self.header = header
        self.bpc = bpc
        self.packet_size = max(bpc, packet_size - packet_size % bpc)
        resumes = header.get("stage") in ("append", "recovery")
        self.offset = header["block"].get("numBytes", 0) if resumes else 0
        self.timeout = timeout
        self.seqno = 0
        self.window = asyncio.Semaphore(max_in_flight)
        # seqno -> (block offset after that packet, its data): kept until acknowledged so
        # that pipeline recovery can send it again.
        self.outstanding: dict[int, tuple[int, bytes | memoryview]] = {}
        self.acked_offset = self.offset
        self.buffer = bytearray()
        self.failure: Exception | None = None
        self._ack_task: asyncio.Task | None = None

    async def open(self) -> None:
        first = self.targets[0]
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(first["ip"], first["xferPort"]), self.timeout
            )
        except (TimeoutError, OSError) as exc:
            raise PipelineError(
                f"cannot connect to {first['ip']}:{first['xferPort']}: {exc}", 0
            ) from exc
        header = dict(self.header, op="WRITE_BLOCK", targets=self.targets[1:])
        try:
            # A node killed a moment ago may still accept and then reset: that is a bad
            # first node like a refused connection, not an error of the upload.
            await send_msg(self.writer, header)
            reply = await asyncio.wait_for(recv_msg(self.reader), self.timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            raise PipelineError(f"no setup reply from {first['ip']}: {exc}", 0) from exc
        if reply.get("status") != "SUCCESS":
            bad = reply.get("firstBadLink")
            index = next((i for i, t in enumerate(self.targets) if bad and t["uuid"] == bad), 0)
            raise PipelineError(f"pipeline setup failed: {reply.get('message')}", index)
        self._ack_task = asyncio.create_task(self._read_acks())

    async def _read_acks(self) -> None:
        try:
            while True:
                seqno, statuses = await recv_ack(self.reader)
                if any(s != SUCCESS for s in statuses):
                    bad = next(i for i, s in enumerate(statuses) if s != SUCCESS)
                    raise PipelineError(
                        f"DataNode {self.targets[bad]['ip']} answered {STATUS_NAMES.get(statuses[bad], statuses[bad])}"
                        f" for packet {seqno}",
                        bad,
                    )
                entry = self.outstanding.pop(seqno, None)
                if entry is None:
                    raise PipelineError(f"ack for unknown packet {seqno}")
                self.acked_offset = entry[0]
                self.window.release()
        except (OSError, asyncio.IncompleteReadError) as exc:
            if self.outstanding:
                self.failure = PipelineError(f"pipeline broke: {exc!r}", 0)
        except PipelineError as exc:
            self.failure = exc
        finally:
            # Wake writers blocked on the window so they see the failure.
            for _ in range(len(self.outstanding) + 1):
                self.window.release()

    async def _send(self, data: bytes | memoryview, last: bool) -> None:
        """Either raises before the packet is taken (nothing consumed) or takes it; a
        failure after that surfaces on the next call, with the packet still unacknowledged."""
        if self.failure:
            raise self.failure
        await self.window.acquire()
        if self.failure:
            raise self.failure
        parts = encode_packet(self.seqno, self.offset, data, last, self.bpc)
        self.offset += len(data)
        self.outstanding[self.seqno] = (self.offset, data)
        self.seqno += 1
        self.writer.writelines(parts)
        try:
            await self.writer.drain()
        except OSError as exc:
            self.failure = self.failure or PipelineError(
                f"pipeline broke while sending: {exc!r}", 0
            )

    async def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        try:
            if self.buffer:
                take = min(len(view), self.packet_size - len(self.buffer))
                self.buffer += view[:take]
                view = view[take:]
                if len(self.buffer) < self.packet_size:
                    return
                await self._send(bytes(self.buffer), False)
                self.buffer.clear()
            # Whole packets straight from the caller's buffer (no copy); packets end on chunk
            # boundaries (the first may finish a partial chunk), so receivers see whole chunks.
            while len(view) >= self.packet_size:
                n = self.packet_size - self.offset % self.bpc
                await self._send(view[:n], False)
                view = view[n:]
        finally:
            # Whatever no packet took (also on failure) waits here, for the next packet
            # or for the recovered pipeline.
            if len(view):
                self.buffer += view

    def unacknowledged(self) -> tuple[int, bytes]:
        """(acknowledged length, the bytes after it the writer handed over) after a failure."""
        sent = b"".join(bytes(d) for _, (_, d) in sorted(self.outstanding.items()))
        return self.acked_offset, sent + bytes(self.buffer)

    async def cancel(self) -> None:
        """Give up on purpose: tell the pipeline to roll its replicas back, then hang up."""
        try:
            if hasattr(self, "writer") and not self.writer.is_closing():
                self.writer.writelines(
                    encode_packet(self.seqno, self.offset, b"", False, self.bpc, flags=ABORT)
                )
                await asyncio.wait_for(self.writer.drain(), 5)
        except (TimeoutError, OSError):
            pass
        self.abort()

    async def close(self) -> int:
        """Flush, send the last packet, wait for every ack. -> bytes in the replica.
        On failure the connection stays open for cancel() or recovery."""
        if self.buffer:
            await self._send(bytes(self.buffer), False)
            self.buffer.clear()
        await self._send(b"", True)
        try:
            await asyncio.wait_for(asyncio.shield(self._ack_task), self.timeout)
        except TimeoutError:
            raise PipelineError(f"no ack within {self.timeout}s", 0) from None
        if self.failure:
            raise self.failure
        if self.outstanding:
            raise PipelineError("pipeline closed before every packet was acknowledged", 0)
        self.abort()
        return self.acked_offset

    def abort(self) -> None:
        if self._ack_task and not self._ack_task.done():
            self._ack_task.cancel()
        if hasattr(self, "writer"):
            self.writer.close()


async def read_remote_block(
    target: dict, block: dict, offset: int, length: int, bpc: int, timeout: float = 60.0
):
    """Yield verified bytes of a replica on another DataNode (READ_BLOCK); raises
    checksum.ChecksumError on a bad chunk, OSError/PipelineError when the node fails."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(target["ip"], target["xferPort"]), timeout
    )
    try:
        await send_msg(
            writer, {"op": "READ_BLOCK", "block": block, "offset": offset, "length": length}
        )
        reply = await asyncio.wait_for(recv_msg(reader), timeout)
        if reply.get("status") != "SUCCESS":
            raise PipelineError(f"READ_BLOCK from {target['ip']}: {reply.get('message')}")
        end = offset + length
        while True:
            seqno, pos, flags, _, crcs, data = await asyncio.wait_for(
                recv_packet(reader, bpc), timeout
            )
            if flags & LAST:
                break
            if not checksum.pieces_match(data, pos, bpc, crcs):
                raise checksum.ChecksumError(
                    f"Checksum error: blk_{block['blockId']} from {target['ip']} at offset {pos}",
                    pos,
                )
            lo, hi = max(offset, pos) - pos, min(end, pos + len(data)) - pos
            if hi > lo:
                yield data[lo:hi]
    finally:
        writer.close()
