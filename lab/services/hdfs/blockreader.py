"""OP_READ_BLOCK from the client's side, blocking, as Hadoop's BlockReaderRemote reads a
block from one DataNode: the request, the DataNode's BlockOpResponseProto (its checksum
type and the chunk-aligned offset it starts at), packets of PacketHeaderProto, CRC32C
chunk checksums and data, each packet's checksums verified, and CHECKSUM_OK sent back at
the end. For racklab's own tools (`lab hdfs`) and tests; the DataNode's side is
datatransfer_hadoop.py."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

from ..hadoop.ipc.protobuf import Schema, encode_varint
from . import checksum
from .datatransfer_hadoop import READ_BLOCK, SCHEMA, request_bytes


class BlockOpError(OSError):
    """The DataNode refused the operation: its BlockOpResponseProto is `response`."""

    def __init__(self, response: dict) -> None:
        super().__init__(response.get("message") or response.get("status"))
        self.response = response


class ChecksumMismatch(OSError):
    pass


def _read_varint(f) -> int:
    value = shift = 0
    while True:
        b = f.read(1)
        if not b:
            raise ConnectionError("the DataNode closed the connection")
        value |= (b[0] & 0x7F) << shift
        shift += 7
        if not b[0] & 0x80:
            return value


def _read_exactly(f, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ConnectionError("the DataNode closed the connection mid-packet")
    return data


def read_delimited(f) -> bytes:
    """One varint-delimited message's bytes from a socket file."""
    return _read_exactly(f, _read_varint(f))


def read_block(
    schema: Schema,
    address: tuple[str, int],
    block: dict,
    offset: int,
    length: int,
    client: str = "racklab",
    timeout: float = 60.0,
    on_response=None,
    send_checksums: bool = True,
) -> Iterator[bytes]:
    """The bytes [offset, offset+length) of `block` (an ExtendedBlockProto) from the
    DataNode at `address`, in pieces. Raises BlockOpError when the DataNode refuses,
    ChecksumMismatch when a packet's data does not match its CRCs. `on_response` is
    given the BlockOpResponseProto first. ``send_checksums`` False asks for the data
    alone (OpReadBlockProto.sendChecksums), which is then not checked."""
    request = request_bytes(
        schema,
        READ_BLOCK,
        "OpReadBlockProto",
        {
            "header": {"baseHeader": {"block": block}, "clientName": client},
            "offset": offset,
            "len": length,
            "sendChecksums": send_checksums,
        },
    )
    with socket.create_connection(address, timeout=timeout) as s:
        s.sendall(request)
        f = s.makefile("rb")
        resp = schema.decode(SCHEMA + "BlockOpResponseProto", read_delimited(f))
        if on_response is not None:
            on_response(resp)
        if resp["status"] != "SUCCESS":
            raise BlockOpError(resp)
        info = resp["readOpChecksumInfo"]
        bpc, pos = info["checksum"]["bytesPerChecksum"], info["chunkOffset"]
        checked = info["checksum"]["type"] != "CHECKSUM_NULL"
        skip, left = offset - pos, length
        while True:
            payload_len, header_len = struct.unpack(">IH", _read_exactly(f, 6))
            header = schema.decode(SCHEMA + "PacketHeaderProto", _read_exactly(f, header_len))
            body = _read_exactly(f, payload_len - 4)
            if header["lastPacketInBlock"]:
                break
            n = header["dataLen"]
            crcs, data = body[: len(body) - n], body[len(body) - n :]
            if checked and not checksum.pieces_match(data, header["offsetInBlock"], bpc, crcs):
                raise ChecksumMismatch(
                    f"Checksum error at offset {header['offsetInBlock']} of "
                    f"blk_{block['blockId']}_{block['generationStamp']} from {address[0]}"
                )
            piece = data[skip : skip + left]
            skip = max(0, skip - len(data))
            left -= len(piece)
            if piece:
                yield piece
        # BlockReaderRemote's verdict: CHECKSUM_OK for checked data, SUCCESS otherwise
        verdict = "CHECKSUM_OK" if checked else "SUCCESS"
        status = schema.encode(SCHEMA + "ClientReadStatusProto", {"status": verdict})
        s.sendall(encode_varint(len(status)) + status)
