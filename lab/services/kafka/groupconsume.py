"""`lab kafka consume TOPIC --group G`, as kafka-console-consumer.sh --group does it: the
command joins the group as a consumer (JoinGroup, and SyncGroup with the range assignor's
split when it is the leader), reads its partitions from the group's committed offsets
(or, where none is committed, from the start with --from-beginning and from the end
without: auto.offset.reset), commits what it printed and leaves the group. Over
racklab's own protocol client, so it works against any Kafka broker.

The consumer protocol's Subscription and Assignment (version 0) are Kafka's
ConsumerProtocol structs: written here by hand, as they are bytes inside JoinGroup and
SyncGroup, not Kafka API messages."""

from __future__ import annotations

import struct

from .admin import Cluster, _err, _list_offset, coordinator, fetch_from
from .protocol.api import ApiKey
from .protocol.errors import Error

V_JOIN, V_SYNC, V_COMMIT, V_LEAVE, V_OFFSET_FETCH = 5, 3, 7, 3, 7
SESSION_MS, REBALANCE_MS = 45000, 30000  # the Java consumer's defaults


def _string(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def subscription(topics: list[str]) -> bytes:
    """ConsumerProtocolSubscription v0: version, topics, user data (null)."""
    return (
        struct.pack(">hi", 0, len(topics))
        + b"".join(_string(t) for t in topics)
        + struct.pack(">i", -1)
    )


def subscribed_topics(metadata: bytes) -> list[str]:
    (n,) = struct.unpack_from(">i", metadata, 2)
    pos, out = 6, []
    for _ in range(max(n, 0)):
        (size,) = struct.unpack_from(">h", metadata, pos)
        out.append(metadata[pos + 2 : pos + 2 + size].decode())
        pos += 2 + size
    return out


def assignment(parts: dict[str, list[int]]) -> bytes:
    """ConsumerProtocolAssignment v0: version, (topic, partitions)..., user data (null)."""
    b = bytearray(struct.pack(">hi", 0, len(parts)))
    for topic, ps in sorted(parts.items()):
        b += _string(topic) + struct.pack(f">i{len(ps)}i", len(ps), *ps)
    return bytes(b + struct.pack(">i", -1))


def assigned(data: bytes) -> dict[str, list[int]]:
    if not data:
        return {}
    (n,) = struct.unpack_from(">i", data, 2)
    pos, out = 6, {}
    for _ in range(n):
        (size,) = struct.unpack_from(">h", data, pos)
        topic = data[pos + 2 : pos + 2 + size].decode()
        pos += 2 + size
        (count,) = struct.unpack_from(">i", data, pos)
        out[topic] = list(struct.unpack_from(f">{count}i", data, pos + 4))
        pos += 4 + 4 * count
    return out


def range_assign(members: list[dict], partitions: dict[str, list[int]]) -> dict[str, dict]:
    """Kafka's RangeAssignor: per topic, its partitions in order split into contiguous
    ranges over the members subscribed to it, sorted by member id; the first
    (partitions % members) members get one more."""
    out: dict[str, dict[str, list[int]]] = {m["member_id"]: {} for m in members}
    for topic, ps in partitions.items():
        subs = sorted(m["member_id"] for m in members if topic in subscribed_topics(m["metadata"]))
        if not subs:
            continue
        per, extra = divmod(len(ps), len(subs))
        start = 0
        for i, member in enumerate(subs):
            n = per + (1 if i < extra else 0)
            if n:
                out[member][topic] = sorted(ps)[start : start + n]
            start += n
    return out


async def consume_group(
    bootstrap: str,
    group: str,
    topic: str,
    from_beginning: bool = False,
    max_messages: int = 100,
    timeout_s: float = 5.0,
) -> list[dict]:
    cl = Cluster(bootstrap)
    md = await cl.metadata([topic])
    t = md["topics"][0]
    if t["error_code"]:
        raise _err(t["error_code"], f"topic {topic}")
    leaders = {p["partition_index"]: p["leader_id"] for p in t["partitions"]}
    try:
        coord = await coordinator(cl, group)
        member, generation, mine = await _join(coord, group, topic, leaders)
        try:
            positions = await _start_positions(
                cl, coord, group, topic, mine, leaders, from_beginning
            )
            ours = {p: leaders[p] for p in mine}
            out = await fetch_from(cl, topic, ours, positions, max_messages, timeout_s)
            if out:
                await _commit(coord, group, generation, member, topic, out)
            return out
        finally:
            await coord.request(
                ApiKey.LEAVE_GROUP,
                V_LEAVE,
                {"group_id": group, "members": [{"member_id": member, "group_instance_id": None}]},
            )
    finally:
        await cl.close()


async def _join(coord, group: str, topic: str, leaders: dict[int, int]):
    """-> (member id, generation, this member's partitions of `topic`)."""
    member = ""
    for _ in range(5):
        jr = await coord.request(
            ApiKey.JOIN_GROUP,
            V_JOIN,
            {
                "group_id": group,
                "session_timeout_ms": SESSION_MS,
                "rebalance_timeout_ms": REBALANCE_MS,
                "member_id": member,
                "group_instance_id": None,
                "protocol_type": "consumer",
                "protocols": [{"name": "range", "metadata": subscription([topic])}],
            },
            REBALANCE_MS / 1000 + 10,
        )
        if jr["error_code"] == Error.MEMBER_ID_REQUIRED:  # KIP-394: join again with it
            member = jr["member_id"]
            continue
        if jr["error_code"]:
            raise _err(jr["error_code"], f"join group {group}")
        member, generation = jr["member_id"], jr["generation_id"]
        plan = []
        if jr["leader"] == member:
            split = range_assign(jr["members"], {topic: sorted(leaders)})
            plan = [{"member_id": m, "assignment": assignment(a)} for m, a in split.items()]
        sr = await coord.request(
            ApiKey.SYNC_GROUP,
            V_SYNC,
            {
                "group_id": group,
                "generation_id": generation,
                "member_id": member,
                "group_instance_id": None,
                "assignments": plan,
            },
            REBALANCE_MS / 1000 + 10,
        )
        if sr["error_code"] == Error.REBALANCE_IN_PROGRESS:
            continue
        if sr["error_code"]:
            raise _err(sr["error_code"], f"sync group {group}")
        return member, generation, assigned(sr["assignment"]).get(topic, [])
    raise _err(Error.REBALANCE_IN_PROGRESS, f"join group {group}", "still rebalancing")


async def _start_positions(cl, coord, group, topic, mine, leaders, from_beginning) -> dict:
    of = await coord.request(
        ApiKey.OFFSET_FETCH,
        V_OFFSET_FETCH,
        {
            "group_id": group,
            "topics": [{"name": topic, "partition_indexes": mine}],
            "require_stable": False,
        },
    )
    if of["error_code"]:
        raise _err(of["error_code"], f"offsets of group {group}")
    committed = {
        p["partition_index"]: p["committed_offset"]
        for t in of["topics"]
        for p in t["partitions"]
        if p["committed_offset"] >= 0
    }
    reset = -2 if from_beginning else -1  # auto.offset.reset earliest / latest
    return {
        p: committed[p] if p in committed else await _list_offset(cl, topic, p, leaders[p], reset)
        for p in mine
    }


async def _commit(coord, group, generation, member, topic, records) -> None:
    upto: dict[int, int] = {}
    for r in records:
        upto[r["partition"]] = max(upto.get(r["partition"], -1), r["offset"] + 1)
    resp = await coord.request(
        ApiKey.OFFSET_COMMIT,
        V_COMMIT,
        {
            "group_id": group,
            "generation_id_or_member_epoch": generation,
            "member_id": member,
            "group_instance_id": None,
            "topics": [
                {
                    "name": topic,
                    "partitions": [
                        {
                            "partition_index": p,
                            "committed_offset": o,
                            "committed_leader_epoch": -1,
                            "committed_metadata": "",
                        }
                        for p, o in sorted(upto.items())
                    ],
                }
            ],
        },
    )
    for t in resp["topics"]:
        for p in t["partitions"]:
            if p["error_code"]:
                raise _err(p["error_code"], f"commit offsets of group {group}")
