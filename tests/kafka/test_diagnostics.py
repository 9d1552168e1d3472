"""What the broker logs for Kafka's common stuck states, in Kafka's words, so a user
who searches the broker's log for the reason finds it."""

from __future__ import annotations

import json
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError
from kazoo.client import KazooClient

from lab.services.kafka.minicluster import BrokerProcess


def wait_for_log(broker: BrokerProcess, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = broker.log_text()
        if text in log:
            return next(line for line in log.splitlines() if text in line)
        time.sleep(0.2)
    raise AssertionError(f"the broker never logged {text!r}:\n{broker.log_text()[-3000:]}")


def test_offsets_topic_replication_factor_above_live_brokers_is_logged(make_broker):
    broker = make_broker(0, offsets_topic_replication_factor=3)
    c = KafkaConsumer(
        "waiting",
        bootstrap_servers=broker.bootstrap,
        group_id="stuck",
        request_timeout_ms=5000,
    )
    deadline = time.monotonic() + 20
    try:
        # the group never gets a coordinator (COORDINATOR_NOT_AVAILABLE), as with Kafka
        while "replication factor" not in broker.log_text() and time.monotonic() < deadline:
            c.poll(timeout_ms=200)
        assert not c.assignment()
    finally:
        c.close()
    line = wait_for_log(broker, "for the offsets topic", 1)
    assert (
        "Number of alive brokers '1' does not meet the required replication factor '3' for "
        "the offsets topic (configured via 'offsets.topic.replication.factor')"
    ) in line
    assert "ERROR" in line


def test_acks_all_refused_below_min_insync_replicas_is_logged(make_broker):
    broker = make_broker(0)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("minisr", 1, 1, topic_configs={"min.insync.replicas": "2"})])
    admin.close()
    p = KafkaProducer(
        bootstrap_servers=broker.bootstrap,
        acks="all",
        enable_idempotence=False,
        retries=0,
        request_timeout_ms=5000,
    )
    try:
        with pytest.raises(KafkaError) as e:
            p.send("minisr", b"must not be accepted").get(30)
        assert "NotEnoughReplicas" in type(e.value).__name__
    finally:
        p.close()
    line = wait_for_log(broker, "Error processing append operation on partition minisr-0", 10)
    assert "NotEnoughReplicasException" in line
    assert "is insufficient to satisfy the min.isr requirement of 2 for partition minisr-0" in line


def test_refused_unclean_leader_election_is_logged(make_broker):
    a = make_broker(1, host="127.0.0.11")
    b = make_broker(2, host="127.0.0.12")
    zk = KazooClient(make_broker.zk_connect)
    zk.start(10)
    try:
        admin = KafkaAdminClient(bootstrap_servers=[a.bootstrap, b.bootstrap])
        admin.create_topics([NewTopic("unclean", 1, 2)])
        admin.close()
        path = "/brokers/topics/unclean/partitions/0/state"

        def state():
            return json.loads(zk.get(path)[0]) if zk.exists(path) else {"isr": [], "leader": -1}

        def wait(cond, what):
            deadline = time.monotonic() + 30
            while not cond(state()):
                assert time.monotonic() < deadline, f"timed out waiting for {what}"
                time.sleep(0.2)

        wait(lambda s: len(s["isr"]) == 2, "both replicas in the ISR")
        leader = a if state()["leader"] == a.id else b
        follower = b if leader is a else a
        follower.kill()
        wait(lambda s: s["isr"] == [leader.id], "the ISR to shrink to the leader")
        leader.kill()
        # the replica outside the ISR comes back alone and is the controller: it must
        # leave the partition offline, and say why
        follower.start()
        wait(lambda s: s["leader"] == -1, "the partition to go offline")
        line = wait_for_log(follower, "failed to change state for partition unclean-0", 10)
        assert "from OfflinePartition to OnlinePartition" in line
        assert (
            "Failed to elect leader for partition unclean-0 under strategy "
            "OfflinePartitionLeaderElectionStrategy(false)"
        ) in line
        assert "unclean.leader.election.enable is false" in line
    finally:
        zk.stop()
        zk.close()


def test_a_transactional_producer_finds_the_reason_in_the_log(make_broker):
    """One broker alone cannot hold a transaction state topic of replication factor 3
    (Kafka's default): the producer waits until its timeout, and the broker's log says
    why in Kafka's words."""
    from confluent_kafka import KafkaException, Producer

    broker = make_broker(0, **{"transaction.state.log.replication.factor": 3})
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "tx-diag"})
    with pytest.raises(KafkaException):
        p.init_transactions(3)
    line = wait_for_log(broker, "for the transactions state topic", 5)
    assert "Number of alive brokers '1' does not meet the required replication factor '3'" in line
    assert "'transaction.state.log.replication.factor'" in line and "ERROR" in line
