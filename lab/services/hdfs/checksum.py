"""Per-chunk CRC32C checksums, laid out like Hadoop's block .meta files: a 7-byte header
(version 1, checksum type 2 = CRC32C, bytes per checksum) then one big-endian CRC per chunk."""

from __future__ import annotations

import struct
import threading

import crc32c

META_VERSION = 1
CRC32C_TYPE = 2
HEADER = struct.Struct(">HBI")
CRC_SIZE = 4
# crc32c(data, value) resumes from the register value ^ 0xFFFFFFFF: this one starts at zero.
_ZERO_REGISTER = 0xFFFFFFFF


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


def pieces_match(data: bytes | memoryview, offset: int, bpc: int, crcs: bytes) -> bool:
    """Whether `crcs` (big-endian, one per piece as piece_crcs lays them out) are the CRCs
    of `data` starting at block offset `offset`: what piece_crcs(...) == crcs answers, in
    a few C-level calls over the whole data rather than one call per 512-byte chunk.

    The whole chunks' CRCs are checked together by CRC32C's linearity: the CRC of the
    chunks' concatenation is sum_k A^(n-1-k)(crc_k) over GF(2), A being the register's
    advance over one chunk of zero bytes. Laying each crc_k (little-endian, the register's
    order) at the end of its own zero-filled chunk and taking the CRC of that from a zero
    register gives the same sum advanced by 4 more bytes: equal to the CRC, from a zero
    register, of the data's CRC's 4 bytes. One wrong chunk always changes the sum (A is
    invertible); two could cancel out with chance 2^-32, a single CRC32C's own odds."""
    crcs = bytes(crcs)
    if bpc < CRC_SIZE:  # no room for a CRC at a chunk's end: one call per chunk
        return piece_crcs(data, offset, bpc) == crcs
    mv = memoryview(data)
    n = len(mv)
    if len(crcs) != piece_count(offset, n, bpc) * CRC_SIZE:
        return False
    head = min(n, (bpc - offset % bpc) % bpc)
    full = (n - head) // bpc
    tail = n - head - full * bpc
    crc = crc32c.crc32c
    if head and struct.pack(">I", crc(mv[:head])) != crcs[:CRC_SIZE]:
        return False
    if tail and struct.pack(">I", crc(mv[n - tail :])) != crcs[-CRC_SIZE:]:
        return False
    if not full:
        return True
    first = CRC_SIZE if head else 0
    body = crcs[first : first + full * CRC_SIZE]
    spread = _spread(full, bpc)  # zero-filled; each chunk's last 4 bytes set below
    for i in range(CRC_SIZE):  # big-endian in the file, little-endian into the register
        spread[bpc - CRC_SIZE + i :: bpc] = body[CRC_SIZE - 1 - i :: CRC_SIZE]
    whole = crc(mv[head : head + full * bpc])
    return crc(spread, _ZERO_REGISTER) == crc(struct.pack("<I", whole), _ZERO_REGISTER)


def _spread(full: int, bpc: int) -> bytearray:
    """A zero-filled buffer of `full` chunks whose last CRC_SIZE bytes each are the
    caller's to set: kept per thread and size, as only those bytes ever change (a new
    64 KiB buffer per packet was an allocation and a memset per packet)."""
    cache = getattr(_spreads, "by_size", None)
    if cache is None:
        cache = _spreads.by_size = {}
    buf = cache.get((full, bpc))
    if buf is None:
        if len(cache) >= 8:
            cache.clear()
        buf = cache[(full, bpc)] = bytearray(full * bpc)
    return buf


_spreads = threading.local()


def crc_continue(data: bytes | memoryview, previous: int) -> int:
    return crc32c.crc32c(data, previous)
