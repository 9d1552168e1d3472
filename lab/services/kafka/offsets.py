"""Committed offsets, as Kafka's GroupMetadataManager keeps them: records in the
replicated __consumer_offsets topic, one partition per group (by the group id's Java
hash), read back into memory when this broker becomes that partition's leader."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

from .group import OffsetAndMetadata
from .logthrottle import Throttle
from .protocol import records as rec
from .protocol.errors import Error
from .topicnames import OFFSETS_TOPIC
from .topics import ensure_internal_topic

if TYPE_CHECKING:
    from .broker import Broker
    from .partition import Partition

log = logging.getLogger("lab.kafka.offsets")


def java_string_hash(s: str) -> int:
    h = 0
    for unit in s.encode("utf-16-be").hex(" ", 2).split():
        h = (31 * h + int(unit, 16)) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_group(group_id: str, n: int) -> int:
    h = java_string_hash(group_id)
    return (0 if h == -(1 << 31) else abs(h)) % n


class OffsetStore:
    def __init__(self, broker: Broker):
        self.b = broker
        # __consumer_offsets partitions being read back: their groups answer
        # COORDINATOR_LOAD_IN_PROGRESS meanwhile
        self.loading: set[int] = set()
        # TxnOffsetCommit: producer id -> {(group, topic, partition): offset}, visible
        # only once the transaction's COMMIT marker is written
        self.pending: dict[int, dict[tuple[str, str, int], OffsetAndMetadata | None]] = {}
        self._said = Throttle()

    def coordinator_partition(self, group_id: str) -> int:
        n = (
            len(self.b.assignments.get(OFFSETS_TOPIC, {}))
            or self.b.config.offsets_topic_num_partitions
        )
        return partition_for_group(group_id, n)

    def coordinator_error(self, group_id: str) -> Error:
        p = self.coordinator_partition(group_id)
        part = self.b.partitions.get((OFFSETS_TOPIC, p))
        if part is None or not part.is_leader:
            return Error.NOT_COORDINATOR
        if p in self.loading:
            return Error.COORDINATOR_LOAD_IN_PROGRESS
        return Error.NONE

    def load(self, part: Partition) -> None:
        self.loading.add(part.index)
        try:
            for h, recs in part.batches_from_start():
                if h.is_control:
                    # a transaction's marker: its offsets commit or vanish with it
                    commit = rec.marker_is_commit(recs)
                    self._resolve(self.pending.pop(h.producer_id, {}), commit)
                    continue
                for r in recs:
                    if r.key is None:
                        continue
                    kind, group, topic, p = json.loads(r.key)
                    if kind != "o":
                        continue
                    om = None
                    if r.value is not None:
                        v = json.loads(r.value)
                        om = OffsetAndMetadata(v["offset"], v["metadata"], v["ts"])
                    if h.is_transactional:
                        self.pending.setdefault(h.producer_id, {})[(group, topic, p)] = om
                        continue
                    g = self.b.groups.group(group)
                    if om is None:
                        g.offsets.pop((topic, p), None)
                    else:
                        g.offsets[(topic, p)] = om
        finally:
            self.loading.discard(part.index)

    def _resolve(self, pending: dict, commit: bool) -> None:
        if not commit:
            return
        for (group, topic, p), om in pending.items():
            if om is not None:
                self.b.groups.store_offset(group, topic, p, om)

    def is_pending(self, group_id: str, topic: str, p: int) -> bool:
        return any((group_id, topic, p) in offs for offs in self.pending.values())

    def complete_txn(self, producer_id: int, commit: bool) -> None:
        """A marker written here: the producer's transactional commits become the
        group's offsets (COMMIT) or are dropped (ABORT), as GroupMetadataManager's
        handleTxnCompletion."""
        self._resolve(self.pending.pop(producer_id, {}), commit)

    def unload(self, p: int) -> None:
        n = len(self.b.assignments.get(OFFSETS_TOPIC, {}))
        for gid in [g for g in self.b.groups.groups if n and partition_for_group(g, n) == p]:
            del self.b.groups.groups[gid]

    def forget_topic(self, topic: str) -> None:
        """Kafka's coordinator drops a deleted topic's committed offsets and writes their
        tombstones, so a group reading a topic created again under the name starts from
        its reset policy, not from offsets of the old topic."""
        for gid, g in list(self.b.groups.groups.items()):
            gone = [k for k in g.offsets if k[0] == topic]
            if gone:
                self.delete(gid, gone)

    def delete(self, group_id: str, keys: list[tuple[str, int]]) -> None:
        """The group's committed offsets of ``keys`` (topic, partition) dropped, and their
        tombstones written to its __consumer_offsets partition (OffsetDelete, DeleteGroups,
        a deleted topic), when this broker leads that partition."""
        n = len(self.b.assignments.get(OFFSETS_TOPIC, {}))
        g = self.b.groups.group(group_id, create=False)
        if g is None or not n:
            return
        part = self.b.partitions.get((OFFSETS_TOPIC, partition_for_group(group_id, n)))
        if part is None or not part.is_leader:
            return
        recs = []
        for t, pi in keys:
            if g.offsets.pop((t, pi), None) is not None:
                recs.append((json.dumps(["o", group_id, t, pi]).encode(), None))
        if recs:
            batch = rec.build_batch(recs)
            self.b.append_as_leader(part, batch, [rec.parse_header(batch)])

    async def commit(
        self,
        group_id: str,
        entries: list[tuple[str, int, int, str | None]],
        producer: tuple[int, int] | None = None,
    ) -> Error:
        """Write the commits to the group's __consumer_offsets partition and wait
        until they are replicated, then make them visible. With ``producer`` (id,
        epoch: TxnOffsetCommit) they are a transactional batch, kept pending until
        the transaction's marker."""
        p = self.coordinator_partition(group_id)
        part = self.b.partitions.get((OFFSETS_TOPIC, p))
        if part is None or not part.is_leader:
            return Error.NOT_COORDINATOR
        ts = int(time.time() * 1000)
        recs = [
            (
                json.dumps(["o", group_id, t, pi]).encode(),
                json.dumps({"offset": off, "metadata": md, "ts": ts}).encode(),
            )
            for t, pi, off, md in entries
        ]
        pid, epoch = producer or (-1, -1)
        batch = rec.build_batch(
            recs,
            timestamp_ms=ts,
            producer_id=pid,
            producer_epoch=epoch,
            attributes=rec.ATTR_TRANSACTIONAL if producer else 0,
        )
        if producer and part.marker_epoch_error(pid, epoch) != Error.NONE:
            return Error.PRODUCER_FENCED
        if len(part.isr) < self.b.min_isr(OFFSETS_TOPIC) and len(part.replicas) > 1:
            return Error.NOT_ENOUGH_REPLICAS
        first = self.b.append_as_leader(part, batch, [rec.parse_header(batch)])
        err = await self.b.wait_for_hw(
            part, first + len(recs), self.b.config.offsets_commit_timeout_ms / 1000
        )
        if err not in (Error.NONE, Error.NOT_ENOUGH_REPLICAS_AFTER_APPEND):
            return (
                Error.REQUEST_TIMED_OUT if err == Error.REQUEST_TIMED_OUT else Error.NOT_COORDINATOR
            )
        for t, pi, off, md in entries:
            om = OffsetAndMetadata(off, md, ts)
            if producer:
                self.pending.setdefault(pid, {})[(group_id, t, pi)] = om
            else:
                self.b.groups.store_offset(group_id, t, pi, om)
        return Error.NONE

    async def ensure_topic(self) -> Error:
        c = self.b.config
        return await ensure_internal_topic(
            self.b,
            OFFSETS_TOPIC,
            c.offsets_topic_num_partitions,
            c.offsets_topic_replication_factor,
            "the offsets topic (configured via 'offsets.topic.replication.factor')",
            {"cleanup.policy": "compact"},
            self._said,
        )
