"""Unmodified kazoo against racklab's ZooKeeper: CRUD, stat fields, errors, watches,
ephemerals, sequence nodes, transactions, ACLs and auth."""

from __future__ import annotations

import threading
import time

import pytest
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import EventType, KazooState
from kazoo.security import make_acl, make_digest_acl


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def test_create_get_set_delete(zk):
    assert zk.create("/app", b"v1") == "/app"
    data, stat = zk.get("/app")
    assert data == b"v1"
    assert stat.version == 0 and stat.dataLength == 2 and stat.numChildren == 0
    assert stat.czxid == stat.mzxid == stat.pzxid
    assert stat.ephemeralOwner == 0
    assert abs(stat.ctime / 1000 - time.time()) < 60
    stat2 = zk.set("/app", b"v22")
    assert stat2.version == 1 and stat2.dataLength == 3
    assert stat2.mzxid > stat.mzxid and stat2.czxid == stat.czxid
    assert zk.get("/app")[0] == b"v22"
    zk.delete("/app")
    assert zk.exists("/app") is None


def test_parent_stat_tracks_children(zk):
    zk.create("/p")
    before = zk.exists("/p")
    zk.create("/p/a")
    zk.create("/p/b")
    after = zk.exists("/p")
    assert after.numChildren == 2
    assert after.cversion == before.cversion + 2
    assert after.pzxid > before.pzxid
    assert after.version == 0 and after.mzxid == before.mzxid
    zk.delete("/p/a")
    assert zk.exists("/p").numChildren == 1
    assert zk.exists("/p").cversion == before.cversion + 3
    assert sorted(zk.get_children("/p")) == ["b"]
    children, stat = zk.get_children("/p", include_data=True)
    assert children == ["b"] and stat.numChildren == 1


def test_errors(zk):
    with pytest.raises(NoNodeError):
        zk.get("/missing")
    with pytest.raises(NoNodeError):
        zk.create("/missing/child")
    zk.create("/e", b"x")
    with pytest.raises(NodeExistsError):
        zk.create("/e")
    with pytest.raises(BadVersionError):
        zk.set("/e", b"y", version=7)
    with pytest.raises(BadVersionError):
        zk.delete("/e", version=3)
    zk.create("/e/c")
    with pytest.raises(NotEmptyError):
        zk.delete("/e")
    zk.create("/eph", ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create("/eph/child")
    with pytest.raises(BadArgumentsError):
        zk.delete("/zookeeper")
    with pytest.raises(NoNodeError):
        zk.set("/nothing", b"")
    with pytest.raises(NoNodeError):
        zk.delete("/nothing")
    zk.delete("/e", recursive=True)
    assert zk.exists("/e") is None


def test_ensure_path_and_makepath(zk):
    zk.ensure_path("/a/b/c/d")
    assert zk.exists("/a/b/c/d")
    assert zk.create("/x/y/z", b"deep", makepath=True) == "/x/y/z"
    assert zk.get("/x/y/z")[0] == b"deep"


def test_large_value_up_to_maxbuffer(zk):
    value = bytes(range(256)) * 3000  # 768000 bytes
    zk.create("/big", value)
    assert zk.get("/big")[0] == value


def test_sequence_nodes(zk):
    zk.create("/seq")
    names = [zk.create("/seq/n-", sequence=True) for _ in range(3)]
    assert names == ["/seq/n-0000000000", "/seq/n-0000000001", "/seq/n-0000000002"]
    zk.delete(names[1])
    assert zk.exists("/seq").cversion == 4  # three creates and a delete
    # The suffix counts child creations only (Apache ZooKeeper behaves the same).
    assert zk.create("/seq/n-", sequence=True) == "/seq/n-0000000003"
    assert zk.create("/seq/", sequence=True) == "/seq/0000000004"


def test_ephemeral_removed_on_close(make_client, zk):
    other = make_client()
    path = other.create("/lock-", ephemeral=True, sequence=True)
    stat = zk.exists(path)
    assert stat.ephemeralOwner == other.client_id[0]
    gone = threading.Event()

    def watch(event):
        if event.type == EventType.DELETED:
            gone.set()

    zk.exists(path, watch=watch)
    other.stop()
    assert gone.wait(5)
    assert zk.exists(path) is None


def test_ephemeral_removed_on_expiry(make_client, zk, zk_server):
    other = make_client(timeout=0.5)
    other.create("/exp", b"", ephemeral=True)
    deleted = threading.Event()
    zk.exists("/exp", watch=lambda e: e.type == EventType.DELETED and deleted.set())
    states = []
    other.add_listener(states.append)
    sid = other.client_id[0]

    def silence():
        # As if no packet had arrived for the whole timeout: the deadline is past.
        zk_server.server.sessions[sid].expires = 0
        zk_server.server.expire_sessions()

    zk_server.run(silence)
    assert deleted.wait(5)
    assert zk.exists("/exp") is None
    assert wait_for(lambda: KazooState.LOST in states, 10)


def test_data_child_and_exists_watches(zk, make_client):
    other = make_client()
    events = []
    cv = threading.Condition()

    def w(event):
        with cv:
            events.append((event.type, event.path))
            cv.notify_all()

    def wait_events(n):
        with cv:
            cv.wait_for(lambda: len(events) >= n, 5)
        return list(events)

    zk.exists("/w", watch=w)
    other.create("/w", b"1")
    assert wait_events(1)[0] == (EventType.CREATED, "/w")
    zk.get("/w", watch=w)
    zk.get_children("/w", watch=w)
    other.set("/w", b"2")
    assert wait_events(2)[1] == (EventType.CHANGED, "/w")
    other.set("/w", b"3")  # one-shot: no second CHANGED
    other.create("/w/kid")
    assert wait_events(3)[2] == (EventType.CHILD, "/w")
    zk.get("/w", watch=w)
    zk.get_children("/w", watch=w)
    other.delete("/w/kid")
    assert wait_events(4)[3] == (EventType.CHILD, "/w")
    other.delete("/w")
    assert wait_events(5)[4] == (EventType.DELETED, "/w")
    time.sleep(0.2)
    assert len(events) == 5, events


def test_transaction_commits_atomically(zk):
    zk.create("/t", b"0")
    t = zk.transaction()
    t.create("/t/a", b"a")
    t.set_data("/t", b"1")
    t.check("/t", 1)  # sees the set_data above: ops in a multi build on each other
    t.create("/t/b", b"", ephemeral=True)
    results = t.commit()
    assert results[0] == "/t/a"
    assert results[1].version == 1
    assert results[2] is True
    assert results[3] == "/t/b"
    assert zk.get("/t/a")[1].czxid == zk.get("/t/b")[1].czxid == results[1].mzxid


def test_transaction_failure_reports_each_op(zk):
    zk.create("/f", b"0")
    t = zk.transaction()
    t.create("/f/new")
    t.set_data("/f", b"x", version=5)
    t.delete("/f/none")
    results = t.commit()
    assert isinstance(results[0], RolledBackError)
    assert isinstance(results[1], BadVersionError)
    assert isinstance(results[2], RuntimeInconsistency)
    assert zk.exists("/f/new") is None
    assert zk.get("/f")[0] == b"0"
    # The failed multi left no outstanding change behind: the same create now works.
    assert zk.create("/f/new") == "/f/new"


def test_digest_acl_and_auth(make_client):
    owner = make_client(auth_data=[("digest", "alice:secret")])
    acl = make_digest_acl("alice", "secret", all=True)
    owner.create("/private", b"s3", acl=[acl])
    assert owner.get("/private")[0] == b"s3"
    stranger = make_client()
    with pytest.raises(NoAuthError):
        stranger.get("/private")
    with pytest.raises(NoAuthError):
        stranger.set("/private", b"x")
    with pytest.raises(NoAuthError):  # getACL needs READ or ADMIN
        stranger.get_acls("/private")
    stranger.add_auth("digest", "alice:secret")
    assert stranger.get("/private")[0] == b"s3"
    acls, stat = owner.get_acls("/private")
    assert acls[0].id.scheme == "digest" and acls[0].id.id.startswith("alice:")
    assert acls[0].id.id != "alice:x"
    # Readers without ADMIN see digest ids with the hash blanked out.
    owner.create("/shown", acl=[acl, make_acl("world", "anyone", read=True)])
    shown, _ = make_client().get_acls("/shown")
    assert shown[0].id.id == "alice:x"


def test_auth_scheme_acl_and_set_acl(make_client):
    c = make_client(auth_data=[("digest", "bob:pw")])
    c.create("/bob", b"", acl=[make_acl("auth", "", all=True)])
    acls, stat = c.get_acls("/bob")
    assert [a.id.scheme for a in acls] == ["digest"]
    assert acls[0].id.id.startswith("bob:")
    world_read = make_acl("world", "anyone", read=True)
    with pytest.raises(BadVersionError):
        c.set_acls("/bob", [world_read], version=3)
    st = c.set_acls("/bob", [world_read])
    assert st.aversion == 1
    other = make_client()
    assert other.get("/bob")[0] == b""
    with pytest.raises(NoAuthError):
        other.set("/bob", b"nope")
    with pytest.raises(NoAuthError):  # bob gave away ADMIN with the new ACL
        c.set_acls("/bob", [world_read], version=1)


def test_ip_acl(make_client):
    c = make_client()
    c.create("/local", b"l", acl=[make_acl("ip", "127.0.0.0/8", all=True)])
    assert c.get("/local")[0] == b"l"
    c.create("/remote", b"r", acl=[make_acl("ip", "10.1.2.3", all=True)])
    with pytest.raises(NoAuthError):
        c.get("/remote")


def test_sync_and_pipelined_async_in_order(zk):
    zk.create("/o", b"")
    assert zk.sync("/o") == "/o"
    results = [zk.set_async("/o", str(i).encode()) for i in range(50)]
    versions = [r.get(timeout=5).version for r in results]
    assert versions == list(range(1, 51))
    gets = [zk.get_async("/o") for _ in range(50)]
    assert all(g.get(timeout=5)[0] == b"49" for g in gets)


def test_session_resumes_on_new_connection(make_client, zk_server):
    c = make_client()
    c.create("/mine", ephemeral=True)
    sid = c.client_id[0]
    # Drop the TCP connection from the server side: kazoo reconnects with the same session.
    zk_server.run(
        lambda: [
            x.close()
            for x in list(zk_server.server.connections)
            if x.session and x.session.id == sid
        ]
    )
    assert wait_for(lambda: c.connected and c.client_id[0] == sid, 10)
    time.sleep(0.3)
    assert c.exists("/mine") is not None
    assert c.client_id[0] == sid


def test_watch_rearmed_by_set_watches_after_reconnect(make_client, zk_server):
    c = make_client()
    other = make_client()
    c.create("/sw", b"0")
    fired = threading.Event()
    c.get("/sw", watch=lambda e: fired.set())
    sid = c.client_id[0]
    zk_server.run(
        lambda: [
            x.close()
            for x in list(zk_server.server.connections)
            if x.session and x.session.id == sid
        ]
    )
    assert wait_for(lambda: c.connected, 10)
    time.sleep(0.3)
    other.set("/sw", b"1")
    assert fired.wait(5)


def test_container_deleted_once_emptied(tmp_path):
    """createContainer (kazoo has no API for it, so raw frames); the container goes
    once its last child is gone, as ZooKeeper's ContainerManager does."""
    from lab.services.zookeeper.datatree import OPEN_ACL_UNSAFE
    from lab.services.zookeeper.minicluster import ThreadedServer
    from lab.services.zookeeper.proto import CreateRequest, Op

    from .rawclient import RawClient

    srv = ThreadedServer(str(tmp_path / "c"), **{"znode.container.checkIntervalMs": 100})
    try:
        c = RawClient("127.0.0.1", srv.port)
        c.connect()
        acl = list(OPEN_ACL_UNSAFE)
        for xid, path in ((1, "/box"), (2, "/never-used")):
            h, _ = c.request(xid, Op.CREATE_CONTAINER, CreateRequest(path, b"", acl, 4).serialize())
            assert h.err == 0
        from kazoo.client import KazooClient

        zk = KazooClient(hosts=srv.hosts)
        zk.start(10)
        try:
            # Clients see 0: Apache's DataNode.copyStat hides a container's marker owner
            assert zk.exists("/box").ephemeralOwner == 0
            zk.create("/box/item")
            time.sleep(0.4)
            assert zk.exists("/box") is not None  # still has a child
            zk.delete("/box/item")
            assert wait_for(lambda: zk.exists("/box") is None, 5)
            assert zk.exists("/never-used") is not None
        finally:
            zk.stop()
            zk.close()
    finally:
        srv.stop()


def test_kazoo_four_letter_helpers(zk):
    assert zk.command(b"ruok") == "imok"
    assert zk.server_version() == (3, 8, 0)
