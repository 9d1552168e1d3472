"""What `lab kafka ...` does, as plain functions over racklab's own protocol
client (the same generated codecs as the broker): topics (create, list,
describe with leader, replicas and ISR, delete), produce and consume from a
terminal, consumer-group listing and lag. Every function takes a bootstrap
string "host:port[,host:port]" and returns plain data for printing or --json.

They speak the wire protocol, so they work against any Kafka, not only racklab's.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

from .client import Connection, KafkaError
from .protocol import records as rec
from .protocol.api import ApiKey
from .protocol.errors import Error

# versions used by these commands (all inside what the broker serves)
V_METADATA, V_CREATE, V_DELETE, V_PRODUCE, V_FETCH, V_LIST_OFFSETS = 9, 5, 4, 8, 11, 5
V_FIND_COORD, V_OFFSET_FETCH, V_LIST_GROUPS, V_DESCRIBE_GROUPS = 3, 7, 4, 5


class AdminError(Exception):
    """A refusal from the cluster, worded for a person."""


def _err(code: int, what: str, message: str | None = None) -> AdminError:
    name = Error(code).name if code in Error._value2member_map_ else str(code)
    return AdminError(f"{what}: {name}" + (f" ({message})" if message else ""))


def murmur2_partition(key: bytes, n: int) -> int:
    """The Java client's default partitioner (murmur2 of the key), so keyed
    records land where Java, kafka-python and librdkafka's consistent_random put them."""
    m, r = 0x5BD1E995, 24
    length = len(key)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(key[4 * i : 4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    rest = length & ~3
    extra = length % 4
    if extra == 3:
        h ^= key[rest + 2] << 16
    if extra >= 2:
        h ^= key[rest + 1] << 8
    if extra >= 1:
        h ^= key[rest]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % n


@dataclass
class Cluster:
    """Connections to a cluster's brokers, found from the bootstrap list."""

    bootstrap: str
    timeout: float = 10
    conns: dict[int, Connection] = field(default_factory=dict)
    brokers: dict[int, tuple[str, int]] = field(default_factory=dict)
    controller: int = -1
    cluster_id: str | None = None

    async def _any(self) -> Connection:
        last = None
        for hp in self.bootstrap.split(","):
            host, _, port = hp.strip().rpartition(":")
            c = Connection(host, int(port), client_id="racklab-admin")
            try:
                await c.connect(self.timeout)
                return c
            except OSError as e:
                last = e
        raise AdminError(f"no broker of {self.bootstrap} answers: {last}")

    async def metadata(self, topics: list[str] | None = None, auto_create: bool = False) -> dict:
        c = await self._any()
        try:
            body = {
                "topics": None if topics is None else [{"name": t} for t in topics],
                "allow_auto_topic_creation": auto_create,
            }
            md = await c.request(ApiKey.METADATA, V_METADATA, body, self.timeout)
        finally:
            await c.close()
        self.brokers = {b["node_id"]: (b["host"], b["port"]) for b in md["brokers"]}
        self.controller = md["controller_id"]
        self.cluster_id = md["cluster_id"]
        return md

    async def conn(self, broker_id: int) -> Connection:
        c = self.conns.get(broker_id)
        if c is None:
            if broker_id not in self.brokers:
                await self.metadata([])
            host, port = self.brokers[broker_id]
            c = self.conns[broker_id] = Connection(host, port, client_id="racklab-admin")
            await c.connect(self.timeout)
        return c

    async def close(self) -> None:
        for c in self.conns.values():
            await c.close()
        self.conns.clear()


def run(coro):
    """Sync entry for the CLI."""
    return asyncio.run(coro)


# ---------------- topics ----------------


async def list_topics(bootstrap: str, include_internal: bool = False) -> list[str]:
    cl = Cluster(bootstrap)
    md = await cl.metadata(None)
    return sorted(t["name"] for t in md["topics"] if include_internal or not t["is_internal"])


async def describe_topics(bootstrap: str, topics: list[str] | None = None) -> list[dict]:
    """Per topic: partitions with leader, replicas, ISR and offline replicas."""
    cl = Cluster(bootstrap)
    md = await cl.metadata(topics)
    out = []
    for t in sorted(md["topics"], key=lambda t: t["name"]):
        if t["error_code"]:
            raise _err(t["error_code"], f"topic {t['name']}")
        out.append(
            {
                "topic": t["name"],
                "internal": t["is_internal"],
                "partitions": [
                    {
                        "partition": p["partition_index"],
                        "leader": p["leader_id"],
                        "leader_epoch": p["leader_epoch"],
                        "replicas": p["replica_nodes"],
                        "isr": p["isr_nodes"],
                        "offline": p["offline_replicas"],
                    }
                    for p in sorted(t["partitions"], key=lambda p: p["partition_index"])
                ],
            }
        )
    return out


async def _to_controller(bootstrap: str, api: int, version: int, body: dict, timeout_ms: int):
    """One admin request to the controller (any broker while there is none), given
    ten seconds beyond the broker's own `timeout_ms`."""
    cl = Cluster(bootstrap)
    await cl.metadata([])
    c = await cl.conn(cl.controller if cl.controller >= 0 else next(iter(cl.brokers)))
    try:
        return await c.request(api, version, body, timeout_ms / 1000 + 10)
    finally:
        await cl.close()


async def create_topic(
    bootstrap: str,
    name: str,
    partitions: int = -1,
    replication_factor: int = -1,
    config: dict[str, str] | None = None,
    timeout_ms: int = 30000,
) -> dict:
    resp = await _to_controller(
        bootstrap,
        ApiKey.CREATE_TOPICS,
        V_CREATE,
        {
            "topics": [
                {
                    "name": name,
                    "num_partitions": partitions,
                    "replication_factor": replication_factor,
                    "assignments": [],
                    "configs": [{"name": k, "value": v} for k, v in (config or {}).items()],
                }
            ],
            "timeout_ms": timeout_ms,
            "validate_only": False,
        },
        timeout_ms,
    )
    t = resp["topics"][0]
    if t["error_code"]:
        raise _err(t["error_code"], f"cannot create topic {name}", t["error_message"])
    return {
        "topic": name,
        "partitions": t["num_partitions"],
        "replication_factor": t["replication_factor"],
    }


async def delete_topic(bootstrap: str, name: str, timeout_ms: int = 30000) -> None:
    resp = await _to_controller(
        bootstrap,
        ApiKey.DELETE_TOPICS,
        V_DELETE,
        {"topic_names": [name], "timeout_ms": timeout_ms},
        timeout_ms,
    )
    r = resp["responses"][0]
    if r["error_code"]:
        raise _err(r["error_code"], f"cannot delete topic {name}")


# ---------------- produce / consume ----------------


async def produce(
    bootstrap: str,
    topic: str,
    values: list[bytes],
    keys: list[bytes | None] | None = None,
    partition: int | None = None,
    acks: int = -1,
    timeout_ms: int = 30000,
) -> list[dict]:
    """Send records (one batch per partition); returns partition and offset of each."""
    cl = Cluster(bootstrap)
    md = await cl.metadata([topic], auto_create=True)
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        t = md["topics"][0]
        leaders = {p["partition_index"]: p["leader_id"] for p in t["partitions"]}
        if t["error_code"] == 0 and leaders and all(v >= 0 for v in leaders.values()):
            break
        if time.monotonic() > deadline:
            raise _err(t["error_code"] or Error.LEADER_NOT_AVAILABLE, f"topic {topic}")
        await asyncio.sleep(0.3)
        md = await cl.metadata([topic], auto_create=True)
    n = len(leaders)
    if partition is not None and partition not in leaders:
        # the words of Kafka's own producer for a partition the topic does not have
        raise AdminError(
            f"Partition {partition} of topic {topic} with partition count {n} "
            "is not present in metadata"
        )
    keys = keys or [None] * len(values)
    rr = itertools.count()
    by_part: dict[int, list[tuple[int, bytes | None, bytes]]] = {}
    for i, (k, v) in enumerate(zip(keys, values, strict=True)):
        p = (
            partition
            if partition is not None
            else (murmur2_partition(k, n) if k is not None else next(rr) % n)
        )
        by_part.setdefault(p, []).append((i, k, v))
    results: list[dict] = [{} for _ in values]
    try:
        for p, items in by_part.items():
            c = await cl.conn(leaders[p])
            batch = rec.build_batch([(k, v) for _, k, v in items])
            resp = (
                await c.request(
                    ApiKey.PRODUCE,
                    V_PRODUCE,
                    {
                        "transactional_id": None,
                        "acks": acks,
                        "timeout_ms": timeout_ms,
                        "topic_data": [
                            {"name": topic, "partition_data": [{"index": p, "records": batch}]}
                        ],
                    },
                    timeout_ms / 1000 + 10,
                )
                if acks != 0
                else None
            )
            if resp is None:
                continue
            pr = resp["responses"][0]["partition_responses"][0]
            if pr["error_code"]:
                raise _err(pr["error_code"], f"produce to {topic}-{p}", pr.get("error_message"))
            for j, (i, _, _) in enumerate(items):
                results[i] = {"partition": p, "offset": pr["base_offset"] + j}
    finally:
        await cl.close()
    return results


async def consume(
    bootstrap: str,
    topic: str,
    from_beginning: bool = True,
    max_messages: int = 100,
    timeout_s: float = 5.0,
    partitions: list[int] | None = None,
) -> list[dict]:
    """Read without a group (like kafka-console-consumer's --partition mode):
    from the start (or the end) of each partition until max_messages or timeout."""
    cl = Cluster(bootstrap)
    md = await cl.metadata([topic])
    t = md["topics"][0]
    if t["error_code"]:
        raise _err(t["error_code"], f"topic {topic}")
    leaders = {
        p["partition_index"]: p["leader_id"]
        for p in t["partitions"]
        if partitions is None or p["partition_index"] in partitions
    }
    try:
        positions = {
            p: await _list_offset(cl, topic, p, leader, -2 if from_beginning else -1)
            for p, leader in leaders.items()
        }
        return await fetch_from(cl, topic, leaders, positions, max_messages, timeout_s)
    finally:
        await cl.close()


async def fetch_from(
    cl: Cluster,
    topic: str,
    leaders: dict[int, int],
    positions: dict[int, int],
    max_messages: int,
    timeout_s: float,
) -> list[dict]:
    """Records of `topic`'s partitions (partition -> leader) from `positions` on, which it
    advances, until max_messages or timeout."""
    out: list[dict] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < max_messages and time.monotonic() < deadline:
        got_any = False
        for p, leader in leaders.items():
            c = await cl.conn(leader)
            resp = await c.request(
                ApiKey.FETCH,
                V_FETCH,
                {
                    "replica_id": -1,
                    "max_wait_ms": 200,
                    "min_bytes": 1,
                    "max_bytes": 4 << 20,
                    "isolation_level": 0,
                    "session_id": 0,
                    "session_epoch": -1,
                    "topics": [
                        {
                            "topic": topic,
                            "partitions": [
                                {
                                    "partition": p,
                                    "current_leader_epoch": -1,
                                    "fetch_offset": positions[p],
                                    "log_start_offset": -1,
                                    "partition_max_bytes": 1 << 20,
                                }
                            ],
                        }
                    ],
                    "forgotten_topics_data": [],
                    "rack_id": "",
                },
                30,
            )
            pr = resp["responses"][0]["partitions"][0]
            if pr["error_code"]:
                raise _err(pr["error_code"], f"fetch {topic}-{p}")
            for r in rec.read_records(pr["records"] or b""):
                if r.offset < positions[p]:
                    continue
                out.append(
                    {
                        "partition": p,
                        "offset": r.offset,
                        "timestamp": r.timestamp,
                        "key": r.key,
                        "value": r.value,
                    }
                )
                positions[p] = r.offset + 1
                got_any = True
                if len(out) >= max_messages:
                    break
            if len(out) >= max_messages:
                break
        if not got_any:
            await asyncio.sleep(0.05)
    return out


async def _list_offset(cl: Cluster, topic: str, p: int, leader: int, ts: int) -> int:
    c = await cl.conn(leader)
    resp = await c.request(
        ApiKey.LIST_OFFSETS,
        V_LIST_OFFSETS,
        {
            "replica_id": -1,
            "isolation_level": 0,
            "topics": [
                {
                    "name": topic,
                    "partitions": [
                        {"partition_index": p, "current_leader_epoch": -1, "timestamp": ts}
                    ],
                }
            ],
        },
    )
    pr = resp["topics"][0]["partitions"][0]
    if pr["error_code"]:
        raise _err(pr["error_code"], f"list offsets of {topic}-{p}")
    return pr["offset"]


# ---------------- groups ----------------


async def list_groups(bootstrap: str) -> list[dict]:
    cl = Cluster(bootstrap)
    await cl.metadata([])
    out = []
    try:
        for bid in sorted(cl.brokers):
            c = await cl.conn(bid)
            resp = await c.request(ApiKey.LIST_GROUPS, V_LIST_GROUPS, {"states_filter": []})
            for g in resp["groups"]:
                out.append(
                    {
                        "group": g["group_id"],
                        "state": g["group_state"],
                        "protocol_type": g["protocol_type"],
                        "coordinator": bid,
                    }
                )
    finally:
        await cl.close()
    return sorted(out, key=lambda g: g["group"])


async def coordinator(cl: Cluster, group: str) -> Connection:
    """A connection to the group's coordinator (FindCoordinator, key type 0)."""
    c0 = await cl.conn(next(iter(cl.brokers)))
    fc = await c0.request(ApiKey.FIND_COORDINATOR, V_FIND_COORD, {"key": group, "key_type": 0})
    if fc["error_code"]:
        raise _err(fc["error_code"], f"coordinator of group {group}", fc.get("error_message"))
    return await cl.conn(fc["node_id"])


async def group_lag(bootstrap: str, group: str) -> dict:
    """Committed offset, log end and lag per partition, plus state and members."""
    cl = Cluster(bootstrap)
    await cl.metadata([])
    try:
        coord = await coordinator(cl, group)
        of = await coord.request(
            ApiKey.OFFSET_FETCH,
            V_OFFSET_FETCH,
            {"group_id": group, "topics": None, "require_stable": False},
        )
        if of["error_code"]:
            raise _err(of["error_code"], f"offsets of group {group}")
        dg = await coord.request(
            ApiKey.DESCRIBE_GROUPS,
            V_DESCRIBE_GROUPS,
            {"groups": [group], "include_authorized_operations": False},
        )
        g = dg["groups"][0]
        topics = sorted({t["name"] for t in of["topics"]})
        md = await cl.metadata(topics) if topics else {"topics": []}
        leaders = {
            (t["name"], p["partition_index"]): p["leader_id"]
            for t in md["topics"]
            for p in t["partitions"]
        }
        rows = []
        for t in of["topics"]:
            for p in t["partitions"]:
                if p["committed_offset"] < 0:
                    continue
                leader = leaders.get((t["name"], p["partition_index"]), -1)
                end = (
                    await _list_offset(cl, t["name"], p["partition_index"], leader, -1)
                    if leader >= 0
                    else None
                )
                rows.append(
                    {
                        "topic": t["name"],
                        "partition": p["partition_index"],
                        "committed": p["committed_offset"],
                        "log_end": end,
                        "lag": None if end is None else max(end - p["committed_offset"], 0),
                    }
                )
    finally:
        await cl.close()
    return {
        "group": group,
        "state": g["group_state"],
        "members": len(g["members"]),
        "partitions": sorted(rows, key=lambda r: (r["topic"], r["partition"])),
        "total_lag": sum(r["lag"] or 0 for r in rows),
    }


async def broker_status(host: str, port: int, timeout: float = 3) -> dict:
    """For `lab status`: what this broker says about the cluster."""
    c = Connection(host, port, client_id="racklab-status")
    await c.connect(timeout)
    try:
        md = await c.request(
            ApiKey.METADATA,
            V_METADATA,
            {"topics": None, "allow_auto_topic_creation": False},
            timeout,
        )
    finally:
        await c.close()
    parts = [p for t in md["topics"] for p in t["partitions"]]
    return {
        "cluster_id": md["cluster_id"],
        "controller": md["controller_id"],
        "brokers": len(md["brokers"]),
        "topics": len(md["topics"]),
        "partitions": len(parts),
        "under_replicated": sum(1 for p in parts if len(p["isr_nodes"]) < len(p["replica_nodes"])),
    }


__all__ = [
    "AdminError",
    "KafkaError",
    "broker_status",
    "consume",
    "create_topic",
    "delete_topic",
    "describe_topics",
    "group_lag",
    "list_groups",
    "list_topics",
    "murmur2_partition",
    "produce",
    "run",
]
