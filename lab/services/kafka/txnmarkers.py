"""Transaction markers (KIP-98): the control batch a partition's leader writes when
the coordinator ends a transaction (WriteTxnMarkers), and the coordinator's side that
sends them to each partition's leader (Kafka's TransactionMarkerChannelManager),
writing its own partitions' markers directly."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .client import Connection
from .protocol import records as rec
from .protocol.api import ApiKey
from .protocol.errors import Error
from .topicnames import OFFSETS_TOPIC

if TYPE_CHECKING:
    from .broker import Broker

log = logging.getLogger("lab.kafka.txnmarkers")

# what the coordinator stops retrying: the partition is gone (Kafka drops it too)
_DONE = (Error.NONE, Error.UNKNOWN_TOPIC_OR_PARTITION)


async def write_marker(
    b: Broker, topic: str, p: int, pid: int, epoch: int, commit: bool, coordinator_epoch: int
) -> Error:
    """On the partition's leader: append the marker and wait until the ISR has it."""
    err = b.partition_error(topic, p)
    if err != Error.NONE:
        return err
    part = b.partitions[(topic, p)]
    err = part.marker_epoch_error(pid, epoch, coordinator_epoch)
    if err != Error.NONE:
        return err
    batch = rec.build_control_batch(pid, epoch, commit, coordinator_epoch)
    first = b.append_as_leader(part, batch, [rec.parse_header(batch)])
    if topic == OFFSETS_TOPIC:
        b.offsets.complete_txn(pid, commit)
    err = await b.wait_for_hw(part, first + 1, 30.0)
    return Error.NONE if err == Error.NOT_ENOUGH_REPLICAS_AFTER_APPEND else err


class MarkerSender:
    """Sends a transaction's markers to its partitions' leaders until each is written
    (or its topic is gone), over one connection per broker."""

    def __init__(self, broker: Broker):
        self.b = broker
        self.conns: dict[int, Connection] = {}

    async def send(
        self, pid: int, epoch: int, commit: bool, coord_epoch: int, partitions, still_mine
    ) -> bool:
        """True once every partition has its marker; False if ``still_mine()`` turns
        false meanwhile (the coordinator moved: the new one sends them)."""
        left = {(t, p) for t, p in partitions}
        delay = 0.05
        while left:
            if not still_mine():
                return False
            by_leader: dict[int, list[tuple[str, int]]] = {}
            for t, p in left:
                leader = self.b.states.get((t, p), {}).get("leader", -1)
                if t not in self.b.assignments:
                    by_leader.setdefault(-2, []).append((t, p))  # topic deleted
                else:
                    by_leader.setdefault(leader, []).append((t, p))
            left -= set(by_leader.pop(-2, []))
            by_leader.pop(-1, None)  # offline: retried below
            results = await asyncio.gather(
                *(
                    self._send_to(leader, pid, epoch, commit, coord_epoch, parts)
                    for leader, parts in by_leader.items()
                )
            )
            for done in results:
                left -= done
            if left:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        return True

    async def _send_to(self, leader, pid, epoch, commit, coord_epoch, parts) -> set:
        if leader == self.b.id:
            errs = await asyncio.gather(
                *(write_marker(self.b, t, p, pid, epoch, commit, coord_epoch) for t, p in parts)
            )
            return {tp for tp, e in zip(parts, errs, strict=True) if e in _DONE}
        addr = self.b.broker_address(leader)
        if addr is None:
            return set()
        topics: dict[str, list[int]] = {}
        for t, p in parts:
            topics.setdefault(t, []).append(p)
        body = {
            "markers": [
                {
                    "producer_id": pid,
                    "producer_epoch": epoch,
                    "transaction_result": commit,
                    "topics": [{"name": t, "partition_indexes": ps} for t, ps in topics.items()],
                    "coordinator_epoch": coord_epoch,
                }
            ]
        }
        conn = self.conns.get(leader)
        if conn is None or (conn.host, conn.port) != addr:
            conn = self.conns[leader] = Connection(*addr, client_id=f"txn-coordinator-{self.b.id}")
        try:
            resp = await conn.request(ApiKey.WRITE_TXN_MARKERS, 1, body, timeout=35)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, EOFError) as e:
            log.info("WriteTxnMarkers to broker %d failed (%r); retrying", leader, e)
            await conn.close()
            self.conns.pop(leader, None)
            return set()
        done = set()
        for m in resp["markers"]:
            for t in m["topics"]:
                for pr in t["partitions"]:
                    if pr["error_code"] in _DONE:
                        done.add((t["name"], pr["partition_index"]))
        return done

    async def close(self) -> None:
        for c in self.conns.values():
            await c.close()
        self.conns = {}
