"""kazoo's own recipes, unmodified, against racklab's ZooKeeper."""

from __future__ import annotations

import threading
import time

from kazoo.recipe.barrier import Barrier, DoubleBarrier
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock, Semaphore
from kazoo.recipe.party import Party, ShallowParty
from kazoo.recipe.queue import LockingQueue, Queue
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

from .recipes import contend_for_lock


def test_lock_is_exclusive(make_client):
    order, overlap = contend_for_lock([make_client() for _ in range(3)], "/locks/res")
    assert not overlap
    assert sorted(order) == sorted([f"w{i}" for i in range(3)] * 3)


def test_lock_contenders_and_release_on_session_close(make_client):
    a, b = make_client(), make_client()
    la = Lock(a, "/locks/x", "alice")
    assert la.acquire(timeout=5)
    lb = Lock(b, "/locks/x", "bob")
    assert not lb.acquire(blocking=False)
    assert la.contenders() == ["alice"]
    a.stop()  # the ephemeral lock node goes with the session
    assert lb.acquire(timeout=5)
    lb.release()


def test_semaphore(make_client):
    c = make_client()
    s1 = Semaphore(c, "/sem", "a", max_leases=2)
    s2 = Semaphore(c, "/sem", "b", max_leases=2)
    s3 = Semaphore(make_client(), "/sem", "c", max_leases=2)
    assert s1.acquire(timeout=5) and s2.acquire(timeout=5)
    assert not s3.acquire(blocking=False)
    s1.release()
    assert s3.acquire(timeout=5)
    assert sorted(s3.lease_holders()) == ["b", "c"]


def test_election_fails_over(make_client):
    a, b = make_client(), make_client()
    won = []
    ea = Election(a, "/election", "a")
    eb = Election(b, "/election", "b")
    leading = threading.Event()

    def lead(name):
        won.append(name)
        leading.set()
        time.sleep(60)

    ta = threading.Thread(target=ea.run, args=(lead, "a"), daemon=True)
    ta.start()
    assert leading.wait(5)
    leading.clear()
    tb = threading.Thread(target=eb.run, args=(lead, "b"), daemon=True)
    tb.start()
    time.sleep(0.2)
    assert won == ["a"]
    assert eb.contenders() == ["a", "b"]
    a.stop()
    assert leading.wait(5)
    assert won == ["a", "b"]


def test_counter(make_client):
    c1, c2 = make_client(), make_client()
    k1, k2 = Counter(c1, "/count"), Counter(c2, "/count")

    def bump(k):
        for _ in range(20):
            k += 1  # Counter.__add__ retries its versioned set until it wins

    threads = [threading.Thread(target=bump, args=(k,)) for k in (k1, k2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert Counter(c1, "/count").value == 40
    k1 -= 5
    assert k2.value == 35
    f = Counter(c1, "/fcount", default=0.0)
    f += 2.5
    assert f.value == 2.5


def test_barrier(make_client):
    c = make_client()
    b = Barrier(c, "/barrier")
    b.create()
    passed = threading.Event()
    other = Barrier(make_client(), "/barrier")
    t = threading.Thread(target=lambda: other.wait(10) and passed.set())
    t.start()
    time.sleep(0.2)
    assert not passed.is_set()
    b.remove()
    assert passed.wait(5)
    t.join(5)


def test_double_barrier(make_client):
    n = 3
    entered = []
    left = []

    def member(i):
        db = DoubleBarrier(make_client(), "/dbar", n, identifier=f"m{i}")
        db.enter()
        entered.append(i)
        db.leave()
        left.append(i)

    threads = [threading.Thread(target=member, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(entered) == list(range(n))
    assert sorted(left) == list(range(n))


def test_queue_and_locking_queue(make_client):
    c = make_client()
    q = Queue(c, "/queue")
    for item in (b"one", b"two", b"three"):
        q.put(item)
    q.put(b"urgent", priority=1)
    assert len(q) == 4
    assert [q.get() for _ in range(4)] == [b"urgent", b"one", b"two", b"three"]
    assert q.get() is None
    lq = LockingQueue(make_client(), "/lqueue")
    lq.put_all([b"a", b"b"])
    assert lq.get(timeout=5) == b"a"
    assert lq.consume()
    assert lq.get(timeout=5) == b"b"
    assert lq.consume()
    assert len(lq) == 0


def test_party_and_shallow_party(make_client):
    a, b = make_client(), make_client()
    pa = Party(a, "/party", "alice")
    pb = Party(b, "/party", "bob")
    pa.join()
    pb.join()
    assert sorted(pa) == ["alice", "bob"] and len(pa) == 2
    pb.leave()
    assert list(pa) == ["alice"]
    sp = ShallowParty(a, "/sparty", "x")
    sp.join()
    ShallowParty(b, "/sparty", "y").join()
    assert sorted(sp) == ["x", "y"]
    b.stop()  # members are ephemeral
    assert list(sp) == ["x"]


def test_data_watch(make_client):
    c, writer = make_client(), make_client()
    seen = []
    changed = threading.Condition()

    def on_change(data, stat, event):
        with changed:
            seen.append((data, stat.version if stat else None))
            changed.notify_all()

    def until(cond) -> bool:
        with changed:
            return changed.wait_for(cond, 5)

    # A watch fires once and kazoo's DataWatch then reads the node again, so a change
    # made before that read is seen only as its result: each step waits to be seen.
    DataWatch(c, "/dw", on_change)
    assert until(lambda: seen == [(None, None)])
    writer.create("/dw", b"a")
    assert until(lambda: (b"a", 0) in seen)
    writer.set("/dw", b"b")
    assert until(lambda: (b"b", 1) in seen)
    writer.delete("/dw")
    assert until(lambda: seen[-1] == (None, None) and len(seen) >= 4)
    assert seen == [(None, None), (b"a", 0), (b"b", 1), (None, None)]


def test_children_watch(make_client):
    c, writer = make_client(), make_client()
    snapshots = []
    cond = threading.Condition()

    def on_children(children):
        with cond:
            snapshots.append(sorted(children))
            cond.notify_all()

    c.ensure_path("/cw")
    ChildrenWatch(c, "/cw", on_children)
    writer.create("/cw/a")
    with cond:
        cond.wait_for(lambda: snapshots[-1] == ["a"], 5)
    writer.create("/cw/b", ephemeral=True)
    with cond:
        cond.wait_for(lambda: snapshots[-1] == ["a", "b"], 5)
    writer.stop()
    with cond:
        cond.wait_for(lambda: snapshots[-1] == ["a"], 5)
    assert snapshots[0] == [] and snapshots[-1] == ["a"]
    assert ["a", "b"] in snapshots
