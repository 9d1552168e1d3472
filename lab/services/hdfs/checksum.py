"""Per-chunk CRC32C checksums, laid out like Hadoop's block .meta files: a 7-byte header
(version 1, checksum type 2 = CRC32C, bytes per checksum) then one big-endian CRC per chunk."""

from __future__ import annotations

import struct

import crc32c

META_VERSION = 1
CRC32C_TYPE = 2
HEADER = struct.Struct(">HBI")
CRC_SIZE = 4


class ChecksumError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def meta_header(bytes_per_checksum: int) -> bytes:
    return HEADER.pack(META_VERSION, CRC32C_TYPE, bytes_per_checksum)


def parse_meta_header(data: bytes) -> int:
    version, ctype, bpc = HEADER.unpack(data[: HEADER.size])
    if version != META_VERSION or ctype != CRC32C_TYPE or bpc <= 0:
        raise ValueError(f"unsupported block meta header {version}/{ctype}/{bpc}")
    return bpc


def piece_bounds(offset: int, length: int, bpc: int) -> list[tuple[int, int]]:
    """Split [offset, offset+length) at absolute chunk boundaries: (start, end) relative
    to offset. A write may start or end inside a chunk; each piece gets its own CRC."""
    out, pos, end = [], offset, offset + length
    while pos < end:
        stop = min(end, (pos // bpc + 1) * bpc)
        out.append((pos - offset, stop - offset))
        pos = stop
    return out


def piece_count(offset: int, length: int, bpc: int) -> int:
    """How many chunk pieces [offset, offset+length) spans (len(piece_bounds(...)))."""
    if length <= 0:
        return 0
    return (offset + length - 1) // bpc - offset // bpc + 1


def piece_crcs(data: bytes | memoryview, offset: int, bpc: int) -> bytes:
    mv = memoryview(data)
    crc = crc32c.crc32c
    n = len(mv)
    head = min(n, (bpc - offset % bpc) % bpc)  # the piece that finishes a partial chunk
    crcs = [crc(mv[:head])] if head else []
    crcs += [crc(mv[i : i + bpc]) for i in range(head, n, bpc)]
    return struct.pack(f">{len(crcs)}I", *crcs)


def crc_continue(data: bytes | memoryview, previous: int) -> int:
    return crc32c.crc32c(data, previous)
