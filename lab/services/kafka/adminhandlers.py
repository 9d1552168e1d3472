"""The admin APIs' handlers, as a ZooKeeper-era Kafka 3.x broker answers them (Kafka's
KafkaApis with ZkAdminManager, ConfigHelper, AclApis and the controller): configs
(DescribeConfigs, AlterConfigs, IncrementalAlterConfigs), CreatePartitions,
DeleteRecords, DeleteGroups, OffsetDelete, ElectLeaders, DescribeCluster, and the
security APIs of a broker without an authorizer or SCRAM users. handlers.py registers
them."""

from __future__ import annotations

import logging
import shutil
import time
from typing import TYPE_CHECKING

from . import describeconfigs as dc
from . import topicconfig as tc
from .config import ConfigError
from .controller import elect
from .protocol.api import ApiKey
from .protocol.errors import Error
from .topicnames import validate_topic_name
from .topics import MAX_PARTITIONS_PER_TOPIC, assign_replicas

if TYPE_CHECKING:
    from .broker import Broker

log = logging.getLogger("lab.kafka.admin")

ADMIN_HANDLERS = {}

# ConfigResource.Type ids
TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
_TYPE_NAMES = {TOPIC: "TOPIC", BROKER: "BROKER", BROKER_LOGGER: "BROKER_LOGGER"}
# AlterConfigOp.OpType
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3

NO_AUTHORIZER = "No Authorizer is configured."


def handler(key: int):
    def deco(fn):
        ADMIN_HANDLERS[key] = fn
        return fn

    return deco


class ApiError(Exception):
    def __init__(self, error: Error, message: str | None = None):
        super().__init__(message)
        self.error, self.message = error, message


def _resource_text(rtype: int, name: str) -> str:
    # Java's ConfigResource.toString, which Kafka puts in its messages
    return f"ConfigResource(type={_TYPE_NAMES.get(rtype, 'UNKNOWN')}, name='{name}')"


def _broker_id(b: Broker, name: str, or_empty: str) -> None:
    try:
        bid = int(name)
    except ValueError:
        raise ApiError(
            Error.INVALID_REQUEST, f"Broker id must be an integer, but it is: {name}"
        ) from None
    if bid != b.id:
        raise ApiError(
            Error.INVALID_REQUEST,
            f"Unexpected broker id, expected {b.id}{or_empty}, but received {name}",
        )


# ---------------- configs ----------------


@handler(ApiKey.DESCRIBE_CONFIGS)
async def describe_configs(b: Broker, req, h, host):
    synonyms = req.get("include_synonyms", False)
    out = []
    for r in req["resources"]:
        rtype, name = r["resource_type"], r["resource_name"]
        res = {"resource_type": rtype, "resource_name": name, "error_code": Error.NONE}
        try:
            res["configs"] = dc.select(
                await _describe(b, rtype, name, synonyms), r["configuration_keys"]
            )
        except ApiError as e:
            res.update(error_code=e.error, error_message=e.message, configs=[])
        out.append(res)
    return {"throttle_time_ms": 0, "results": out}


async def _describe(b: Broker, rtype: int, name: str, synonyms: bool) -> list[dict]:
    if rtype == TOPIC:
        why = validate_topic_name(name)
        if why:
            raise ApiError(Error.INVALID_TOPIC_EXCEPTION, why)
        if name not in b.assignments:
            raise ApiError(Error.UNKNOWN_TOPIC_OR_PARTITION)
        overrides = await b.in_thread(b.zk.topic_config, name)
        return dc.describe_topic(b.config, overrides, synonyms, b.dynamic_default, b.dynamic_own)
    if rtype == BROKER:
        if not name:
            defaults = await b.in_thread(b.zk.broker_config, "<default>")
            return dc.describe_cluster_defaults(defaults, synonyms)
        _broker_id(b, name, " or empty string")
        return dc.describe_broker(b.config, synonyms, b.dynamic_default, b.dynamic_own)
    if rtype == BROKER_LOGGER:
        if not name:
            raise ApiError(Error.INVALID_REQUEST, "Broker id must not be empty")
        _broker_id(b, name, "")
        return [
            dc.logger_entry(n, lg)
            for n, lg in sorted(logging.root.manager.loggerDict.items())
            if isinstance(lg, logging.Logger) and n.startswith("lab.")
        ]
    raise ApiError(Error.INVALID_REQUEST, f"Unsupported resource type: {rtype}")


@handler(ApiKey.ALTER_CONFIGS)
async def alter_configs(b: Broker, req, h, host):
    async def whole(rtype, name, entries):
        # AlterConfigs replaces the resource's whole set; null values are left out
        return {e["name"]: e["value"] for e in entries if e["value"] is not None}

    return await _alter(b, req, whole)


@handler(ApiKey.INCREMENTAL_ALTER_CONFIGS)
async def incremental_alter_configs(b: Broker, req, h, host):
    async def stepwise(rtype, name, ops):
        # the resource checked before its znode is read: a name from the wire never
        # becomes a ZooKeeper path of its own choosing
        if rtype == TOPIC:
            _topic_exists(b, name)
            current = await b.in_thread(b.zk.topic_config, name)
        elif rtype == BROKER:
            if name:
                _broker_id(b, name, "")
            current = await b.in_thread(b.zk.broker_config, name or "<default>")
        else:
            current = {}  # refused below, as Kafka refuses the resource type
        return _apply_ops(rtype, current, ops)

    return await _alter(b, req, stepwise)


def _apply_ops(rtype: int, props: dict[str, str], ops: list[dict]) -> dict[str, str]:
    """ConfigAdminManager.prepareIncrementalConfigs: SET, DELETE, and APPEND/SUBTRACT on
    list-typed configs only."""
    props = dict(props)
    for op in ops:
        name, value, kind = op["name"], op["value"], op["config_operation"]
        if value is None and kind != DELETE:
            raise ApiError(Error.INVALID_REQUEST, f"Null value not supported for : {name}")
        if kind == SET:
            props[name] = value
        elif kind == DELETE:
            props.pop(name, None)
        elif kind in (APPEND, SUBTRACT):
            verb = "append" if kind == APPEND else "subtract"
            if rtype != TOPIC or name not in tc.TOPIC_CONFIGS:
                raise tc.ConfigValueError(f"Unknown config name: {name}")
            if tc.TOPIC_CONFIGS[name][0] is not tc.LIST:
                raise ApiError(
                    Error.INVALID_CONFIG,
                    f"Config value {verb} is not allowed for config key: {name}",
                )
            old = props.get(name, dc.TOPIC_SYNONYMS[name][1])
            items = [v for v in old.split(",") if v]
            given = (value or "").split(",")
            if kind == APPEND:
                items += [v for v in given if v not in items]
            else:
                items = [v for v in items if v not in given]
            props[name] = ",".join(items)
        else:
            raise ApiError(Error.INVALID_REQUEST, f"Unknown alter config operation {kind}")
    return props


async def _alter(b: Broker, req, new_props) -> dict:
    out = []
    for r in req["resources"]:
        rtype, name = r["resource_type"], r["resource_name"]
        res = {"resource_type": rtype, "resource_name": name, "error_code": Error.NONE}
        try:
            props = await new_props(rtype, name, r["configs"])
            if rtype == TOPIC:
                await _alter_topic(b, name, props, req["validate_only"])
            elif rtype == BROKER:
                await _alter_broker(b, name, props, req["validate_only"])
            else:
                raise ApiError(
                    Error.INVALID_REQUEST,
                    "AlterConfigs is only supported for topics and brokers, but resource "
                    f"type is {_TYPE_NAMES.get(rtype, 'UNKNOWN')}",
                )
        except ApiError as e:
            res.update(error_code=e.error, error_message=e.message)
        except tc.ConfigValueError as e:
            # Kafka wraps a ConfigException in the resource's words; its own
            # InvalidConfigurationException (an unknown name) goes as it is
            msg = str(e)
            if not msg.startswith("Unknown"):
                msg = f"Invalid config value for resource {_resource_text(rtype, name)}: {msg}"
            res.update(error_code=Error.INVALID_CONFIG, error_message=msg)
        out.append(res)
    return {"throttle_time_ms": 0, "responses": out}


def _topic_exists(b: Broker, topic: str) -> None:
    if not topic:
        raise ApiError(Error.INVALID_REQUEST, "Default topic resources are not allowed.")
    if topic not in b.assignments:
        raise ApiError(Error.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{topic}' does not exist.")


async def _alter_topic(b: Broker, topic: str, props: dict[str, str], validate_only: bool):
    _topic_exists(b, topic)
    tc.validate(props)
    if not validate_only:
        log.info("Updating topic %s with new configuration : %s", topic, props)
        await b.in_thread(b.zk.set_topic_config, topic, props)


async def _alter_broker(b: Broker, name: str, props: dict[str, str], validate_only: bool):
    """Dynamic broker configs: checked as the broker will read them, kept in ZooKeeper;
    every broker watches its own and the cluster's defaults and applies them."""
    if name:
        _broker_id(b, name, "")
    fixed = sorted(k for k in props if k not in dc.DYNAMIC_BROKER_KEYS)
    if fixed:
        raise tc.ConfigValueError(
            f"Cannot update these configs dynamically: Set({', '.join(fixed)})"
        )
    try:
        b.config.with_dynamic({**b.dynamic, **props})
    except ConfigError as e:
        raise tc.ConfigValueError(str(e)) from None
    if not validate_only:
        log.info("Updating broker %s with new configuration : %s", name or "<default>", props)
        await b.in_thread(b.zk.set_broker_config, name or "<default>", props)


# ---------------- partitions and records ----------------


@handler(ApiKey.CREATE_PARTITIONS)
async def create_partitions(b: Broker, req, h, host):
    timeout = max(req["timeout_ms"], 0) / 1000
    results, waiting = [], []
    for t in req["topics"]:
        res = {"name": t["name"], "error_code": Error.NONE, "error_message": None}
        results.append(res)
        try:
            count = await _add_partitions(b, t, req["validate_only"])
            if count is not None:
                waiting.append((res, count))
        except ApiError as e:
            res.update(error_code=e.error, error_message=e.message)
    deadline = time.monotonic() + timeout
    for res, count in waiting:
        # as Kafka's DelayedCreatePartitions: answered once the new partitions have leaders
        while not _has_partitions(b, res["name"], count):
            if time.monotonic() >= deadline:
                res["error_code"] = Error.REQUEST_TIMED_OUT
                break
            await b.wait_progress(min(0.2, deadline - time.monotonic()))
    return {"throttle_time_ms": 0, "results": results}


def _has_partitions(b: Broker, topic: str, count: int) -> bool:
    a = b.assignments.get(topic, {})
    return len(a) >= count and all(b.states.get((topic, p), {}).get("leader", -1) >= 0 for p in a)


async def _add_partitions(b: Broker, t: dict, validate_only: bool) -> int | None:
    """ZkAdminManager.createPartitions' checks, then the assignment written; -> the new
    count to wait for, or None (validate_only)."""
    topic, count = t["name"], t["count"]
    existing = b.assignments.get(topic)
    if not existing:
        raise ApiError(Error.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{topic}' does not exist.")
    old = len(existing)
    if count < old:
        raise ApiError(
            Error.INVALID_PARTITIONS,
            f"Topic currently has {old} partitions, which is higher than the requested {count}.",
        )
    if count == old:
        raise ApiError(Error.INVALID_PARTITIONS, f"Topic already has {old} partitions.")
    if count > MAX_PARTITIONS_PER_TOPIC:
        raise ApiError(
            Error.INVALID_PARTITIONS,
            f"Number of partitions {count} is above this broker's limit of "
            f"{MAX_PARTITIONS_PER_TOPIC} per topic.",
        )
    rf = len(existing[0])
    if t["assignments"] is not None:
        given = [list(a["broker_ids"]) for a in t["assignments"]]
        unknown = sorted({r for reps in given for r in reps} - set(b.live_brokers))
        if unknown:
            raise ApiError(
                Error.INVALID_REPLICA_ASSIGNMENT,
                f"Unknown broker(s) in replica assignment: {', '.join(map(str, unknown))}.",
            )
        if len(given) != count - old:
            raise ApiError(
                Error.INVALID_REPLICA_ASSIGNMENT,
                f"Increasing the number of partitions by {count - old} but {len(given)} "
                "assignments provided.",
            )
        added = {old + i: reps for i, reps in enumerate(given)}
        for p, reps in added.items():
            if len(set(reps)) != len(reps):
                raise ApiError(
                    Error.INVALID_REPLICA_ASSIGNMENT,
                    f"Duplicate brokers not allowed in replica assignment: "
                    f"{', '.join(map(str, reps))} for partition id {p}.",
                )
            if len(reps) != rf:
                raise ApiError(
                    Error.INVALID_REPLICA_ASSIGNMENT,
                    f"Inconsistent replication factor between partitions, partition 0 has "
                    f"{rf} while partitions [{p}] has replication factors [{len(reps)}], "
                    "respectively.",
                )
    else:
        if rf > len(b.live_brokers):
            raise ApiError(
                Error.INVALID_REPLICATION_FACTOR,
                f"Replication factor: {rf} larger than available brokers: {len(b.live_brokers)}.",
            )
        added = {old + p: reps for p, reps in assign_replicas(b, count - old, rf).items()}
    if validate_only:
        return None
    if not await b.in_thread(b.zk.add_partitions, topic, added):
        raise ApiError(Error.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{topic}' does not exist.")
    log.info("topic %s: partitions %s added", topic, added)
    return count


@handler(ApiKey.DELETE_RECORDS)
async def delete_records(b: Broker, req, h, host):
    topics = []
    for t in req["topics"]:
        parts = []
        for pr in t["partitions"]:
            p, offset = pr["partition_index"], pr["offset"]
            res = {"partition_index": p, "low_watermark": -1, "error_code": Error.NONE}
            err = b.partition_error(t["name"], p)
            if err == Error.NONE:
                part = b.partitions[(t["name"], p)]
                hw = part.high_watermark
                if offset == -1:  # DeleteRecordsRequest.HIGH_WATERMARK
                    offset = hw
                if offset < 0 or offset > hw:
                    err = Error.OFFSET_OUT_OF_RANGE
                else:
                    res["low_watermark"] = part.log.delete_records_before(offset)
                    part.txns.drop_before(part.log.log_start_offset)
                    b.notify()
            res["error_code"] = err
            parts.append(res)
        topics.append({"name": t["name"], "partitions": parts})
    return {"throttle_time_ms": 0, "topics": topics}


@handler(ApiKey.ELECT_LEADERS)
async def elect_leaders(b: Broker, req, h, host):
    if not b.is_controller:
        # the admin client sends it to the controller (Kafka's ZooKeeper mode)
        return {
            "throttle_time_ms": 0,
            "error_code": Error.NOT_CONTROLLER,
            "replica_election_results": [],
        }
    unclean = req.get("election_type", 0) == 1
    wanted = req["topic_partitions"]
    if wanted is None:
        wanted = [{"topic": t, "partitions": sorted(a)} for t, a in sorted(b.assignments.items())]
    strategy = (
        "OfflinePartitionLeaderElectionStrategy(true)"
        if unclean
        else "PreferredReplicaPartitionLeaderElectionStrategy"
    )
    out = []
    for t in wanted:
        results = []
        for p in t["partitions"]:
            if p not in b.assignments.get(t["topic"], {}):
                what = "unknown"  # never a ZooKeeper path made of a name from the wire
            else:
                live = set(b.live_brokers)
                what, _ = await b.in_thread(elect, b.zk, t["topic"], p, live, unclean)
            err, msg = {
                "elected": (Error.NONE, None),
                "not needed": (Error.ELECTION_NOT_NEEDED, None),
                "unknown": (Error.UNKNOWN_TOPIC_OR_PARTITION, "The partition does not exist."),
                "failed": (
                    Error.ELIGIBLE_LEADERS_NOT_AVAILABLE
                    if unclean
                    else Error.PREFERRED_LEADER_NOT_AVAILABLE,
                    f"Failed to elect leader for partition {t['topic']}-{p} under strategy "
                    f"{strategy}",
                ),
            }[what]
            results.append({"partition_id": p, "error_code": err, "error_message": msg})
        out.append({"topic": t["topic"], "partition_result": results})
    return {"throttle_time_ms": 0, "error_code": Error.NONE, "replica_election_results": out}


# ---------------- groups ----------------


@handler(ApiKey.DELETE_GROUPS)
async def delete_groups(b: Broker, req, h, host):
    out = []
    for gid in req["groups_names"]:
        err = b.offsets.coordinator_error(gid)
        if err == Error.NONE:
            err = b.groups.deletable(gid)
        if err == Error.NONE:
            g = b.groups.group(gid, create=False)
            b.offsets.delete(gid, list(g.offsets))
            b.groups.drop(gid)
            log.info("group %s deleted", gid)
        out.append({"group_id": gid, "error_code": err})
    return {"throttle_time_ms": 0, "results": out}


@handler(ApiKey.OFFSET_DELETE)
async def offset_delete(b: Broker, req, h, host):
    gid = req["group_id"]

    def answer(err, topics=()):
        return {"error_code": err, "throttle_time_ms": 0, "topics": list(topics)}

    err = b.offsets.coordinator_error(gid)
    if err != Error.NONE:
        return answer(err)
    if b.groups.deletable(gid) == Error.GROUP_ID_NOT_FOUND:
        return answer(Error.GROUP_ID_NOT_FOUND)
    subscribed = b.groups.subscribed_topics(gid)
    if subscribed is None:  # a group of another protocol with members
        return answer(Error.NON_EMPTY_GROUP)
    topics, gone = [], []
    for t in req["topics"]:
        busy = t["name"] in subscribed
        topics.append(
            {
                "name": t["name"],
                "partitions": [
                    {
                        "partition_index": p["partition_index"],
                        "error_code": Error.GROUP_SUBSCRIBED_TO_TOPIC if busy else Error.NONE,
                    }
                    for p in t["partitions"]
                ],
            }
        )
        if not busy:
            gone += [(t["name"], p["partition_index"]) for p in t["partitions"]]
    b.offsets.delete(gid, gone)
    return answer(Error.NONE, topics)


# ---------------- cluster and security ----------------


@handler(ApiKey.DESCRIBE_CLUSTER)
async def describe_cluster(b: Broker, req, h, host):
    return {
        "throttle_time_ms": 0,
        "error_code": Error.NONE,
        "error_message": None,
        "endpoint_type": 1,
        "cluster_id": b.cluster_id,
        "controller_id": b.controller_id,
        "brokers": [
            {"broker_id": bid, "host": d["host"], "port": d["port"], "rack": d.get("rack")}
            for bid, d in sorted(b.live_brokers.items())
        ],
        "cluster_authorized_operations": -(1 << 31),  # not asked for, or not known
    }


@handler(ApiKey.DESCRIBE_ACLS)
async def describe_acls(b: Broker, req, h, host):
    # Kafka's AclApis without an authorizer (authorizer.class.name unset, the default)
    return {
        "throttle_time_ms": 0,
        "error_code": Error.SECURITY_DISABLED,
        "error_message": "No Authorizer is configured on the broker",
        "resources": [],
    }


@handler(ApiKey.CREATE_ACLS)
async def create_acls(b: Broker, req, h, host):
    return {
        "throttle_time_ms": 0,
        "results": [
            {"error_code": Error.SECURITY_DISABLED, "error_message": NO_AUTHORIZER}
            for _ in req["creations"]
        ],
    }


@handler(ApiKey.DELETE_ACLS)
async def delete_acls(b: Broker, req, h, host):
    return {
        "throttle_time_ms": 0,
        "filter_results": [
            {
                "error_code": Error.SECURITY_DISABLED,
                "error_message": NO_AUTHORIZER,
                "matching_acls": [],
            }
            for _ in req["filters"]
        ],
    }


@handler(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS)
async def describe_user_scram_credentials(b: Broker, req, h, host):
    """No user has SCRAM credentials here (nothing makes them: PLAINTEXT only): all users
    is an empty list, a named one RESOURCE_NOT_FOUND in ZkAdminManager's words."""
    users = [u["name"] for u in req["users"] or []]
    results = []
    for user in dict.fromkeys(users):
        if not user:
            err, msg = Error.RESOURCE_NOT_FOUND, "Username must not be empty"
        elif users.count(user) > 1:
            err = Error.DUPLICATE_RESOURCE
            msg = f"Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
        else:
            err = Error.RESOURCE_NOT_FOUND
            msg = f"Attempt to describe a user credential that does not exist: {user}"
        results.append(
            {"user": user, "error_code": err, "error_message": msg, "credential_infos": []}
        )
    return {
        "throttle_time_ms": 0,
        "error_code": Error.NONE,
        "error_message": None,
        "results": results,
    }


# ---------------- log dirs, reassignments, producers ----------------


@handler(ApiKey.DESCRIBE_LOG_DIRS)
async def describe_log_dirs(b: Broker, req, h, host):
    """This broker's log directory and its replicas (ReplicaManager.describeLogDirs):
    each one's size and how far its log end is behind the high watermark."""
    wanted = None
    if req["topics"] is not None:
        wanted = {(t["topic"], p) for t in req["topics"] for p in t["partitions"]}
    topics: dict[str, list[dict]] = {}
    for (topic, p), part in sorted(b.partitions.items()):
        if wanted is not None and (topic, p) not in wanted:
            continue
        topics.setdefault(topic, []).append(
            {
                "partition_index": p,
                "partition_size": part.log.size_bytes(),
                "offset_lag": max(part.high_watermark - part.leo, 0),
                "is_future_key": False,
            }
        )
    usage = shutil.disk_usage(b.log_dir)
    return {
        "throttle_time_ms": 0,
        "error_code": Error.NONE,
        "results": [
            {
                "error_code": Error.NONE,
                "log_dir": str(b.log_dir),
                "topics": [{"name": t, "partitions": ps} for t, ps in topics.items()],
                "total_bytes": usage.total,
                "usable_bytes": usage.free,
            }
        ],
    }


@handler(ApiKey.LIST_PARTITION_REASSIGNMENTS)
async def list_partition_reassignments(b: Broker, req, h, host):
    # nothing reassigns partitions here (no AlterPartitionReassignments): none ongoing
    if not b.is_controller:
        return {"throttle_time_ms": 0, "error_code": Error.NOT_CONTROLLER, "topics": []}
    return {"throttle_time_ms": 0, "error_code": Error.NONE, "error_message": None, "topics": []}


@handler(ApiKey.DESCRIBE_PRODUCERS)
async def describe_producers(b: Broker, req, h, host):
    """The idempotent and transactional producers a partition's leader knows (what
    kafka-transactions.sh describe-producers and find-hanging read)."""
    topics = []
    for t in req["topics"]:
        parts = []
        for p in t["partition_indexes"]:
            err = b.partition_error(t["name"], p)
            active = []
            if err == Error.NONE:
                part = b.partitions[(t["name"], p)]
                active = [
                    {
                        "producer_id": pid,
                        "producer_epoch": st.epoch,
                        "last_sequence": st.last_seq,
                        "last_timestamp": -1,  # not kept
                        "coordinator_epoch": st.coordinator_epoch,
                        "current_txn_start_offset": part.txns.ongoing.get(pid, -1),
                    }
                    for pid, st in sorted(part.producers.items())
                ]
            parts.append({"partition_index": p, "error_code": err, "active_producers": active})
        topics.append({"name": t["name"], "partitions": parts})
    return {"throttle_time_ms": 0, "topics": topics}
