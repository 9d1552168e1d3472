"""A partition's on-disk log: segment files of record batches plus a sparse
offset index per segment, in Kafka's own layout:

    <log.dir>/<topic>-<partition>/00000000000000000000.log     batches, back to back
    <log.dir>/<topic>-<partition>/00000000000000000000.index   (relative offset int32, position int32)

Segments roll at log.segment.bytes; whole old segments are deleted by size
(log.retention.bytes) and time (log.retention.ms). On open, the last segment is
scanned batch by batch with the CRC checked, and a torn or corrupt tail (a crash
in the middle of a write) is cut off, as Kafka's recovery does.
"""

from __future__ import annotations

import bisect
import logging
import os
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from .protocol.records import (
    LOG_OVERHEAD,
    CorruptBatch,
    iter_batches,
    parse_header,
    read_batches,
)

log = logging.getLogger("lab.kafka.log")

_IDX = struct.Struct(">ii")


@dataclass
class LogConfig:
    segment_bytes: int = 1 << 30
    retention_bytes: int = -1
    retention_ms: int = 7 * 24 * 3600 * 1000
    index_interval_bytes: int = 4096
    flush_interval_messages: int = 1 << 62
    flush_interval_ms: int = 1 << 62


class _ReadFds:
    """Read-only descriptors of sealed segments, opened on demand and capped (least
    recently used closed first). Kafka keeps only the active segment open for writing;
    without a cap, a topic with a tiny segment.bytes opens two files per append and
    runs the broker out of descriptors (EMFILE for every other client)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.fds: OrderedDict[Segment, int] = OrderedDict()

    def get(self, seg: Segment) -> int:
        fd = self.fds.get(seg)
        if fd is not None:
            self.fds.move_to_end(seg)
            return fd
        while len(self.fds) >= self.capacity:
            _, old = self.fds.popitem(last=False)
            os.close(old)
        fd = self.fds[seg] = os.open(seg.path, os.O_RDONLY)
        return fd

    def drop(self, seg: Segment) -> None:
        fd = self.fds.pop(seg, None)
        if fd is not None:
            os.close(fd)


READ_FDS = _ReadFds(64)


class Segment:
    def __init__(self, directory: Path, base_offset: int, sealed: bool = False):
        self.base_offset = base_offset
        self.path = directory / f"{base_offset:020d}.log"
        self.index_path = directory / f"{base_offset:020d}.index"
        # the write descriptor: open only while this is the active segment
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self.size = os.fstat(self.fd).st_size
        if sealed:
            os.close(self.fd)
            self.fd = -1
        self.index: list[tuple[int, int]] = []  # (offset, position), sorted
        self.next_offset = base_offset
        self.max_timestamp = -1
        self._bytes_since_index = 0
        self.index_fd = -1

    def pread(self, n: int, pos: int) -> bytes:
        fd = self.fd if self.fd >= 0 else READ_FDS.get(self)
        return os.pread(fd, n, pos)

    def seal(self) -> None:
        """No longer the active segment: its files close; reads reopen it on demand."""
        self._close_fds()

    def _writable(self) -> None:
        if self.fd < 0:
            READ_FDS.drop(self)
            self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND)

    def load_index(self) -> bool:
        """Read the index file; False when it is missing or torn (then rebuild)."""
        try:
            data = self.index_path.read_bytes()
        except FileNotFoundError:
            return False
        if len(data) % 8:
            return False
        self.index = [
            (self.base_offset + rel, pos) for rel, pos in _IDX.iter_unpack(data) if pos < self.size
        ]
        return True

    def open_index_for_append(self, rewrite: bool) -> None:
        if rewrite:
            with open(self.index_path, "wb") as f:
                f.write(b"".join(_IDX.pack(o - self.base_offset, p) for o, p in self.index))
        if self.fd < 0:
            return  # sealed: its index is only read (from memory), never appended to
        self.index_fd = os.open(self.index_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)

    def scan(self, check_crc: bool, on_batch=None, interval: int = 4096) -> int:
        """Walk the batches; return the byte length of the valid prefix."""
        valid = 0
        chunk = 1 << 20
        pos = 0
        buf = b""
        self.index = []
        since = self._bytes_since_index = 0
        while True:
            more = self.pread(chunk, pos + len(buf))
            if not more and not buf:
                break
            buf += more
            consumed = 0
            try:
                for p, h in iter_batches(buf, check_crc):
                    if since == 0 or since >= interval:
                        self.index.append((h.base_offset, valid))
                        since = 0
                    since += h.size
                    valid += h.size
                    consumed = p + h.size
                    self.next_offset = h.last_offset + 1
                    self.max_timestamp = max(self.max_timestamp, h.max_timestamp)
                    if on_batch:
                        on_batch(h)
            except CorruptBatch as e:
                log.warning("%s: %s; truncating at byte %d", self.path, e, valid)
                return valid
            pos += consumed
            buf = buf[consumed:]
            if not more:
                break
        return valid

    def append(
        self, data: bytes, first_offset: int, next_offset: int, max_ts: int, interval: int
    ) -> None:
        if self._bytes_since_index >= interval or not self.index:
            self.index.append((first_offset, self.size))
            os.write(self.index_fd, _IDX.pack(first_offset - self.base_offset, self.size))
            self._bytes_since_index = 0
        os.write(self.fd, data)
        self.size += len(data)
        self._bytes_since_index += len(data)
        self.next_offset = next_offset
        self.max_timestamp = max(self.max_timestamp, max_ts)

    def position_for(self, offset: int) -> int:
        """A byte position at or before the batch holding ``offset``."""
        i = bisect.bisect_right(self.index, (offset, 1 << 62)) - 1
        return self.index[i][1] if i >= 0 else 0

    def find(self, offset: int) -> int | None:
        """Byte position of the first batch whose last offset >= offset."""
        pos = self.position_for(offset)
        while pos < self.size:
            head = self.pread(61, pos)
            if len(head) < 61:
                return None
            h = parse_header(head)
            if h.last_offset >= offset:
                return pos
            pos += h.size
        return None

    def truncate(self, size: int) -> None:
        # a truncated segment is the last one: it becomes the active segment again
        self._writable()
        os.ftruncate(self.fd, size)
        self.size = size
        self.index = [(o, p) for o, p in self.index if p < size]
        if self.index_fd >= 0:
            os.close(self.index_fd)
        self.open_index_for_append(rewrite=True)

    def flush(self) -> None:
        if self.fd >= 0:
            os.fsync(self.fd)
        if self.index_fd >= 0:
            os.fsync(self.index_fd)

    def close(self) -> None:
        READ_FDS.drop(self)
        self._close_fds()

    def _close_fds(self) -> None:
        # Idempotent: closing a number twice could close a file opened since under it.
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.index_fd >= 0:
            os.close(self.index_fd)
            self.index_fd = -1

    def delete(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
        self.index_path.unlink(missing_ok=True)


METADATA_FILE = "partition.metadata"
START_FILE = "log-start-offset"


def claim_dir(directory: Path, topic_id: str | None) -> bool:
    """Kafka's partition.metadata names the topic id a log directory belongs to. A
    directory left by an earlier topic of the same name (deleted while this broker was
    down, or before it saw the deletion) is emptied, not served as the new topic's.
    -> True when old data was thrown away."""
    directory.mkdir(parents=True, exist_ok=True)
    if topic_id is None:
        return False
    meta = directory / METADATA_FILE
    try:
        fields = dict(line.split(": ", 1) for line in meta.read_text().splitlines() if ": " in line)
        owner = fields.get("topic_id")
    except FileNotFoundError:
        owner = None
    wiped = False
    if owner is not None and owner != topic_id:
        for f in directory.iterdir():
            f.unlink()
        wiped = True
    if owner != topic_id:
        tmp = directory / (METADATA_FILE + ".tmp")
        tmp.write_text(f"version: 0\ntopic_id: {topic_id}\n")
        tmp.replace(meta)
    return wiped


class PartitionLog:
    def __init__(
        self, directory: Path, config: LogConfig, on_batch=None, topic_id: str | None = None
    ):
        self.dir = directory
        self.config = config
        self.wiped_stale = claim_dir(directory, topic_id)
        self.segments: list[Segment] = []
        bases = sorted(int(p.stem) for p in directory.glob("*.log"))
        for b in bases:
            self.segments.append(Segment(directory, b, sealed=b != bases[-1]))
        if not self.segments:
            self.segments.append(Segment(directory, 0))
        self._recover(on_batch)
        self.unflushed = 0
        self.last_flush = time.monotonic()
        # DeleteRecords moves the start past the first segment's base (Kafka's
        # logStartOffset, kept in log-start-offset-checkpoint; here a file per partition)
        self._start = self._read_start()

    def _read_start(self) -> int:
        try:
            return int((self.dir / START_FILE).read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _write_start(self) -> None:
        tmp = self.dir / (START_FILE + ".tmp")
        tmp.write_text(f"{self._start}\n")
        os.replace(tmp, self.dir / START_FILE)

    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: the log starts at ``offset`` (never earlier than it did, never
        past its end); whole segments before it are deleted. Returns the start."""
        offset = min(offset, self.log_end_offset)
        if offset > self.log_start_offset:
            self._start = offset
            self._write_start()
            while len(self.segments) > 1 and self.segments[1].base_offset <= offset:
                self.segments.pop(0).delete()
        return self.log_start_offset

    # recovery: trust old segments' headers, check the last one's CRCs
    def _recover(self, on_batch) -> None:
        for i, seg in enumerate(self.segments):
            last = i == len(self.segments) - 1
            valid = seg.scan(
                check_crc=last, on_batch=on_batch, interval=self.config.index_interval_bytes
            )
            if valid < seg.size:
                seg.truncate(valid)
                # a torn segment cannot be followed by good data: drop later ones
                for later in self.segments[i + 1 :]:
                    later.delete()
                del self.segments[i + 1 :]
                break
            seg.open_index_for_append(rewrite=True)
        for i in range(len(self.segments) - 1):
            nxt = self.segments[i + 1]
            if self.segments[i].next_offset == self.segments[i].base_offset:
                self.segments[i].next_offset = nxt.base_offset
        for seg in self.segments[:-1]:
            seg.seal()
        active = self.segments[-1]
        if active.next_offset < active.base_offset:
            active.next_offset = active.base_offset

    @property
    def log_end_offset(self) -> int:
        return self.segments[-1].next_offset

    @property
    def log_start_offset(self) -> int:
        return max(self.segments[0].base_offset, min(self._start, self.log_end_offset))

    def size_bytes(self) -> int:
        return sum(s.size for s in self.segments)

    def append(
        self, data: bytes, first_offset: int, next_offset: int, max_ts: int, count: int
    ) -> None:
        """Append already-stamped batches covering [first_offset, next_offset)."""
        active = self.segments[-1]
        if active.size and active.size + len(data) > self.config.segment_bytes:
            active.flush()
            active.seal()
            active = Segment(self.dir, first_offset)
            active.open_index_for_append(rewrite=True)
            self.segments.append(active)
        active.append(data, first_offset, next_offset, max_ts, self.config.index_interval_bytes)
        self.unflushed += count
        if (
            self.unflushed >= self.config.flush_interval_messages
            or (time.monotonic() - self.last_flush) * 1000 >= self.config.flush_interval_ms
        ):
            self.flush()

    def flush(self) -> None:
        if self.unflushed:
            self.segments[-1].flush()
        self.unflushed = 0
        self.last_flush = time.monotonic()

    def read(self, offset: int, max_bytes: int, upto: int | None = None) -> bytes:
        """Whole batches from the one holding ``offset``, at most max_bytes but
        always at least one batch (KIP-74), none at or past ``upto``."""
        limit = self.log_end_offset if upto is None else upto
        if offset >= limit:
            return b""
        i = bisect.bisect_right([s.base_offset for s in self.segments], offset) - 1
        out = bytearray()
        for seg in self.segments[max(i, 0) :]:
            pos = seg.find(offset) if not out else 0
            if pos is None:
                continue
            while pos < seg.size:
                head = seg.pread(61, pos)
                if len(head) < 61:
                    break
                h = parse_header(head)
                if h.base_offset >= limit:
                    return bytes(out)
                if out and len(out) + h.size > max_bytes:
                    return bytes(out)
                if not out and h.size > max_bytes:
                    return seg.pread(h.size, pos)
                out += seg.pread(h.size, pos)
                pos += h.size
            if len(out) >= max_bytes:
                break
        return bytes(out)

    def _batches(self):
        """(segment, position, header) of every batch, oldest first, headers only."""
        for seg in self.segments:
            pos = 0
            while pos < seg.size:
                h = parse_header(seg.pread(61, pos))
                yield seg, pos, h
                pos += h.size

    def _record(self, seg: Segment, pos: int, size: int, match) -> tuple[int, int] | None:
        """(offset, timestamp) of the batch's first record at or past the log start
        that ``match(timestamp)`` accepts: Kafka answers a record, not a batch."""
        for _, recs in read_batches(seg.pread(size, pos)):
            for r in recs:
                if r.offset >= self.log_start_offset and match(r.timestamp):
                    return r.offset, r.timestamp
        return None

    def offset_for_timestamp(self, ts: int) -> tuple[int, int] | None:
        """ListOffsets by time: the first record with a timestamp >= ts (Kafka's
        LogSegment.findOffsetByTimestamp): (offset, timestamp)."""
        for seg, pos, h in self._batches():
            if h.max_timestamp >= ts and h.last_offset >= self.log_start_offset:
                found = self._record(seg, pos, h.size, lambda t: t >= ts)
                if found:
                    return found
        return None

    def max_timestamp_offset(self) -> tuple[int, int] | None:
        """ListOffsets MAX_TIMESTAMP (KIP-734): the first record carrying the largest
        timestamp in the log: (offset, timestamp)."""
        best = None
        for seg, pos, h in self._batches():
            if h.last_offset >= self.log_start_offset and (
                best is None or h.max_timestamp > best[2].max_timestamp
            ):
                best = (seg, pos, h)
        if best is None:
            return None
        seg, pos, h = best
        return self._record(seg, pos, h.size, lambda t: t == h.max_timestamp)

    def truncate_to(self, offset: int) -> None:
        """Drop every batch at or after ``offset`` (a follower cutting back to the
        high watermark before fetching from a new leader). Offsets given here
        are batch edges: replicas copy whole batches."""
        if offset >= self.log_end_offset:
            return
        while len(self.segments) > 1 and self.segments[-1].base_offset >= offset:
            self.segments.pop().delete()
        seg = self.segments[-1]
        pos = seg.position_for(offset)
        next_offset = seg.base_offset
        if pos:
            # the batch just before the indexed position ends where the index entry starts
            next_offset = max(o for o, p in seg.index if p == pos)
        while pos < seg.size:
            h = parse_header(seg.pread(61, pos))
            if h.base_offset >= offset:
                break
            pos += h.size
            next_offset = h.last_offset + 1
        seg.truncate(pos)
        seg.next_offset = max(next_offset, seg.base_offset)

    def truncate_fully_and_start_at(self, offset: int) -> None:
        for s in self.segments:
            s.delete()
        seg = Segment(self.dir, offset)
        seg.open_index_for_append(rewrite=True)
        self.segments = [seg]
        if self._start > offset:
            self._start = offset
            self._write_start()

    def apply_retention(self, now_ms: int | None = None) -> int:
        """Delete whole non-active segments past retention; return how many."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        deleted = 0
        rb, rms = self.config.retention_bytes, self.config.retention_ms
        while len(self.segments) > 1:
            oldest = self.segments[0]
            too_big = rb >= 0 and self.size_bytes() - oldest.size >= rb
            too_old = rms >= 0 and oldest.max_timestamp >= 0 and now_ms - oldest.max_timestamp > rms
            if not (too_big or too_old):
                break
            self.segments.pop(0).delete()
            deleted += 1
        return deleted

    def close(self) -> None:
        self.flush()
        for s in self.segments:
            s.close()

    def delete(self) -> None:
        for s in self.segments:
            s.delete()
        for p in self.dir.glob("*"):
            p.unlink()
        self.dir.rmdir()


__all__ = ["LOG_OVERHEAD", "METADATA_FILE", "LogConfig", "PartitionLog", "Segment", "claim_dir"]
