"""Record batch v2 (magic 2): the on-wire and on-disk unit of a partition log.

A batch's 61-byte header is followed by its records, possibly compressed as a
whole. The CRC-32C covers everything from the attributes field to the end, so a
leader can stamp the base offset and its leader epoch into the first 16 bytes
without recomputing it.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field

import crc32c

from . import compression as codecs
from .primitives import DecodeError, Reader, varint_bytes

HEADER_SIZE = 61
LOG_OVERHEAD = 12  # base offset + batch length, before the length-counted part
_HDR = struct.Struct(">qiibIhiqqqhii")

COMPRESSION_NONE, COMPRESSION_GZIP, COMPRESSION_SNAPPY, COMPRESSION_LZ4, COMPRESSION_ZSTD = (
    codecs.NONE,
    codecs.GZIP,
    codecs.SNAPPY,
    codecs.LZ4,
    codecs.ZSTD,
)
COMPRESSION_NAMES = codecs.NAMES


class CorruptBatch(ValueError):
    """A batch whose framing, magic or CRC is wrong (Kafka's CORRUPT_MESSAGE)."""


@dataclass
class BatchHeader:
    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def compression(self) -> int:
        return self.attributes & 0x07

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & 0x10)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & 0x20)

    @property
    def last_sequence(self) -> int:
        if self.base_sequence < 0:
            return -1
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF


def parse_header(buf: bytes | memoryview, pos: int = 0) -> BatchHeader:
    if len(buf) - pos < HEADER_SIZE:
        raise CorruptBatch("batch shorter than its 61-byte header")
    return BatchHeader(*_HDR.unpack_from(buf, pos))


def crc_of(buf: bytes | memoryview, pos: int, size: int) -> int:
    return crc32c.crc32c(bytes(buf[pos + 21 : pos + size]))


def iter_batches(buf: bytes | memoryview, check_crc: bool = True):
    """Yield (position, header) for each whole batch; raise CorruptBatch on a bad one.
    A trailing partial batch (which Fetch responses may carry) is ignored."""
    pos = 0
    n = len(buf)
    while n - pos >= LOG_OVERHEAD:
        length = int.from_bytes(buf[pos + 8 : pos + 12], "big", signed=True)
        if length < HEADER_SIZE - LOG_OVERHEAD:
            raise CorruptBatch(f"batch length {length} is below the header size")
        if pos + LOG_OVERHEAD + length > n:
            return
        h = parse_header(buf, pos)
        if h.magic != 2:
            raise CorruptBatch(f"record batch magic {h.magic} is not supported (only v2)")
        if check_crc and crc_of(buf, pos, h.size) != h.crc:
            raise CorruptBatch(f"CRC-32C mismatch in batch at byte {pos}")
        yield pos, h
        pos += h.size


# A compressed batch may inflate to at most this many times the batch size limit
# (max.message.bytes): far more than any producer's batching gives (clients cap a
# batch's uncompressed size near their own 1 MB request limit; Java's producer splits a
# batch refused as too large), and a bound on the CPU a compression bomb can take.
DECOMPRESSION_FACTOR = 8


class BatchTooLarge(CorruptBatch):
    """Kafka's MESSAGE_TOO_LARGE: a batch over the limit, compressed or once inflated."""


def parse_batches(buf: bytes) -> list[tuple[int, BatchHeader]]:
    """The cheap checks a leader makes on a produce request's records (framing, magic,
    CRC, counts, codec): (position, header) of each batch."""
    out = []
    total = 0
    for pos, h in iter_batches(buf):
        if h.records_count <= 0 or h.last_offset_delta != h.records_count - 1:
            raise CorruptBatch("record count does not match the last offset delta")
        if h.compression > COMPRESSION_ZSTD:
            raise CorruptBatch(f"unknown compression codec {h.compression}")
        out.append((pos, h))
        total += h.size
    if total != len(buf):
        raise CorruptBatch("trailing bytes after the last batch")
    if not out:
        raise CorruptBatch("no record batch in the produce request")
    return out


def check_compressed(buf: bytes, batches: list[tuple[int, BatchHeader]], cap: int) -> None:
    """As Kafka's LogValidator: a compressed batch is opened and its records walked, so a
    payload that does not decode is refused, not stored. Streamed: never more than a
    chunk and the record being read are held, and at most ``cap`` bytes are inflated
    (BatchTooLarge past that), so a compression bomb costs little memory and time."""
    for pos, h in batches:
        if h.compression == COMPRESSION_NONE:
            continue
        data = bytes(buf[pos + HEADER_SIZE : pos + h.size])
        try:
            _walk_records(codecs.stream(h.compression, data, cap), h.records_count)
        except codecs.TooLarge as e:
            raise BatchTooLarge(f"record batch {e}") from None
        except codecs.CodecError as e:
            raise CorruptBatch(str(e)) from None


def validate_batches(buf: bytes, cap: int = 8 * 1048588) -> list[BatchHeader]:
    """Both checks, in the caller's thread (tests and racklab's own tools)."""
    batches = parse_batches(buf)
    check_compressed(buf, batches, cap)
    return [h for _, h in batches]


class _ChunkReader:
    """Sequential reads over decompressed chunks, holding one chunk at a time."""

    def __init__(self, chunks):
        self.chunks = iter(chunks)
        self.buf = b""
        self.pos = 0
        self.base = 0  # offset in the whole stream of buf[0]

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def _more(self) -> bool:
        for chunk in self.chunks:
            if chunk:
                self.base += self.pos
                self.buf = self.buf[self.pos :] + chunk
                self.pos = 0
                return True
        return False

    def byte(self) -> int:
        if self.pos >= len(self.buf) and not self._more():
            raise CorruptBatch("record runs past the end of the batch")
        self.pos += 1
        return self.buf[self.pos - 1]

    def varint(self, max_bytes: int) -> int:
        shift = value = 0
        for _ in range(max_bytes):
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return (value >> 1) ^ -(value & 1)
            shift += 7
        raise CorruptBatch("varint is too long")

    def skip(self, n: int) -> None:
        while n > 0:
            if self.pos >= len(self.buf) and not self._more():
                raise CorruptBatch("record runs past the end of the batch")
            step = min(n, len(self.buf) - self.pos)
            self.pos += step
            n -= step

    def at_end(self) -> bool:
        return self.pos >= len(self.buf) and not self._more()


def _walk_records(chunks, count: int) -> None:
    r = _ChunkReader(chunks)
    done = 0
    while done < count:
        # the records lying whole in the chunk at hand, quickly; then one record
        # across the chunk boundary the careful way, pulling the next chunk
        r.pos, k = _walk_whole(r.buf, r.pos, count - done)
        done += k
        if done < count:
            _walk_one(r)
            done += 1
    if not r.at_end():
        raise CorruptBatch("Incorrect declared batch size, records still remaining in file")


def _walk_one(r: _ChunkReader) -> None:
    length = r.varint(5)
    start = r.offset
    if length < 0:
        raise CorruptBatch("record length is negative")
    r.byte()  # attributes
    r.varint(10)  # timestamp delta (varlong)
    r.varint(5)  # offset delta
    for _field in ("key", "value"):
        n = r.varint(5)
        if n < -1:
            raise CorruptBatch(f"record {_field} length {n} is invalid")
        if n > 0:
            if r.offset + n > start + length:
                raise CorruptBatch("record length does not match its fields")
            r.skip(n)
    headers = r.varint(5)
    if headers < 0:
        raise CorruptBatch(f"record header count {headers} is invalid")
    for _h in range(headers):
        for part in ("key", "value"):
            n = r.varint(5)
            if n < (0 if part == "key" else -1):
                raise CorruptBatch(f"record header {part} length {n} is invalid")
            if n > 0:
                if r.offset + n > start + length:
                    raise CorruptBatch("record length does not match its fields")
                r.skip(n)
    if r.offset != start + length:
        raise CorruptBatch("record length does not match its fields")


def _varint_at(buf: bytes, p: int, end: int, max_bytes: int) -> tuple[int, int] | None:
    """(zigzag value, position after it), or None when it runs past ``end``."""
    shift = value = 0
    for i in range(p, min(p + max_bytes, end)):
        b = buf[i]
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return (value >> 1) ^ -(value & 1), i + 1
        shift += 7
    if end - p >= max_bytes:
        raise CorruptBatch("varint is too long")
    return None


def _short() -> CorruptBatch:
    return CorruptBatch("record length does not match its fields")


def _walk_whole(buf: bytes, pos: int, left: int) -> tuple[int, int]:
    """The same checks as _walk_one over records wholly inside ``buf`` from ``pos``
    (one-byte varints decoded inline: a walk of a million tiny records is a CPU cost
    a client can ask for). Returns where it stopped and how many it walked."""
    end = len(buf)
    n = 0
    while n < left and pos < end:
        b = buf[pos]
        if b < 0x80:
            length, p = (b >> 1) ^ -(b & 1), pos + 1
        else:
            got = _varint_at(buf, pos, end, 5)
            if got is None:
                break
            length, p = got
        if length < 0:
            raise CorruptBatch("record length is negative")
        stop = p + length
        if stop > end:
            break
        p += 1  # attributes
        for max_bytes in (10, 5):  # timestamp delta, offset delta
            if p < stop and buf[p] < 0x80:
                p += 1
            else:
                got = _varint_at(buf, p, stop, max_bytes)
                if got is None:
                    raise _short()
                p = got[1]
        for floor in (-1, -1):  # key, value
            if p < stop and buf[p] < 0x80:
                b = buf[p]
                size, p = (b >> 1) ^ -(b & 1), p + 1
            else:
                got = _varint_at(buf, p, stop, 5)
                if got is None:
                    raise _short()
                size, p = got
            if size < floor:
                raise CorruptBatch(f"record key or value length {size} is invalid")
            if size > 0:
                p += size
        if p < stop and buf[p] < 0x80:
            b = buf[p]
            headers, p = (b >> 1) ^ -(b & 1), p + 1
        else:
            got = _varint_at(buf, p, stop, 5)
            if got is None:
                raise _short()
            headers, p = got
        if headers < 0:
            raise CorruptBatch(f"record header count {headers} is invalid")
        for _h in range(headers):
            for floor in (0, -1):
                got = _varint_at(buf, p, stop, 5)
                if got is None:
                    raise _short()
                size, p = got
                if size < floor:
                    raise CorruptBatch(f"record header length {size} is invalid")
                if size > 0:
                    p += size
        if p != stop:
            raise _short()
        pos = stop
        n += 1
    return pos, n


def stamp(buf: bytearray, pos: int, base_offset: int, leader_epoch: int) -> None:
    """Write the leader-assigned base offset and epoch (not covered by the CRC)."""
    struct.pack_into(">q", buf, pos, base_offset)
    struct.pack_into(">i", buf, pos + 12, leader_epoch)


# ---- records inside a batch (used by our own client side and by tests) ----


@dataclass
class Record:
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


def decode_records(payload: bytes, count: int) -> list[tuple]:
    r = Reader(payload)
    out = []
    for _ in range(count):
        length = r.varint()
        end = r.pos + length
        if length < 0 or end > r.end:
            raise CorruptBatch("record length runs past the batch")
        r.int8()  # attributes, unused
        ts_delta = r.varint()
        off_delta = r.varint()
        klen = r.varint()
        key = r.take(klen) if klen >= 0 else None
        vlen = r.varint()
        value = r.take(vlen) if vlen >= 0 else None
        headers = []
        for _ in range(r.varint()):
            hk = r.take(r.varint()).decode()
            hl = r.varint()
            headers.append((hk, r.take(hl) if hl >= 0 else None))
        if r.pos != end:
            raise CorruptBatch("record length does not match its fields")
        out.append((off_delta, ts_delta, key, value, headers))
    return out


def read_batches(buf: bytes) -> list[tuple[BatchHeader, list[Record]]]:
    """Every whole batch in ``buf`` with its records, control batches included."""
    out = []
    for pos, h in iter_batches(buf):
        try:
            payload = codecs.decompress(h.compression, bytes(buf[pos + HEADER_SIZE : pos + h.size]))
            recs = decode_records(payload, h.records_count)
        except (codecs.CodecError, DecodeError) as e:
            raise CorruptBatch(str(e)) from None
        out.append(
            (
                h,
                [
                    Record(h.base_offset + od, h.base_timestamp + td, key, value, headers)
                    for od, td, key, value, headers in recs
                ],
            )
        )
    return out


def keyless_records(buf: bytes) -> list[int]:
    """Indexes (within their batch, as Kafka's RecordError counts) of records without a
    key: what a compacted topic refuses."""
    return [i for _, recs in read_batches(buf) for i, r in enumerate(recs) if r.key is None]


def read_records(buf: bytes) -> list[Record]:
    """Every record of every whole batch in ``buf`` (skips control batches)."""
    return [r for h, recs in read_batches(buf) if not h.is_control for r in recs]


# ---- transaction markers: control batches (KIP-98's EndTransactionMarker) ----

ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20
CONTROL_ABORT, CONTROL_COMMIT = 0, 1


def build_control_batch(
    producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int
) -> bytes:
    """One COMMIT or ABORT marker record: key (version 0, type), value (version 0,
    coordinator epoch), in a transactional control batch without a sequence."""
    key = struct.pack(">hh", 0, CONTROL_COMMIT if commit else CONTROL_ABORT)
    value = struct.pack(">hi", 0, coordinator_epoch)
    return build_batch(
        [(key, value)],
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        attributes=ATTR_TRANSACTIONAL | ATTR_CONTROL,
    )


def marker_is_commit(recs: list[Record]) -> bool:
    """Whether a control batch's records (from read_batches) are a COMMIT marker."""
    key = recs[0].key if recs else None
    return key is not None and len(key) >= 4 and struct.unpack_from(">h", key, 2)[0] == 1


def control_marker(buf: bytes | memoryview, pos: int, h: BatchHeader) -> tuple[int, int]:
    """(marker type: CONTROL_ABORT / CONTROL_COMMIT, coordinator epoch) of the control
    batch at ``pos``."""
    payload = bytes(buf[pos + HEADER_SIZE : pos + h.size])
    recs = decode_records(payload, 1)
    key, value = recs[0][2], recs[0][3]
    if key is None or len(key) < 4:
        raise CorruptBatch("control record without a type")
    coordinator_epoch = struct.unpack_from(">i", value, 2)[0] if value and len(value) >= 6 else -1
    return struct.unpack_from(">h", key, 2)[0], coordinator_epoch


def _encode_record(i: int, ts_delta: int, key, value, headers) -> bytes:
    body = bytearray(b"\x00")
    body += varint_bytes(ts_delta) + varint_bytes(i)
    for part in (key, value):
        if part is None:
            body += varint_bytes(-1)
        else:
            body += varint_bytes(len(part)) + part
    body += varint_bytes(len(headers))
    for hk, hv in headers:
        hkb = hk.encode()
        body += varint_bytes(len(hkb)) + hkb
        body += varint_bytes(-1) if hv is None else varint_bytes(len(hv)) + hv
    return varint_bytes(len(body)) + bytes(body)


def build_batch(
    records: list[tuple[bytes | None, bytes | None]],
    *,
    base_offset: int = 0,
    timestamp_ms: int | None = None,
    compression: int = COMPRESSION_NONE,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    headers: list[tuple[str, bytes | None]] | None = None,
    attributes: int = 0,
) -> bytes:
    """A v2 batch of (key, value) records with a correct CRC-32C; ``attributes``
    adds the transactional and control bits to the compression's."""
    if not records:
        raise ValueError("a batch needs at least one record")
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    payload = b"".join(
        _encode_record(i, 0, k, v, headers or []) for i, (k, v) in enumerate(records)
    )
    payload = codecs.compress(compression, payload)
    n = len(records)
    after_crc = (
        struct.pack(
            ">hiqqqhii",
            compression | attributes,
            n - 1,
            ts,
            ts,
            producer_id,
            producer_epoch,
            base_sequence,
            n,
        )
        + payload
    )
    crc = crc32c.crc32c(after_crc)
    length = 4 + 1 + 4 + len(after_crc)  # epoch + magic + crc + rest
    return struct.pack(">qiibI", base_offset, length, -1, 2, crc) + after_crc
