"""The transaction APIs' handlers (Kafka's KafkaApis for KIP-98): FindCoordinator for
a transactional id, InitProducerId with one, AddPartitionsToTxn, AddOffsetsToTxn,
EndTxn, WriteTxnMarkers (from a
transaction coordinator to a partition's leader), DescribeTransactions and
ListTransactions. handlers.py registers them; TxnOffsetCommit is there beside
OffsetCommit."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .protocol.api import ApiKey
from .protocol.errors import Error
from .topicnames import TXN_TOPIC
from .txnmarkers import write_marker
from .txnstate import STATES, now_ms

if TYPE_CHECKING:
    from .broker import Broker


def fenced(err: Error, version: int, first_with_fenced: int) -> Error:
    # PRODUCER_FENCED is new in these APIs' later versions (KIP-588); older clients
    # are told INVALID_PRODUCER_EPOCH, as Kafka answers them
    if err == Error.PRODUCER_FENCED and version < first_with_fenced:
        return Error.INVALID_PRODUCER_EPOCH
    return err


async def find_txn_coordinator(b: Broker, txn_id: str) -> tuple[Error, int]:
    """The broker leading the id's `__transaction_state` partition (made on first use)."""
    fresh = TXN_TOPIC not in b.assignments
    err = await b.txn.state.ensure_topic()
    if err != Error.NONE:
        return err, -1
    if fresh:
        await b.wait_topic_ready(TXN_TOPIC, 5.0)
    st = b.states.get((TXN_TOPIC, b.txn.state.partition_for(txn_id)))
    leader = st["leader"] if st else -1
    if leader < 0 or b.broker_address(leader) is None:
        return Error.COORDINATOR_NOT_AVAILABLE, -1
    return Error.NONE, leader


async def init_transactional_producer_id(b: Broker, req, h) -> dict:
    err, pid, epoch = await b.txn.init_producer_id(
        req["transactional_id"],
        req["transaction_timeout_ms"],
        req.get("producer_id", -1),
        req.get("producer_epoch", -1),
    )
    return {
        "throttle_time_ms": 0,
        "error_code": fenced(err, h.api_version, 4),
        "producer_id": pid,
        "producer_epoch": epoch,
    }


async def add_partitions_to_txn(b: Broker, req, h, host):
    wanted = [(t["name"], p) for t in req["topics"] for p in t["partitions"]]
    unknown = {(t, p) for t, p in wanted if p not in b.assignments.get(t, {})}
    if unknown:
        # nothing is added when one partition is unknown (Kafka's answer per partition)
        errs = {
            tp: Error.UNKNOWN_TOPIC_OR_PARTITION if tp in unknown else Error.OPERATION_NOT_ATTEMPTED
            for tp in wanted
        }
    else:
        err = await b.txn.add_partitions(
            req["transactional_id"], req["producer_id"], req["producer_epoch"], wanted
        )
        err = fenced(err, h.api_version, 2)
        errs = dict.fromkeys(wanted, err)
    return {
        "throttle_time_ms": 0,
        "results": [
            {
                "name": t["name"],
                "results": [
                    {"partition_index": p, "error_code": errs[(t["name"], p)]}
                    for p in t["partitions"]
                ],
            }
            for t in req["topics"]
        ],
    }


async def add_offsets_to_txn(b: Broker, req, h, host):
    err = await b.txn.add_offsets(
        req["transactional_id"], req["producer_id"], req["producer_epoch"], req["group_id"]
    )
    return {"throttle_time_ms": 0, "error_code": fenced(err, h.api_version, 2)}


async def end_txn(b: Broker, req, h, host):
    err = await b.txn.end_txn(
        req["transactional_id"], req["producer_id"], req["producer_epoch"], req["committed"]
    )
    return {"throttle_time_ms": 0, "error_code": fenced(err, h.api_version, 2)}


async def write_txn_markers(b: Broker, req, h, host):
    out = []
    for m in req["markers"]:
        parts = [(t["name"], p) for t in m["topics"] for p in t["partition_indexes"]]
        errs = await asyncio.gather(
            *(
                write_marker(
                    b,
                    t,
                    p,
                    m["producer_id"],
                    m["producer_epoch"],
                    m["transaction_result"],
                    m["coordinator_epoch"],
                )
                for t, p in parts
            )
        )
        result = dict(zip(parts, errs, strict=True))
        out.append(
            {
                "producer_id": m["producer_id"],
                "topics": [
                    {
                        "name": t["name"],
                        "partitions": [
                            {"partition_index": p, "error_code": result[(t["name"], p)]}
                            for p in t["partition_indexes"]
                        ],
                    }
                    for t in m["topics"]
                ],
            }
        )
    return {"markers": out}


async def describe_transactions(b: Broker, req, h, host):
    out = []
    for txn_id in req["transactional_ids"]:
        err = b.txn.state.coordinator_error(txn_id)
        meta = b.txn.state.txns.get(txn_id) if err == Error.NONE else None
        if err == Error.NONE and meta is None:
            err = Error.TRANSACTIONAL_ID_NOT_FOUND
        topics: dict[str, list[int]] = {}
        for t, p in meta.partitions if meta else []:
            topics.setdefault(t, []).append(p)
        out.append(
            {
                "error_code": err,
                "transactional_id": txn_id,
                "transaction_state": meta.state if meta else "",
                "transaction_timeout_ms": meta.timeout_ms if meta else 0,
                "transaction_start_time_ms": meta.started_ms if meta else -1,
                "producer_id": meta.producer_id if meta else -1,
                "producer_epoch": meta.producer_epoch if meta else -1,
                "topics": [{"topic": t, "partitions": ps} for t, ps in sorted(topics.items())],
            }
        )
    return {"throttle_time_ms": 0, "transaction_states": out}


async def list_transactions(b: Broker, req, h, host):
    """The transactions this broker coordinates (Kafka asks every broker and merges)."""
    states = set(req["state_filters"])
    pids = set(req["producer_id_filters"])
    unknown = sorted(states - set(STATES))
    min_age = req.get("duration_filter", -1)
    now = now_ms()
    out = [
        {"transactional_id": m.txn_id, "producer_id": m.producer_id, "transaction_state": m.state}
        for m in sorted(b.txn.state.txns.values(), key=lambda m: m.txn_id)
        if (not states or m.state in states)
        and (not pids or m.producer_id in pids)
        and (min_age < 0 or (m.started_ms >= 0 and now - m.started_ms >= min_age))
    ]
    return {
        "throttle_time_ms": 0,
        "error_code": Error.NONE,
        "unknown_state_filters": unknown,
        "transaction_states": out,
    }


TXN_HANDLERS = {
    ApiKey.DESCRIBE_TRANSACTIONS: describe_transactions,
    ApiKey.LIST_TRANSACTIONS: list_transactions,
    ApiKey.ADD_PARTITIONS_TO_TXN: add_partitions_to_txn,
    ApiKey.ADD_OFFSETS_TO_TXN: add_offsets_to_txn,
    ApiKey.END_TXN: end_txn,
    ApiKey.WRITE_TXN_MARKERS: write_txn_markers,
}
