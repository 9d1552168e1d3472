"""A 3-server ensemble in subprocesses on 127.0.0.x: replication, leader failover
without losing acknowledged writes, a minority refusing writes, followers catching
up, whole-ensemble restarts, sessions moving between servers."""

from __future__ import annotations

import os
import signal
import time

import pytest
from kazoo.exceptions import ConnectionLoss, SessionExpiredError
from kazoo.handlers.threading import KazooTimeoutError

from lab.services.zookeeper.minicluster import Ensemble


@pytest.fixture
def ensemble(tmp_path, request):
    # Distinct address ranges per test keep lingering sockets of one test from another.
    base = 40 + (abs(hash(request.node.name)) % 40) * 5
    ens = Ensemble(str(tmp_path), n=3, base=base)
    ens.start()
    ens.wait_leader()
    for i in ens.servers:  # every test starts from a whole, serving ensemble
        ens.wait_serving(i)
    clients = []
    ens.clients = clients
    yield ens
    for c in clients:
        try:
            c.stop()
            c.close()
        except Exception:
            pass
    ens.stop_all()


def connect(ens, *ids, **kw):
    c = ens.client(*ids, **kw)
    ens.clients.append(c)
    return c


def test_writes_replicate_and_every_server_reads_them(ensemble):
    leader = ensemble.wait_leader()
    followers = [i for i in ensemble.servers if i != leader]
    writer = connect(ensemble, followers[0])
    writer.create("/r", b"from a follower")
    for i in range(20):
        writer.create(f"/r/c{i}", str(i).encode())
    t = writer.transaction()
    t.create("/r/tx")
    t.set_data("/r", b"changed")
    assert len(t.commit()) == 2
    stats = []
    for i in ensemble.servers:
        reader = connect(ensemble, i)
        reader.sync("/r")
        data, stat = reader.get("/r")
        assert data == b"changed"
        assert len(reader.get_children("/r")) == 21
        stats.append(stat)
    assert stats[0] == stats[1] == stats[2]
    assert stats[0].mzxid >> 32 >= 1  # zxids carry the epoch in the high 32 bits
    # Errors come back through the leader too.
    from kazoo.exceptions import NodeExistsError

    with pytest.raises(NodeExistsError):
        writer.create("/r")


def test_leader_killed_new_leader_serves_and_nothing_acked_is_lost(ensemble):
    leader = ensemble.wait_leader()
    c = connect(ensemble)
    acked = []
    for i in range(60):
        acked.append(c.create(f"/k{i}", str(i).encode()))
    ensemble.kill(leader)
    others = [i for i in ensemble.servers if i != leader]
    new_leader = ensemble.wait_leader(among=others)
    assert new_leader != leader
    survivor = connect(ensemble, *others)
    names = set(survivor.get_children("/"))
    assert {p[1:] for p in acked} <= names
    assert survivor.create("/after", b"x") == "/after"
    # The restarted old leader follows and has everything.
    ensemble.start(leader)
    ensemble.wait_serving(leader)
    old = connect(ensemble, leader)
    old.sync("/")
    assert set(old.get_children("/")) >= {p[1:] for p in acked} | {"after"}


def test_minority_refuses_writes(ensemble):
    leader = ensemble.wait_leader()
    c = connect(ensemble)
    c.create("/before", b"")
    lone = next(i for i in ensemble.servers if i != leader)
    for i in ensemble.servers:
        if i != lone:
            ensemble.kill(i)
    # The lone server drops out of service: no client can connect, so none can write.
    deadline = time.monotonic() + 15
    while ensemble.mode(lone) in ("leader", "follower") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ensemble.mode(lone) == "looking"
    with pytest.raises((KazooTimeoutError, ConnectionLoss, SessionExpiredError)):
        c2 = ensemble.client(lone, timeout=2, start_timeout=3)
        ensemble.clients.append(c2)
        c2.create("/minority-write", b"")
    # A second server restores the quorum; the write that was refused is not there.
    back = next(i for i in ensemble.servers if i != lone)
    ensemble.start(back)
    ensemble.wait_leader(among=[lone, back])
    c3 = connect(ensemble, lone, back)
    assert c3.exists("/before") is not None
    assert c3.exists("/minority-write") is None
    c3.create("/majority-write")


def test_restarted_follower_catches_up(ensemble):
    leader = ensemble.wait_leader()
    follower = next(i for i in ensemble.servers if i != leader)
    c = connect(ensemble, leader)
    c.create("/base", b"")
    ensemble.kill(follower)
    for i in range(40):
        c.create(f"/base/m{i}", b"m")
    c.set("/base", b"v2")
    ensemble.start(follower)
    ensemble.wait_serving(follower)
    f = connect(ensemble, follower)
    # No sync(): after its sync with the leader the follower must already hold all of it.
    assert len(f.get_children("/base")) == 40
    assert f.get("/base")[0] == b"v2"


def test_paused_follower_rejoins_and_catches_up(ensemble):
    """SIGSTOP cuts a follower off as a partition would; it must rejoin by itself."""
    leader = ensemble.wait_leader()
    follower = next(i for i in ensemble.servers if i != leader)
    c = connect(ensemble, leader)
    ensemble.servers[follower].proc.send_signal(signal.SIGSTOP)
    for i in range(30):
        c.create(f"/p{i}", b"")
    time.sleep(2.0)  # beyond syncLimit * tickTime: the leader has dropped it
    ensemble.servers[follower].proc.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if ensemble.mode(follower) in ("leader", "follower"):
            f = ensemble.client(follower)
            ensemble.clients.append(f)
            if len([x for x in f.get_children("/") if x.startswith("p")]) == 30:
                break
        time.sleep(0.2)
    f = connect(ensemble, follower)
    f.sync("/")
    assert len([x for x in f.get_children("/") if x.startswith("p")]) == 30


def test_all_restarted_keep_every_acked_write(ensemble):
    ensemble.wait_leader()
    c = connect(ensemble)
    for i in range(50):
        c.create(f"/d{i}", str(i).encode())
    c.set("/d7", b"seven")
    c.stop()
    for i in ensemble.servers:
        ensemble.kill(i)
    ensemble.start()
    ensemble.wait_leader()
    c = connect(ensemble)
    c.sync("/")
    assert len([x for x in c.get_children("/") if x.startswith("d")]) == 50
    assert c.get("/d7")[0] == b"seven"
    c.create("/after-restart")


def test_session_moves_to_another_server(ensemble):
    leader = ensemble.wait_leader()
    follower = next(i for i in ensemble.servers if i != leader)
    other = next(i for i in ensemble.servers if i not in (leader, follower))
    c = ensemble.client(follower, other, timeout=4.0)
    ensemble.clients.append(c)
    # kazoo shuffles hosts; make sure we start on `follower` by checking where we are.
    c.create("/mine", b"", ephemeral=True)
    sid = c.client_id[0]
    current = c._connection._socket.getpeername()[0]
    victim = follower if current == ensemble.hostnames[follower] else other
    ensemble.kill(victim)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not c.connected:
        time.sleep(0.05)
    time.sleep(0.5)
    assert c.client_id[0] == sid
    assert c.exists("/mine").ephemeralOwner == sid
    watcher = connect(ensemble, leader)
    c.stop()  # closeSession through the new server removes the ephemeral everywhere
    deadline = time.monotonic() + 5
    while watcher.exists("/mine") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert watcher.exists("/mine") is None


def test_silent_session_on_a_follower_expires_everywhere(ensemble):
    """The leader decides expiry from the touches followers forward; a connected but
    silent client is not touched, so its session and ephemerals go."""
    from lab.services.zookeeper.datatree import OPEN_ACL_UNSAFE
    from lab.services.zookeeper.proto import CreateRequest, Op

    from .rawclient import RawClient

    leader = ensemble.wait_leader()
    follower = next(i for i in ensemble.servers if i != leader)
    fs = ensemble.servers[follower]
    raw = RawClient(fs.host, fs.port)
    resp = raw.connect(timeout_ms=1)  # the minimum: 2 * tickTime
    h, _ = raw.request(
        1, Op.CREATE, CreateRequest("/silent", b"", list(OPEN_ACL_UNSAFE), 1).serialize()
    )
    assert h.err == 0
    watcher = connect(ensemble, leader)
    assert watcher.exists("/silent").ephemeralOwner == resp.sessionId
    # Meanwhile a well-behaved kazoo session on the same follower must live on.
    keeper = connect(ensemble, follower)
    keeper.create("/kept", b"", ephemeral=True)
    assert raw.closed_by_server(timeout=10)
    deadline = time.monotonic() + 5
    while watcher.exists("/silent") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert watcher.exists("/silent") is None
    time.sleep(1.0)
    assert watcher.exists("/kept") is not None


def test_unacked_txn_of_a_dead_leader_is_truncated(ensemble):
    """The leader logs a proposal nobody else receives, then dies. The others come
    back and move on without it; when the old leader returns, the new leader makes it TRUNCate that
    txn, so the write that was never acknowledged exists nowhere."""
    leader = ensemble.wait_leader()
    followers = [i for i in ensemble.servers if i != leader]
    c = connect(ensemble, leader)
    c.create("/base", b"acked")
    # The followers are stopped, not killed: a killed follower's link closes at once
    # and the leader steps down at its next ping round (every tickTime/2), which may
    # come before the write below reaches it; then nothing is logged and nothing is
    # truncated. A stopped follower's link stays open for syncLimit ticks, so the
    # leader logs the proposal; the proposal reaches only the stopped followers'
    # socket buffers, which die unread with them.
    for f in followers:
        ensemble.servers[f].proc.send_signal(signal.SIGSTOP)
    c.create_async("/lost", b"never acknowledged")
    _wait_logged(ensemble, leader, b"never acknowledged")
    ensemble.kill(leader)
    for f in followers:
        ensemble.kill(f)
    ensemble.start(*followers)
    new_leader = ensemble.wait_leader(among=followers)
    c2 = connect(ensemble, *followers)
    assert c2.exists("/base") is not None
    assert c2.exists("/lost") is None
    c2.create("/epoch2", b"")
    ensemble.start(leader)
    ensemble.wait_serving(leader)
    old = connect(ensemble, leader)
    assert old.exists("/lost") is None
    assert old.exists("/epoch2") is not None and old.get("/base")[0] == b"acked"
    log = open(ensemble.servers[new_leader].log_path).read()
    assert f"syncing follower {leader} from" in log and "TRUNC" in log


def _wait_logged(ens, i: int, data: bytes, timeout: float = 10.0) -> None:
    """Until server i's transaction log holds `data`."""
    where = os.path.join(os.path.dirname(ens.servers[i].conf_path), "racklab-v1")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name in os.listdir(where):
            if name.startswith("log."):
                with open(os.path.join(where, name), "rb") as f:
                    if data in f.read():
                        return
        time.sleep(0.02)
    raise TimeoutError(f"server {i} did not log {data!r}")


def test_five_servers_survive_two_failures(tmp_path):
    ens = Ensemble(str(tmp_path), n=5, base=230)
    ens.clients = []
    try:
        ens.start()
        leader = ens.wait_leader()
        c = connect(ens)
        for i in range(30):
            c.create(f"/f{i}", b"")
        victim = next(i for i in ens.servers if i != leader)
        ens.kill(leader)
        ens.kill(victim)
        rest = [i for i in ens.servers if i not in (leader, victim)]
        assert ens.wait_leader(among=rest) in rest
        c2 = connect(ens, *rest)
        c2.sync("/")
        assert len([x for x in c2.get_children("/") if x.startswith("f")]) == 30
        c2.create("/three-of-five")
    finally:
        for cl in ens.clients:
            try:
                cl.stop()
                cl.close()
            except Exception:
                pass
        ens.stop_all()


def test_follower_rejoins_while_writes_flow(ensemble):
    """A follower restarts while a client keeps writing: it syncs with proposals in
    flight, and neither the writes stall nor any acknowledged one goes missing."""
    import threading

    leader = ensemble.wait_leader()
    follower = next(i for i in ensemble.servers if i != leader)
    c = connect(ensemble, leader)
    acked = []
    stop = threading.Event()

    def writer():
        i = 0
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline and i < 3000:
            acked.append(c.create(f"/w{i}", b""))
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.3)
    ensemble.kill(follower)
    time.sleep(0.3)
    ensemble.start(follower)
    ensemble.wait_serving(follower)
    time.sleep(0.5)
    stop.set()
    t.join(30)
    assert not t.is_alive()
    n = len(acked)
    assert n > 0
    f = connect(ensemble, follower)
    f.sync("/")
    names = {x for x in f.get_children("/") if x.startswith("w")}
    assert {p[1:] for p in acked} <= names
    # Writes still commit with the follower back (the other follower is needed too).
    c.create("/after-rejoin")


def test_follower_checks_sessions_it_does_not_know_with_the_leader(ensemble):
    from lab.services.zookeeper.sessions import password_for

    from .rawclient import RawClient

    leader = ensemble.wait_leader()
    follower = next(i for i in ensemble.servers if i != leader)
    fs = ensemble.servers[follower]
    # Right password for an id no one ever issued: the leader says invalid.
    bogus = 0x7F00000000000123
    c = RawClient(fs.host, fs.port)
    assert c.connect(session_id=bogus, passwd=password_for(bogus)).timeOut == 0
    assert c.closed_by_server()
    # A live session from the leader resumes on the follower with its timeout.
    ls = ensemble.servers[leader]
    a = RawClient(ls.host, ls.port)
    created = a.connect(timeout_ms=3000)
    a.close()
    b = RawClient(fs.host, fs.port)
    resumed = b.connect(session_id=created.sessionId, passwd=created.passwd)
    assert resumed.sessionId == created.sessionId and resumed.timeOut == created.timeOut
    b.close()


def test_far_behind_follower_gets_a_snapshot(tmp_path):
    """A follower older than anything in the leader's log (snapshots have moved on)
    is brought up to date with a whole SNAP."""
    ens = Ensemble(str(tmp_path), n=3, base=240, snapCount=20)
    ens.clients = []
    try:
        ens.start()
        leader = ens.wait_leader()
        for i in ens.servers:
            ens.wait_serving(i)
        behind = next(i for i in ens.servers if i != leader)
        ens.kill(behind)
        c = connect(ens, leader)
        for i in range(120):
            c.create(f"/s{i}", str(i).encode())
        c.stop()
        # Restart the leader so that its in-memory history starts at its snapshot.
        ens.kill(leader)
        ens.start(leader)
        others = [i for i in ens.servers if i != behind]
        new_leader = ens.wait_leader(among=others)
        ens.start(behind)
        ens.wait_serving(behind)
        f = connect(ens, behind)
        assert len([x for x in f.get_children("/") if x.startswith("s")]) == 120
        assert f.get("/s77")[0] == b"77"
        log = open(ens.servers[new_leader].log_path).read()
        assert f"syncing follower {behind} from 0x0 by SNAP" in log
    finally:
        for cl in ens.clients:
            try:
                cl.stop()
                cl.close()
            except Exception:
                pass
        ens.stop_all()


def test_garbage_on_peer_and_election_ports_is_ignored(ensemble):
    import os
    import socket

    from lab.services.zookeeper.config import load

    leader = ensemble.wait_leader()
    cfg = load(ensemble.servers[leader].conf_path)
    for peer in cfg.servers.values():
        for port in (peer.peer_port, peer.election_port):
            for payload in (os.urandom(256), b"\x00\x00\x00\x09\x0b" + b"\x00" * 8, b"\xff" * 16):
                try:
                    with socket.create_connection((peer.host, port), timeout=2) as s:
                        s.sendall(payload)
                except OSError:
                    pass  # not listening (a follower's peer port): nothing to attack
    time.sleep(0.5)
    assert ensemble.wait_leader() == leader
    c = connect(ensemble)
    c.create("/still-fine")
    for i in ensemble.servers:
        assert ensemble.mode(i) in ("leader", "follower")
