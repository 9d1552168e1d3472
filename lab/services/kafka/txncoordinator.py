"""The transaction coordinator (Kafka's TransactionCoordinator, KIP-98): producer ids
and epochs for transactional ids (a new epoch fences the old producer), the
partitions of each transaction, and its end in two phases: PrepareCommit/PrepareAbort
written to `__transaction_state`, then the markers on every partition of the
transaction, then CompleteCommit/CompleteAbort. A transaction open longer than its
timeout is aborted with a bumped epoch, which fences its producer."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from .protocol.errors import Error
from .topicnames import OFFSETS_TOPIC
from .txnmarkers import MarkerSender
from .txnstate import (
    COMPLETE_ABORT,
    COMPLETE_COMMIT,
    EMPTY,
    ONGOING,
    PREPARE_ABORT,
    PREPARE_COMMIT,
    TxnMetadata,
    TxnStateManager,
    now_ms,
)

if TYPE_CHECKING:
    from .broker import Broker

log = logging.getLogger("lab.kafka.txncoordinator")

MAX_EPOCH = 32767


class TxnCoordinator:
    def __init__(self, broker: Broker):
        self.b = broker
        self.state = TxnStateManager(broker)
        self.markers = MarkerSender(broker)
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, txn_id: str) -> asyncio.Lock:
        lock = self._locks.get(txn_id)
        if lock is None:
            lock = self._locks[txn_id] = asyncio.Lock()
        return lock

    def _check(self, txn_id: str, pid: int, epoch: int) -> tuple[Error, TxnMetadata | None]:
        err = self.state.coordinator_error(txn_id)
        if err != Error.NONE:
            return err, None
        meta = self.state.txns.get(txn_id)
        if meta is None or meta.producer_id != pid:
            return Error.INVALID_PRODUCER_ID_MAPPING, None
        if epoch != meta.producer_epoch:
            return Error.PRODUCER_FENCED, None
        return Error.NONE, meta

    # ---- InitProducerId ----
    async def init_producer_id(
        self, txn_id: str, timeout_ms: int, pid: int, epoch: int
    ) -> tuple[Error, int, int]:
        err = self.state.coordinator_error(txn_id)
        if err != Error.NONE:
            return err, -1, -1
        if timeout_ms <= 0 or timeout_ms > self.b.config.txn_max_timeout_ms:
            return Error.INVALID_TRANSACTION_TIMEOUT, -1, -1
        async with self._lock(txn_id):
            meta = self.state.txns.get(txn_id)
            if meta is None:
                new = TxnMetadata(txn_id, await self.b.next_producer_id(), 0, timeout_ms)
            else:
                if pid >= 0 and (pid != meta.producer_id or epoch != meta.producer_epoch):
                    return Error.PRODUCER_FENCED, -1, -1  # KIP-360: an older producer
                if meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
                    return Error.CONCURRENT_TRANSACTIONS, -1, -1
                if meta.state == ONGOING:
                    # a new producer with this id: the old one's transaction is aborted
                    # under a bumped epoch (fencing it); the client retries meanwhile
                    log.info(
                        "transactional id %s: aborting the ongoing transaction of producer "
                        "%d epoch %d for a new producer",
                        txn_id,
                        meta.producer_id,
                        meta.producer_epoch,
                    )
                    await self._abort_fenced(meta)
                    return Error.CONCURRENT_TRANSACTIONS, -1, -1
                if meta.producer_epoch + 1 >= MAX_EPOCH:
                    new = TxnMetadata(txn_id, await self.b.next_producer_id(), 0, timeout_ms)
                else:
                    new = replace(
                        meta,
                        producer_epoch=meta.producer_epoch + 1,
                        timeout_ms=timeout_ms,
                        state=EMPTY,
                        partitions=[],
                        started_ms=-1,
                    )
            err = await self.state.write(new)
            if err != Error.NONE:
                return err, -1, -1
            return Error.NONE, new.producer_id, new.producer_epoch

    # ---- AddPartitionsToTxn / AddOffsetsToTxn ----
    async def add_partitions(
        self, txn_id: str, pid: int, epoch: int, partitions: list[tuple[str, int]]
    ) -> Error:
        async with self._lock(txn_id):
            err, meta = self._check(txn_id, pid, epoch)
            if err != Error.NONE:
                return err
            if meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
                return Error.CONCURRENT_TRANSACTIONS
            have = {tuple(tp) for tp in meta.partitions} if meta.state == ONGOING else set()
            wanted = have | set(partitions)
            if meta.state == ONGOING and wanted == have:
                return Error.NONE
            new = replace(
                meta,
                state=ONGOING,
                partitions=sorted([list(tp) for tp in wanted]),
                started_ms=meta.started_ms if meta.state == ONGOING else now_ms(),
            )
            return await self.state.write(new)

    async def add_offsets(self, txn_id: str, pid: int, epoch: int, group_id: str) -> Error:
        err = await self.b.offsets.ensure_topic()
        if err != Error.NONE:
            return err
        p = self.b.offsets.coordinator_partition(group_id)
        return await self.add_partitions(txn_id, pid, epoch, [(OFFSETS_TOPIC, p)])

    # ---- EndTxn ----
    async def end_txn(self, txn_id: str, pid: int, epoch: int, commit: bool) -> Error:
        async with self._lock(txn_id):
            err, meta = self._check(txn_id, pid, epoch)
            if err != Error.NONE:
                return err
            if meta.state == ONGOING:
                return await self._prepare(meta, commit)
            if meta.state == (COMPLETE_COMMIT if commit else COMPLETE_ABORT):
                return Error.NONE  # a retry of an EndTxn already done
            if meta.state == (PREPARE_COMMIT if commit else PREPARE_ABORT):
                return Error.CONCURRENT_TRANSACTIONS
            return Error.INVALID_TXN_STATE

    async def _prepare(self, meta: TxnMetadata, commit: bool) -> Error:
        prepared = replace(meta, state=PREPARE_COMMIT if commit else PREPARE_ABORT)
        err = await self.state.write(prepared)
        if err == Error.NONE:
            self.b.spawn(self._complete(prepared))
        return err

    async def _abort_fenced(self, meta: TxnMetadata) -> Error:
        bumped = replace(meta, producer_epoch=min(meta.producer_epoch + 1, MAX_EPOCH - 1))
        return await self._prepare(bumped, commit=False)

    async def _complete(self, meta: TxnMetadata) -> None:
        """The second phase: markers to every partition, then Complete*."""
        commit = meta.state == PREPARE_COMMIT
        coord_epoch = self.state.coordinator_epoch(meta.txn_id)

        def still_mine() -> bool:
            cur = self.state.txns.get(meta.txn_id)
            return (
                self.state.coordinator_epoch(meta.txn_id) == coord_epoch
                and cur is not None
                and cur.state == meta.state
                and cur.producer_epoch == meta.producer_epoch
            )

        done = await self.markers.send(
            meta.producer_id,
            meta.producer_epoch,
            commit,
            coord_epoch,
            [tuple(tp) for tp in meta.partitions],
            still_mine,
        )
        if not done:
            return
        async with self._lock(meta.txn_id):
            if not still_mine():
                return
            final = replace(
                meta, state=COMPLETE_COMMIT if commit else COMPLETE_ABORT, partitions=[]
            )
            err = await self.state.write(final)
            if err != Error.NONE:
                log.warning(
                    "transactional id %s: writing %s failed (%s); the next coordinator finishes it",
                    meta.txn_id,
                    final.state,
                    err.name,
                )

    # ---- leadership of __transaction_state partitions ----
    def load(self, part) -> None:
        for meta in self.state.load(part):
            self.b.spawn(self._complete(meta))

    def unload(self, p: int) -> None:
        self.state.unload(p)

    # ---- transaction.timeout.ms ----
    async def abort_timed_out_loop(self) -> None:
        """transaction.abort.timed.out.transaction.cleanup.interval.ms: abort each
        transaction open longer than its timeout, under a bumped epoch."""
        interval = self.b.config.txn_abort_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            now = now_ms()
            for meta in list(self.state.txns.values()):
                if meta.state != ONGOING or now - meta.started_ms <= meta.timeout_ms:
                    continue
                if self.state.coordinator_error(meta.txn_id) != Error.NONE:
                    continue
                async with self._lock(meta.txn_id):
                    cur = self.state.txns.get(meta.txn_id)
                    if cur is not meta:
                        continue
                    log.info(
                        "Aborting transaction %s of producer %d epoch %d: open %d ms, "
                        "longer than its timeout of %d ms",
                        meta.txn_id,
                        meta.producer_id,
                        meta.producer_epoch,
                        now - meta.started_ms,
                        meta.timeout_ms,
                    )
                    await self._abort_fenced(meta)
