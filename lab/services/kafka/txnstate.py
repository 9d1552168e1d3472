"""The transaction coordinator's state, as Kafka's TransactionStateManager keeps it:
one record per transactional id in the replicated `__transaction_state` topic (its
partition chosen by the id's Java hash, like a group's in `__consumer_offsets`), the
latest record of each id read back when this broker becomes that partition's leader.
The coordinator epoch of a transaction is the leader epoch of its partition."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from .logthrottle import Throttle
from .offsets import partition_for_group
from .protocol import records as rec
from .protocol.errors import Error
from .topicnames import TXN_TOPIC
from .topics import ensure_internal_topic

if TYPE_CHECKING:
    from .broker import Broker
    from .partition import Partition

log = logging.getLogger("lab.kafka.txnstate")

# Kafka's TransactionState names
EMPTY, ONGOING = "Empty", "Ongoing"
PREPARE_COMMIT, PREPARE_ABORT = "PrepareCommit", "PrepareAbort"
COMPLETE_COMMIT, COMPLETE_ABORT = "CompleteCommit", "CompleteAbort"
STATES = (EMPTY, ONGOING, PREPARE_COMMIT, PREPARE_ABORT, COMPLETE_COMMIT, COMPLETE_ABORT)


@dataclass
class TxnMetadata:
    txn_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: str = EMPTY
    partitions: list[list] = field(default_factory=list)  # [topic, partition] pairs
    started_ms: int = -1

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> TxnMetadata:
        return cls(**json.loads(raw))


class TxnStateManager:
    def __init__(self, broker: Broker):
        self.b = broker
        self.txns: dict[str, TxnMetadata] = {}
        self.loading: set[int] = set()
        self._said = Throttle()

    def partition_for(self, txn_id: str) -> int:
        n = len(self.b.assignments.get(TXN_TOPIC, {})) or self.b.config.txn_topic_num_partitions
        return partition_for_group(txn_id, n)

    def leader_part(self, txn_id: str) -> Partition | None:
        part = self.b.partitions.get((TXN_TOPIC, self.partition_for(txn_id)))
        return part if part is not None and part.is_leader else None

    def coordinator_error(self, txn_id: str) -> Error:
        part = self.leader_part(txn_id)
        if part is None:
            return Error.NOT_COORDINATOR
        if part.index in self.loading:
            return Error.COORDINATOR_LOAD_IN_PROGRESS
        return Error.NONE

    def coordinator_epoch(self, txn_id: str) -> int:
        part = self.leader_part(txn_id)
        return part.leader_epoch if part else -1

    async def ensure_topic(self) -> Error:
        c = self.b.config
        return await ensure_internal_topic(
            self.b,
            TXN_TOPIC,
            c.txn_topic_num_partitions,
            c.txn_topic_replication_factor,
            "the transactions state topic (configured via "
            "'transaction.state.log.replication.factor')",
            {"cleanup.policy": "compact", "min.insync.replicas": str(c.txn_topic_min_isr)},
            self._said,
        )

    async def write(self, meta: TxnMetadata) -> Error:
        """Append the id's new state and wait until the ISR has it (acks=all with the
        topic's min.insync.replicas); only then is it the id's state here."""
        part = self.leader_part(meta.txn_id)
        if part is None:
            return Error.NOT_COORDINATOR
        if len(part.isr) < self.b.min_isr(TXN_TOPIC):
            if self._said.due(("txn min.isr", part.index)):
                log.error(
                    "Error processing append operation on partition %s-%d: "
                    "org.apache.kafka.common.errors.NotEnoughReplicasException: The size of "
                    "the current ISR %s is insufficient to satisfy the min.isr requirement "
                    "of %d (transaction.state.log.min.isr)",
                    TXN_TOPIC,
                    part.index,
                    part.isr,
                    self.b.min_isr(TXN_TOPIC),
                )
            return Error.COORDINATOR_NOT_AVAILABLE
        batch = rec.build_batch([(json.dumps(["t", meta.txn_id]).encode(), meta.to_json())])
        first = self.b.append_as_leader(part, batch, [rec.parse_header(batch)])
        err = await self.b.wait_for_hw(
            part, first + 1, self.b.config.offsets_commit_timeout_ms / 1000
        )
        if err != Error.NONE:
            return (
                Error.NOT_COORDINATOR
                if err == Error.NOT_LEADER_OR_FOLLOWER
                else Error.COORDINATOR_NOT_AVAILABLE
            )
        self.txns[meta.txn_id] = meta
        return Error.NONE

    def load(self, part: Partition) -> list[TxnMetadata]:
        """Read the partition back; return the transactions caught between prepare
        and complete, whose markers the new coordinator must now write."""
        self.loading.add(part.index)
        try:
            found: dict[str, TxnMetadata] = {}
            for h, recs in part.batches_from_start():
                if h.is_control:
                    continue
                for r in recs:
                    if r.key is None or r.value is None:
                        continue
                    kind, txn_id = json.loads(r.key)
                    if kind == "t":
                        found[txn_id] = TxnMetadata.from_json(r.value)
            self.txns.update(found)
            log.info("%s-%d: loaded %d transactional ids", TXN_TOPIC, part.index, len(found))
            return [m for m in found.values() if m.state in (PREPARE_COMMIT, PREPARE_ABORT)]
        finally:
            self.loading.discard(part.index)

    def unload(self, p: int) -> None:
        for txn_id in [t for t in self.txns if self.partition_for(t) == p]:
            del self.txns[txn_id]


def now_ms() -> int:
    return int(time.time() * 1000)
