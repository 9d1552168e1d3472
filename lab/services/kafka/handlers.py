"""One coroutine per API: decoded request dict in, response dict out (the
generated codec turns them into bytes). Shapes follow the schema files.

One concept, the request handlers (Kafka's KafkaApis), kept in one module though it
is over 600 lines: each handler only reads the request, asks the broker, the group
coordinator or the offset store, and shapes the response."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from . import adminhandlers
from . import txnhandlers as txn
from .logthrottle import Throttle
from .partition import SequenceError
from .protocol import records as rec
from .protocol.api import APIS, ApiKey
from .protocol.errors import Error
from .topicnames import OFFSETS_TOPIC, validate_topic_name
from .topics import create_topic

if TYPE_CHECKING:
    from .broker import Broker

log = logging.getLogger("lab.kafka.handlers")

HANDLERS = {}

# stuck-state errors Kafka logs per request, said here once per 10 s per partition
_said = Throttle()


def handler(key: int):
    def deco(fn):
        HANDLERS[key] = fn
        return fn

    return deco


def api_ranges() -> list[dict]:
    return [
        {"api_key": a.key, "min_version": a.min_version, "max_version": a.max_version}
        for a in sorted(APIS.values(), key=lambda a: a.key)
    ]


@handler(ApiKey.API_VERSIONS)
async def api_versions(b: Broker, req, h, host):
    return {"error_code": Error.NONE, "api_keys": api_ranges(), "throttle_time_ms": 0}


# ---------------- metadata and topics ----------------


def _partition_meta(b: Broker, topic: str, p: int, replicas: list[int]) -> dict:
    st = b.states.get((topic, p))
    leader = st["leader"] if st else -1
    err = Error.NONE if leader >= 0 and leader in b.live_brokers else Error.LEADER_NOT_AVAILABLE
    return {
        "error_code": err,
        "partition_index": p,
        "leader_id": leader if err == Error.NONE else -1,
        "leader_epoch": st["leader_epoch"] if st else -1,
        "replica_nodes": replicas,
        "isr_nodes": list(st["isr"]) if st else [],
        "offline_replicas": [r for r in replicas if r not in b.live_brokers],
    }


def topic_meta(b: Broker, topic: str) -> dict:
    a = b.assignments[topic]
    return {
        "error_code": Error.NONE,
        "name": topic,
        "is_internal": topic.startswith("__"),
        "partitions": [_partition_meta(b, topic, p, a[p]) for p in sorted(a)],
    }


@handler(ApiKey.METADATA)
async def metadata(b: Broker, req, h, host):
    v = h.api_version
    wanted = req["topics"]
    if wanted is None or (v == 0 and not wanted):
        names = sorted(b.assignments)
    else:
        names = [t["name"] for t in wanted]
    allow_create = req.get("allow_auto_topic_creation", True) if v >= 4 else True
    created = []
    refused: dict[str, Error] = {}
    for name in names:
        if name not in b.assignments and allow_create and b.config.auto_create_topics:
            rf = b.config.default_replication_factor
            err, msg = await create_topic(b, name, b.config.num_partitions, rf, {})
            if err == Error.NONE:
                created.append(name)
            elif err != Error.TOPIC_ALREADY_EXISTS:
                log.warning("auto-creating topic %s failed: %s", name, msg)
                refused[name] = err
    for name in created:
        # give the controller a moment so the first answer usually has leaders
        await b.wait_topic_ready(name, 2.0)
    topics = []
    for name in names:
        if name in b.assignments:
            topics.append(topic_meta(b, name))
        else:
            err = Error.UNKNOWN_TOPIC_OR_PARTITION
            if validate_topic_name(name):
                err = Error.INVALID_TOPIC_EXCEPTION
            elif name in created:
                err = Error.LEADER_NOT_AVAILABLE
            elif name in refused:
                err = refused[name]  # e.g. INVALID_REPLICATION_FACTOR: too few brokers alive
            topics.append({"error_code": err, "name": name, "is_internal": False, "partitions": []})
    return {
        "throttle_time_ms": 0,
        "brokers": [
            {"node_id": bid, "host": d["host"], "port": d["port"], "rack": d.get("rack")}
            for bid, d in sorted(b.live_brokers.items())
        ],
        "cluster_id": b.cluster_id,
        "controller_id": b.controller_id,
        "topics": topics,
    }


@handler(ApiKey.CREATE_TOPICS)
async def create_topics(b: Broker, req, h, host):
    out = []
    timeout = max(req.get("timeout_ms", 60000), 0) / 1000
    for t in req["topics"]:
        n = t["num_partitions"]
        rf = t["replication_factor"]
        res = {"name": t["name"], "num_partitions": n, "replication_factor": rf, "configs": []}
        out.append(res)
        nulls = [c["name"] for c in t["configs"] if c["value"] is None]
        if nulls:
            res.update(
                error_code=Error.INVALID_REQUEST,
                error_message=f"Null value not supported for topic configs : {','.join(nulls)}",
            )
            continue
        assignment = None
        if t["assignments"]:
            if n != -1 or rf != -1:
                res.update(
                    error_code=Error.INVALID_REQUEST,
                    error_message="Both numPartitions or replicationFactor and replicasAssignments "
                    "were set. Both cannot be used at the same time.",
                )
                continue
            assignment = {}
            for a in t["assignments"]:
                if a["partition_index"] in assignment:
                    res.update(
                        error_code=Error.INVALID_REPLICA_ASSIGNMENT,
                        error_message="Found multiple manual partition assignments for "
                        f"partition {a['partition_index']}",
                    )
                    break
                assignment[a["partition_index"]] = list(a["broker_ids"])
            if "error_code" in res:
                continue
            n, rf = len(assignment), len(next(iter(assignment.values())))
        if n == -1:
            n = b.config.num_partitions
        if rf == -1:
            rf = b.config.default_replication_factor
        res.update(num_partitions=n, replication_factor=rf)
        configs = {c["name"]: c["value"] for c in t["configs"]}
        err, msg = await create_topic(
            b, t["name"], n, rf, configs, assignment, validate_only=bool(req.get("validate_only"))
        )
        if err == Error.NONE and timeout > 0 and not req.get("validate_only"):
            await b.wait_topic_ready(t["name"], timeout)
        res.update(error_code=err, error_message=msg)
    return {"throttle_time_ms": 0, "topics": out}


@handler(ApiKey.DELETE_TOPICS)
async def delete_topics(b: Broker, req, h, host):
    out = []
    deadline = time.monotonic() + max(req["timeout_ms"], 0) / 1000
    for name in req["topic_names"]:
        if not b.config.delete_topic_enable:
            out.append({"name": name, "error_code": Error.TOPIC_DELETION_DISABLED})
        elif name not in b.assignments:
            out.append({"name": name, "error_code": Error.UNKNOWN_TOPIC_OR_PARTITION})
        else:
            await b.in_thread(b.zk.request_delete, name)
            out.append({"name": name, "error_code": Error.NONE})
    for r in out:
        while r["error_code"] == Error.NONE and r["name"] in b.assignments:
            left = deadline - time.monotonic()
            if left <= 0:
                r["error_code"] = Error.REQUEST_TIMED_OUT
                break
            await b.wait_progress(min(left, 0.2))
    return {"throttle_time_ms": 0, "responses": out}


# ---------------- produce / fetch / offsets ----------------


@handler(ApiKey.PRODUCE)
async def produce(b: Broker, req, h, host):
    acks = req["acks"]
    results = []
    waits = []
    for td in req["topic_data"]:
        tres = {"name": td["name"], "partition_responses": []}
        results.append(tres)
        for pd in td["partition_data"]:
            pres = {
                "index": pd["index"],
                "error_code": Error.NONE,
                "base_offset": -1,
                "log_append_time_ms": -1,
                "log_start_offset": -1,
                "record_errors": [],
                "error_message": None,
            }
            tres["partition_responses"].append(pres)
            err, msg, wait = await _produce_partition(
                b, td["name"], pd["index"], pd["records"], acks, req, pres
            )
            pres["error_code"], pres["error_message"] = err, msg
            if wait is not None:
                waits.append((pres, wait))
    if acks == 0:
        return None
    if waits:
        timeout = max(req["timeout_ms"], 0) / 1000
        errs = await asyncio.gather(
            *(b.wait_for_hw(part, off, timeout) for _, (part, off) in waits)
        )
        for (pres, _), err in zip(waits, errs, strict=True):
            pres["error_code"] = err
    return {"responses": results, "throttle_time_ms": 0}


async def _produce_partition(b: Broker, topic, index, data, acks, req, pres):
    if acks not in (0, 1, -1):
        return Error.INVALID_REQUIRED_ACKS, None, None
    err = b.partition_error(topic, index)
    if err != Error.NONE:
        return err, None, None
    if not data:
        return Error.CORRUPT_MESSAGE, "empty record set", None
    try:
        batches = rec.parse_batches(data)
    except rec.CorruptBatch as e:
        log.warning("produce to %s-%d refused: %s", topic, index, e)
        return Error.CORRUPT_MESSAGE, str(e), None
    headers = [hd for _, hd in batches]
    if any(hd.is_control for hd in headers):
        # markers come from the transaction coordinator only (WriteTxnMarkers)
        return Error.INVALID_RECORD, "Client producer cannot write control records", None
    # Kafka's limit is per batch: message.max.bytes, or the topic's max.message.bytes
    limit = b.max_message_bytes(topic)
    for hd in headers:
        if hd.size > limit:
            return (
                Error.MESSAGE_TOO_LARGE,
                f"record batch of {hd.size} bytes exceeds the maximum of {limit}",
                None,
            )
    if any(hd.compression != rec.COMPRESSION_NONE for hd in headers):
        # opened in a worker thread, streamed and capped: a compression bomb neither
        # stalls the other clients nor inflates the broker's memory
        try:
            await b.in_codec_thread(
                rec.check_compressed, data, batches, limit * rec.DECOMPRESSION_FACTOR
            )
        except rec.BatchTooLarge as e:
            log.warning("produce to %s-%d refused: %s", topic, index, e)
            return Error.MESSAGE_TOO_LARGE, str(e), None
        except rec.CorruptBatch as e:
            log.warning("produce to %s-%d refused: %s", topic, index, e)
            return Error.CORRUPT_MESSAGE, str(e), None
        err = b.partition_error(topic, index)  # leadership may have moved meanwhile
        if err != Error.NONE:
            return err, None, None
    if "compact" in b.topic_configs.get(topic, {}).get("cleanup.policy", ()):
        # LogValidator: every record of a compacted topic needs a key
        keyless = await b.in_codec_thread(rec.keyless_records, data)
        if keyless:
            errors = [
                f"RecordError(batchIndex={i}, message='Compacted topic cannot accept "
                f"message without key in topic partition {topic}-{index}')"
                for i in keyless
            ]
            pres["record_errors"] = [
                {
                    "batch_index": i,
                    "batch_index_error_message": "Compacted topic cannot accept message "
                    f"without key in topic partition {topic}-{index}",
                }
                for i in keyless
            ]
            return (
                Error.INVALID_RECORD,
                f"One or more records have been rejected due to {len(keyless)} record errors "
                "in total, and only showing the first three errors at most: "
                f"[{', '.join(errors[:3])}]",
                None,
            )
        err = b.partition_error(topic, index)
        if err != Error.NONE:
            return err, None, None
    part = b.partitions[(topic, index)]
    if acks == -1 and len(part.isr) < b.min_isr(topic):
        msg = (
            f"The size of the current ISR {part.isr} is insufficient to satisfy the "
            f"min.isr requirement of {b.min_isr(topic)} for partition {topic}-{index}"
        )
        if _said.due(("min.isr", topic, index)):
            # what Kafka's ReplicaManager logs for this refusal, exception name included
            log.error(
                "Error processing append operation on partition %s-%d: "
                "org.apache.kafka.common.errors.NotEnoughReplicasException: %s",
                topic,
                index,
                msg,
            )
        return Error.NOT_ENOUGH_REPLICAS, msg, None
    try:
        dup = None
        for hd in headers:
            dup = part.check_sequence(hd)
    except SequenceError as e:
        return e.error, str(e), None
    if dup is not None and len(headers) == 1:
        # a retry of a batch already written: answer with its original offset
        pres["base_offset"] = dup
        pres["log_start_offset"] = part.log.log_start_offset
        return Error.NONE, None, None
    first = b.append_as_leader(part, data, headers)
    pres["base_offset"] = first
    pres["log_start_offset"] = part.log.log_start_offset
    if acks == -1:
        return Error.NONE, None, (part, part.leo)
    return Error.NONE, None, None


@handler(ApiKey.FETCH)
async def fetch(b: Broker, req, h, host):
    replica = req["replica_id"]
    deadline = time.monotonic() + max(req["max_wait_ms"], 0) / 1000
    min_bytes = req["min_bytes"]
    max_bytes = req.get("max_bytes", 0x7FFFFFFF)
    # READ_COMMITTED: up to the last stable offset, with the aborted transactions
    committed = req.get("isolation_level", 0) == 1 and replica < 0
    first_pass = True
    while True:
        total = 0
        responses = []
        for t in req["topics"]:
            parts = []
            for pr in t["partitions"]:
                res, n = _fetch_partition(
                    b, t["topic"], pr, replica, max_bytes - total, total == 0, first_pass, committed
                )
                total += n
                parts.append(res)
            responses.append({"topic": t["topic"], "partitions": parts})
        first_pass = False
        errors = any(p["error_code"] for r in responses for p in r["partitions"])
        if total >= min_bytes or errors or time.monotonic() >= deadline:
            return {
                "throttle_time_ms": 0,
                "error_code": Error.NONE,
                "session_id": 0,
                "responses": responses,
            }
        await b.wait_progress(deadline - time.monotonic())


def empty_fetch_partition(p: int, err: Error = Error.NONE) -> dict:
    """A Fetch response's partition with no records (yet)."""
    return {
        "partition_index": p,
        "error_code": err,
        "high_watermark": -1,
        "last_stable_offset": -1,
        "log_start_offset": -1,
        "aborted_transactions": None,
        "preferred_read_replica": -1,
        "records": b"",
    }


def _fetch_partition(b: Broker, topic, pr, replica, budget, first, first_pass, committed):
    p = pr["partition"]
    res = empty_fetch_partition(p)
    err = b.partition_error(topic, p)
    if err != Error.NONE:
        res["error_code"] = err
        return res, 0
    part = b.partitions[(topic, p)]
    offset = pr["fetch_offset"]
    if replica >= 0 and (replica == b.id or replica not in part.replicas):
        # only a follower of this partition may read past the high watermark or move
        # the ISR (Kafka: "not recognized as a valid replica")
        res["error_code"] = Error.NOT_LEADER_OR_FOLLOWER
        return res, 0
    if replica >= 0 and first_pass:
        b.on_follower_fetch(part, replica, offset)
    res["high_watermark"] = part.high_watermark
    res["last_stable_offset"] = lso = part.last_stable_offset
    res["log_start_offset"] = part.log.log_start_offset
    if offset > part.leo or offset < part.log.log_start_offset:
        res["error_code"] = Error.OFFSET_OUT_OF_RANGE
        return res, 0
    upto = part.leo if replica >= 0 else lso if committed else part.high_watermark
    limit = min(pr["partition_max_bytes"], budget) if not first else pr["partition_max_bytes"]
    if limit <= 0:
        return res, 0
    data = part.log.read(offset, limit, upto)
    res["records"] = data
    if committed:
        res["aborted_transactions"] = [
            {"producer_id": a.producer_id, "first_offset": a.first_offset}
            for a in part.txns.aborted_between(offset, upto)
        ]
    return res, len(data)


@handler(ApiKey.LIST_OFFSETS)
async def list_offsets(b: Broker, req, h, host):
    topics = []
    for t in req["topics"]:
        parts = []
        for pr in t["partitions"]:
            p = pr["partition_index"]
            res = {
                "partition_index": p,
                "error_code": Error.NONE,
                "timestamp": -1,
                "offset": -1,
                "leader_epoch": -1,
            }
            err = b.partition_error(t["name"], p)
            if err != Error.NONE:
                res["error_code"] = err
            else:
                part = b.partitions[(t["name"], p)]
                ts = pr["timestamp"]
                res["leader_epoch"] = part.leader_epoch
                if ts == -2:
                    res["offset"] = part.log.log_start_offset
                elif ts == -1:
                    # read_committed consumers start from the last stable offset
                    committed = req.get("isolation_level", 0) == 1
                    res["offset"] = part.last_stable_offset if committed else part.high_watermark
                else:
                    # a time, or -3: the record with the largest timestamp (KIP-734)
                    log_ = part.log
                    found = (
                        log_.max_timestamp_offset() if ts == -3 else log_.offset_for_timestamp(ts)
                    )
                    # only what the client may fetch (Partition.fetchOffsetForTimestamp)
                    committed = req.get("isolation_level", 0) == 1
                    fetchable = part.last_stable_offset if committed else part.high_watermark
                    if found and found[0] < fetchable:
                        res["offset"], res["timestamp"] = found
            parts.append(res)
        topics.append({"name": t["name"], "partitions": parts})
    return {"throttle_time_ms": 0, "topics": topics}


@handler(ApiKey.OFFSET_FOR_LEADER_EPOCH)
async def offset_for_leader_epoch(b: Broker, req, h, host):
    topics = []
    for t in req["topics"]:
        parts = []
        for pr in t["partitions"]:
            p = pr["partition"]
            res = {"error_code": Error.NONE, "partition": p, "leader_epoch": -1, "end_offset": -1}
            err = b.partition_error(t["topic"], p)
            if err != Error.NONE:
                res["error_code"] = err
            else:
                part = b.partitions[(t["topic"], p)]
                cur = pr.get("current_leader_epoch", -1)
                if cur >= 0 and cur != part.leader_epoch:
                    res["error_code"] = (
                        Error.FENCED_LEADER_EPOCH
                        if cur < part.leader_epoch
                        else Error.UNKNOWN_LEADER_EPOCH
                    )
                else:
                    res["leader_epoch"], res["end_offset"] = part.end_offset_for(pr["leader_epoch"])
            parts.append(res)
        topics.append({"topic": t["topic"], "partitions": parts})
    return {"throttle_time_ms": 0, "topics": topics}


# ---------------- producer ids ----------------


@handler(ApiKey.INIT_PRODUCER_ID)
async def init_producer_id(b: Broker, req, h, host):
    if req["transactional_id"] is not None:
        return await txn.init_transactional_producer_id(b, req, h)
    pid = await b.next_producer_id()
    return {
        "throttle_time_ms": 0,
        "error_code": Error.NONE,
        "producer_id": pid,
        "producer_epoch": 0,
    }


# ---------------- groups ----------------


@handler(ApiKey.FIND_COORDINATOR)
async def find_coordinator(b: Broker, req, h, host):
    def error(err, msg):
        return {
            "throttle_time_ms": 0,
            "error_code": err,
            "error_message": msg,
            "node_id": -1,
            "host": "",
            "port": -1,
        }

    if req.get("key_type", 0) == 1:
        err, leader = await txn.find_txn_coordinator(b, req["key"])
        if err != Error.NONE:
            return error(err, "the transaction state partition has no leader yet")
        host_, port = b.broker_address(leader)
        return {
            "throttle_time_ms": 0,
            "error_code": Error.NONE,
            "error_message": None,
            "node_id": leader,
            "host": host_,
            "port": port,
        }
    if req.get("key_type", 0) != 0:
        return error(Error.INVALID_REQUEST, f"unknown coordinator key type {req['key_type']}")
    fresh = OFFSETS_TOPIC not in b.assignments
    err = await b.offsets.ensure_topic()
    if err != Error.NONE:
        return error(err, "the offsets topic cannot be created with the brokers alive now")
    if fresh:
        await b.wait_topic_ready(OFFSETS_TOPIC, 5.0)
    p = b.offsets.coordinator_partition(req["key"])
    st = b.states.get((OFFSETS_TOPIC, p))
    addr = b.broker_address(st["leader"]) if st else None
    if addr is None:
        return error(Error.COORDINATOR_NOT_AVAILABLE, "the group's offsets partition has no leader")
    return {
        "throttle_time_ms": 0,
        "error_code": Error.NONE,
        "error_message": None,
        "node_id": st["leader"],
        "host": addr[0],
        "port": addr[1],
    }


@handler(ApiKey.JOIN_GROUP)
async def join_group(b: Broker, req, h, host):
    err = b.offsets.coordinator_error(req["group_id"])
    if err != Error.NONE:
        return {
            "error_code": err,
            "generation_id": -1,
            "protocol_name": "",
            "leader": "",
            "member_id": req["member_id"],
            "members": [],
        }
    resp = await b.groups.join(req, h.api_version, h.client_id or "", f"/{host}")
    resp["throttle_time_ms"] = 0
    if h.api_version < 7 and resp.get("protocol_name") is None:
        resp["protocol_name"] = ""
    return resp


@handler(ApiKey.SYNC_GROUP)
async def sync_group(b: Broker, req, h, host):
    err = b.offsets.coordinator_error(req["group_id"])
    if err != Error.NONE:
        return {"throttle_time_ms": 0, "error_code": err, "assignment": b""}
    resp = await b.groups.sync(req)
    resp["throttle_time_ms"] = 0
    return resp


@handler(ApiKey.HEARTBEAT)
async def heartbeat(b: Broker, req, h, host):
    err = b.offsets.coordinator_error(req["group_id"])
    if err == Error.NONE:
        err = b.groups.heartbeat(req)
    return {"throttle_time_ms": 0, "error_code": err}


@handler(ApiKey.LEAVE_GROUP)
async def leave_group(b: Broker, req, h, host):
    err = b.offsets.coordinator_error(req["group_id"])
    members = (
        [(m["member_id"], m.get("group_instance_id")) for m in req["members"]]
        if h.api_version >= 3
        else [(req["member_id"], None)]
    )
    if err != Error.NONE:
        return {"throttle_time_ms": 0, "error_code": err, "members": []}
    top, results = b.groups.leave(req["group_id"], members)
    return {
        "throttle_time_ms": 0,
        "error_code": top,
        "members": [
            {"member_id": mid, "group_instance_id": inst, "error_code": e}
            for (mid, e), (_, inst) in zip(results, members, strict=True)
        ],
    }


@handler(ApiKey.OFFSET_COMMIT)
async def offset_commit(b: Broker, req, h, host):
    gid = req["group_id"]
    err = b.offsets.coordinator_error(gid)
    if err == Error.NONE:
        err = b.groups.check_commit(req)
    return await _commit(b, req, err)


@handler(ApiKey.TXN_OFFSET_COMMIT)
async def txn_offset_commit(b: Broker, req, h, host):
    """A transaction's offsets: written as a transactional batch, pending until the
    transaction's marker (offsets.py)."""
    err = b.offsets.coordinator_error(req["group_id"])
    producer = (req["producer_id"], req["producer_epoch"])
    return await _commit(b, req, err, producer, lambda e: txn.fenced(e, h.api_version, 3))


async def _commit(b: Broker, req, err, producer=None, answer=lambda e: e) -> dict:
    entries = [
        (t["name"], p["partition_index"], p["committed_offset"], p["committed_metadata"])
        for t in req["topics"]
        for p in t["partitions"]
    ]
    if err == Error.NONE and entries:
        err = answer(await b.offsets.commit(req["group_id"], entries, producer))
    return {
        "throttle_time_ms": 0,
        "topics": [
            {
                "name": t["name"],
                "partitions": [
                    {"partition_index": p["partition_index"], "error_code": err}
                    for p in t["partitions"]
                ],
            }
            for t in req["topics"]
        ],
    }


@handler(ApiKey.OFFSET_FETCH)
async def offset_fetch(b: Broker, req, h, host):
    gid = req["group_id"]
    err = b.offsets.coordinator_error(gid)
    g = b.groups.group(gid, create=False) if err == Error.NONE else None
    offsets = g.offsets if g else {}
    stable = req.get("require_stable", False) and err == Error.NONE
    if req["topics"] is None:
        wanted: dict[str, list[int]] = {}
        for t, p in sorted(offsets):
            wanted.setdefault(t, []).append(p)
    else:
        wanted = {t["name"]: t["partition_indexes"] for t in req["topics"]}
    topics = []
    for t, ps in wanted.items():
        parts = []
        for p in ps:
            om = offsets.get((t, p))
            perr = err if h.api_version < 2 else Error.NONE
            if stable and b.offsets.is_pending(gid, t, p):
                # a transaction's offsets await its marker: the client asks again
                perr = Error.UNSTABLE_OFFSET_COMMIT
            parts.append(
                {
                    "partition_index": p,
                    "committed_offset": om.offset if om else -1,
                    "committed_leader_epoch": -1,
                    "metadata": (om.metadata if om else "") or "",
                    "error_code": perr,
                }
            )
        topics.append({"name": t, "partitions": parts})
    return {"throttle_time_ms": 0, "topics": topics, "error_code": err}


@handler(ApiKey.DESCRIBE_GROUPS)
async def describe_groups(b: Broker, req, h, host):
    out = []
    for gid in req["groups"]:
        err = b.offsets.coordinator_error(gid)
        if err != Error.NONE:
            out.append(
                {
                    "error_code": err,
                    "group_id": gid,
                    "group_state": "",
                    "protocol_type": "",
                    "protocol_data": "",
                    "members": [],
                }
            )
        else:
            out.append(b.groups.describe(gid))
    return {"throttle_time_ms": 0, "groups": out}


@handler(ApiKey.LIST_GROUPS)
async def list_groups(b: Broker, req, h, host):
    states = set(req.get("states_filter") or [])
    out = []
    for gid, g in sorted(b.groups.groups.items()):
        if b.offsets.coordinator_error(gid) != Error.NONE:
            continue
        if states and g.state not in states:
            continue
        out.append(
            {"group_id": gid, "protocol_type": g.protocol_type or "", "group_state": g.state}
        )
    return {"throttle_time_ms": 0, "error_code": Error.NONE, "groups": out}


HANDLERS.update(txn.TXN_HANDLERS)
HANDLERS.update(adminhandlers.ADMIN_HANDLERS)
