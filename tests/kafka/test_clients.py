"""Unmodified public clients against one racklab broker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from .clients import PolledGroup, group_consumer, group_story, poll_until, send_values


def _topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def create_topic(bootstrap: str, name: str, partitions: int, rf: int = 1) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(name, partitions, rf)])
    admin.close()


@pytest.mark.parametrize("zk_server", ["apache", "racklab"], indirect=True)
def test_kafka_python_defaults_are_idempotent_acks_all(broker):
    topic = _topic("idem")
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    assert p.config["enable_idempotence"] and p.config["acks"] in (-1, "all")
    for i in range(50):
        p.send(topic, key=str(i % 3).encode(), value=f"v{i}".encode())
    p.flush(30)
    p.close()
    c = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=4000,
    )
    vals = sorted(m.value for m in c)
    c.close()
    assert vals == sorted(f"v{i}".encode() for i in range(50))


def test_group_of_three_over_six_partitions_rebalances_when_one_leaves(broker):
    topic = _topic("grp")
    create_topic(broker.bootstrap, topic, 6)
    group = _topic("g")
    consumers = [
        KafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            # Kafka's default session (45 s): a member leaving says so (LeaveGroup), and
            # a 6 s session let a loaded CI machine's late heartbeats expire members
            session_timeout_ms=45000,
            heartbeat_interval_ms=500,
            max_poll_interval_ms=20000,
        )
        for _ in range(3)
    ]
    # each member polled by a thread of its own, as applications run them (see PolledGroup)
    members = PolledGroup(consumers)
    try:
        sizes = members.wait_sizes([2, 2, 2], 40)
        assert sizes == [2, 2, 2], group_story(broker, group, members)
        assert {tp.partition for tp in members.union()} == set(range(6))
        members.close(2)
        sizes = members.wait_sizes([3, 3], 40)
        assert sizes == [3, 3], group_story(broker, group, members)
        assert {tp.partition for tp in members.union()} == set(range(6))
        # the survivors consume everything produced now
        p = KafkaProducer(bootstrap_servers=broker.bootstrap)
        for i in range(60):
            p.send(topic, f"after-{i}".encode(), partition=i % 6)
        p.flush(30)
        p.close()
        got = members.wait_values(60, 30)
    finally:
        members.close_all()
    assert sorted(got) == sorted(f"after-{i}".encode() for i in range(60))


def test_point_to_point_vs_publish_subscribe(broker):
    topic = _topic("pp")
    create_topic(broker.bootstrap, topic, 4)
    everything = sorted(f"m{i}".encode() for i in range(40))

    def members(group: str, n: int):
        return [
            KafkaConsumer(
                topic,
                bootstrap_servers=broker.bootstrap,
                group_id=group,
                auto_offset_reset="earliest",
                session_timeout_ms=45000,  # Kafka's default (see the rebalance test)
                heartbeat_interval_ms=500,
            )
            for _ in range(n)
        ]

    # one group of two members, both assigned before anything is produced; each member
    # polled by a thread of its own (see PolledGroup: one loop over both members can
    # keep the group rebalancing past any deadline on a loaded machine)
    shared_group = _topic("shared")
    shared = PolledGroup(members(shared_group, 2))
    try:
        sizes = shared.wait_sizes([2, 2], 40)
        assert sizes == [2, 2], group_story(broker, shared_group, shared)
        # two more groups of one member each
        subscribers = [members(_topic("sub"), 1)[0] for _ in range(2)]
        for c in subscribers:
            deadline = time.monotonic() + 30
            while not c.assignment() and time.monotonic() < deadline:
                c.poll(timeout_ms=200)

        p = KafkaProducer(bootstrap_servers=broker.bootstrap)
        for i in range(40):
            p.send(topic, f"m{i}".encode(), partition=i % 4)
        p.flush(30)
        p.close()

        # point-to-point: each message reaches exactly one member of the shared group
        shared.wait_values(40, 40)
    finally:
        shared.close_all()
    per_member = shared.values
    assert sorted(per_member[0] + per_member[1]) == everything
    assert len(per_member[0]) == len(per_member[1]) == 20
    assert not set(per_member[0]) & set(per_member[1])

    # publish-subscribe: each other group gets every message
    for c in subscribers:
        got = [r.value for r in poll_until(c, 40, 30)]
        c.close()
        assert sorted(got) == everything


def test_committed_offsets_resume_the_group(broker):
    topic = _topic("commit")
    group = _topic("g")
    send_values(broker.bootstrap, topic, [f"m{i}".encode() for i in range(20)])
    c = group_consumer(broker.bootstrap, topic, group)
    first = poll_until(c, 20, 30)
    assert len(first) == 20
    c.commit()
    c.close()
    send_values(broker.bootstrap, topic, [f"m{i}".encode() for i in range(20, 25)])
    c = group_consumer(broker.bootstrap, topic, group)
    second = poll_until(c, 5, 30)
    c.close()
    assert [r.value for r in second] == [f"m{i}".encode() for i in range(20, 25)]


def test_aiokafka_producer_and_group_consumer(broker):
    aiokafka = pytest.importorskip("aiokafka")
    topic = _topic("aio")

    async def run():
        prod = aiokafka.AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap, enable_idempotence=True
        )
        await prod.start()
        try:
            for i in range(30):
                await prod.send_and_wait(topic, f"a{i}".encode())
        finally:
            await prod.stop()
        cons = aiokafka.AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id=_topic("aio-g"),
            auto_offset_reset="earliest",
        )
        await cons.start()
        got = []
        try:
            deadline = time.monotonic() + 30
            while len(got) < 30 and time.monotonic() < deadline:
                batch = await cons.getmany(timeout_ms=500)
                for recs in batch.values():
                    got.extend(r.value for r in recs)
            await cons.commit()
        finally:
            await cons.stop()
        return got

    got = asyncio.run(run())
    assert got == [f"a{i}".encode() for i in range(30)]


# gzip batches are decompressed and checked by the broker; the others are stored
# and served as sent (librdkafka carries all four codecs)
@pytest.mark.parametrize("compression", ["gzip", "lz4", "zstd", "snappy", "none"])
def test_confluent_kafka_producer_and_consumer(broker, compression):
    ck = pytest.importorskip("confluent_kafka")
    topic = _topic("ck")
    prod = ck.Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "enable.idempotence": True,
            "compression.type": compression,
            "linger.ms": 5,
        }
    )
    delivered = []
    for i in range(100):
        prod.produce(
            topic,
            f"c{i}".encode(),
            on_delivery=lambda err, msg: delivered.append((err, msg.offset())),
        )
    assert prod.flush(30) == 0
    assert [e for e, _ in delivered if e is not None] == []
    assert sorted(o for _, o in delivered) == list(range(100))
    cons = ck.Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": _topic("ckg"),
            "auto.offset.reset": "earliest",
        }
    )
    cons.subscribe([topic])
    got = []
    deadline = time.monotonic() + 40
    while len(got) < 100 and time.monotonic() < deadline:
        m = cons.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.value())
    cons.close()
    assert got == [f"c{i}".encode() for i in range(100)]


def test_kcat_lists_brokers_and_partitions(broker):
    topic = _topic("kcat")
    create_topic(broker.bootstrap, topic, 3)
    out = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-L", "-J"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    meta = json.loads(out.stdout)
    assert [b["name"] for b in meta["brokers"]] == [f"{broker.bootstrap}/0"] or [
        b["id"] for b in meta["brokers"]
    ] == [0]
    t = next(t for t in meta["topics"] if t["topic"] == topic)
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2]
    assert all(p["leader"] == 0 for p in t["partitions"])


def test_kcat_produce_and_consume(broker):
    topic = _topic("kcatpc")
    lines = "".join(f"line-{i}\n" for i in range(20))
    out = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-P", "-t", topic, "-p", "0"],
        input=lines,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    out = subprocess.run(
        [
            "kcat",
            "-b",
            broker.bootstrap,
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-c",
            "20",
            "-f",
            "%p:%o:%s\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"0:{i}:line-{i}" for i in range(20)]
