"""Topic configs, replica assignments and the broker's own settings are checked as
Kafka checks them, before anything is written (issue 21, findings K1 and K5)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from lab.services.kafka.protocol.errors import Error

from .clients import poll_until, send_values


def _create(admin: KafkaAdminClient, topic: NewTopic) -> tuple[int, str | None]:
    t = admin.create_topics([topic], raise_errors=False)["topics"][0]
    return t["error_code"], t["error_message"]


BAD_CONFIGS = [
    ("max.message.bytes", "abc", "Not a number of type INT"),
    ("min.insync.replicas", "x", "Not a number of type INT"),
    ("min.insync.replicas", "0", "Value must be at least 1"),
    ("segment.bytes", "1", "Value must be at least 14"),
    ("segment.bytes", "0", "Value must be at least 14"),
    ("segment.bytes", "-5", "Value must be at least 14"),
    ("segment.bytes", "1_000_000", "Not a number of type INT"),
    ("segment.bytes", "4294967296", "Not a number of type INT"),
    ("retention.ms", "-7", "Value must be at least -1"),
    ("cleanup.policy", "bogus", "String must be one of: compact, delete"),
    ("min.cleanable.dirty.ratio", "1.5", "Value must be no more than 1"),
    ("unclean.leader.election.enable", "yes", "Expected value to be either true or false"),
    ("compression.type", "brotli", "String must be one of"),
]


def test_bad_topic_configs_are_refused_and_nothing_is_created(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        for i, (key, value, why) in enumerate(BAD_CONFIGS):
            name = f"badcfg-{i}"
            code, msg = _create(admin, NewTopic(name, 1, 1, topic_configs={key: value}))
            assert code == Error.INVALID_CONFIG, (key, value, code, msg)
            assert msg == f"Invalid value {value} for configuration {key}: {why}" or (
                key in msg and why in msg
            ), msg
        code, msg = _create(admin, NewTopic("badcfg-name", 1, 1, topic_configs={"no.such": "1"}))
        assert (code, msg) == (Error.INVALID_CONFIG, "Unknown topic config name: no.such")
        # validate_only answers the same without creating
        resp = admin.create_topics(
            [NewTopic("badcfg-v", 1, 1, topic_configs={"segment.bytes": "1"})],
            validate_only=True,
            raise_errors=False,
        )
        assert resp["topics"][0]["error_code"] == Error.INVALID_CONFIG
        assert not [t for t in admin.list_topics() if t.startswith("badcfg")]
        # Kafka's own limits are accepted, and such a topic takes and serves records
        good = {"segment.bytes": "14", "retention.ms": "-1", "cleanup.policy": "delete"}
        code, msg = _create(admin, NewTopic("goodcfg", 1, 1, topic_configs=good))
        assert code == 0, msg
    finally:
        admin.close()
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for i in range(5):
        p.send("goodcfg", b"v%d" % i).get(30)
    p.close()
    c = KafkaConsumer("goodcfg", bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest")
    got = []
    for _ in range(30):
        for recs in c.poll(500).values():
            got += [r.value for r in recs]
        if len(got) >= 5:
            break
    c.close()
    assert got == [b"v%d" % i for i in range(5)]
    assert "Traceback" not in broker.log_text()


@pytest.mark.parametrize(
    "assignment, why",
    [
        ({0: [7]}, "includes broker 7, but no such broker is registered"),
        ({0: []}, "includes an empty replica list"),
        ({0: [0, 0]}, "includes the broker 0 more than once"),
        ({0: [0], 2: [0]}, "consecutive 0-based integer sequence"),
    ],
)
def test_bad_replica_assignments_are_refused(broker, assignment, why):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        code, msg = _create(admin, NewTopic("assigned", -1, -1, replica_assignments=assignment))
        assert code == Error.INVALID_REPLICA_ASSIGNMENT and why in msg, (code, msg)
        assert "assigned" not in admin.list_topics()
        # a partition count or factor beside an assignment is refused too, as Kafka does
        code, _ = _create(admin, NewTopic("assigned", 1, 1, replica_assignments={0: [0]}))
        assert code == Error.INVALID_REQUEST
        code, msg = _create(admin, NewTopic("assigned", -1, -1, replica_assignments={0: [0]}))
        assert code == 0, msg
        # a partition count the broker could never open is refused, not attempted
        code, msg = _create(admin, NewTopic("huge", 2**31 - 1, 1))
        assert code == Error.INVALID_PARTITIONS and "limit" in msg, msg
    finally:
        admin.close()


@pytest.mark.parametrize(
    "override, words",
    [
        ("log.segment.bytes=1", "Invalid value 1 for configuration log.segment.bytes"),
        ("message.max.bytes=abc", "Not a number of type INT"),
        ("num.partitions=0", "Value must be at least 1"),
        ("auto.create.topics.enable=maybe", "Expected value to be either true or false"),
        ("connections.max.idle.ms=-1", "connections.max.idle.ms"),
        ("log.retention.ms=0", "log.retention.ms must be unlimited (-1)"),
    ],
)
def test_bad_server_properties_are_one_clear_error_at_start(make_broker, override, words):
    b = make_broker(0, start=False)
    run = subprocess.run(
        [sys.executable, "-m", "lab.services.kafka", str(b.config), "--override", override],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert words in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_a_stored_config_the_broker_cannot_use_falls_back_to_the_default(make_broker):
    """A value written to ZooKeeper by something that did not check it (an older broker,
    a hand edit) is reported and left to the broker default: produce keeps working."""
    import json

    from kazoo.client import KazooClient

    b = make_broker(0)
    send_values(b.bootstrap, "legacy", [b"one"])
    b.stop()
    zk = KazooClient(make_broker.zk_connect)
    zk.start()
    bad = {"max.message.bytes": "abc", "segment.bytes": "1", "min.insync.replicas": "x"}
    zk.set("/config/topics/legacy", json.dumps({"version": 1, "config": bad}).encode())
    zk.stop()
    b.start()
    send_values(b.bootstrap, "legacy", [b"two"])
    c = KafkaConsumer("legacy", bootstrap_servers=b.bootstrap, auto_offset_reset="earliest")
    got = [r.value for r in poll_until(c, 2, 30)]
    c.close()
    assert got == [b"one", b"two"]
    assert "ignoring max.message.bytes='abc'" in b.log_text()
    assert "Traceback" not in b.log_text()
