"""Broker semantics seen on the wire with racklab's own protocol client:
idempotent-producer sequence checks, Fetch long polling, ListOffsets."""

from __future__ import annotations

import asyncio
import time

from lab.services.kafka import admin
from lab.services.kafka.client import Connection
from lab.services.kafka.protocol import records as rec
from lab.services.kafka.protocol.api import ApiKey
from lab.services.kafka.protocol.errors import Error


def _produce_body(topic: str, batch: bytes, acks: int = -1) -> dict:
    return {
        "transactional_id": None,
        "acks": acks,
        "timeout_ms": 5000,
        "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": batch}]}],
    }


def test_idempotent_sequences(broker):
    admin.run(admin.create_topic(broker.bootstrap, "idem", 1, 1))

    async def run():
        c = Connection(broker.host, broker.port)
        pid = await c.request(
            ApiKey.INIT_PRODUCER_ID, 4, {"transactional_id": None, "transaction_timeout_ms": 60000}
        )
        assert pid["error_code"] == 0
        p, e = pid["producer_id"], pid["producer_epoch"]

        async def send(seq: int, n: int = 2):
            b = rec.build_batch(
                [(None, b"x%d" % (seq + i)) for i in range(n)],
                producer_id=p,
                producer_epoch=e,
                base_sequence=seq,
            )
            r = await c.request(ApiKey.PRODUCE, 8, _produce_body("idem", b))
            return r["responses"][0]["partition_responses"][0]

        first = await send(0)
        assert (first["error_code"], first["base_offset"]) == (0, 0)
        second = await send(2)
        assert (second["error_code"], second["base_offset"]) == (0, 2)
        # a retry of the first batch: accepted, original offset, not written twice
        retry = await send(0)
        assert (retry["error_code"], retry["base_offset"]) == (0, 0)
        gap = await send(7)
        assert gap["error_code"] == Error.OUT_OF_ORDER_SEQUENCE_NUMBER
        # an unknown producer id that does not start at 0
        b = rec.build_batch([(None, b"?")], producer_id=p + 999, producer_epoch=0, base_sequence=5)
        r = await c.request(ApiKey.PRODUCE, 8, _produce_body("idem", b))
        assert (
            r["responses"][0]["partition_responses"][0]["error_code"] == Error.UNKNOWN_PRODUCER_ID
        )
        lo = await c.request(
            ApiKey.LIST_OFFSETS,
            5,
            {
                "replica_id": -1,
                "isolation_level": 0,
                "topics": [
                    {
                        "name": "idem",
                        "partitions": [
                            {"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}
                        ],
                    }
                ],
            },
        )
        assert lo["topics"][0]["partitions"][0]["offset"] == 4
        await c.close()

    asyncio.run(run())


def test_fetch_long_poll_wakes_on_new_data(broker):
    admin.run(admin.create_topic(broker.bootstrap, "poll", 1, 1))

    async def run():
        c = Connection(broker.host, broker.port)
        body = {
            "replica_id": -1,
            "max_wait_ms": 20000,
            "min_bytes": 1,
            "max_bytes": 1 << 20,
            "isolation_level": 0,
            "session_id": 0,
            "session_epoch": -1,
            "topics": [
                {
                    "topic": "poll",
                    "partitions": [
                        {
                            "partition": 0,
                            "current_leader_epoch": -1,
                            "fetch_offset": 0,
                            "log_start_offset": -1,
                            "partition_max_bytes": 1 << 20,
                        }
                    ],
                }
            ],
            "forgotten_topics_data": [],
            "rack_id": "",
        }
        t0 = time.monotonic()
        pending = asyncio.create_task(c.request(ApiKey.FETCH, 11, body, timeout=60))
        await asyncio.sleep(0.5)
        assert not pending.done()  # nothing to return yet: the fetch waits
        await admin.produce(broker.bootstrap, "poll", [b"wake up"])
        r = await pending
        waited = time.monotonic() - t0
        recs = rec.read_records(r["responses"][0]["partitions"][0]["records"])
        assert [x.value for x in recs] == [b"wake up"]
        assert waited < 15  # answered when the data came, not at max_wait (20 s)
        # min_bytes above what exists: waits max_wait, then answers with what there is
        body["max_wait_ms"], body["min_bytes"] = 300, 1 << 20
        r = await c.request(ApiKey.FETCH, 11, body)
        assert len(rec.read_records(r["responses"][0]["partitions"][0]["records"])) == 1
        await c.close()

    asyncio.run(run())


def test_topic_level_overrides_and_message_too_large(broker):
    admin.run(
        admin.create_topic(
            broker.bootstrap,
            "small",
            1,
            1,
            config={"max.message.bytes": "2000", "segment.bytes": "4096"},
        )
    )

    async def run():
        c = Connection(broker.host, broker.port)
        big = rec.build_batch([(None, b"z" * 3000)])
        r = await c.request(ApiKey.PRODUCE, 8, _produce_body("small", big))
        assert r["responses"][0]["partition_responses"][0]["error_code"] == Error.MESSAGE_TOO_LARGE
        for i in range(12):
            ok = rec.build_batch([(None, b"%d" % i + b"y" * 1000)])
            r = await c.request(ApiKey.PRODUCE, 8, _produce_body("small", ok))
            assert r["responses"][0]["partition_responses"][0]["error_code"] == 0
        await c.close()

    asyncio.run(run())
    segments = list((broker.dir / "logs" / "small-0").glob("*.log"))
    assert len(segments) >= 3  # segment.bytes=4096 from the topic's config rolled the log


def test_join_group_member_id_required_then_sync(broker):
    async def run():
        c = Connection(broker.host, broker.port, client_id="raw-member")
        fc = await c.request(ApiKey.FIND_COORDINATOR, 3, {"key": "raw", "key_type": 0})
        assert fc["error_code"] == 0 and fc["port"] == broker.port
        join = {
            "group_id": "raw",
            "session_timeout_ms": 10000,
            "rebalance_timeout_ms": 10000,
            "member_id": "",
            "group_instance_id": None,
            "protocol_type": "consumer",
            "protocols": [{"name": "range", "metadata": b"m"}],
        }
        first = await c.request(ApiKey.JOIN_GROUP, 7, join)
        assert first["error_code"] == Error.MEMBER_ID_REQUIRED
        assert first["member_id"].startswith("raw-member-")
        join["member_id"] = first["member_id"]
        second = await c.request(ApiKey.JOIN_GROUP, 7, join)
        assert second["error_code"] == 0 and second["generation_id"] == 1
        assert second["leader"] == first["member_id"] and second["protocol_name"] == "range"
        assert [m["member_id"] for m in second["members"]] == [first["member_id"]]
        sync = await c.request(
            ApiKey.SYNC_GROUP,
            5,
            {
                "group_id": "raw",
                "generation_id": 1,
                "member_id": first["member_id"],
                "group_instance_id": None,
                "protocol_type": "consumer",
                "protocol_name": "range",
                "assignments": [{"member_id": first["member_id"], "assignment": b"all yours"}],
            },
        )
        assert (sync["error_code"], sync["assignment"]) == (0, b"all yours")
        hb = await c.request(
            ApiKey.HEARTBEAT,
            4,
            {
                "group_id": "raw",
                "generation_id": 0,
                "member_id": first["member_id"],
                "group_instance_id": None,
            },
        )
        assert hb["error_code"] == Error.ILLEGAL_GENERATION
        dg = await c.request(
            ApiKey.DESCRIBE_GROUPS, 5, {"groups": ["raw"], "include_authorized_operations": False}
        )
        assert dg["groups"][0]["group_state"] == "Stable"
        lv = await c.request(
            ApiKey.LEAVE_GROUP,
            4,
            {
                "group_id": "raw",
                "members": [{"member_id": first["member_id"], "group_instance_id": None}],
            },
        )
        assert lv["error_code"] == 0 and lv["members"][0]["error_code"] == 0
        dg = await c.request(
            ApiKey.DESCRIBE_GROUPS, 5, {"groups": ["raw"], "include_authorized_operations": False}
        )
        assert dg["groups"][0]["group_state"] == "Empty"
        await c.close()

    asyncio.run(run())


def test_auto_create_with_too_few_brokers_says_so(make_broker):
    b = make_broker(0, default_replication_factor=3)

    async def run():
        c = Connection(b.host, b.port)
        md = await c.request(
            ApiKey.METADATA,
            9,
            {"topics": [{"name": "needs-three"}], "allow_auto_topic_creation": True},
        )
        await c.close()
        return md["topics"][0]["error_code"]

    assert asyncio.run(run()) == Error.INVALID_REPLICATION_FACTOR


def test_commit_allowed_while_preparing_rebalance_refused_while_completing(broker):
    """Kafka accepts the commit a member makes before rejoining (PreparingRebalance)
    and refuses commits while the new assignment is handed out (CompletingRebalance)."""

    async def run():
        a = Connection(broker.host, broker.port, client_id="a")
        b2 = Connection(broker.host, broker.port, client_id="b")
        await a.request(ApiKey.FIND_COORDINATOR, 3, {"key": "cg", "key_type": 0})
        join = {
            "group_id": "cg",
            "session_timeout_ms": 10000,
            "rebalance_timeout_ms": 10000,
            "member_id": "",
            "group_instance_id": None,
            "protocol_type": "consumer",
            "protocols": [{"name": "range", "metadata": b""}],
        }
        mid = (await a.request(ApiKey.JOIN_GROUP, 7, join))["member_id"]
        j = await a.request(ApiKey.JOIN_GROUP, 7, dict(join, member_id=mid))
        gen = j["generation_id"]

        def commit(generation):
            return a.request(
                ApiKey.OFFSET_COMMIT,
                8,
                {
                    "group_id": "cg",
                    "generation_id_or_member_epoch": generation,
                    "member_id": mid,
                    "group_instance_id": None,
                    "topics": [
                        {
                            "name": "t",
                            "partitions": [
                                {
                                    "partition_index": 0,
                                    "committed_offset": 5,
                                    "committed_leader_epoch": -1,
                                    "committed_metadata": "",
                                }
                            ],
                        }
                    ],
                },
            )

        # CompletingRebalance: joined, not yet synced
        r = await commit(gen)
        assert r["topics"][0]["partitions"][0]["error_code"] == Error.REBALANCE_IN_PROGRESS
        await a.request(
            ApiKey.SYNC_GROUP,
            5,
            {
                "group_id": "cg",
                "generation_id": gen,
                "member_id": mid,
                "group_instance_id": None,
                "protocol_type": "consumer",
                "protocol_name": "range",
                "assignments": [],
            },
        )
        # a second member starts a rebalance: PreparingRebalance until a rejoins
        mid_b = (await b2.request(ApiKey.JOIN_GROUP, 7, join))["member_id"]
        pending = asyncio.create_task(b2.request(ApiKey.JOIN_GROUP, 7, dict(join, member_id=mid_b)))
        await asyncio.sleep(0.3)
        r = await commit(gen)
        assert r["topics"][0]["partitions"][0]["error_code"] == 0
        r = await commit(gen + 7)
        assert r["topics"][0]["partitions"][0]["error_code"] == Error.ILLEGAL_GENERATION
        await a.request(ApiKey.JOIN_GROUP, 7, dict(join, member_id=mid))  # completes the rebalance
        await pending
        await a.close()
        await b2.close()

    asyncio.run(run())
