"""Three brokers on distinct loopback addresses, replication factor 3,
min.insync.replicas 2, coordinated through ZooKeeper."""

from __future__ import annotations

import json
import signal
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from lab.services.kafka.offsets import partition_for_group

from .clients import group_consumer, poll_until

HOSTS = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
CLUSTER_PROPS = {
    "default_replication_factor": 3,
    "min_insync_replicas": 2,
    "offsets_topic_replication_factor": 3,
    "num_partitions": 3,
    # Every test here creates its topics. A kafka-python client that still has a deleted
    # topic in its metadata asks for it again, and a broker auto-creates a topic a Metadata
    # request names (Kafka's too): that raced the deletion tests' own CreateTopics (seen as
    # TOPIC_ALREADY_EXISTS). kafka-python 3.0.12's allow_auto_create_topics does not reach
    # its metadata requests, so the brokers refuse instead.
    "auto_create_topics_enable": "false",
}


@pytest.fixture
def cluster(make_broker):
    brokers = [
        make_broker(i + 1, host=h, start=False, **CLUSTER_PROPS) for i, h in enumerate(HOSTS)
    ]
    for b in brokers:
        b.start()
    zk = KazooClient(make_broker.zk_connect)
    zk.start(10)
    yield brokers, zk
    zk.stop()
    zk.close()


def bootstrap(brokers) -> list[str]:
    return [b.bootstrap for b in brokers if b.proc and b.proc.poll() is None]


def state(zk, topic: str, p: int) -> dict:
    return json.loads(zk.get(f"/brokers/topics/{topic}/partitions/{p}/state")[0])


def wait_for(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def make_topic(brokers, zk, name: str, partitions: int = 3) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap(brokers))
    admin.create_topics([NewTopic(name, partitions, 3)])
    admin.close()

    def full_isr():
        try:
            return all(len(state(zk, name, p)["isr"]) == 3 for p in range(partitions))
        except NoNodeError:  # the controller has not written the state yet
            return False

    wait_for(full_isr, 30, "full ISR")


def produce_acked(
    brokers, topic: str, values: list[bytes], partitions: int = 3
) -> dict[int, list[bytes]]:
    """acks=all (kafka-python's default); returns what was acknowledged, per partition, in order."""
    p = KafkaProducer(
        bootstrap_servers=bootstrap(brokers),
        acks="all",
        delivery_timeout_ms=60000,
        request_timeout_ms=10000,
        retry_backoff_ms=200,
    )
    futs = [(v, p.send(topic, v, partition=i % partitions)) for i, v in enumerate(values)]
    p.flush(90)
    acked: dict[int, list[tuple[int, bytes]]] = {}
    for v, f in futs:
        try:
            md = f.get(0)
        except KafkaError:
            continue
        acked.setdefault(md.partition, []).append((md.offset, v))
    p.close()
    return {part: [v for _, v in sorted(lst)] for part, lst in acked.items()}


def consume_all(
    brokers, topic: str, partitions: int, expect: int, timeout: float = 60
) -> dict[int, list[bytes]]:
    c = KafkaConsumer(
        bootstrap_servers=bootstrap(brokers), auto_offset_reset="earliest", enable_auto_commit=False
    )
    c.assign([TopicPartition(topic, p) for p in range(partitions)])
    c.seek_to_beginning()
    got: dict[int, list[bytes]] = {}
    deadline = time.monotonic() + timeout
    while sum(map(len, got.values())) < expect and time.monotonic() < deadline:
        for tp, recs in c.poll(timeout_ms=500).items():
            got.setdefault(tp.partition, []).extend(r.value for r in recs)
    c.close()
    return got


def assert_contains_in_order(got: list[bytes], acked: list[bytes]) -> None:
    positions = [got.index(v) for v in acked]  # ValueError = an acked message is lost
    assert positions == sorted(positions), "acknowledged messages out of order"


@pytest.mark.parametrize("zk_server", ["apache", "racklab"], indirect=True)
def test_leader_failover_keeps_every_acked_message(cluster):
    brokers, zk = cluster
    topic = "failover"
    make_topic(brokers, zk, topic)
    acked1 = produce_acked(brokers, topic, [f"a{i}".encode() for i in range(150)])
    assert sum(map(len, acked1.values())) == 150
    before = state(zk, topic, 0)
    old_leader = before["leader"]
    victim = next(b for b in brokers if b.id == old_leader)
    victim.kill()
    after = wait_for(
        lambda: (s := state(zk, topic, 0))["leader"] not in (old_leader, -1) and s,
        30,
        "a new leader",
    )
    assert after["leader"] in before["isr"]
    assert after["leader_epoch"] > before["leader_epoch"]
    assert old_leader not in after["isr"]
    acked2 = produce_acked(brokers, topic, [f"b{i}".encode() for i in range(150)])
    assert sum(map(len, acked2.values())) == 150
    got = consume_all(brokers, topic, 3, 300)
    for p in range(3):
        assert_contains_in_order(got.get(p, []), acked1.get(p, []) + acked2.get(p, []))
        # the idempotent producer's retries across the leader change wrote nothing twice
        assert len(got.get(p, [])) == len(set(got.get(p, [])))
    # the killed broker comes back as a follower and rejoins the ISR
    victim.start()
    wait_for(lambda: old_leader in state(zk, topic, 0)["isr"], 30, "the old leader back in the ISR")


@pytest.mark.parametrize(
    "zk_server", ["apache", pytest.param("racklab", marks=pytest.mark.slow)], indirect=True
)
def test_restart_every_broker_loses_nothing_acked(cluster):
    brokers, zk = cluster
    topic = "restart"
    make_topic(brokers, zk, topic)
    acked = produce_acked(brokers, topic, [f"r{i}".encode() for i in range(200)])
    assert sum(map(len, acked.values())) == 200
    for b in brokers:
        b.kill()
    for b in brokers:
        b.start()
    wait_for(lambda: all(state(zk, topic, p)["leader"] >= 0 for p in range(3)), 40, "leaders")
    got = consume_all(brokers, topic, 3, 200)
    for p in range(3):
        assert_contains_in_order(got.get(p, []), acked.get(p, []))


@pytest.mark.parametrize(
    "zk_server", ["apache", pytest.param("racklab", marks=pytest.mark.slow)], indirect=True
)
def test_two_brokers_down_refuses_acks_all(cluster):
    brokers, zk = cluster
    topic = "minisr"
    make_topic(brokers, zk, topic, partitions=1)
    leader = state(zk, topic, 0)["leader"]
    for b in brokers:
        if b.id != leader:
            b.kill()
    wait_for(lambda: state(zk, topic, 0)["isr"] == [leader], 30, "the ISR to shrink to the leader")
    p = KafkaProducer(
        bootstrap_servers=bootstrap(brokers),
        acks="all",
        enable_idempotence=False,
        retries=0,
        request_timeout_ms=5000,
    )
    with pytest.raises(KafkaError) as e:
        p.send(topic, b"must not be accepted").get(30)
    assert "NotEnoughReplicas" in type(e.value).__name__
    # acks=1 is still accepted by the lone leader
    p1 = KafkaProducer(bootstrap_servers=bootstrap(brokers), acks=1, enable_idempotence=False)
    assert p1.send(topic, b"acks=1 ok").get(30).offset >= 0
    p.close()
    p1.close()


def test_stalled_follower_leaves_isr_by_lag_and_returns(make_broker):
    # a session timeout well above replica.lag.time.max.ms: the follower stays
    # registered, so only the leader's lag check can drop it from the ISR
    props = dict(CLUSTER_PROPS, zookeeper_session_timeout_ms=30000, replica_lag_time_max_ms=1500)
    brokers = [make_broker(i + 1, host=h, start=False, **props) for i, h in enumerate(HOSTS)]
    for b in brokers:
        b.start()
    zk = KazooClient(make_broker.zk_connect)
    zk.start(10)
    try:
        make_topic(brokers, zk, "lag", partitions=1)
        st = state(zk, "lag", 0)
        follower = next(b for b in brokers if b.id != st["leader"])
        follower.proc.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: follower.id not in state(zk, "lag", 0)["isr"], 30, "the ISR to shrink")
            assert zk.exists(f"/brokers/ids/{follower.id}")  # still registered: dropped for lag
            # acks=all still works with min.insync.replicas=2 and two in the ISR
            others = [b for b in brokers if b is not follower]  # a stopped broker cannot bootstrap
            acked = produce_acked(others, "lag", [b"while-stalled"], partitions=1)
            assert acked == {0: [b"while-stalled"]}
        finally:
            follower.proc.send_signal(signal.SIGCONT)
        wait_for(
            lambda: follower.id in state(zk, "lag", 0)["isr"], 30, "the follower back in the ISR"
        )
    finally:
        zk.stop()
        zk.close()


def test_unclean_leader_election_is_off_by_default(cluster):
    brokers, zk = cluster
    topic = "unclean"
    make_topic(brokers, zk, topic, partitions=1)
    acked = produce_acked(brokers, topic, [f"u{i}".encode() for i in range(20)], partitions=1)
    leader_id = state(zk, topic, 0)["leader"]
    leader = next(b for b in brokers if b.id == leader_id)
    followers = [b for b in brokers if b is not leader]
    for b in followers:
        b.kill()
    wait_for(
        lambda: state(zk, topic, 0)["isr"] == [leader_id], 30, "the ISR to shrink to the leader"
    )
    leader.kill()
    # a replica that is not in the ISR comes back (and becomes the controller):
    # it must mark the partition offline rather than lead it
    followers[0].start()
    wait_for(lambda: state(zk, topic, 0)["leader"] == -1, 30, "the partition to go offline")
    time.sleep(2)
    st = state(zk, topic, 0)
    assert st["leader"] == -1 and st["isr"] == [leader_id]
    # the last ISR member returns and leads again, with everything acknowledged
    leader.start()
    wait_for(lambda: state(zk, topic, 0)["leader"] == leader_id, 30, "the old leader back")
    got = consume_all([leader, followers[0]], topic, 1, 20)
    assert_contains_in_order(got.get(0, []), acked[0])


def test_committed_offsets_survive_coordinator_failure(cluster):
    brokers, zk = cluster
    topic = "offsets"
    make_topic(brokers, zk, topic, partitions=1)
    produce_acked(brokers, topic, [f"o{i}".encode() for i in range(30)], partitions=1)
    c = group_consumer(bootstrap(brokers), topic, "survivors")
    got = poll_until(c, 30, 30)
    c.commit()
    c.close()
    # the coordinator leads the group's partition of __consumer_offsets (Java's hashCode rule)
    n = len(zk.get_children("/brokers/topics/__consumer_offsets/partitions"))
    offsets_partition = partition_for_group("survivors", n)
    coordinator = state(zk, "__consumer_offsets", offsets_partition)["leader"]
    assert len(got) == 30
    next(b for b in brokers if b.id == coordinator).kill()
    produce_acked(brokers, topic, [b"after-failover"], partitions=1)
    c = group_consumer(bootstrap(brokers), topic, "survivors")
    rest = [r.value for r in poll_until(c, 1, 40)]
    c.close()
    assert state(zk, "__consumer_offsets", offsets_partition)["leader"] not in (coordinator, -1)
    assert rest == [b"after-failover"]  # resumed from the commit, on the new coordinator


def test_librdkafka_through_a_leader_failover(cluster):
    ck = pytest.importorskip("confluent_kafka")
    brokers, zk = cluster
    topic = "rdk"
    make_topic(brokers, zk, topic, partitions=1)
    acked: list[tuple[int, bytes]] = []

    def report(err, msg):
        if err is None:
            acked.append((msg.offset(), msg.value()))

    p = ck.Producer(
        {
            "bootstrap.servers": ",".join(bootstrap(brokers)),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "message.timeout.ms": 60000,
        }
    )
    for i in range(100):
        p.produce(topic, f"k{i}".encode(), partition=0, on_delivery=report)
    assert p.flush(30) == 0
    leader = state(zk, topic, 0)["leader"]
    next(b for b in brokers if b.id == leader).kill()
    for i in range(100, 200):
        p.produce(topic, f"k{i}".encode(), partition=0, on_delivery=report)
    assert p.flush(60) == 0
    assert len(acked) == 200
    c = ck.Consumer(
        {
            "bootstrap.servers": ",".join(bootstrap(brokers)),
            "group.id": "rdk-check",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    # assign(), not subscribe(): with offsets.topic.replication.factor=3 and one broker
    # down, the offsets topic (never used before here) cannot be created, as in Kafka
    c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
    got = []
    deadline = time.monotonic() + 40
    while len(got) < 200 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.value())
    c.close()
    assert got == [v for _, v in sorted(acked)]  # all of them, once each, in order


def test_leadership_returns_to_the_preferred_replica(make_broker):
    props = dict(CLUSTER_PROPS, leader_imbalance_check_interval_seconds=1)
    brokers = [make_broker(i + 1, host=h, start=False, **props) for i, h in enumerate(HOSTS)]
    for b in brokers:
        b.start()
    zk = KazooClient(make_broker.zk_connect)
    zk.start(10)
    try:
        make_topic(brokers, zk, "pref", partitions=1)
        replicas = json.loads(zk.get("/brokers/topics/pref")[0])["partitions"]["0"]
        preferred = replicas[0]
        assert state(zk, "pref", 0)["leader"] == preferred
        victim = next(b for b in brokers if b.id == preferred)
        victim.kill()
        wait_for(lambda: state(zk, "pref", 0)["leader"] not in (preferred, -1), 30, "failover")
        acked = produce_acked(
            [b for b in brokers if b is not victim], "pref", [b"p1", b"p2"], partitions=1
        )
        victim.start()
        wait_for(
            lambda: state(zk, "pref", 0)["leader"] == preferred, 40, "the preferred leader back"
        )
        got = consume_all(brokers, "pref", 1, 2)
        assert_contains_in_order(got.get(0, []), acked[0])
    finally:
        zk.stop()
        zk.close()


def end_offsets(brokers, topic: str, partitions: int) -> dict[int, int]:
    c = KafkaConsumer(bootstrap_servers=bootstrap(brokers))
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    ends = c.end_offsets(tps)
    c.close()
    return {tp.partition: n for tp, n in ends.items()}


def deletion_done(zk, topic: str) -> bool:
    """The controller removed the topic's znode and then its deletion request: until
    both are gone a CreateTopics of the name is TOPIC_ALREADY_EXISTS ('marked for
    deletion'), as in Kafka, where the controller removes them in the same order."""
    return not zk.exists(f"/brokers/topics/{topic}") and not zk.exists(
        f"/admin/delete_topics/{topic}"
    )


def test_a_deleted_topic_created_again_starts_empty(cluster):
    """Delete then create the same name: the new topic is a new incarnation (Kafka's
    topic id), with empty logs on every replica, even when the brokers see the deletion
    and the creation in one ZooKeeper watch event. While the deletion is still pending,
    CreateTopics answers TOPIC_ALREADY_EXISTS 'marked for deletion', as Kafka does."""
    brokers, zk = cluster
    topic = "again"
    for round_ in range(3):
        make_topic(brokers, zk, topic)
        assert end_offsets(brokers, topic, 3) == {0: 0, 1: 0, 2: 0}, f"round {round_}"
        acked = produce_acked(brokers, topic, [f"r{round_}-{i}".encode() for i in range(12)])
        assert sum(map(len, acked.values())) == 12
        reader = KafkaConsumer(bootstrap_servers=bootstrap(brokers), group_id="readers")
        tps = [TopicPartition(topic, p) for p in range(3)]
        reader.assign(tps)
        reader.commit({tp: OffsetAndMetadata(4, "", -1) for tp in tps})
        assert [reader.committed(tp) for tp in tps] == [4, 4, 4]
        admin = KafkaAdminClient(bootstrap_servers=bootstrap(brokers))
        admin.delete_topics([topic])
        admin.close()
        wait_for(lambda: deletion_done(zk, topic), 30, "the topic znode gone")
        # the coordinator forgot the deleted topic's committed offsets (Kafka writes tombstones
        # when it sees the deletion, a moment after the znode goes, as here)
        wait_for(
            lambda r=reader, t=tps: [r.committed(tp) for tp in t] == [None, None, None],
            20,
            "the deleted topic's committed offsets forgotten",
        )
        reader.close()
    make_topic(brokers, zk, topic)
    acked = produce_acked(brokers, topic, [b"fresh-0", b"fresh-1", b"fresh-2"])
    got = consume_all(brokers, topic, 3, expect=3, timeout=20)
    assert sorted(v for vs in got.values() for v in vs) == [b"fresh-0", b"fresh-1", b"fresh-2"]
    for b in brokers:  # every replica's log holds the new records only
        logs = sorted(p.name for p in (b.dir / "logs").glob(f"{topic}-*"))
        assert logs == [f"{topic}-0", f"{topic}-1", f"{topic}-2"], logs


def test_a_broker_away_during_a_deletion_drops_its_stale_log(cluster):
    """A replica down while its topic is deleted keeps the old log on disk. When a topic
    of the same name exists on its return, the log directory's partition.metadata names
    the old topic id: the broker empties it, follows the new leader, and can lead the new
    topic with its records only."""
    brokers, zk = cluster
    topic = "stale"
    make_topic(brokers, zk, topic)
    produce_acked(brokers, topic, [f"old-{i}".encode() for i in range(30)])
    # not the controller, so no election is needed after the kill
    controller = json.loads(zk.get("/controller")[0])["brokerid"]
    away = next(b for b in reversed(brokers) if b.id != controller)
    wait_for(lambda: all(len(state(zk, topic, p)["isr"]) == 3 for p in range(3)), 30, "full ISR")
    away.kill()
    # Until its ZooKeeper session expires the dead broker is still in the metadata, and
    # kafka-python's admin client gives up on the first node that refuses it.
    wait_for(lambda: not zk.exists(f"/brokers/ids/{away.id}"), 30, "the dead broker unregistered")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap(brokers))
    admin.delete_topics([topic])
    wait_for(lambda: deletion_done(zk, topic), 30, "the topic znode gone")
    everywhere = {p: [b.id for b in brokers] for p in range(3)}
    admin.create_topics([NewTopic(topic, -1, -1, replica_assignments=everywhere)])
    admin.close()
    fresh = [f"new-{i}".encode() for i in range(6)]
    acked = produce_acked(brokers, topic, fresh)
    assert sum(map(len, acked.values())) == 6
    away.start()
    wait_for(lambda: all(len(state(zk, topic, p)["isr"]) == 3 for p in range(3)), 30, "full ISR")
    assert "emptied a log left by an earlier topic" in away.log_text()
    for b in [b for b in brokers if b is not away]:  # the returned broker alone leads
        b.kill()
    wait_for(lambda: all(state(zk, topic, p)["leader"] == away.id for p in range(3)), 30, "leader")
    got = consume_all([away], topic, 3, expect=6, timeout=20)
    assert sorted(v for vs in got.values() for v in vs) == sorted(fresh)
