"""The functions behind `lab kafka ...` against a running broker, and the
orchestrator's rendering of server.properties."""

from __future__ import annotations

import pytest

from lab.orchestrator.deployers.kafka import KafkaDeployer
from lab.services.kafka import admin
from lab.services.kafka.config import BrokerConfig, parse_properties

from .clients import group_consumer, poll_until


def test_topics_produce_consume_and_group_lag(broker):
    bs = broker.bootstrap
    made = admin.run(admin.create_topic(bs, "adm", partitions=3, replication_factor=1))
    assert made == {"topic": "adm", "partitions": 3, "replication_factor": 1}
    with pytest.raises(admin.AdminError, match="TOPIC_ALREADY_EXISTS"):
        admin.run(admin.create_topic(bs, "adm", partitions=3, replication_factor=1))
    assert "adm" in admin.run(admin.list_topics(bs))
    (d,) = admin.run(admin.describe_topics(bs, ["adm"]))
    assert [p["partition"] for p in d["partitions"]] == [0, 1, 2]
    assert all(
        p["leader"] == 0 and p["replicas"] == [0] and p["isr"] == [0] for p in d["partitions"]
    )

    sent = admin.run(admin.produce(bs, "adm", [f"v{i}".encode() for i in range(9)]))
    assert sorted(s["partition"] for s in sent) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    got = admin.run(admin.consume(bs, "adm", max_messages=9, timeout_s=10))
    assert sorted(m["value"] for m in got) == sorted(f"v{i}".encode() for i in range(9))
    # keyed records go where the Java partitioner puts them
    keyed = admin.run(admin.produce(bs, "adm", [b"x", b"y"], keys=[b"same", b"same"]))
    assert keyed[0]["partition"] == keyed[1]["partition"] == admin.murmur2_partition(b"same", 3)

    c = group_consumer(bs, "adm", "lagging")
    poll_until(c, 11, 30)
    c.commit()
    c.close()
    admin.run(admin.produce(bs, "adm", [b"late1", b"late2"], partition=1))
    lag = admin.run(admin.group_lag(bs, "lagging"))
    assert lag["total_lag"] == 2
    assert {r["partition"]: r["lag"] for r in lag["partitions"]}[1] == 2
    assert any(g["group"] == "lagging" for g in admin.run(admin.list_groups(bs)))

    admin.run(admin.delete_topic(bs, "adm"))
    assert "adm" not in admin.run(admin.list_topics(bs))
    st = admin.run(admin.broker_status(broker.host, broker.port))
    assert st["brokers"] == 1 and st["controller"] == 0


def test_murmur2_matches_kafka_python():
    from kafka.partitioner.default import murmur2

    for key in (b"", b"a", b"ab", b"abc", b"abcd", b"hello world", bytes(range(37))):
        assert admin.murmur2_partition(key, 1000) == (murmur2(key) & 0x7FFFFFFF) % 1000


def test_deployer_renders_server_properties():
    addresses = {
        "n1": "10.61.1.10/24",
        "n2": "10.61.1.11/24",
        "n4": "10.61.2.10/24",
        "z1": "10.61.1.20/24",
        "z2": "10.61.2.20/24",
    }
    racks = {"n1": "r1", "n2": "r1", "n4": "r2", "z1": "r1", "z2": "r2"}
    services = {
        "zookeeper": {"nodes": ["z1", "z2"]},
        "kafka": {
            "nodes": ["n1", "n2", "n4"],
            "default.replication.factor": 3,
            "min.insync.replicas": 2,
            "unclean.leader.election.enable": False,
        },
    }
    procs = KafkaDeployer().plan_for_lab(services, addresses, racks)
    assert [p.node for p in procs] == ["n1", "n2", "n4"]
    assert all(p.start_after == ["zookeeper"] and p.ports == [9092] for p in procs)
    ((path, text),) = procs[2].files.items()
    assert procs[2].argv[1:] == ["-m", "lab.services.kafka", path]
    cfg = BrokerConfig.from_properties(parse_properties(text))
    assert cfg.broker_id == 3
    assert (cfg.listener.host, cfg.listener.port) == ("10.61.2.10", 9092)
    assert cfg.advertised_listener.host == "10.61.2.10"  # an IP, so host clients connect
    assert cfg.zookeeper_connect == "10.61.1.20:2181,10.61.2.20:2181"
    assert (cfg.default_replication_factor, cfg.min_insync_replicas) == (3, 2)
    assert cfg.unclean_leader_election is False and cfg.rack == "r2"
    # internal topics fit the lab's brokers (three here), transactions' as the offsets'
    assert (cfg.txn_topic_replication_factor, cfg.txn_topic_min_isr) == (3, 2)
    [one] = KafkaDeployer().plan_for_lab({**services, "kafka": {"nodes": ["n1"]}}, addresses, racks)
    solo = BrokerConfig.from_properties(parse_properties(next(iter(one.files.values()))))
    assert (solo.txn_topic_replication_factor, solo.txn_topic_min_isr) == (1, 1)
    assert solo.offsets_topic_replication_factor == 1
    with pytest.raises(ValueError, match="ZooKeeper"):
        KafkaDeployer().plan({"nodes": ["n1"]}, addresses, racks)


def test_cli_grammar(broker):
    import io

    from lab.services.kafka.cli_support import KafkaCliError, kafka_command

    out: list[str] = []
    bs = broker.bootstrap
    assert (
        kafka_command(
            ["topics", "create", "cli", "--partitions", "2", "--replication-factor", "1"],
            bs,
            write=out.append,
        )
        == 0
    )
    kafka_command(["topics", "describe", "cli"], bs, write=out.append)
    assert "Partition: 1\tLeader: 0\tReplicas: 0\tIsr: 0" in out[-1]
    kafka_command(
        ["produce", "cli", "--partition", "0"], bs, write=out.append, stdin=io.StringIO("a\nb\n")
    )
    assert out[-1] == "cli-0@0\ncli-0@1"
    kafka_command(
        ["consume", "cli", "--from-beginning", "--max-messages", "2"], bs, write=out.append
    )
    assert out[-1] == "a\nb"
    with pytest.raises(KafkaCliError, match="TOPIC_ALREADY_EXISTS"):
        kafka_command(["topics", "create", "cli"], bs)
    with pytest.raises(KafkaCliError):
        kafka_command(["topics", "frobnicate"], bs)
    # kafka-topics.sh's and the console scripts' spellings, as their users type them
    kafka_command(
        ["topics", "--create", "--topic", "cli2", "--partitions", "3"], bs, write=out.append
    )
    kafka_command(["topics", "--describe", "--topic", "cli2"], bs, write=out.append)
    assert (
        "Partition: 2\tLeader: 0" in out[-1]
        and "cli2" in out[-1]
        and "\tTopic: cli\t" not in out[-1]
    )
    kafka_command(["topics", "--list"], bs, write=out.append)
    assert {"cli", "cli2"} <= set(out[-1].split())
    kafka_command(["produce", "--topic", "cli2", "x", "--partition", "1"], bs, write=out.append)
    assert out[-1] == "cli2-1@0"
    kafka_command(["topics", "--delete", "--topic", "cli2"], bs, write=out.append)
    kafka_command(["topics", "list"], bs, write=out.append)
    assert "cli2" not in out[-1].split()
    with pytest.raises(KafkaCliError, match="--bootstrap-server is not taken"):
        kafka_command(["topics", "--list", "--bootstrap-server", "localhost:9092"], bs)
    with pytest.raises(KafkaCliError, match="only one of --create, --delete"):
        kafka_command(["topics", "--create", "--delete", "--topic", "x"], bs)


STOCK_SERVER_PROPERTIES = r"""
# Licensed to the Apache Software Foundation (ASF) under one or more ...
############################# Server Basics #############################
broker.id=0
############################# Socket Server Settings #############################
#listeners=PLAINTEXT://:9092
#advertised.listeners=PLAINTEXT://your.host.name:9092
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kafka-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
#log.flush.interval.messages=10000
log.retention.hours=168
#log.retention.bytes=1073741824
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
zookeeper.connect=localhost:2181
zookeeper.connection.timeout.ms=18000
group.initial.rebalance.delay.ms=0
"""


def test_stock_kafka_server_properties_are_accepted():
    cfg = BrokerConfig.from_properties(parse_properties(STOCK_SERVER_PROPERTIES))
    assert cfg.broker_id == 0 and str(cfg.log_dirs[0]) == "/tmp/kafka-logs"
    assert cfg.zookeeper_connect == "localhost:2181"
    assert cfg.log.retention_ms == 168 * 3600 * 1000
    assert cfg.log.segment_bytes == 1073741824
    assert cfg.offsets_topic_replication_factor == 1
    assert "num.network.threads" in cfg.extra  # kept, logged, not refused


def test_bad_property_values_are_one_clear_error():
    from lab.services.kafka.config import ConfigError

    with pytest.raises(ConfigError, match="num.partitions"):
        BrokerConfig.from_properties({"zookeeper.connect": "z:2181", "num.partitions": "many"})
    with pytest.raises(ConfigError, match="zookeeper.connect is required"):
        BrokerConfig.from_properties({"broker.id": "1"})
    with pytest.raises(ConfigError, match="PLAINTEXT"):
        BrokerConfig.from_properties({"zookeeper.connect": "z:2181", "listeners": "SSL://h:9093"})


def test_bootstrap_from_lab_state():
    from lab.services.kafka.cli_support import KafkaCliError, bootstrap

    state = {
        "name": "q",
        "network": {"nodes": {"n1": "10.61.1.10", "n2": "10.61.1.11/24"}},
        "services": {
            "kafka-broker-n1": {"service": "kafka", "role": "broker", "node": "n1"},
            "zookeeper-server-n2": {"service": "zookeeper", "role": "server", "node": "n2"},
            "kafka-broker-n2": {"service": "kafka", "role": "broker", "node": "n2"},
        },
    }
    assert bootstrap(state) == "10.61.1.10:9092,10.61.1.11:9092"
    with pytest.raises(KafkaCliError, match="runs no Kafka broker"):
        bootstrap({"name": "q", "network": {"nodes": {}}, "services": {}})
