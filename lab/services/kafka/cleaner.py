"""Log compaction for topics with ``cleanup.policy=compact`` (Kafka's LogCleaner, in a
simpler form): in the sealed segments below the last stable offset, only the latest
record of each key stays, and a tombstone (a null value) goes too once it is older than
``delete.retention.ms``. Offsets never change: a compacted log has gaps, which consumers
step over as they do on Kafka's.

What Kafka's cleaner does that this one does not: no cleaner checkpoint (each pass reads
every sealed segment again, fine for a lab's logs) and no dirty-ratio trigger
(``min.cleanable.dirty.ratio`` is not read: a pass rewrites what it can); transactional
and control batches are kept whole; the last batch of each producer id is kept whole, so
a restarted broker rebuilds the same producer state from the log.

``plan`` reads and re-encodes (in a worker thread: it reads the sealed segments' files
through descriptors of its own, never the loop's shared ones, and sealed segments are
never written to); ``swap`` puts a result in place, on the broker's loop, only if the
segment is still there as it was read.
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

import crc32c

from .protocol import records as rec

if TYPE_CHECKING:
    from .log import PartitionLog, Segment


def _encode(h: rec.BatchHeader, kept: list[rec.Record]) -> bytes:
    """The batch again with only ``kept``: same base offset, last offset delta, producer
    fields and compression; each record keeps its offset and timestamp."""
    payload = b"".join(
        rec._encode_record(
            r.offset - h.base_offset, r.timestamp - h.base_timestamp, r.key, r.value, r.headers
        )
        for r in kept
    )
    payload = rec.codecs.compress(h.compression, payload)
    after_crc = (
        struct.pack(
            ">hiqqqhii",
            h.attributes,
            h.last_offset_delta,
            h.base_timestamp,
            max(r.timestamp for r in kept),
            h.producer_id,
            h.producer_epoch,
            h.base_sequence,
            len(kept),
        )
        + payload
    )
    length = 4 + 1 + 4 + len(after_crc)
    return (
        struct.pack(
            ">qiibI", h.base_offset, length, h.partition_leader_epoch, 2, crc32c.crc32c(after_crc)
        )
        + after_crc
    )


def cleanable(log: PartitionLog, end: int, now_ms: int, min_lag_ms: int) -> list[Segment]:
    """The sealed segments wholly below ``end`` whose newest record is older than
    ``min.compaction.lag.ms``, from the first on."""
    out = []
    for seg, nxt in zip(log.segments, log.segments[1:], strict=False):
        if nxt.base_offset > end or (
            seg.max_timestamp >= 0 and now_ms - seg.max_timestamp < min_lag_ms
        ):
            break
        out.append(seg)
    return out


def plan(
    segments: list[tuple[Segment, int]], now_ms: int, delete_retention_ms: int
) -> list[tuple[Segment, int, bytes]]:
    """(segment, size read, new contents) of each segment (with its size) that
    compaction changes."""
    parsed = []
    latest: dict[bytes, int] = {}
    last_of_producer: dict[int, int] = {}
    for seg, size in segments:
        with open(seg.path, "rb") as f:  # gone meanwhile (retention): the pass fails, harmless
            buf = f.read(size)
        batches = []
        for pos, h in rec.iter_batches(buf, check_crc=False):
            raw = buf[pos : pos + h.size]
            whole = h.is_transactional or h.is_control
            recs = [] if whole else rec.read_batches(raw)[0][1]
            batches.append((h, raw, whole, recs))
            for r in recs:
                if r.key is not None:
                    latest[r.key] = r.offset
            if h.producer_id >= 0:
                last_of_producer[h.producer_id] = h.base_offset
        parsed.append((seg, size, batches))
    horizon = now_ms - delete_retention_ms
    out = []
    for seg, size, batches in parsed:
        new = bytearray()
        changed = False
        for h, raw, whole, recs in batches:
            if whole:
                new += raw
                continue
            kept = [
                r
                for r in recs
                if r.key is None
                or (latest[r.key] == r.offset and (r.value is not None or r.timestamp >= horizon))
            ]
            if len(kept) == len(recs) or (
                not kept and last_of_producer.get(h.producer_id) == h.base_offset
            ):
                new += raw
            else:
                changed = True
                if kept:
                    new += _encode(h, kept)
        if changed:
            out.append((seg, size, bytes(new)))
    return out


def swap(seg: Segment, data: bytes, index_interval: int) -> None:
    """The segment's file replaced by its compacted contents, its index rebuilt; its
    offsets (and so where the next segment starts) stay as they were."""
    tmp = seg.path.with_suffix(".cleaned")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    next_offset = seg.next_offset
    seg.close()
    os.replace(tmp, seg.path)
    seg.size = len(data)
    seg.scan(check_crc=False, interval=index_interval)
    seg.next_offset = max(seg.next_offset, next_offset)
    seg.open_index_for_append(rewrite=True)
