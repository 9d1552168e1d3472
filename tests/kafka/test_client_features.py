"""Consumer and record features a user of the three clients tries, against a 3-broker
cluster: cooperative-sticky rebalancing (KIP-429), static membership (KIP-345),
offsets_for_times, pause/resume and seek, every compression codec from every client
read by the others, record headers, and tombstones on a compacted topic."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as AioTopicPartition
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition
from kafka.errors import InvalidRecordError

CODECS = ("gzip", "snappy", "lz4", "zstd")


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _topic(bootstrap: str, partitions: int = 4, **config) -> str:
    t = _name("feat")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(t, partitions, 3, config=config)])[t].result(30)
    return t


def _fill(bootstrap: str, topic: str, n: int) -> None:
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(n):
        p.produce(topic, key=b"k%d" % i, value=b"v%d" % i)
    assert p.flush(30) == 0


def _poll_until(consumers, done, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        for c in consumers:
            c.poll(0.1)
    return True


def _messages(c: Consumer, want: int, timeout: float = 30) -> list:
    """Up to ``want`` messages (not errors) polled from a confluent-kafka consumer."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            got.append(m)
    return got


class Tracked:
    """A confluent-kafka consumer whose callbacks record what it holds and every
    assignment and revocation it saw."""

    def __init__(self, bootstrap: str, topic: str, group: str, **conf):
        self.held: set[int] = set()
        self.events: list[tuple[str, list[int]]] = []
        self.c = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "auto.offset.reset": "earliest",
                **conf,
            }
        )
        self.c.subscribe([topic], on_assign=self._assign, on_revoke=self._revoke)

    def _assign(self, c, parts):
        got = sorted(p.partition for p in parts)
        self.events.append(("assign", got))
        self.held |= set(got)

    def _revoke(self, c, parts):
        gone = sorted(p.partition for p in parts)
        self.events.append(("revoke", gone))
        self.held -= set(gone)

    def poll(self, t):
        return self.c.poll(t)


def test_cooperative_sticky_members_join_and_leave(three_brokers):
    bs = three_brokers.bootstrap
    t = _topic(bs)
    _fill(bs, t, 20)
    group = _name("coop")
    conf = {"partition.assignment.strategy": "cooperative-sticky", "session.timeout.ms": 30000}
    c1 = Tracked(bs, t, group, **conf)
    c2 = None
    try:
        assert _poll_until([c1], lambda: c1.held == {0, 1, 2, 3})
        c2 = Tracked(bs, t, group, **conf)
        both = [c1, c2]
        assert _poll_until(
            both,
            lambda: (
                c1.held and c2.held and not c1.held & c2.held and c1.held | c2.held == {0, 1, 2, 3}
            ),
        ), (c1.events, c2.events)
        # incremental: the first member gave up only what moved, never all it held
        revoked = [p for kind, ps in c1.events if kind == "revoke" for p in ps]
        assert revoked and set(revoked) == c2.held and c1.held
        c2.c.close()
        c2 = None
        assert _poll_until([c1], lambda: c1.held == {0, 1, 2, 3}), c1.events
    finally:
        for c in (c1, c2):
            if c is not None:
                c.c.close()


def test_static_member_restarts_without_a_rebalance_and_a_duplicate_is_fenced(three_brokers):
    bs = three_brokers.bootstrap
    t = _topic(bs)
    group = _name("static")
    # a session far beyond the waits below: had the coordinator to wait for the old
    # member to expire, the restarted one would get nothing in time
    conf = {"session.timeout.ms": 45000}
    s1 = Tracked(bs, t, group, **{"group.instance.id": "one", **conf})
    s2 = Tracked(bs, t, group, **{"group.instance.id": "two", **conf})
    s2b = dup = None
    try:
        assert _poll_until(
            [s1, s2], lambda: s1.held and s2.held and s1.held | s2.held == {0, 1, 2, 3}
        )
        held_by_two, seen_by_one = set(s2.held), len(s1.events)
        s2.c.close()  # a static member sends no LeaveGroup: its place is kept
        s2b = Tracked(bs, t, group, **{"group.instance.id": "two", **conf})
        assert _poll_until([s1, s2b], lambda: s2b.held == held_by_two, timeout=20), s2b.events
        assert len(s1.events) == seen_by_one, s1.events  # no rebalance for the other
        # a second process with the same instance id takes over; the first is fenced
        dup = Tracked(bs, t, group, **{"group.instance.id": "two", **conf})
        fatal = None
        deadline = time.monotonic() + 20
        while fatal is None and time.monotonic() < deadline:
            for c in (s1, s2b, dup):
                m = c.poll(0.1)
                if m is not None and m.error() is not None:
                    if m.error().fatal() or m.error().code() == KafkaError._FATAL:
                        fatal = (c, m.error())
        assert fatal is not None and fatal[0] is s2b
        assert "fenced" in fatal[1].str()
    finally:
        for c in (s1, s2b, dup):
            if c is not None:
                c.c.close()


def test_offsets_for_times_seek_pause_and_resume(three_brokers):
    bs = three_brokers.bootstrap
    t = _topic(bs, partitions=2)
    base = 1_700_000_000_000
    p = Producer({"bootstrap.servers": bs})
    for i in range(10):
        p.produce(t, value=b"a%d" % i, partition=0, timestamp=base + i * 1000)
        p.produce(t, value=b"b%d" % i, partition=1, timestamp=base + i * 1000)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": bs, "group.id": _name("g"), "enable.auto.commit": False})
    try:
        [at] = c.offsets_for_times([TopicPartition(t, 0, base + 6500)], timeout=30)
        assert at.offset == 7
        c.assign([TopicPartition(t, 0, at.offset), TopicPartition(t, 1, 0)])
        c.pause([TopicPartition(t, 1)])
        got = [(m.partition(), m.offset()) for m in _messages(c, 3)]
        assert got == [(0, 7), (0, 8), (0, 9)]  # nothing from the paused partition
        c.seek(TopicPartition(t, 0, 2))
        c.resume([TopicPartition(t, 1)])
        more = [(m.partition(), m.offset()) for m in _messages(c, 18)]
        assert sorted(o for p_, o in more if p_ == 0) == list(range(2, 10))
        assert sorted(o for p_, o in more if p_ == 1) == list(range(10))
    finally:
        c.close()


def _produce_everywhere(bs: str, t: str) -> set:
    """One record with headers and one tombstone per codec and client; what was sent."""
    sent = set()
    for codec in CODECS:
        p = Producer({"bootstrap.servers": bs, "compression.type": codec})
        p.produce(t, key=f"ck-{codec}".encode(), value=codec.encode() * 40, headers=[("h", b"c")])
        p.produce(t, key=f"ct-{codec}".encode(), value=None)
        assert p.flush(30) == 0
        kp = KafkaProducer(bootstrap_servers=bs, compression_type=codec)
        kp.send(t, key=f"kk-{codec}".encode(), value=codec.encode() * 40, headers=[("h", b"k")])
        kp.send(t, key=f"kt-{codec}".encode(), value=None).get(30)
        kp.close()

        async def aio(codec=codec):
            ap = AIOKafkaProducer(bootstrap_servers=bs, compression_type=codec)
            await ap.start()
            try:
                await ap.send_and_wait(
                    t, key=f"ak-{codec}".encode(), value=codec.encode() * 40, headers=[("h", b"a")]
                )
                await ap.send_and_wait(t, key=f"at-{codec}".encode(), value=None)
            finally:
                await ap.stop()

        asyncio.run(aio())
        for who in "cka":
            sent.add((f"{who}k-{codec}".encode(), codec.encode() * 40, (("h", who.encode()),)))
            sent.add((f"{who}t-{codec}".encode(), None, ()))
    return sent


def test_every_codec_from_every_client_is_read_by_the_others(three_brokers):
    bs = three_brokers.bootstrap
    t = _topic(bs, partitions=1, **{"cleanup.policy": "compact"})
    sent = _produce_everywhere(bs, t)
    want = len(sent)

    c = Consumer({"bootstrap.servers": bs, "group.id": _name("g"), "enable.auto.commit": False})
    c.assign([TopicPartition(t, 0, 0)])
    by_confluent = {(m.key(), m.value(), tuple(m.headers() or ())) for m in _messages(c, want)}
    c.close()

    k = KafkaConsumer(bootstrap_servers=bs, auto_offset_reset="earliest", enable_auto_commit=False)
    k.assign([KpTopicPartition(t, 0)])
    by_kafka_python = set()
    deadline = time.monotonic() + 30
    while len(by_kafka_python) < want and time.monotonic() < deadline:
        for rs in k.poll(300).values():
            by_kafka_python |= {(r.key, r.value, tuple(r.headers)) for r in rs}
    k.close()

    async def aio_read():
        ac = AIOKafkaConsumer(
            bootstrap_servers=bs, auto_offset_reset="earliest", enable_auto_commit=False
        )
        await ac.start()
        got = set()
        try:
            ac.assign([AioTopicPartition(t, 0)])
            deadline = time.monotonic() + 30
            while len(got) < want and time.monotonic() < deadline:
                for rs in (await ac.getmany(timeout_ms=300)).values():
                    got |= {(r.key, r.value, tuple(r.headers)) for r in rs}
        finally:
            await ac.stop()
        return got

    by_aiokafka = asyncio.run(aio_read())
    assert by_confluent == sent
    assert by_kafka_python == sent
    assert by_aiokafka == sent


def test_a_compacted_topic_refuses_records_without_a_key(three_brokers):
    bs = three_brokers.bootstrap
    t = _topic(bs, partitions=1, **{"cleanup.policy": "compact"})
    p = Producer({"bootstrap.servers": bs})
    got = []
    p.produce(t, value=b"no key", partition=0, on_delivery=lambda e, m: got.append(e))
    p.flush(30)  # a batch of its own: Kafka refuses a partition's whole append
    p.produce(t, key=b"k", value=None, partition=0, on_delivery=lambda e, m: got.append(e))
    p.flush(30)
    assert [e.name() if e else None for e in got] == ["INVALID_RECORD", None]
    kp = KafkaProducer(bootstrap_servers=bs)
    try:
        with pytest.raises(InvalidRecordError) as refused:
            kp.send(t, value=b"no key either", partition=0).get(30)
        assert f"without key in topic partition {t}-0" in str(refused.value)
    finally:
        kp.close()


def test_compaction_keeps_the_latest_record_of_each_key_and_drops_tombstones(three_brokers):
    bs = three_brokers.bootstrap
    t = _topic(
        bs,
        partitions=1,
        **{"cleanup.policy": "compact", "segment.bytes": "2000", "delete.retention.ms": "0"},
    )
    p = Producer({"bootstrap.servers": bs, "linger.ms": 0})
    offsets = {}

    def sent(err, m):
        assert err is None
        offsets[(m.key(), m.value())] = m.offset()

    for version in range(20):
        for k in range(5):
            p.produce(
                t, key=b"k%d" % k, value=b"v%d-%d" % (k, version) + b"." * 40, on_delivery=sent
            )
        p.flush(30)
    p.produce(t, key=b"k0", value=None, on_delivery=sent)  # k0 deleted
    for i in range(40):  # later records, so that all of the above is in sealed segments
        p.produce(t, key=b"f%d" % i, value=b"." * 40, on_delivery=sent)
    assert p.flush(30) == 0
    # one more append of its own: the segment holding the tombstone (however the client
    # batched the records before) is no longer the active one
    p.produce(t, key=b"tail", value=b"." * 40, on_delivery=sent)
    assert p.flush(30) == 0
    last = {k: offsets[(k, b"v%s-19" % k[1:] + b"." * 40)] for k in (b"k1", b"k2", b"k3", b"k4")}

    def read_all():
        c = Consumer({"bootstrap.servers": bs, "group.id": _name("g"), "enable.auto.commit": False})
        c.assign([TopicPartition(t, 0, 0)])
        try:
            out, idle = [], 0
            while idle < 5:
                m = c.poll(0.2)
                if m is None:
                    idle += 1
                elif m.error() is None:
                    out.append((m.key(), m.offset()))
            return out
        finally:
            c.close()

    deadline = time.monotonic() + 30
    while True:
        got = read_all()
        ks = [(k, o) for k, o in got if k.startswith(b"k")]
        if sorted(ks) == sorted(last.items()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    # one record per key, at the offset it was written to; k0 and its tombstone gone
    assert sorted(ks) == sorted(last.items())
    assert sum(1 for k, _ in got if k.startswith(b"f")) == 40
    assert [o for _, o in got] == sorted(o for _, o in got)
