"""A partition's side of transactions (KIP-98), as Kafka's ProducerStateManager and
TransactionIndex keep it: the transactions open in this partition (producer id ->
the offset of its first record here), which bound the last stable offset (LSO), and
the index of aborted transactions that read_committed fetches are told about.

The aborted index is a file beside the segments, entries as Kafka's .txnindex has
them (version, producer id, first offset, last offset, LSO at the abort: 34 bytes),
so it outlives a restart; the open transactions are rebuilt from the batch headers
when the log is recovered (a control batch closes its producer's transaction)."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from .protocol.records import CONTROL_ABORT, BatchHeader

_ENTRY = struct.Struct(">hqqqq")
INDEX_FILE = "aborted.txnindex"


@dataclass(frozen=True)
class AbortedTxn:
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


class PartitionTxns:
    def __init__(self) -> None:
        self.ongoing: dict[int, int] = {}  # producer id -> first offset of its open txn
        self.aborted: list[AbortedTxn] = []
        # (marker offset, producer id, first offset) of transactions closed by markers
        # not yet below the high watermark: a follower truncating such a marker away
        # (KIP-101) has that transaction open again
        self.closed: list[tuple[int, int, int]] = []
        self.path: Path | None = None

    def open_index(self, directory: Path, log_end: int) -> None:
        """Read the aborted index, forgetting entries past the log's end (a torn tail)."""
        self.path = directory / INDEX_FILE
        self.aborted = []
        if self.path.exists():
            data = self.path.read_bytes()
            usable = len(data) - len(data) % _ENTRY.size
            for i in range(0, usable, _ENTRY.size):
                _, pid, first, last, lso = _ENTRY.unpack_from(data, i)
                if last < log_end:
                    self.aborted.append(AbortedTxn(pid, first, last, lso))
            if len(self.aborted) * _ENTRY.size != len(data):
                self._rewrite()

    def _rewrite(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(b"".join(_pack(a) for a in self.aborted))
        os.replace(tmp, self.path)

    def on_batch(self, h: BatchHeader, first_offset: int, control: int | None, hw: int) -> None:
        """A batch appended (leader or follower) or recovered. ``control`` is the
        marker's type for a control batch when known (None during recovery: the
        index file already holds that abort)."""
        if not h.is_transactional or h.producer_id < 0:
            return
        if not h.is_control:
            self.ongoing.setdefault(h.producer_id, first_offset)
            return
        first = self.ongoing.pop(h.producer_id, None)
        if first is not None:
            self.closed = [c for c in self.closed if c[0] >= hw]
            self.closed.append((first_offset, h.producer_id, first))
        if control == CONTROL_ABORT and first is not None:
            entry = AbortedTxn(h.producer_id, first, first_offset, self.lso(hw))
            self.aborted.append(entry)
            if self.path is not None:
                with open(self.path, "ab") as f:
                    f.write(_pack(entry))

    def lso(self, high_watermark: int) -> int:
        """The last stable offset: nothing at or past the first open transaction's
        first record is committed yet, nor anything past the high watermark."""
        if not self.ongoing:
            return high_watermark
        return min(high_watermark, min(self.ongoing.values()))

    def aborted_between(self, start: int, end: int) -> list[AbortedTxn]:
        """Aborted transactions with records in [start, end): what a read_committed
        consumer reading those offsets must drop."""
        return [a for a in self.aborted if a.last_offset >= start and a.first_offset < end]

    def truncate_to(self, offset: int) -> None:
        self.ongoing = {p: o for p, o in self.ongoing.items() if o < offset}
        for marker, pid, first in self.closed:
            if marker >= offset and first < offset:
                self.ongoing[pid] = first
        self.closed = [c for c in self.closed if c[0] < offset]
        self._keep(lambda a: a.last_offset < offset)

    def drop_before(self, log_start: int) -> None:
        """Retention deleted the segments below ``log_start``: so go their aborts."""
        self._keep(lambda a: a.last_offset >= log_start)

    def _keep(self, wanted) -> None:
        kept = [a for a in self.aborted if wanted(a)]
        if len(kept) != len(self.aborted):
            self.aborted = kept
            self._rewrite()

    def clear(self) -> None:
        self.ongoing = {}
        self.closed = []
        self.aborted = []
        self._rewrite()


def _pack(a: AbortedTxn) -> bytes:
    return _ENTRY.pack(0, a.producer_id, a.first_offset, a.last_offset, a.last_stable_offset)
