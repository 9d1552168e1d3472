"""Differential test in the style of zetcd's cross-checker: the same kazoo operations
go to Debian's Apache ZooKeeper 3.8 and to racklab's, and every reply, error and stat
field must match once times, zxids and session ids are normalised."""

from __future__ import annotations

import threading

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_acl, make_digest_acl

from lab.services.ports import free_port
from lab.testing import apache_zookeeper as apache

pytestmark = pytest.mark.skipif(
    not apache.available(), reason="Debian's zookeeper package is not installed"
)


@pytest.fixture(scope="module")
def apache_zk(tmp_path_factory):
    zk = apache.ApacheZooKeeper(str(tmp_path_factory.mktemp("apache")), free_port())
    zk.start()
    yield zk
    zk.stop()


class Normaliser:
    """Maps zxids, times and session ids to stable tokens per server, in order of
    first appearance, so two servers' histories compare equal when equivalent."""

    def __init__(self):
        self.zxids: dict[int, str] = {}
        self.sessions: dict[int, str] = {}

    def zxid(self, z):
        if z == 0:
            return 0
        return self.zxids.setdefault(z, f"z{len(self.zxids)}")

    def session(self, s):
        if s == 0:
            return 0
        return self.sessions.setdefault(s, f"s{len(self.sessions)}")

    def value(self, v):
        if hasattr(v, "czxid"):  # ZnodeStat
            return (
                "stat",
                self.zxid(v.czxid),
                self.zxid(v.mzxid),
                v.ctime > 0,
                v.mtime >= v.ctime,
                v.version,
                v.cversion,
                v.aversion,
                self.session(v.ephemeralOwner),
                v.dataLength,
                v.numChildren,
                self.zxid(v.pzxid),
            )
        if isinstance(v, Exception):
            return ("error", type(v).__name__)
        if isinstance(v, tuple):
            return tuple(self.value(x) for x in v)
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if hasattr(v, "perms") and hasattr(v, "id"):  # ACL
            return ("acl", v.perms, v.id.scheme, v.id.id)
        return v


def scenario(hosts: str) -> list:
    """Run the operation sequence; return one normalised outcome per step."""
    norm = Normaliser()
    a = KazooClient(hosts=hosts, timeout=5)
    b = KazooClient(hosts=hosts, timeout=5)
    a.start(10)
    b.start(10)
    norm.session(a.client_id[0])
    norm.session(b.client_id[0])
    out = []
    events = []
    ev_lock = threading.Condition()

    def watcher(e):
        with ev_lock:
            events.append((e.type, e.state, e.path))
            ev_lock.notify_all()

    def step(name, fn, *args, **kw):
        try:
            res = fn(*args, **kw)
        except Exception as e:  # the exception class is the outcome being compared
            res = e
        if name in ("children",) and isinstance(res, list):
            res = sorted(res)
        if name == "children2" and isinstance(res, tuple):
            res = (sorted(res[0]), res[1])
        out.append((name, norm.value(res)))

    try:
        step("root-children", lambda: sorted(a.get_children("/")))
        step("zookeeper", a.get, "/zookeeper")
        step("quota", a.get, "/zookeeper/quota")
        step("config-exists", a.exists, "/zookeeper/config")
        step("config-acl", a.get_acls, "/zookeeper/config")
        step("create", a.create, "/d", b"1")
        step("create-dup", a.create, "/d", b"2")
        step("create-nonode", a.create, "/no/such/parent")
        step("create2", a.create, "/d/c2", b"xx", include_data=True)
        step("get", a.get, "/d")
        step("exists", a.exists, "/d")
        step("exists-missing", a.exists, "/nope")
        step("set-badversion", a.set, "/d", b"3", version=9)
        step("set", a.set, "/d", b"3", version=0)
        step("get-after-set", a.get, "/d")
        step("seq1", a.create, "/d/s-", b"", sequence=True)
        step("seq2", a.create, "/d/s-", b"", sequence=True, ephemeral=True)
        step("delete-seq1", a.delete, "/d/s-0000000001")
        step("seq3", a.create, "/d/s-", b"", sequence=True)
        step("seq-trailing-slash", a.create, "/d/", b"", sequence=True)
        step("children", a.get_children, "/d")
        step("children2", a.get_children, "/d", include_data=True)
        step("parent-stat", a.exists, "/d")
        step("eph", b.create, "/e", b"eph", ephemeral=True)
        step("eph-stat", a.exists, "/e")
        step("eph-child", a.create, "/e/child")
        step("delete-notempty", a.delete, "/d")
        step("delete-badversion", a.delete, "/d/c2", version=5)
        step("delete-system", a.delete, "/zookeeper")
        step("delete-root", a.delete, "/")
        step("delete-missing", a.delete, "/nope")
        step("set-missing", a.set, "/nope", b"")
        step("create-root", a.create, "/")
        step("create-empty", a.create, "/empty")
        step("get-empty", a.get, "/empty")
        step("sync", a.sync, "/d")

        def txn_ok():
            t = a.transaction()
            t.create("/t")
            t.create("/t/a", b"A")
            t.set_data("/t", b"T")
            t.check("/t", 1)
            t.delete("/t/a")
            return t.commit()

        def txn_fail():
            t = a.transaction()
            t.create("/t2")
            t.check("/t", 7)
            t.set_data("/t", b"X")
            t.delete("/missing")
            return t.commit()

        def txn_fail_last():
            t = a.transaction()
            t.create("/t3")
            t.create("/t3")
            return t.commit()

        step("multi-ok", txn_ok)
        step("multi-after", a.get, "/t")
        step("multi-fail", txn_fail)
        step("multi-fail-none-applied", a.exists, "/t2")
        step("multi-fail-last", txn_fail_last)

        step("auth", b.add_auth, "digest", "alice:pw")
        step("acl-create", b.create, "/priv", b"p", acl=[make_digest_acl("alice", "pw", all=True)])
        step("acl-get-noauth", a.get, "/priv")
        step("acl-set-noauth", a.set, "/priv", b"")
        step("acl-getacl-noauth", a.get_acls, "/priv")
        step("acl-get-auth", b.get, "/priv")
        step("acl-getacl-auth", b.get_acls, "/priv")
        step(
            "acl-mixed",
            b.create,
            "/mixed",
            b"m",
            acl=[make_digest_acl("alice", "pw", all=True), make_acl("world", "anyone", read=True)],
        )
        step("acl-mixed-getacl", a.get_acls, "/mixed")
        step("acl-mixed-create-child", a.create, "/mixed/child")
        step("acl-auth-scheme-noauth", a.create, "/authacl", acl=[make_acl("auth", "", all=True)])
        step("acl-auth-scheme", b.create, "/authacl", acl=[make_acl("auth", "", all=True)])
        step("acl-auth-scheme-getacl", b.get_acls, "/authacl")
        step("acl-invalid-digest", a.create, "/bad", acl=[make_acl("digest", "nocolon", all=True)])
        step("acl-invalid-scheme", a.create, "/bad", acl=[make_acl("nosuch", "x", all=True)])
        step("acl-ip", a.create, "/ipnode", acl=[make_acl("ip", "127.0.0.1", all=True)])
        step("acl-ip-get", a.get, "/ipnode")
        step("acl-ip-other", a.create, "/ipnode2", acl=[make_acl("ip", "10.9.9.9", all=True)])
        step("acl-ip-other-get", a.get, "/ipnode2")
        step("setacl", b.set_acls, "/priv", [make_acl("world", "anyone", read=True, admin=True)])
        step(
            "setacl-badversion",
            a.set_acls,
            "/priv",
            [make_acl("world", "anyone", all=True)],
            version=0,
        )
        step("setacl-ok", a.set_acls, "/priv", [make_acl("world", "anyone", all=True)], version=1)

        # Watches: data, child, exists, deletion seen from another session.
        a.get("/d", watch=watcher)
        a.get_children("/d", watch=watcher)
        a.exists("/w", watch=watcher)
        b.set("/d", b"w")
        b.create("/d/w")
        b.create("/w")
        with ev_lock:
            ev_lock.wait_for(lambda: len(events) >= 3, 5)
        step("events-1", lambda: sorted((t, p) for t, s, p in events))
        events.clear()
        a.get("/w", watch=watcher)
        a.get_children("/w", watch=watcher)
        b.delete("/w")
        with ev_lock:
            ev_lock.wait_for(lambda: len(events) >= 1, 5)
        import time

        time.sleep(0.3)
        step("events-delete", lambda: sorted((t, p) for t, s, p in events))
        events.clear()
        a.exists("/e", watch=watcher)
        b.stop()
        with ev_lock:
            ev_lock.wait_for(lambda: len(events) >= 1, 5)
        step("events-ephemeral-gone", lambda: sorted((t, p) for t, s, p in events))
        step("root-final", lambda: sorted(a.get_children("/")))
        step("root-stat", a.exists, "/")
    finally:
        for c in (a, b):
            try:
                c.stop()
                c.close()
            except Exception:
                pass
    return out


def test_same_replies_as_apache_zookeeper(apache_zk, zk_server):
    theirs = scenario(apache_zk.hosts)
    ours = scenario(zk_server.hosts)
    diffs = apache.differences(theirs, ours)
    assert not diffs, "\n".join(diffs)


def raw_scenario(host: str, port: int) -> list:
    """Requests kazoo cannot make (multiRead, checkWatches, reconfig, TTL), compared
    by error code and per-op result headers."""
    from lab.services.zookeeper.datatree import OPEN_ACL_UNSAFE
    from lab.services.zookeeper.jute import Writer
    from lab.services.zookeeper.proto import (
        AddWatchRequest,
        CheckWatchesRequest,
        CreateRequest,
        DeleteRequest,
        GetAllChildrenNumberRequest,
        GetChildrenRequest,
        GetDataRequest,
        GetEphemeralsRequest,
        GetEphemeralsResponse,
        MultiHeader,
        Op,
        SetDataRequest,
        WhoAmIResponse,
    )

    from .rawclient import RawClient

    c = RawClient(host, port)
    c.connect()
    out = []
    acl = list(OPEN_ACL_UNSAFE)

    def req(name, xid, op, body=b""):
        h, r = c.request(xid, op, body)
        # The body's size too: a client decodes a reply by its expected record.
        out.append((name, h.xid, h.err, r.remaining() if op != Op.MULTI_READ else None))
        return h, r

    req("create", 1, Op.CREATE, CreateRequest("/raw", b"r", acl, 0).serialize())
    w = Writer()
    for op, rec in (
        (Op.GET_DATA, GetDataRequest("/raw", False)),
        (Op.GET_DATA, GetDataRequest("/missing", False)),
        (Op.GET_CHILDREN, GetChildrenRequest("/", False)),
    ):
        MultiHeader(op, False, -1).write(w)
        rec.write(w)
    MultiHeader(-1, True, -1).write(w)
    h, r = req("multiRead", 2, Op.MULTI_READ, w.getvalue())
    if h.err == 0:
        heads = []
        while True:
            mh = MultiHeader.read(r)
            if mh.done:
                break
            heads.append((mh.type, mh.err))
            if mh.type == Op.ERROR:
                r.int()
            elif mh.type == Op.GET_DATA:
                r.buffer()
                r.pos += 68  # Stat
            else:
                sorted(r.ustring() for _ in range(r.int()))
        out.append(("multiRead-results", heads))
    req("checkWatches-none", 3, Op.CHECK_WATCHES, CheckWatchesRequest("/raw", 3).serialize())
    req("getData-watch", 4, Op.GET_DATA, GetDataRequest("/raw", True).serialize())
    req("checkWatches-data", 5, Op.CHECK_WATCHES, CheckWatchesRequest("/raw", 2).serialize())
    req("checkWatches-child", 6, Op.CHECK_WATCHES, CheckWatchesRequest("/raw", 1).serialize())
    req("removeWatches", 7, Op.REMOVE_WATCHES, CheckWatchesRequest("/raw", 2).serialize())
    req("checkWatches-removed", 8, Op.CHECK_WATCHES, CheckWatchesRequest("/raw", 2).serialize())
    ttl = CreateRequest("/ttl", b"", acl, 5).serialize() + (10000).to_bytes(8, "big")
    req("createTTL", 9, Op.CREATE_TTL, ttl)
    req("still-connected", 10, Op.EXISTS, GetDataRequest("/raw", False).serialize())

    # Persistent and persistent-recursive watches (addWatch), events in arrival order.
    def write(name, xid, op, body):
        c.events.clear()
        h, r = c.request(xid, op, body)
        out.append((name, h.err, r.remaining(), list(c.events)))

    def create(name, xid, path):
        write(name, xid, Op.CREATE, CreateRequest(path, b"", acl, 0).serialize())

    req("addWatch", 11, Op.ADD_WATCH, AddWatchRequest("/pw", 0).serialize())
    req("addWatch-recursive", 12, Op.ADD_WATCH, AddWatchRequest("/rw", 1).serialize())
    create("pw-create", 13, "/pw")
    create("pw-child", 14, "/pw/c")
    write("pw-set", 15, Op.SET_DATA, SetDataRequest("/pw", b"x", -1).serialize())
    write("pw-child-delete", 16, Op.DELETE, DeleteRequest("/pw/c", -1).serialize())
    create("rw-create", 17, "/rw")
    create("rw-child", 18, "/rw/a")
    create("rw-grandchild", 19, "/rw/a/b")
    write("rw-set-deep", 20, Op.SET_DATA, SetDataRequest("/rw/a/b", b"y", -1).serialize())
    write("rw-delete-deep", 21, Op.DELETE, DeleteRequest("/rw/a/b", -1).serialize())
    check = Op.CHECK_WATCHES
    req("checkWatches-type4", 22, check, CheckWatchesRequest("/pw", 4).serialize())
    req("checkWatches-any-persistent", 23, check, CheckWatchesRequest("/pw", 3).serialize())
    req("checkWatches-any-recursive", 27, check, CheckWatchesRequest("/rw", 3).serialize())
    req("checkWatches-data-persistent", 28, check, CheckWatchesRequest("/pw", 2).serialize())
    req("removeWatches-any", 24, Op.REMOVE_WATCHES, CheckWatchesRequest("/pw", 3).serialize())
    write("pw-set-after-remove", 25, Op.SET_DATA, SetDataRequest("/pw", b"z", -1).serialize())
    write("pw-delete", 26, Op.DELETE, DeleteRequest("/pw", -1).serialize())
    # A persistent watch half removed (data side only) still reports child changes.
    req("addWatch-3", 29, Op.ADD_WATCH, AddWatchRequest("/pw3", 0).serialize())
    req("removeWatches-data", 30, Op.REMOVE_WATCHES, CheckWatchesRequest("/pw3", 2).serialize())
    create("pw3-create", 31, "/pw3")
    create("pw3-child", 32, "/pw3/c")
    req("removeWatches-type5", 33, Op.REMOVE_WATCHES, CheckWatchesRequest("/rw", 5).serialize())
    eph = CreateRequest("/rw/e", b"", acl, 1).serialize()
    req("ephemeral", 34, Op.CREATE, eph)
    children_n = Op.GET_ALL_CHILDREN_NUMBER
    _, r = req("getEphemerals", 35, Op.GET_EPHEMERALS, GetEphemeralsRequest("/rw").serialize())
    out.append(("getEphemerals-value", GetEphemeralsResponse.read(r).ephemerals))
    _, r = req("getEphemerals-all", 36, Op.GET_EPHEMERALS, GetEphemeralsRequest("/").serialize())
    out.append(("getEphemerals-all-value", GetEphemeralsResponse.read(r).ephemerals))
    _, r = req("allChildren", 37, children_n, GetAllChildrenNumberRequest("/rw").serialize())
    out.append(("allChildren-value", r.int()))
    # (the root's count depends on what ran before on the shared Apache server)
    req("allChildren-root", 38, children_n, GetAllChildrenNumberRequest("/").serialize())
    req("allChildren-missing", 39, children_n, GetAllChildrenNumberRequest("/no").serialize())
    _, r = req("whoAmI", 40, Op.WHO_AM_I)
    out.append(
        ("whoAmI-value", [(i.authScheme, i.user) for i in WhoAmIResponse.read(r).clientInfo])
    )
    c.close()
    return out


def test_raw_requests_same_as_apache_zookeeper(apache_zk, zk_server):
    theirs = raw_scenario(apache_zk.host, apache_zk.port)
    ours = raw_scenario("127.0.0.1", zk_server.port)
    assert theirs == ours


def test_ensemble_follower_same_replies_as_apache_zookeeper(tmp_path):
    """The same scenario through a follower of a 3-server racklab ensemble, where
    every write is forwarded, proposed and committed, and through a follower of a
    3-server Apache ensemble: still field-for-field equal (/zookeeper/config shows
    the membership in both; addresses of the same length, ports of five digits)."""
    from lab.services.zookeeper.minicluster import Ensemble

    theirs_ens = apache.apache_ensemble(str(tmp_path / "apache"), n=3, base=200)
    ens = Ensemble(str(tmp_path / "racklab"), n=3, base=210)
    try:
        theirs_ens.start(timeout=60)
        ens.start()
        theirs = scenario(theirs_ens.servers[theirs_ens.follower(60)].hosts)
        ours = scenario(ens.servers[ens.follower()].hosts)
        words = [ensemble_words(e) for e in (theirs_ens, ens)]
    finally:
        ens.stop_all()
        theirs_ens.stop_all()
    diffs = apache.differences(theirs, ours)
    assert not diffs, "\n".join(diffs)
    assert words[1] == words[0]


def ensemble_words(ens) -> dict:
    """What conf and mntr say on an ensemble's leader and a follower, ports and paths
    left out: conf's keys and its membership block's shape, mntr's quorum facts."""
    from lab.services.zookeeper.minicluster import four_letter

    out = {}
    for role, i in (("leader", ens.wait_leader()), ("follower", ens.follower())):
        s = ens.servers[i]
        conf = four_letter(s.host, s.port, "conf")
        out[role, "conf"] = [line.split("=")[0] for line in conf.split("\n")]
        out[role, "conf ends"] = conf[-10:]
        if role == "leader":  # a new follower's varies with how it synced, in Apache's
            srvr = four_letter(s.host, s.port, "srvr")
            out[role, "zxid"] = next(x for x in srvr.splitlines() if x.startswith("Zxid"))
        mntr = dict(
            line.split("\t", 1) for line in four_letter(s.host, s.port, "mntr").splitlines()
        )
        quorum = ("zk_server_state", "zk_peer_state", "zk_quorum_size", "zk_synced_followers",
                  "zk_synced_non_voting_followers", "zk_synced_observers", "zk_learners")  # fmt: skip
        out[role, "mntr"] = {k: mntr.get(k) for k in quorum}
    return out
