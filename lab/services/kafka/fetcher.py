"""The follower side of replication, as Kafka's ReplicaFetcherThread: one task per
leader broker fetching every partition this broker follows there, truncating
first where the logs diverge (KIP-101), appending the leader's batches unchanged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from .client import Connection
from .protocol import records as rec
from .protocol.api import ApiKey
from .protocol.errors import Error

if TYPE_CHECKING:
    from .broker import Broker
    from .partition import Partition

log = logging.getLogger("lab.kafka.fetcher")


class ReplicaFetcher:
    """Follower side: one task per leader broker, fetching every partition this
    broker follows there, appending the leader's batches unchanged."""

    FETCH_VERSION = 11

    def __init__(self, broker: Broker, leader: int):
        self.broker = broker
        self.leader = leader
        self.keys: set[tuple[str, int]] = set()
        self.task: asyncio.Task | None = None
        self.conn: Connection | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    def add(self, key) -> None:
        self.keys.add(key)
        self._wake.set()

    def remove(self, key) -> None:
        self.keys.discard(key)

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        if self.conn:
            await self.conn.close()

    async def _run(self) -> None:
        b = self.broker
        while True:
            if not self.keys:
                self._wake.clear()
                await self._wake.wait()
                continue
            addr = b.broker_address(self.leader)
            if addr is None:
                await asyncio.sleep(0.2)
                continue
            try:
                if self.conn is None or (self.conn.host, self.conn.port) != addr:
                    if self.conn:
                        await self.conn.close()
                    self.conn = Connection(addr[0], addr[1], client_id=f"broker-{b.id}-fetcher")
                    await self.conn.connect()
                await self._fetch_once()
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as e:
                log.info("fetch from broker %d failed: %s", self.leader, e)
                if self.conn:
                    await self.conn.close()
                self.conn = None
                await asyncio.sleep(0.3)

    async def _truncate_diverged(self) -> None:
        """KIP-101: for partitions that just became followers, ask the leader
        where our latest epoch ended in its log and cut ours there."""
        b = self.broker
        pending: dict[str, list] = {}
        for t, p in sorted(self.keys):
            part = b.partitions.get((t, p))
            if part is None or not part.needs_truncation:
                continue
            if not part.epochs:
                part.needs_truncation = False
                continue
            pending.setdefault(t, []).append(
                {
                    "partition": p,
                    "current_leader_epoch": part.leader_epoch,
                    "leader_epoch": part.epochs[-1][0],
                }
            )
        if not pending:
            return
        resp = await self.conn.request(
            ApiKey.OFFSET_FOR_LEADER_EPOCH,
            3,
            {
                "replica_id": b.id,
                "topics": [{"topic": t, "partitions": ps} for t, ps in pending.items()],
            },
        )
        for tr in resp["topics"]:
            for pr in tr["partitions"]:
                part = b.partitions.get((tr["topic"], pr["partition"]))
                if part is None or pr["error_code"] != Error.NONE or not part.needs_truncation:
                    continue
                epoch, end = pr["leader_epoch"], pr["end_offset"]
                if epoch < 0 or end < 0:
                    target = part.high_watermark
                else:
                    target = min(end, part.end_offset_for(epoch)[1])
                if target < part.leo:
                    log.info(
                        "%s-%d: truncating from %d to %d to match leader %d",
                        part.topic,
                        part.index,
                        part.leo,
                        target,
                        self.leader,
                    )
                    part.truncate_to(target)
                part.needs_truncation = False

    async def _fetch_once(self) -> None:
        b = self.broker
        await self._truncate_diverged()
        topics: dict[str, list] = {}
        for t, p in sorted(self.keys):
            part = b.partitions.get((t, p))
            if part is None or part.needs_truncation:
                continue
            topics.setdefault(t, []).append(
                {
                    "partition": p,
                    "current_leader_epoch": part.leader_epoch,
                    "fetch_offset": part.leo,
                    "log_start_offset": part.log.log_start_offset,
                    "partition_max_bytes": b.config.replica_fetch_max_bytes,
                }
            )
        if not topics:
            await asyncio.sleep(0.1)
            return
        wait = b.config.replica_fetch_wait_max_ms
        resp = await self.conn.request(
            ApiKey.FETCH,
            self.FETCH_VERSION,
            {
                "replica_id": b.id,
                "max_wait_ms": wait,
                "min_bytes": 1,
                "max_bytes": 10 << 20,
                "isolation_level": 0,
                "session_id": 0,
                "session_epoch": -1,
                "topics": [{"topic": t, "partitions": ps} for t, ps in topics.items()],
                "forgotten_topics_data": [],
                "rack_id": "",
            },
            timeout=wait / 1000 + 30,
        )
        backoff = False
        for tr in resp["responses"]:
            for pr in tr["partitions"]:
                key = (tr["topic"], pr["partition_index"])
                part = b.partitions.get(key)
                if (
                    part is None
                    or part.is_leader
                    or part.leader != self.leader
                    or key not in self.keys
                ):
                    continue
                err = pr["error_code"]
                if err == Error.OFFSET_OUT_OF_RANGE:
                    if part.leo < pr["log_start_offset"]:
                        part.truncate_fully_and_start_at(pr["log_start_offset"])
                    else:
                        part.truncate_to(min(part.high_watermark, pr["high_watermark"]))
                    continue
                if err != Error.NONE:
                    backoff = True
                    continue
                data = pr["records"]
                if data:
                    self._append(part, data)
                part.high_watermark = max(part.high_watermark, min(pr["high_watermark"], part.leo))
                # the leader's DeleteRecords reaches its followers here, as Kafka's
                # follower moves its logStartOffset up to the leader's
                if pr["log_start_offset"] > part.log.log_start_offset:
                    part.log.delete_records_before(min(pr["log_start_offset"], part.high_watermark))
        b.notify()
        if backoff:
            await asyncio.sleep(0.2)

    @staticmethod
    def _append(part: Partition, data: bytes) -> None:
        batches = []
        try:
            for pos, h in rec.iter_batches(data):
                if h.last_offset < part.leo:
                    continue
                # a batch past the log end is a gap the leader's compaction made (whole
                # batches removed): taken, as Kafka's follower takes any increasing offsets;
                # one that starts before the log end does not line up with this log
                if h.base_offset < part.leo and not batches:
                    log.warning(
                        "%s-%d: leader sent offset %d, expected %d",
                        part.topic,
                        part.index,
                        h.base_offset,
                        part.leo,
                    )
                    return
                batches.append((pos, h))
        except rec.CorruptBatch as e:
            log.warning("%s-%d: corrupt batch from leader: %s", part.topic, part.index, e)
        if not batches:
            return
        start = batches[0][0]
        end = batches[-1][0] + batches[-1][1].size
        for pos, h in batches:
            part.note_epoch(h.partition_leader_epoch, h.base_offset)
            part.record_batch(h, h.base_offset, data, pos)
        part.log.append(
            bytes(data[start:end]),
            batches[0][1].base_offset,
            batches[-1][1].last_offset + 1,
            max(h.max_timestamp for _, h in batches),
            sum(h.records_count for _, h in batches),
        )
