"""The admin APIs of the three clients against a 3-broker cluster, answered as a
ZooKeeper-era Kafka 3.x broker answers them (error codes and messages from Kafka's
ZkAdminManager, ConfigHelper, AclApis and controller)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    ElectionType,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourcePatternType,
    ResourceType,
)
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition
from kafka.admin import (
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    MemberToRemove,
    ResourcePatternFilter,
)
from kafka.admin import ResourceType as KpResourceType
from kafka.errors import SecurityDisabledError

from lab.services.kafka import admin as kadmin
from lab.services.kafka.client import Connection
from lab.services.kafka.protocol.api import ApiKey
from lab.services.kafka.protocol.errors import Error


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def admin(three_brokers):
    return AdminClient({"bootstrap.servers": three_brokers.bootstrap})


def _done(futures: dict, timeout: float = 30) -> dict:
    return {k: f.result(timeout) for k, f in futures.items()}


def _error(future, timeout: float = 30):
    with pytest.raises(KafkaException) as e:
        future.result(timeout)
    return e.value.args[0]


def _topic(admin, partitions=3, rf=3, **config) -> str:
    t = _name("adm")
    _done(admin.create_topics([NewTopic(t, partitions, rf, config=config)], operation_timeout=30))
    return t


def _known_everywhere(cluster, topic: str, timeout: float = 20) -> None:
    """Until every broker's metadata has the topic's leaders (CreateTopics answers once
    the broker that made it knows them; a client asking another broker a moment later
    may otherwise see no partitions, as with Kafka's UpdateMetadata still on its way)."""
    deadline = time.monotonic() + timeout
    for b in cluster.brokers:
        while True:
            try:
                [d] = kadmin.run(kadmin.describe_topics(b.bootstrap, [topic]))
                if d["partitions"] and all(p["leader"] >= 0 for p in d["partitions"]):
                    break
            except kadmin.AdminError:
                pass
            assert time.monotonic() < deadline, f"broker {b.id} does not know {topic}"
            time.sleep(0.1)


def _configs(admin, resource: ConfigResource) -> dict:
    [entries] = _done(admin.describe_configs([resource])).values()
    return entries


def test_describe_configs_of_a_topic_and_a_broker(admin, three_brokers):
    t = _topic(admin, **{"retention.ms": "3600000"})
    entries = _configs(admin, ConfigResource(ResourceType.TOPIC, t))
    assert entries["retention.ms"].value == "3600000"
    assert entries["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    seg = entries["segment.bytes"]
    assert (seg.value, seg.source) == ("1073741824", ConfigSource.DEFAULT_CONFIG.value)
    assert [(n, s.value) for n, s in seg.synonyms.items()] == [("log.segment.bytes", "1073741824")]
    assert entries["cleanup.policy"].value == "delete" and len(entries) >= 25
    # the broker: its file's settings are static, the rest Kafka's defaults
    broker = _configs(admin, ConfigResource(ResourceType.BROKER, "2"))
    assert broker["broker.id"].value == "2" and broker["broker.id"].is_read_only
    assert broker["broker.id"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert broker["num.partitions"].source == ConfigSource.DEFAULT_CONFIG.value
    # a topic that does not exist, as Kafka answers it
    [f] = admin.describe_configs([ConfigResource(ResourceType.TOPIC, _name("none"))]).values()
    assert _error(f).name() == "UNKNOWN_TOPIC_OR_PART"


def test_incremental_alter_configs_is_applied_and_checked(admin, three_brokers):
    t = _topic(admin)
    res = ConfigResource(
        ResourceType.TOPIC,
        t,
        incremental_configs=[
            ConfigEntry("max.message.bytes", "2000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry(
                "cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND
            ),
        ],
    )
    _done(admin.incremental_alter_configs([res]))
    entries = _configs(admin, ConfigResource(ResourceType.TOPIC, t))
    assert entries["cleanup.policy"].value == "delete,compact"
    assert entries["max.message.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    # the brokers read the change: a 5 KB record is now too large for the topic
    p = Producer({"bootstrap.servers": three_brokers.bootstrap, "compression.type": "none"})
    got = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not got or got[-1] is None):
        p.produce(t, b"x" * 5000, partition=0, on_delivery=lambda e, m: got.append(e))
        p.flush(10)
        if got and got[-1] is None:
            time.sleep(0.2)  # not yet seen by the leader: try again
    assert got and got[-1] is not None and got[-1].name() == "MSG_SIZE_TOO_LARGE"

    def op(name, value, kind):
        entry = ConfigEntry(name, value, incremental_operation=kind)
        return ConfigResource(ResourceType.TOPIC, t, incremental_configs=[entry])

    futs = admin.incremental_alter_configs([op("retention.ms", "1", AlterConfigOpType.APPEND)])
    err = _error(next(iter(futs.values())))
    assert err.name() == "INVALID_CONFIG"
    assert err.str() == "Config value append is not allowed for config key: retention.ms"
    futs = admin.incremental_alter_configs([op("retention.ms", "soon", AlterConfigOpType.SET)])
    err = _error(next(iter(futs.values())))
    assert err.str() == (
        f"Invalid config value for resource ConfigResource(type=TOPIC, name='{t}'): "
        "Invalid value soon for configuration retention.ms: Not a number of type LONG"
    )
    futs = admin.incremental_alter_configs(
        [op("cleanup.policy", "compact", AlterConfigOpType.SUBTRACT)]
    )
    _done(futs)
    assert (
        _configs(admin, ConfigResource(ResourceType.TOPIC, t))["cleanup.policy"].value == "delete"
    )


def test_alter_configs_replaces_the_whole_set_and_broker_keys_are_checked(admin, three_brokers):
    t = _topic(admin, partitions=1, **{"retention.ms": "60000", "segment.ms": "70000"})
    # AlterConfigs (deprecated in the clients, still sent by older tools) sets the
    # topic's whole override set: retention.ms goes back to the broker's value
    with pytest.warns(DeprecationWarning):
        futs = admin.alter_configs(
            [ConfigResource(ResourceType.TOPIC, t, set_config={"segment.ms": "80000"})]
        )
    _done(futs)
    entries = _configs(admin, ConfigResource(ResourceType.TOPIC, t))
    overridden = {
        k: e.value
        for k, e in entries.items()
        if e.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    }
    assert overridden == {"segment.ms": "80000"}

    # broker keys: a dynamic one is kept and described as such, a static one refused
    def set_on_broker(name, value):
        entry = ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
        res = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[entry])
        return next(iter(admin.incremental_alter_configs([res]).values()))

    set_on_broker("log.cleaner.threads", "2").result(30)
    err = _error(set_on_broker("num.partitions", "5"))
    assert err.name() == "INVALID_CONFIG"
    assert "Cannot update these configs dynamically: Set(num.partitions)" in err.str()
    broker = _configs(admin, ConfigResource(ResourceType.BROKER, "1"))
    assert broker["log.cleaner.threads"].value == "2"
    assert broker["log.cleaner.threads"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value


def test_create_partitions(admin, three_brokers):
    t = _topic(admin)
    _done(admin.create_partitions([NewPartitions(t, 6)], validate_only=True))
    assert len(admin.list_topics(t, timeout=10).topics[t].partitions) == 3
    _done(admin.create_partitions([NewPartitions(t, 5)], operation_timeout=30))
    md = admin.list_topics(t, timeout=10).topics[t]
    assert sorted(md.partitions) == [0, 1, 2, 3, 4]
    assert all(len(p.replicas) == 3 and p.leader >= 0 for p in md.partitions.values())
    p = Producer({"bootstrap.servers": three_brokers.bootstrap})
    got = []
    p.produce(t, b"to the new partition", partition=4, on_delivery=lambda e, m: got.append((e, m)))
    p.flush(20)
    assert got and got[0][0] is None and got[0][1].partition() == 4
    err = _error(admin.create_partitions([NewPartitions(t, 2)])[t])
    assert err.name() == "INVALID_PARTITIONS"
    assert err.str() == "Topic currently has 5 partitions, which is higher than the requested 2."
    err = _error(admin.create_partitions([NewPartitions(t, 5)])[t])
    assert err.str() == "Topic already has 5 partitions."
    err = _error(admin.create_partitions([NewPartitions(t, 6, replica_assignment=[[1, 9, 2]])])[t])
    assert err.name() == "INVALID_REPLICA_ASSIGNMENT"
    assert err.str() == "Unknown broker(s) in replica assignment: 9."


def test_delete_records_and_list_offsets_by_time(admin, three_brokers):
    t = _topic(admin, partitions=1)
    p = Producer({"bootstrap.servers": three_brokers.bootstrap, "linger.ms": 50})
    base = 1_700_000_000_000
    for i in range(10):  # one batch: the answers must name records, not batches
        p.produce(t, b"v%d" % i, partition=0, timestamp=base + i * 1000 - (3000 if i == 7 else 0))
    p.flush(20)
    tp = TopicPartition(t, 0)

    def offsets(spec):
        return next(iter(_done(admin.list_offsets({tp: spec})).values()))

    at = offsets(OffsetSpec.for_timestamp(base + 4500))
    assert (at.offset, at.timestamp) == (5, base + 5000)
    top = offsets(OffsetSpec.max_timestamp())
    assert (top.offset, top.timestamp) == (9, base + 9000)
    assert offsets(OffsetSpec.for_timestamp(base + 99_000)).offset == -1

    [deleted] = _done(admin.delete_records([TopicPartition(t, 0, 4)])).values()
    assert deleted.low_watermark == 4
    # the followers move their log start too (from the leader's fetch answers), and each
    # replica keeps it on disk for a restart
    starts = [b.dir / "logs" / f"{t}-0" / "log-start-offset" for b in three_brokers.brokers]
    deadline = time.monotonic() + 20
    while not all(f.exists() and f.read_text().strip() == "4" for f in starts):
        assert time.monotonic() < deadline, [f.read_text() if f.exists() else None for f in starts]
        time.sleep(0.1)
    assert offsets(OffsetSpec.earliest()).offset == 4
    assert offsets(OffsetSpec.for_timestamp(base)).offset == 4
    c = Consumer(
        {
            "bootstrap.servers": three_brokers.bootstrap,
            "group.id": _name("g"),
            "auto.offset.reset": "earliest",
        }
    )
    try:
        c.assign([TopicPartition(t, 0, -2)])
        m = None
        deadline = time.monotonic() + 20
        while m is None and time.monotonic() < deadline:
            m = c.poll(0.5)
        assert m is not None and m.offset() == 4 and m.value() == b"v4"
    finally:
        c.close()
    err = _error(admin.delete_records([TopicPartition(t, 0, 11)])[TopicPartition(t, 0, 11)])
    assert err.name() == "OFFSET_OUT_OF_RANGE"


def test_delete_groups_and_group_offsets(admin, three_brokers):
    t = _topic(admin, partitions=2)
    g = _name("grp")
    p = Producer({"bootstrap.servers": three_brokers.bootstrap})
    for i in range(4):
        p.produce(t, b"x", partition=i % 2)
    p.flush(20)
    c = Consumer(
        {
            "bootstrap.servers": three_brokers.bootstrap,
            "group.id": g,
            "auto.offset.reset": "earliest",
        }
    )
    c.subscribe([t])
    n = 0
    deadline = time.monotonic() + 30
    while n < 4 and time.monotonic() < deadline:
        m = c.poll(0.5)
        n += m is not None and m.error() is None
    c.commit(asynchronous=False)
    kp = KafkaAdminClient(bootstrap_servers=three_brokers.bootstrap)
    try:
        err = _error(admin.delete_consumer_groups([g])[g])
        assert err.name() == "NON_EMPTY_GROUP"
        # a member still reads the topic: its offsets stay
        said = kp.delete_group_offsets(g, [KpTopicPartition(t, 0)])
        assert "GroupSubscribedToTopic" in str(said), said
        stable = admin.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(30)
        assert g in {x.group_id for x in stable.valid}
        [desc] = _done(admin.describe_consumer_groups([g])).values()
        assert desc.state == ConsumerGroupState.STABLE and len(desc.members) == 1
        c.close()
        # an empty group: its offsets can be changed and deleted by an admin
        moved = ConsumerGroupTopicPartitions(g, [TopicPartition(t, 0, 1)])
        _done(admin.alter_consumer_group_offsets([moved]))
        [listed] = _done(
            admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(g)])
        ).values()
        assert {p.partition: p.offset for p in listed.topic_partitions} == {0: 1, 1: 2}
        deleted = kp.delete_group_offsets(g, [KpTopicPartition(t, 1)])
        assert [e.__name__ for e in deleted.values()] == ["NoError"]
        [listed] = _done(
            admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(g)])
        ).values()
        assert {p.partition: p.offset for p in listed.topic_partitions} == {0: 1}
        _done(admin.delete_consumer_groups([g]))
        err = _error(admin.delete_consumer_groups([g])[g])
        assert err.name() == "GROUP_ID_NOT_FOUND"
    finally:
        kp.close()


def test_acls_without_an_authorizer(admin, three_brokers):
    everything = AclBindingFilter(
        ResourceType.ANY,
        None,
        ResourcePatternType.ANY,
        None,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    kp = KafkaAdminClient(bootstrap_servers=three_brokers.bootstrap)
    try:
        with pytest.raises(
            SecurityDisabledError, match="No Authorizer is configured on the broker"
        ):
            kp.describe_acls(
                ACLFilter(
                    principal=None,
                    host="*",
                    operation=ACLOperation.ANY,
                    permission_type=ACLPermissionType.ANY,
                    resource_pattern=ResourcePatternFilter(
                        KpResourceType.TOPIC, None, ACLResourcePatternType.ANY
                    ),
                )
            )
    finally:
        kp.close()
    binding = AclBinding(
        ResourceType.TOPIC,
        "t",
        ResourcePatternType.LITERAL,
        "User:x",
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    err = _error(admin.create_acls([binding])[binding])
    assert (err.name(), err.str()) == ("SECURITY_DISABLED", "No Authorizer is configured.")
    err = _error(admin.delete_acls([everything])[everything])
    assert err.name() == "SECURITY_DISABLED"


def test_elect_leaders_and_scram_credentials(admin, three_brokers):
    t = _topic(admin, partitions=1)
    deadline = time.monotonic() + 20
    while True:
        md = admin.list_topics(t, timeout=10).topics[t].partitions[0]
        if md.leader == md.replicas[0] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    got = admin.elect_leaders(
        ElectionType.PREFERRED, [TopicPartition(t, 0), TopicPartition(t, 7)]
    ).result(30)
    errors = {tp.partition: e.name() for tp, e in got.items()}
    assert errors == {0: "ELECTION_NOT_NEEDED", 7: "UNKNOWN_TOPIC_OR_PART"}
    assert admin.describe_user_scram_credentials().result(30) == {}
    cluster = admin.describe_cluster().result(30)
    assert sorted(n.id for n in cluster.nodes) == [1, 2, 3] and cluster.controller.id in (1, 2, 3)
    [f] = admin.describe_user_scram_credentials(["alice"]).values()
    err = _error(f)
    assert err.name() == "RESOURCE_NOT_FOUND"
    # (librdkafka prints the byte after the message too: it reads it unterminated)
    assert err.str().startswith("Attempt to describe a user credential that does not exist: alice")


def test_a_static_member_is_removed_by_its_instance_id(admin, three_brokers):
    t = _topic(admin, partitions=1)
    _known_everywhere(three_brokers, t)
    g = _name("stat")
    c = KafkaConsumer(
        t,
        bootstrap_servers=three_brokers.bootstrap,
        group_id=g,
        group_instance_id="only",
        session_timeout_ms=45000,
    )
    deadline = time.monotonic() + 30
    while not c.assignment() and time.monotonic() < deadline:
        c.poll(200)
    assert c.assignment()
    c.close(autocommit=False)  # a static member does not leave: the group keeps it
    kp = KafkaAdminClient(bootstrap_servers=three_brokers.bootstrap)
    try:
        assert kp.delete_groups([g]) == {g: "NonEmptyGroupError"}
        removed = kp.remove_group_members(g, [MemberToRemove(group_instance_id="only")])
        assert [e.__name__ for e in removed.values()] == ["NoError"]
        assert kp.delete_groups([g]) == {g: "OK"}
    finally:
        kp.close()


def test_log_dirs_reassignments_and_producers(admin, three_brokers):
    t = _topic(admin, partitions=1)
    _known_everywhere(three_brokers, t)
    p = KafkaProducer(bootstrap_servers=three_brokers.bootstrap, enable_idempotence=True)
    for _ in range(3):
        p.send(t, b"x" * 100, partition=0)
    p.flush(30)
    p.close()
    kp = KafkaAdminClient(bootstrap_servers=three_brokers.bootstrap)
    try:
        dirs = kp.describe_log_dirs()
        sizes = {
            d["broker"]: part["partition_size"]
            for d in dirs
            for ld in d["log_dirs"]
            for topic in ld["topics"]
            if topic["name"] == t
            for part in topic["partitions"]
        }
        assert sorted(sizes) == [1, 2, 3] and min(sizes.values()) > 300
        assert kp.list_partition_reassignments() == {}
        [state] = kp.describe_producers([KpTopicPartition(t, 0)]).values()
        [producer] = state.active_producers
        assert producer.last_sequence == 2 and producer.current_transaction_start_offset == -1
    finally:
        kp.close()


def test_dynamic_broker_configs_are_applied_and_described(admin, three_brokers):
    t = _topic(admin, partitions=1)

    def on_brokers(name, value, kind=AlterConfigOpType.SET, brokers=("1", "2", "3")):
        entry = ConfigEntry(name, value, incremental_operation=kind)
        # one broker resource per call, as librdkafka sends each to its own broker
        return [
            f
            for b in brokers
            for f in admin.incremental_alter_configs(
                [ConfigResource(ResourceType.BROKER, b, incremental_configs=[entry])]
            ).values()
        ]

    err = _error(on_brokers("message.max.bytes", "lots", brokers=("1",))[0])
    assert err.name() == "INVALID_CONFIG" and "message.max.bytes" in err.str()
    for f in on_brokers("message.max.bytes", "2000"):
        f.result(30)
    try:
        entry = _configs(admin, ConfigResource(ResourceType.TOPIC, t))["max.message.bytes"]
        deadline = time.monotonic() + 20
        while entry.value != "2000" and time.monotonic() < deadline:
            time.sleep(0.2)  # the broker answering has not read the change yet
            entry = _configs(admin, ConfigResource(ResourceType.TOPIC, t))["max.message.bytes"]
        assert (entry.value, entry.source) == ("2000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
        p = Producer({"bootstrap.servers": three_brokers.bootstrap, "compression.type": "none"})
        got = []
        while time.monotonic() < deadline and (not got or got[-1] is None):
            p.produce(t, b"x" * 5000, partition=0, on_delivery=lambda e, m: got.append(e))
            p.flush(10)
        assert got[-1] is not None and got[-1].name() == "MSG_SIZE_TOO_LARGE"
    finally:  # the cluster is shared: its settings go back as they were
        for f in on_brokers("message.max.bytes", None, AlterConfigOpType.DELETE):
            f.result(30)


def test_names_from_the_wire_never_reach_zookeeper_as_paths(three_brokers):
    """Hostile resource names and null values get error answers (the fuzzer found an
    ElectLeaders for topic "" reading /brokers/topics/ itself)."""
    ops = [{"name": "retention.ms", "config_operation": 0, "value": "1"}]
    res = [
        {"resource_type": 2, "resource_name": name, "configs": ops}
        for name in ("", "../../controller", "a/b")
    ] + [{"resource_type": 4, "resource_name": "../x", "configs": ops}]
    null_value = {"name": "log.retention.ms", "config_operation": 0, "value": None}
    null = [{"resource_type": 4, "resource_name": "", "configs": [null_value]}]
    hostile_topics = [{"topic": t, "partitions": [0]} for t in ("", "../x")]

    async def ask(port, api, version, body):
        c = Connection("127.0.0.1", port, client_id="hostile")
        await c.connect(10)
        try:
            return await c.request(api, version, body)
        finally:
            await c.close()

    first = three_brokers.brokers[0].port
    alter = asyncio.run(
        ask(first, ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"resources": res, "validate_only": False})
    )
    assert [r["error_code"] for r in alter["responses"]] == [
        Error.INVALID_REQUEST,
        Error.UNKNOWN_TOPIC_OR_PARTITION,
        Error.UNKNOWN_TOPIC_OR_PARTITION,
        Error.INVALID_REQUEST,
    ]
    [n] = asyncio.run(
        ask(first, ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"resources": null, "validate_only": True})
    )["responses"]
    assert (n["error_code"], n["error_message"]) == (
        Error.INVALID_REQUEST,
        "Null value not supported for : log.retention.ms",
    )
    md = asyncio.run(
        ask(first, ApiKey.METADATA, 9, {"topics": [], "allow_auto_topic_creation": False})
    )
    [controller] = [b.port for b in three_brokers.brokers if b.id == md["controller_id"]]
    body = {"election_type": 0, "topic_partitions": hostile_topics, "timeout_ms": 1000}
    elect = asyncio.run(ask(controller, ApiKey.ELECT_LEADERS, 2, body))
    assert elect["error_code"] == Error.NONE
    errors = [
        p["error_code"] for t in elect["replica_election_results"] for p in t["partition_result"]
    ]
    assert errors == [Error.UNKNOWN_TOPIC_OR_PARTITION] * 2
    md = asyncio.run(
        ask(controller, ApiKey.METADATA, 9, {"topics": [], "allow_auto_topic_creation": False})
    )
    assert len(md["brokers"]) == 3  # still serving
