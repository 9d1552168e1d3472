"""One partition replica on this broker: its log, high watermark, the leader's
view of its followers (for the ISR and the high watermark), and the producer
state that makes idempotent produce exactly-once per partition."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .log import LogConfig, PartitionLog
from .protocol import records as rec
from .protocol.errors import Error
from .protocol.records import BatchHeader
from .txnindex import PartitionTxns

# Kafka keeps the last five batches per producer to answer retries of any of
# the (at most five) in-flight requests with their original offsets.
PRODUCER_BATCH_CACHE = 5


@dataclass
class ProducerState:
    epoch: int
    # the coordinator epoch of the last marker: an older coordinator's markers are refused
    coordinator_epoch: int = -1
    batches: list[tuple[int, int, int, int]] = field(default_factory=list)
    # (first seq, last seq, first offset, last offset)

    @property
    def last_seq(self) -> int:
        return self.batches[-1][1] if self.batches else -1


@dataclass
class FollowerState:
    leo: int = -1
    last_caught_up: float = 0.0
    last_fetch_leader_leo: int = -1
    last_fetch_time: float = 0.0


class SequenceError(Exception):
    def __init__(self, error: Error, message: str):
        super().__init__(message)
        self.error = error


class Partition:
    def __init__(
        self, topic: str, index: int, log_dir: Path, config: LogConfig, topic_id: str | None = None
    ):
        self.topic = topic
        self.index = index
        self.topic_id = topic_id
        self.producers: dict[int, ProducerState] = {}
        # (leader epoch, first offset written in it), ascending: lets a follower
        # find where its log diverges from a new leader's (KIP-101)
        self.epochs: list[tuple[int, int]] = []
        # open transactions and the aborted index (txnindex.py): the LSO, read_committed
        self.txns = PartitionTxns()
        self.log = PartitionLog(
            log_dir / f"{topic}-{index}", config, self._rebuild_producer, topic_id
        )
        self.txns.open_index(self.log.dir, self.leo)
        self.high_watermark = 0
        # from ZooKeeper
        self.replicas: list[int] = []
        self.leader = -1
        self.leader_epoch = -1
        self.isr: list[int] = []
        self.zk_version = -1
        self.followers: dict[int, FollowerState] = {}
        self.is_leader = False
        self.isr_update_pending = False
        self.needs_truncation = False

    # ---- producer state ----
    def _rebuild_producer(self, h: BatchHeader) -> None:
        self.note_epoch(h.partition_leader_epoch, h.base_offset)
        self.txns.on_batch(h, h.base_offset, None, -1)  # -1: keep what truncation needs
        self._note_marker_epoch(h)
        if h.producer_id < 0 or h.base_sequence < 0:
            return
        st = self.producers.get(h.producer_id)
        if st is None or h.producer_epoch > st.epoch:
            st = self.producers[h.producer_id] = ProducerState(h.producer_epoch)
        st.batches.append((h.base_sequence, h.last_sequence, h.base_offset, h.last_offset))
        del st.batches[:-PRODUCER_BATCH_CACHE]

    def check_sequence(self, h: BatchHeader) -> int | None:
        """For an idempotent batch: None if it may be appended, the original
        first offset if it is a retry of a batch already in the log; raises
        SequenceError otherwise."""
        if h.producer_id < 0 or h.base_sequence < 0:
            return None
        st = self.producers.get(h.producer_id)
        if st is None:
            if h.base_sequence != 0:
                raise SequenceError(
                    Error.UNKNOWN_PRODUCER_ID,
                    f"producer {h.producer_id} unknown here and sequence {h.base_sequence} is not 0",
                )
            return None
        if h.producer_epoch < st.epoch:
            raise SequenceError(Error.INVALID_PRODUCER_EPOCH, "producer epoch is fenced")
        if h.producer_epoch > st.epoch:
            if h.base_sequence != 0:
                raise SequenceError(
                    Error.OUT_OF_ORDER_SEQUENCE_NUMBER,
                    "a new producer epoch must start at sequence 0",
                )
            return None
        for first, last, first_off, _ in st.batches:
            if first == h.base_sequence and last == h.last_sequence:
                return first_off
        expected = (st.last_seq + 1) & 0x7FFFFFFF
        if h.base_sequence != expected:
            raise SequenceError(
                Error.OUT_OF_ORDER_SEQUENCE_NUMBER,
                f"sequence {h.base_sequence} out of order, expected {expected}",
            )
        return None

    def record_batch(
        self, h: BatchHeader, first_offset: int, buf: bytes | None = None, pos: int = 0
    ) -> None:
        """A batch appended at ``first_offset`` (as leader or follower); ``buf`` and
        ``pos`` locate it so a transaction marker's type can be read."""
        control, coordinator_epoch = None, -1
        if h.is_control and buf is not None:
            control, coordinator_epoch = rec.control_marker(buf, pos, h)
        self.txns.on_batch(h, first_offset, control, self.high_watermark)
        self._note_marker_epoch(h, coordinator_epoch)
        if h.producer_id < 0 or h.base_sequence < 0:
            return
        st = self.producers.get(h.producer_id)
        if st is None or h.producer_epoch > st.epoch:
            st = self.producers[h.producer_id] = ProducerState(h.producer_epoch)
        st.batches.append(
            (h.base_sequence, h.last_sequence, first_offset, first_offset + h.last_offset_delta)
        )
        del st.batches[:-PRODUCER_BATCH_CACHE]

    def _note_marker_epoch(self, h: BatchHeader, coordinator_epoch: int = -1) -> None:
        # a marker written with a bumped epoch (a fenced or timed-out transaction)
        # fences the producer's older epoch here too; its next epoch starts at sequence 0
        if h.is_control and h.producer_id >= 0:
            st = self.producers.get(h.producer_id)
            if st is None or h.producer_epoch > st.epoch:
                st = self.producers[h.producer_id] = ProducerState(h.producer_epoch)
            st.coordinator_epoch = max(st.coordinator_epoch, coordinator_epoch)

    def marker_epoch_error(
        self, producer_id: int, epoch: int, coordinator_epoch: int = -1
    ) -> Error:
        """A marker from an epoch older than the producer's here, or from a coordinator
        older than the last one that wrote a marker for it, is a stale coordinator's."""
        st = self.producers.get(producer_id)
        if st is None:
            return Error.NONE
        if epoch < st.epoch:
            return Error.INVALID_PRODUCER_EPOCH
        if 0 <= coordinator_epoch < st.coordinator_epoch:
            return Error.TRANSACTION_COORDINATOR_FENCED
        return Error.NONE

    def batches_from_start(self):
        """Every batch of the log with its records (an internal topic read back)."""
        off = self.log.log_start_offset
        while off < self.leo:
            data = self.log.read(off, 1 << 20)
            if not data:
                return
            for h, recs in rec.read_batches(data):
                off = h.last_offset + 1
                yield h, recs

    @property
    def last_stable_offset(self) -> int:
        return self.txns.lso(self.high_watermark)

    # ---- leader epochs ----
    def note_epoch(self, epoch: int, start_offset: int) -> None:
        if epoch >= 0 and (not self.epochs or epoch > self.epochs[-1][0]):
            self.epochs.append((epoch, start_offset))

    def end_offset_for(self, epoch: int) -> tuple[int, int]:
        """(largest epoch <= ``epoch`` in this log, the offset where it ended);
        (-1, -1) when the log knows no such epoch."""
        found = -1
        for i, (e, _) in enumerate(self.epochs):
            if e <= epoch:
                found = i
        if found < 0:
            return -1, -1
        if found == len(self.epochs) - 1:
            return self.epochs[found][0], self.leo
        return self.epochs[found][0], self.epochs[found + 1][1]

    def truncate_to(self, offset: int) -> None:
        self.log.truncate_to(offset)
        self.txns.truncate_to(self.leo)
        self.epochs = [(e, o) for e, o in self.epochs if o < self.leo]
        self.high_watermark = min(self.high_watermark, self.leo)

    def truncate_fully_and_start_at(self, offset: int) -> None:
        self.log.truncate_fully_and_start_at(offset)
        self.txns.clear()
        self.epochs = []
        self.high_watermark = offset

    # ---- replication bookkeeping (leader side) ----
    @property
    def leo(self) -> int:
        return self.log.log_end_offset

    def become_leader(self) -> None:
        now = time.monotonic()
        self.is_leader = True
        self.needs_truncation = False
        self.note_epoch(self.leader_epoch, self.leo)
        # followers get a grace period of one lag interval to show up
        self.followers = {
            r: FollowerState(last_caught_up=now) for r in self.replicas if r != self.leader
        }

    def become_follower(self) -> None:
        self.is_leader = False
        self.followers = {}
        self.needs_truncation = True

    def update_follower(self, replica: int, fetch_offset: int) -> None:
        now = time.monotonic()
        f = self.followers.get(replica)
        if f is None:
            f = self.followers[replica] = FollowerState()
        leo = self.leo
        if fetch_offset >= leo:
            f.last_caught_up = now
        elif fetch_offset >= f.last_fetch_leader_leo and f.last_fetch_leader_leo >= 0:
            f.last_caught_up = max(f.last_caught_up, f.last_fetch_time)
        f.last_fetch_leader_leo = leo
        f.last_fetch_time = now
        f.leo = fetch_offset

    def compute_high_watermark(self) -> int:
        leos = [self.leo] + [
            self.followers[r].leo for r in self.isr if r != self.leader and r in self.followers
        ]
        missing = [r for r in self.isr if r != self.leader and r not in self.followers]
        if missing:
            leos.append(-1)
        return max(self.high_watermark, min(leos))

    def close(self) -> None:
        self.log.close()
