"""Hadoop's own DataTransferProtocol on dfs.datanode.address, beside racklab's JSON one.

A Hadoop client opens with the protocol version (a big-endian short, 28) and an op byte,
then a varint-delimited protobuf request (datatransfer.proto). The DataNode answers with
a varint-delimited BlockOpResponseProto and, for a read, packets:

  u32 payload length (4 + checksums + data)   u16 header length   PacketHeaderProto
  one CRC32C per chunk of dfs.bytes-per-checksum bytes            the data

and an empty packet with lastPacketInBlock to end the block; the reader then sends a
ClientReadStatusProto. Served here: OP_WRITE_BLOCK (through the DataNode's own pipeline
code), OP_READ_BLOCK and OP_BLOCK_CHECKSUM from the same replicas and stored CRCs
racklab's own protocol reads, and OP_TRANSFER_BLOCK, a writer's request during pipeline
recovery to copy the block to the DataNode the NameNode added."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import struct

from ..hadoop.fields import FieldError
from ..hadoop.ipc.protobuf import DecodeError, Schema, encode_varint, zigzag
from . import checksum
from .datatransfer import ACK, HEADERS, LAST, MSG_LEN, PACKET, STATUS_NAMES, SYNC, PipelineError
from .receivebuffer import ReceiveBuffer

WRITE_HEADER = HEADERS["WRITE_BLOCK"]

log = logging.getLogger("hdfs.datanode")

VERSION = 28  # DataTransferProtocol.DATA_TRANSFER_VERSION
WRITE_BLOCK, READ_BLOCK, TRANSFER_BLOCK, BLOCK_CHECKSUM = 80, 81, 86, 85
REQUESTS = {
    WRITE_BLOCK: "OpWriteBlockProto",
    READ_BLOCK: "OpReadBlockProto",
    TRANSFER_BLOCK: "OpTransferBlockProto",
    BLOCK_CHECKSUM: "OpBlockChecksumProto",
}
# The first bytes of a Hadoop data-transfer request, by which the DataNode's port tells
# it from racklab's own protocol (a u32 length whose top bytes these would be means a
# JSON header of 1.8 MB, which racklab never sends).
PREFIXES = tuple(struct.pack(">HB", VERSION, op) for op in REQUESTS)
# Hadoop's pipeline stages as racklab's WRITE_BLOCK names them.
STAGES = {
    "PIPELINE_SETUP_CREATE": "create",
    "PIPELINE_SETUP_APPEND": "append",
    "PIPELINE_SETUP_APPEND_RECOVERY": "recovery",
    "PIPELINE_SETUP_STREAMING_RECOVERY": "recovery",
}
MAX_PACKET = 16 * 1024 * 1024  # a packet larger than this is refused (Hadoop: 16 MiB)
MAX_REQUEST = 1024 * 1024
# Bytes of data per packet sent to a reader. Hadoop's BlockSender sends 64 KiB; a reader
# takes packets up to 16 MiB, and fewer, larger packets cost a Python DataNode less (each
# is one sendfile).
READ_PACKET_DATA = 512 * 1024
CRC_SIZE = 4
NULL_CHUNK = 512  # BlockSender's chunk for a read sent without checksums
SCHEMA = "hadoop.hdfs."


class HadoopDataTransfer:
    """The ops a DataNode serves to Hadoop clients, over the DataNode's block store."""

    def __init__(self, dn, schema: Schema) -> None:
        self.dn, self.schema = dn, schema

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dn = self.dn
        dn.xceivers += 1  # counted and capped with racklab's own transfers
        try:
            if dn.xceivers > dn.max_xceivers:
                log.warning("Xceiver count %d exceeds the limit %d", dn.xceivers, dn.max_xceivers)
                return
            async with asyncio.timeout(dn.read_timeout):
                version, op = struct.unpack(">HB", await reader.readexactly(3))
                request_type = REQUESTS.get(op)
                if version != VERSION or request_type is None:
                    await self._respond(writer, "ERROR_UNSUPPORTED", f"Unsupported op {op}")
                    return
                request = await self._read_message(reader, request_type)
            if op == WRITE_BLOCK:
                await self._write_block(request, reader, writer)
            elif op == READ_BLOCK:
                await self._read_block(request, reader, writer)
            elif op == TRANSFER_BLOCK:
                await self._transfer_block(request, writer)
            else:
                await self._block_checksum(request, writer)
        except DecodeError as exc:
            await self._respond(writer, "ERROR", f"Invalid request: {exc}")
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            log.debug("data transfer connection ended: %r", exc)
        except Exception:
            log.exception("data transfer failed")
        finally:
            dn.xceivers -= 1
            writer.close()

    async def _read_message(self, reader: asyncio.StreamReader, type_: str) -> dict:
        size = shift = 0
        for _ in range(5):
            b = (await reader.readexactly(1))[0]
            size |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        else:
            raise DecodeError("request length longer than five bytes")
        if size > MAX_REQUEST:
            raise DecodeError(f"request of {size} bytes")
        return self.schema.decode(SCHEMA + type_, await reader.readexactly(size))

    async def _respond(self, writer, status: str, message: str = "", **extra) -> None:
        msg = {"status": status, **extra}
        if message:
            msg["message"] = message
        writer.write(self.schema.encode_delimited(SCHEMA + "BlockOpResponseProto", msg))
        await writer.drain()

    def _replica(self, block: dict):
        """The finalized replica a request names, or None (the caller words the error)."""
        rep = self.dn.store.get(block["blockId"])
        if rep is None or rep.state != "finalized" or rep.gen_stamp < block["generationStamp"]:
            return None
        return rep

    async def _read_block(self, request: dict, reader, writer) -> None:
        dn = self.dn
        block = request["header"]["baseHeader"]["block"]
        name = f"{block['poolId']}:blk_{block['blockId']}_{block['generationStamp']}"
        try:
            # A replica still being written is read up to its visible length (a writer's
            # hflush'd or hsync'd bytes), as Hadoop's BlockSender reads an RBW.
            rep, visible = dn.readable_replica(block["blockId"], block["generationStamp"])
        except OSError as exc:
            await self._respond(
                writer, "ERROR", f"{exc}".replace("blk_", f"{block['poolId']}:blk_", 1)
            )
            return
        offset, length = request["offset"], request["len"]
        if offset > visible or offset + length > visible:
            await self._respond(
                writer,
                "ERROR",
                f"Offset {offset} and length {length} don't match block {name} "
                f"( blockLen {visible} )",
            )
            return
        # A client that asked for no checksums (sendChecksums false) gets none, in
        # packets aligned to 512-byte chunks of checksum type NULL, as BlockSender sends
        # when neither sending nor verifying them.
        send_crcs = request.get("sendChecksums") is not False
        bpc = dn.bpc if send_crcs else NULL_CHUNK
        kind = "CHECKSUM_CRC32C" if send_crcs else "CHECKSUM_NULL"
        start = offset - offset % bpc  # whole chunks, so the client can check each CRC
        end = min(visible, -(-(offset + length) // bpc) * bpc)
        loop = asyncio.get_running_loop()
        with open(rep.data_path, "rb") as df, open(rep.meta_path, "rb") as mf:
            try:
                crcs = await loop.run_in_executor(
                    None, _prepare_read, df, mf, start, end, bpc, send_crcs
                )
                if send_crcs:
                    crcs = dn.store.visible_crcs(rep, None, start, crcs, end)
            except OSError as exc:
                await self._respond(writer, "ERROR", f"{name}: {exc}")
                return
            await self._respond(
                writer,
                "SUCCESS",
                readOpChecksumInfo={
                    "checksum": {"type": kind, "bytesPerChecksum": bpc},
                    "chunkOffset": start,
                },
            )
            crc_size = CRC_SIZE if send_crcs else 0
            slab = max(bpc, READ_PACKET_DATA - READ_PACKET_DATA % bpc)
            pos, seq = start, 0
            while pos < end:
                n = min(slab, end - pos)
                first = (pos - start) // bpc * crc_size
                writer.writelines(
                    self._packet(pos, seq, n, crcs[first : first + -(-n // bpc) * crc_size], False)
                )
                # The data goes from the page cache to the socket (sendfile): no copy
                # through Python, and BlockSender's transferTo does the same.
                async with asyncio.timeout(dn.write_timeout):
                    sent = await loop.sendfile(writer.transport, df, pos, n)
                if sent != n:
                    raise OSError(f"{name}: {sent} of {n} bytes at {pos} read from disk")
                pos += n
                seq += 1
        writer.writelines(self._packet(pos, seq, 0, b"", last=True))
        await writer.drain()
        # The reader's verdict (CHECKSUM_OK / SUCCESS) closes the exchange; a reader that
        # hangs up without one has what it wanted too.
        try:
            async with asyncio.timeout(dn.read_timeout):
                await self._read_message(reader, "ClientReadStatusProto")
        except (TimeoutError, DecodeError, asyncio.IncompleteReadError, OSError):
            pass

    def _packet(self, offset: int, seq: int, data_len: int, crcs: bytes, last: bool) -> list:
        """A packet's length prefix, PacketHeaderProto and CRCs; its data follows."""
        header = self.schema.encode(
            SCHEMA + "PacketHeaderProto",
            {
                "offsetInBlock": offset,
                "seqno": seq,
                "lastPacketInBlock": last,
                "dataLen": data_len,
            },
        )
        return [struct.pack(">IH", 4 + len(crcs) + data_len, len(header)), header, crcs]

    async def _block_checksum(self, request: dict, writer) -> None:
        """The block's MD5 of its chunk CRCs, as BlockChecksumHelper computes it for
        MD5MD5CRC32C file checksums."""
        block = request["header"]["block"]
        rep = self._replica(block)
        if rep is None:
            await self._respond(writer, "ERROR", f"Replica not found for blk_{block['blockId']}")
            return
        bpc = self.dn.bpc
        chunks = -(-rep.length // bpc)
        with open(rep.meta_path, "rb") as f:
            f.seek(checksum.HEADER.size)
            crcs = f.read(chunks * CRC_SIZE)
        await self._respond(
            writer,
            "SUCCESS",
            checksumResponse={
                "bytesPerCrc": bpc,
                "crcPerBlock": chunks,
                "blockChecksum": hashlib.md5(crcs).digest(),
                "crcType": "CHECKSUM_CRC32C",
            },
        )

    async def _transfer_block(self, request: dict, writer) -> None:
        """DataXceiver.transferBlock: copy this DataNode's replica to the targets and answer
        SUCCESS once they have it. A failure gets no answer: Hadoop's DataNode logs it and
        closes the connection, and the client gives up on the replacement node."""
        header = request["header"]
        block = header["baseHeader"]["block"]
        targets = [_target(t) for t in request["targets"]]
        try:
            await self.dn.transfer_for_recovery(
                block["blockId"], block["generationStamp"], targets, header["clientName"]
            )
        except (
            OSError,
            ValueError,
            PipelineError,
            checksum.ChecksumError,
            asyncio.IncompleteReadError,
        ) as exc:
            log.info(
                "transferBlock %s:blk_%d_%d received exception %s",
                block["poolId"],
                block["blockId"],
                block["generationStamp"],
                exc,
            )
            return
        await self._respond(writer, "SUCCESS")

    async def _write_block(self, request: dict, reader, writer) -> None:
        """The head of a write pipeline for a Hadoop client. The DataNode's own pipeline
        code does the work (forwarding downstream in racklab's protocol, CRC checks,
        finalizing, reporting to the NameNode); the client's packets are translated
        into it and its acknowledgements back out, one for one."""
        dn = self.dn
        stage = STAGES.get(request["stage"])
        checksum_req = request["requestedChecksum"]
        if stage is None:
            await self._respond(writer, "ERROR_UNSUPPORTED", f"stage {request['stage']}")
            return
        if checksum_req["type"] != "CHECKSUM_CRC32C" or checksum_req["bytesPerChecksum"] != dn.bpc:
            await self._respond(
                writer,
                "ERROR_UNSUPPORTED",
                f"checksum {checksum_req['type']}/{checksum_req['bytesPerChecksum']}: this "
                f"DataNode stores CHECKSUM_CRC32C per {dn.bpc} bytes",
            )
            return
        block = request["header"]["baseHeader"]["block"]
        targets = [_target(t) for t in request["targets"]]
        header = {
            "op": "WRITE_BLOCK",
            "block": {
                "blockId": block["blockId"],
                "genStamp": block["generationStamp"],
                "numBytes": block["numBytes"],
            },
            "stage": stage,
            "targets": targets,
            "client": request["header"]["clientName"],
        }
        if stage != "create":
            latest = request["latestGenerationStamp"]
            header["newGenStamp"] = latest
            rep = dn.store.get(block["blockId"])
            if block["generationStamp"] == latest and rep is not None and rep.gen_stamp < latest:
                # A client (hdfs-native) that sends the new stamp as both the block's and
                # the latest: the replica is reopened from the stamp it has, as Hadoop's
                # FsDatasetImpl.append checks only that the new one is not older.
                header["block"]["genStamp"] = rep.gen_stamp
            if stage == "recovery":  # survivors cut back to what the client had acked
                header["block"]["numBytes"] = request["minBytesRcvd"]
        try:
            header = WRITE_HEADER.check(header)
        except FieldError as exc:
            await self._respond(writer, "ERROR", f"WRITE_BLOCK: {exc}")
            return
        links = {t["uuid"]: f"{t['ip']}:{t['xferPort']}" for t in targets}
        links[dn.uuid] = f"{dn.ip}:{dn.xfer_port}"
        await dn._write_block(
            header,
            _HadoopPackets(reader, writer.transport, self.schema),
            _HadoopAcks(self, writer, links),
        )


def _target(info: dict) -> dict:
    """racklab's pipeline target of a DatanodeInfoProto."""
    return {
        "ip": info["id"]["ipAddr"],
        "xferPort": info["id"]["xferPort"],
        "uuid": info["id"]["datanodeUuid"],
    }


def request_bytes(schema: Schema, op: int, type_: str, message: dict) -> bytes:
    """A client's request in Hadoop's framing (for tests and racklab's own tools)."""
    body = schema.encode(SCHEMA + type_, message)
    return struct.pack(">HB", VERSION, op) + encode_varint(len(body)) + body


def _prepare_read(df, mf, start: int, end: int, bpc: int, with_crcs: bool = True) -> bytes:
    """Before a read's first packet: the kernel asked to read [start, end) of the block
    ahead (the packets then find it in the page cache), and the stored CRCs of those
    chunks, read at once (4 bytes per 512: 1 MiB for a whole 128 MiB block)."""
    os.posix_fadvise(df.fileno(), start, end - start, os.POSIX_FADV_WILLNEED)
    if not with_crcs:
        return b""
    mf.seek(checksum.HEADER.size + start // bpc * CRC_SIZE)
    want = -(-(end - start) // bpc) * CRC_SIZE
    crcs = mf.read(want)
    if len(crcs) != want:
        raise OSError(f"{mf.name}: {len(crcs)} bytes of CRCs where {want} were expected")
    return crcs


class _HadoopPackets:
    """Reads a Hadoop client's packets for the DataNode's pipeline code, one packet per
    call of recv_packet (so the client is read no faster than the pipeline takes), in the
    shape racklab's own recv_packet returns: seqno, offset, flags, racklab's packet header
    (what is forwarded downstream), the CRCs and the data. The connection is read into a
    ReceiveBuffer once the request is read: the CRCs and the data are views into it, not
    copies, and packets already received are returned without waiting for the loop."""

    def __init__(self, reader: asyncio.StreamReader, transport, schema: Schema) -> None:
        self.reader, self.transport, self.schema = reader, transport, schema
        self.buffer: ReceiveBuffer | None = None

    async def recv_packet(
        self, bpc: int, timeout: float | None = None
    ) -> tuple[int, int, int, bytes, memoryview, memoryview]:
        if self.buffer is None:  # the first packet: the request's reader is done
            self.buffer = ReceiveBuffer(self.reader, self.transport)
        read = self.buffer.read
        payload_len, header_len = struct.unpack(">IH", await read(6, timeout))
        if payload_len < 4 or payload_len > MAX_PACKET:
            raise PacketError(f"Incorrect value for packet payload size: {payload_len}")
        if header_len > 1024:
            raise PacketError(f"Incorrect value for packet header size: {header_len}")
        offset, seqno, last, data_len, sync = self._header(await read(header_len, timeout))
        crc_len = payload_len - 4 - data_len
        if data_len < 0 or crc_len != checksum.piece_count(offset, data_len, bpc) * CRC_SIZE:
            raise PacketError(f"Invalid packet: payload {payload_len}, data {data_len}")
        body = await read(payload_len - 4, timeout)
        flags = (LAST if last else 0) | (SYNC if sync else 0)
        raw = PACKET.pack(seqno, offset, data_len, flags)
        return seqno, offset, flags, raw, body[:crc_len], body[crc_len:]

    def _header(self, data: memoryview) -> tuple[int, int, bool, int, bool]:
        """PacketHeaderProto -> offsetInBlock, seqno, lastPacketInBlock, dataLen, syncBlock.
        Clients write its fixed-width fields in order (25 bytes, 27 with syncBlock): read
        those directly, and anything else with the schema."""
        if len(data) in (25, 27) and data[0:1] == b"\x09" and data[9:10] == b"\x11":
            if data[18:19] == b"\x18" and data[20:21] == b"\x25":
                (offset,) = struct.unpack_from("<q", data, 1)
                (seqno,) = struct.unpack_from("<q", data, 10)
                (data_len,) = struct.unpack_from("<i", data, 21)
                if len(data) == 25:
                    return offset, seqno, data[19] != 0, data_len, False
                if data[25:26] == b"\x28" and data[26] < 0x80:
                    return offset, seqno, data[19] != 0, data_len, data[26] != 0
        try:
            h = self.schema.decode(SCHEMA + "PacketHeaderProto", bytes(data))
        except DecodeError as exc:
            raise PacketError(f"Invalid packet header: {exc}") from exc
        sync = bool(h.get("syncBlock"))
        return h["offsetInBlock"], h["seqno"], h["lastPacketInBlock"], h["dataLen"], sync


class PacketError(OSError):
    """A packet that cannot be read (Hadoop's PacketReceiver throws an IOException and the
    DataNode closes the connection): for the pipeline code, a broken upstream."""


class _HadoopAcks:
    """Takes what the DataNode's pipeline code writes upstream (its JSON reply, then
    acks) and writes Hadoop's BlockOpResponseProto and PipelineAckProto instead."""

    def __init__(self, dt: HadoopDataTransfer, out: asyncio.StreamWriter, links: dict) -> None:
        self.dt, self.out, self.links = dt, out, links
        self.buf = bytearray()
        self.replied = False
        self.tails: dict[bytes, bytes] = {}

    def write(self, data: bytes) -> None:
        self.buf += data
        acks: list[bytes] = []
        try:
            self._translate(acks)
        finally:
            if acks:  # the acks that came in one write leave in one write
                self.out.write(b"".join(acks))

    def _translate(self, acks: list[bytes]) -> None:
        while True:
            if not self.replied:
                if len(self.buf) < MSG_LEN.size:
                    return
                (n,) = MSG_LEN.unpack_from(self.buf)
                if len(self.buf) < MSG_LEN.size + n:
                    return
                reply = json.loads(bytes(self.buf[MSG_LEN.size : MSG_LEN.size + n]))
                del self.buf[: MSG_LEN.size + n]
                self.replied = True
                msg = {"status": reply.get("status", "ERROR")}
                if reply.get("message"):
                    msg["message"] = str(reply["message"])
                if reply.get("firstBadLink"):
                    bad = reply["firstBadLink"]
                    msg["firstBadLink"] = self.links.get(bad, bad)
                self.out.write(
                    self.dt.schema.encode_delimited(SCHEMA + "BlockOpResponseProto", msg)
                )
                continue
            if len(self.buf) < ACK.size:
                return
            seqno, count = ACK.unpack_from(self.buf)
            if len(self.buf) < ACK.size + count:
                return
            statuses = bytes(self.buf[ACK.size : ACK.size + count])
            del self.buf[: ACK.size + count]
            acks.append(self._ack(seqno, statuses))

    def _ack(self, seqno: int, statuses: bytes) -> bytes:
        """PipelineAckProto, delimited. Its fields after the seqno depend only on the
        statuses: encoded once per set of statuses, the seqno put in front each time."""
        tail = self.tails.get(statuses)
        if tail is None:
            ack = {
                "seqno": 0,
                "reply": [STATUS_NAMES.get(st, "ERROR") for st in statuses],
                "flag": [0] * len(statuses),
            }
            tail = self.dt.schema.encode(SCHEMA + "PipelineAckProto", ack)[2:]  # after seqno 0
            self.tails[statuses] = tail
        body = b"\x08" + encode_varint(zigzag(seqno)) + tail  # field 1, sint64
        return encode_varint(len(body)) + body

    def writelines(self, parts) -> None:
        for p in parts:
            self.write(p)

    async def drain(self) -> None:
        await self.out.drain()

    def close(self) -> None:
        self.out.close()

    def get_extra_info(self, name, default=None):
        return self.out.get_extra_info(name, default)
