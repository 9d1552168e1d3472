"""kazoo's public API and every one of its recipes, unmodified, against a 3-server
racklab ensemble, with the clients of one test on different members (so writes are
forwarded to the leader, and watches fire on a member other than the writer's).
test_kazoo_recipes.py runs the older recipe tests against a standalone server. The
same tests pass against an ensemble of Debian's Apache 3.8 (checked by hand with
lab.testing.apache_zookeeper.apache_ensemble in the fixture); reads of another
client's write go through sync() first, as ZooKeeper's guarantees ask."""

from __future__ import annotations

import threading
import time

import pytest
from kazoo.exceptions import (
    BadVersionError,
    LockTimeout,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
)
from kazoo.protocol.states import EventType
from kazoo.recipe.barrier import Barrier, DoubleBarrier
from kazoo.recipe.cache import TreeCache, TreeEvent
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lease import MultiNonBlockingLease, NonBlockingLease
from kazoo.recipe.lock import ReadLock, Semaphore, WriteLock
from kazoo.recipe.partitioner import PartitionState, SetPartitioner
from kazoo.recipe.party import Party, ShallowParty
from kazoo.recipe.queue import LockingQueue, Queue
from kazoo.recipe.watchers import ChildrenWatch, DataWatch
from kazoo.security import make_digest_acl

from lab.services.zookeeper.minicluster import Ensemble

from .recipes import contend_for_lock


def wait_until(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    ens = Ensemble(str(tmp_path_factory.mktemp("kazoo-ens")), n=3, base=245)
    try:
        ens.start()
        ens.wait_leader()
        for i in ens.servers:
            ens.wait_serving(i)
        yield ens
    finally:
        ens.stop_all()


@pytest.fixture
def members(ensemble):
    """One kazoo client on each member, stopped at the end of the test."""
    clients = [ensemble.client(i) for i in ensemble.servers]
    yield clients
    for c in clients:
        try:
            c.stop()
            c.close()
        except Exception:
            pass


def test_client_api_across_members(members):
    a, b, c = members
    a.ensure_path("/api/x/y")
    b.sync("/api/x/y")  # b's member may not have applied it yet: sync, then read
    assert b.exists("/api/x/y") is not None
    a.create("/api/x/y/k1", b"v1")
    a.create("/api/x/y/k2", b"v2", makepath=True)
    b.sync("/api/x/y")
    children, stat = b.get_children("/api/x/y", include_data=True)
    assert sorted(children) == ["k1", "k2"] and stat.numChildren == 2 and stat.cversion == 2
    stat = c.set("/api/x/y/k1", b"v1b", version=0)
    assert stat.version == 1
    with pytest.raises(BadVersionError):
        a.set("/api/x/y/k1", b"stale", version=0)
    with pytest.raises(NodeExistsError):
        b.create("/api/x/y/k1")
    with pytest.raises(NotEmptyError):
        c.delete("/api/x/y")
    seq = [a.create("/api/x/s-", sequence=True) for _ in range(3)]
    # the parent's one child so far ("y") numbers them from 1
    assert [s[-10:] for s in seq] == ["0000000001", "0000000002", "0000000003"]

    t = a.transaction()
    t.create("/api/t1", b"1")
    t.check("/api/x/y/k1", 1)
    t.set_data("/api/x/y/k2", b"v2b")
    t.delete("/api/x/y/k1")
    results = t.commit()
    assert results[0] == "/api/t1" and results[1] is True and results[3] is True
    assert results[2].version == 1
    t = b.transaction()
    t.create("/api/t2")
    t.check("/api/t1", 5)
    results = t.commit()
    assert isinstance(results[1], BadVersionError)
    c.sync("/api")
    assert c.exists("/api/t2") is None and c.exists("/api/x/y/k1") is None

    acl = make_digest_acl("user", "pw", all=True)
    a.create("/api/secret", b"s", acl=[acl])
    b.sync("/api/secret")
    with pytest.raises(NoAuthError):  # getACL wants READ or ADMIN (3.6+)
        b.get_acls("/api/secret")
    b.add_auth("digest", "user:pw")
    assert b.get_acls("/api/secret")[0] == [acl]
    b.delete("/api", recursive=True)  # it lists the secret's children: READ
    c.sync("/")
    assert c.exists("/api") is None
    assert c.server_version()[:2] == (3, 8)


def test_children_and_data_watch_across_members(members):
    a, b, _ = members
    a.ensure_path("/w")
    kids, datas = [], []
    ChildrenWatch(a, "/w", lambda ch: kids.append(sorted(ch)))
    DataWatch(a, "/w/d", lambda data, stat: datas.append(data))
    # Each change waits for the watch to report it: kazoo's DataWatch reads the node
    # again on each event, so changes made back to back may reach it merged.
    wait_until(lambda: datas == [None], what="the data watch's first call")
    b.create("/w/d", b"1")
    wait_until(lambda: datas[-1] == b"1", what="data watch to see the create")
    b.set("/w/d", b"2")
    wait_until(lambda: datas[-1] == b"2", what="data watch to see the change")
    b.create("/w/e")
    b.delete("/w/d")
    wait_until(lambda: kids and kids[-1] == ["e"], what="children ['e']")
    wait_until(lambda: datas[-1] is None, what="data watch to see the delete")
    assert kids[0] == []  # kazoo reads the list again on each event: steps may merge
    seen = [d for i, d in enumerate(datas) if i == 0 or d != datas[i - 1]]
    assert seen == [None, b"1", b"2", None]


def test_lock_read_write_lock_and_semaphore(members):
    order, overlap = contend_for_lock(members, "/rec/lock")
    assert not overlap and sorted(order) == sorted(["w0", "w1", "w2"] * 3)

    a, b, c = members
    r1, r2 = ReadLock(a, "/rec/rw"), ReadLock(b, "/rec/rw")
    w = WriteLock(c, "/rec/rw")
    assert r1.acquire(timeout=5) and r2.acquire(timeout=5)  # readers share
    with pytest.raises(LockTimeout):
        w.acquire(timeout=0.3)  # a writer waits for them
    r1.release()
    r2.release()
    assert w.acquire(timeout=5)
    with pytest.raises(LockTimeout):
        ReadLock(a, "/rec/rw").acquire(timeout=0.3)  # readers wait for a writer
    w.release()

    s = [Semaphore(c, "/rec/sem", f"s{i}", max_leases=2) for i, c in enumerate(members)]
    assert s[0].acquire(timeout=5) and s[1].acquire(timeout=5)
    with pytest.raises(LockTimeout):
        s[2].acquire(timeout=0.3)
    assert sorted(s[2].lease_holders()) == ["s0", "s1"]
    s[0].release()
    assert s[2].acquire(timeout=5)
    s[1].release()
    s[2].release()


def test_barriers_election_and_counter(members):
    a, b, c = members
    barrier = Barrier(a, "/rec/barrier")
    barrier.create()
    passed = []
    b.sync("/rec/barrier")  # b's member has the barrier before b waits on it
    t = threading.Thread(target=lambda: passed.append(Barrier(b, "/rec/barrier").wait(10)))
    t.start()
    time.sleep(0.2)
    assert not passed
    barrier.remove()
    t.join(10)
    assert passed == [True]

    entered = []

    def double(cl, name):
        db = DoubleBarrier(cl, "/rec/double", 3, identifier=name)
        db.enter()
        entered.append(name)
        db.leave()

    threads = [threading.Thread(target=double, args=(cl, f"d{i}")) for i, cl in enumerate(members)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    assert sorted(entered) == ["d0", "d1", "d2"]

    led = []
    stop = threading.Event()

    def lead(name):
        led.append(name)
        stop.wait(10)

    e1, e2 = Election(a, "/rec/election", "e1"), Election(b, "/rec/election", "e2")
    t1 = threading.Thread(target=e1.run, args=(lead, "e1"))
    t1.start()
    wait_until(lambda: led == ["e1"], what="e1 to lead")
    t2 = threading.Thread(target=e2.run, args=(lead, "e2"))
    t2.start()
    wait_until(lambda: len(e2.contenders()) == 2, what="two contenders")
    assert e2.contenders() == ["e1", "e2"]
    e1.cancel()
    stop.set()
    t1.join(10)
    wait_until(lambda: led == ["e1", "e2"], what="e2 to take over")
    t2.join(10)

    counters = [Counter(cl, "/rec/counter") for cl in members]
    threads = [
        threading.Thread(target=lambda cnt=cnt: [cnt.__add__(1) for _ in range(10)])
        for cnt in counters
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    a.sync("/rec/counter")
    assert counters[0].value == 30
    f = Counter(c, "/rec/fcounter", default=0.5)
    f += 1.25
    a.sync("/rec/fcounter")
    assert Counter(a, "/rec/fcounter", default=0.5).value == 1.75


def test_queues_and_parties(members):
    a, b, c = members
    q = Queue(a, "/rec/queue")
    for i, item in enumerate([b"one", b"two", b"three"]):
        q.put(item, priority=100 - i)
    b.sync("/rec/queue")
    assert len(Queue(b, "/rec/queue")) == 3
    assert [Queue(c, "/rec/queue").get() for _ in range(3)] == [b"three", b"two", b"one"]
    assert q.get() is None

    lq_put, lq_take = LockingQueue(a, "/rec/lq"), LockingQueue(b, "/rec/lq")
    lq_put.put_all([b"x", b"y"])
    assert lq_take.get(timeout=5) == b"x"
    assert LockingQueue(c, "/rec/lq").get(timeout=5) == b"y"  # x is held, not lost
    assert lq_take.consume()  # x done
    assert LockingQueue(c, "/rec/lq").holds_lock() is False
    a.sync("/rec/lq")
    assert len(lq_put) == 1  # y is taken (held) but not consumed yet

    for cls in (Party, ShallowParty):
        parties = [cls(cl, f"/rec/{cls.__name__}", f"p{i}") for i, cl in enumerate(members)]
        for p in parties:
            p.join()
        for cl in members:  # each reads its own member: let it catch up first
            cl.sync(f"/rec/{cls.__name__}")
        assert sorted(parties[0]) == ["p0", "p1", "p2"] and len(parties[1]) == 3
        parties[1].leave()
        wait_until(lambda p=parties: len(p[2]) == 2, what="a party of two")
        assert sorted(parties[2]) == ["p0", "p2"]


def test_set_partitioner_tree_cache_and_leases(members):
    a, b, c = members
    items = [f"item{i}" for i in range(6)]
    # identifiers of their own: the default (host and pid) is the same in one process
    p1 = SetPartitioner(a, "/rec/part", items, identifier="p1", time_boundary=0.3)
    p2 = SetPartitioner(b, "/rec/part", items, identifier="p2", time_boundary=0.3)

    def settle(*ps):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for p in ps:
                if p.release:
                    p.release_set()
                elif p.allocating:
                    p.wait_for_acquire(0.2)
            if all(p.state == PartitionState.ACQUIRED for p in ps):
                return
            time.sleep(0.05)
        raise AssertionError(f"partitioners did not settle: {[p.state for p in ps]}")

    settle(p1, p2)
    got1, got2 = set(p1), set(p2)
    assert got1 and got2 and not got1 & got2 and got1 | got2 == set(items)
    p2.finish()
    wait_until(lambda: p1.release, what="p1 told to release its set")
    settle(p1)
    assert set(p1) == set(items)
    p1.finish()

    c.ensure_path("/rec/tree/a")
    events = []
    cache = TreeCache(a, "/rec/tree")
    cache.listen(lambda ev: events.append((ev.event_type, ev.event_data and ev.event_data.path)))
    cache.start()
    wait_until(lambda: (TreeEvent.INITIALIZED, None) in events, what="the cache's first load")
    c.create("/rec/tree/a/b", b"1")
    c.set("/rec/tree/a/b", b"2")
    wait_until(
        lambda: (
            (cache.get_data("/rec/tree/a/b") or None) is not None
            and cache.get_data("/rec/tree/a/b").data == b"2"
        ),
        what="the cache to see the update",
    )
    assert cache.get_children("/rec/tree/a") == frozenset({"b"})
    c.delete("/rec/tree/a/b")
    wait_until(lambda: cache.get_data("/rec/tree/a/b") is None, what="the cache to drop b")
    kinds = [k for k, p in events if p == "/rec/tree/a/b"]
    # the cache reads the node after each event: the update may come in the add
    assert kinds[0] == TreeEvent.NODE_ADDED and kinds[-1] == TreeEvent.NODE_REMOVED
    cache.close()

    from datetime import timedelta

    lease = NonBlockingLease(a, "/rec/lease", timedelta(seconds=30), identifier="a")
    assert lease
    assert not NonBlockingLease(b, "/rec/lease", timedelta(seconds=30), identifier="b")
    multi = [
        MultiNonBlockingLease(cl, 2, "/rec/mlease", timedelta(seconds=30), identifier=f"m{i}")
        for i, cl in enumerate(members)
    ]
    assert [bool(m) for m in multi] == [True, True, False]


def test_watch_events_reach_a_client_on_another_member(members):
    a, _, c = members
    a.ensure_path("/ev")
    seen = []
    a.exists("/ev/n", watch=lambda e: seen.append((e.type, e.path)))
    a.get_children("/ev", watch=lambda e: seen.append((e.type, e.path)))
    c.create("/ev/n", b"")
    wait_until(lambda: len(seen) == 2, what="two events")
    assert sorted(seen) == sorted([(EventType.CREATED, "/ev/n"), (EventType.CHILD, "/ev")])
    with pytest.raises(NoNodeError):
        c.get("/ev/missing")
