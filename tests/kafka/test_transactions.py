"""Transactions (KIP-98) with unmodified clients: confluent-kafka's transactional
producer (librdkafka), kafka-python's and aiokafka's, read_committed and
read_uncommitted consumers, against one 3-broker cluster whose transaction state is
replicated on all three (the coordinator's restart is the module's last test)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from lab.services.kafka.minicluster import KafkaMiniCluster
from lab.services.kafka.offsets import partition_for_group

TXN_PARTITIONS = 4


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, racklab_zk):
    c = KafkaMiniCluster(
        tmp_path_factory.mktemp("txn"),
        racklab_zk.hosts,
        **{
            "transaction.state.log.replication.factor": 3,
            "transaction.state.log.min.isr": 2,
            "transaction.state.log.num.partitions": TXN_PARTITIONS,
            "offsets.topic.replication.factor": 3,
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500,
        },
    )
    try:
        c.start(["127.0.0.1"] * 3)
        yield c
    finally:
        c.stop()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def txn_producer(bootstrap: str, txn_id: str, **extra) -> Producer:
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, **extra})
    p.init_transactions(60)
    return p


def open_txn(bootstrap: str, txn_id: str, topic: str, value: bytes) -> Producer:
    """A transactional producer with a transaction open and one record in it, sent."""
    p = txn_producer(bootstrap, txn_id)
    p.begin_transaction()
    p.produce(topic, value)
    p.flush(30)
    return p


def read_all(bootstrap: str, topic: str, isolation: str, want: int, timeout: float = 20):
    """Values read from the start of `topic` by a consumer of that isolation level:
    until `want` came, or for `timeout` seconds (so a test also sees what never comes)."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": _name("reader"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        m = c.poll(0.3)
        if m is not None and not m.error():
            got.append(m.value())
    # nothing more after what was wanted (an aborted record would come next)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        m = c.poll(0.3)
        if m is not None and not m.error():
            got.append(m.value())
    c.close()
    return got


def test_commit_and_abort_as_each_isolation_level_sees_them(cluster):
    bs, topic = cluster.bootstrap, _name("txn")
    p = txn_producer(bs, _name("tid"))
    p.begin_transaction()
    p.produce(topic, b"c1")
    p.produce(topic, b"c2")
    p.commit_transaction(60)
    p.begin_transaction()
    p.produce(topic, b"a1")
    p.flush(30)  # sent, so the abort has records to mark (unsent ones are purged)
    p.abort_transaction(60)
    p.begin_transaction()
    p.produce(topic, b"c3")
    p.commit_transaction(60)
    assert read_all(bs, topic, "read_committed", 3) == [b"c1", b"c2", b"c3"]
    assert read_all(bs, topic, "read_uncommitted", 4) == [b"c1", b"c2", b"a1", b"c3"]


def test_open_transaction_holds_read_committed_at_the_last_stable_offset(cluster):
    bs, topic = cluster.bootstrap, _name("lso")
    plain = Producer({"bootstrap.servers": bs})
    an_hour_ago = int(time.time() * 1000) - 3_600_000
    plain.produce(topic, b"before", partition=0, timestamp=an_hour_ago)
    plain.flush(30)
    p = open_txn(bs, _name("tid"), topic, b"open")
    plain.produce(topic, b"after")  # not transactional, but behind the open one
    plain.flush(30)
    assert read_all(bs, topic, "read_committed", 3, timeout=3) == [b"before"]
    assert read_all(bs, topic, "read_uncommitted", 3) == [b"before", b"open", b"after"]
    # ListOffsets by time answers only what the isolation level may fetch
    for isolation, offset in (("read_committed", -1), ("read_uncommitted", 1)):
        c = Consumer(
            {"bootstrap.servers": bs, "group.id": _name("t"), "isolation.level": isolation}
        )
        [at] = c.offsets_for_times([TopicPartition(topic, 0, an_hour_ago + 1)], timeout=30)
        c.close()
        assert at.offset == offset, isolation
    p.commit_transaction(60)
    assert read_all(bs, topic, "read_committed", 3) == [b"before", b"open", b"after"]


def test_consume_transform_produce_commits_offsets_only_with_the_transaction(cluster):
    bs, src, dst, group = cluster.bootstrap, _name("in"), _name("out"), _name("ctp")
    plain = Producer({"bootstrap.servers": bs})
    for i in range(4):
        plain.produce(src, f"m{i}".encode())
    plain.flush(30)
    c = Consumer(
        {
            "bootstrap.servers": bs,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    c.subscribe([src])
    p = txn_producer(bs, _name("tid"))

    def one_round(n: int, commit: bool) -> None:
        got = []
        deadline = time.monotonic() + 30
        while len(got) < n and time.monotonic() < deadline:
            m = c.poll(0.3)
            if m is not None and not m.error():
                got.append(m)
        assert len(got) == n
        p.begin_transaction()
        for m in got:
            p.produce(dst, m.value().upper())
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
        if commit:
            p.commit_transaction(60)
        else:
            p.flush(30)
            p.abort_transaction(60)

    one_round(2, commit=True)
    committed = c.committed([TopicPartition(src, 0)], 30)
    assert committed[0].offset == 2
    one_round(2, commit=False)
    committed = c.committed([TopicPartition(src, 0)], 30)
    assert committed[0].offset == 2  # the aborted transaction's offsets never appear
    c.close()
    assert read_all(bs, dst, "read_committed", 2) == [b"M0", b"M1"]
    assert read_all(bs, dst, "read_uncommitted", 4) == [b"M0", b"M1", b"M2", b"M3"]


def test_a_zombie_producer_is_fenced_by_a_new_one_with_its_id(cluster):
    bs, topic, tid = cluster.bootstrap, _name("zombie"), _name("tid")
    old = open_txn(bs, tid, topic, b"zombie")
    new = txn_producer(bs, tid)  # aborts the old one's transaction, bumps the epoch
    with pytest.raises(KafkaException) as e:
        old.commit_transaction(30)
    assert e.value.args[0].fatal() or "fenced" in str(e.value).lower()
    new.begin_transaction()
    new.produce(topic, b"new")
    new.commit_transaction(60)
    assert read_all(bs, topic, "read_committed", 1) == [b"new"]


_KILLED_PRODUCER = """
import os, sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "transactional.id": sys.argv[2],
              "transaction.timeout.ms": 3000, "message.timeout.ms": 3000})
p.init_transactions(60)
p.begin_transaction()
p.produce(sys.argv[3], b"abandoned")
p.flush(30)
os.kill(os.getpid(), 9)
"""


def test_a_transaction_left_open_by_a_killed_producer_is_aborted_by_its_timeout(cluster):
    bs, topic, tid = cluster.bootstrap, _name("abandoned"), _name("tid")
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_PRODUCER, bs, tid, topic], timeout=90, check=False
    )
    assert proc.returncode == -9
    other = txn_producer(bs, _name("tid"))
    other.begin_transaction()
    other.produce(topic, b"later")
    other.commit_transaction(60)
    # the open transaction holds read_committed back until the coordinator aborts it
    # (3 s timeout, checked every 0.5 s); then only the committed record is there
    assert read_all(bs, topic, "read_committed", 1, timeout=30) == [b"later"]
    assert read_all(bs, topic, "read_uncommitted", 2) == [b"abandoned", b"later"]


def test_kafka_python_transactional_producer(cluster):
    from kafka import KafkaConsumer, KafkaProducer

    bs, topic = cluster.bootstrap, _name("kp")
    p = KafkaProducer(bootstrap_servers=bs, transactional_id=_name("tid"))
    p.init_transactions()
    p.begin_transaction()
    p.send(topic, b"kept")
    p.commit_transaction()
    p.begin_transaction()
    p.send(topic, b"dropped")
    p.flush()
    p.abort_transaction()
    p.close()
    c = KafkaConsumer(
        topic,
        bootstrap_servers=bs,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        consumer_timeout_ms=4000,
    )
    assert [m.value for m in c] == [b"kept"]
    c.close()


def test_aiokafka_transactional_producer(cluster):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    bs, topic = cluster.bootstrap, _name("aio")

    async def run():
        p = AIOKafkaProducer(bootstrap_servers=bs, transactional_id=_name("tid"))
        await p.start()
        try:
            async with p.transaction():
                await p.send_and_wait(topic, b"kept")
            with pytest.raises(RuntimeError):
                async with p.transaction():
                    await p.send_and_wait(topic, b"dropped")
                    raise RuntimeError("abort it")
        finally:
            await p.stop()
        c = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bs,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await c.start()
        try:
            got = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                batch = await c.getmany(timeout_ms=500)
                got += [m.value for ms in batch.values() for m in ms]
                if got and time.monotonic() > deadline - 17:
                    break
            return got
        finally:
            await c.stop()

    assert asyncio.run(run()) == [b"kept"]


def test_kafka_python_admin_lists_and_describes_transactions(cluster):
    from kafka.admin import KafkaAdminClient

    bs, topic, tid = cluster.bootstrap, _name("described"), _name("tid")
    p = open_txn(bs, tid, topic, b"x")
    admin = KafkaAdminClient(bootstrap_servers=bs)
    try:
        listed = [
            t for ts in admin.list_transactions(state_filters=["Ongoing"]).values() for t in ts
        ]
        assert tid in [t.transactional_id for t in listed]
        d = admin.describe_transactions([tid])[tid]
        assert str(d.state.value) == "Ongoing" and d.producer_epoch >= 0
        assert {(tp.topic, tp.partition) for tp in d.topic_partitions} == {(topic, 0)}
        p.commit_transaction(60)
        deadline = time.monotonic() + 20
        while admin.describe_transactions([tid])[tid].state.value != "CompleteCommit":
            assert time.monotonic() < deadline, "the commit never completed"
            time.sleep(0.2)
    finally:
        admin.close()


def test_a_transaction_survives_its_coordinators_restart(cluster):
    bs, topic, tid = cluster.bootstrap, _name("failover"), _name("tid")
    p = open_txn(bs, tid, topic, b"across")
    md = AdminClient({"bootstrap.servers": bs}).list_topics(timeout=30)
    tp = md.topics["__transaction_state"].partitions[partition_for_group(tid, TXN_PARTITIONS)]
    coordinator = next(b for b in cluster.brokers if int(b.props["broker.id"]) == tp.leader)
    coordinator.kill()
    try:
        # the new leader of the id's partition reads the Ongoing state back
        p.commit_transaction(90)
    finally:
        coordinator.start()
    assert read_all(bs, topic, "read_committed", 1) == [b"across"]
    p.begin_transaction()
    p.produce(topic, b"after")
    p.commit_transaction(60)
    assert read_all(bs, topic, "read_committed", 2) == [b"across", b"after"]
