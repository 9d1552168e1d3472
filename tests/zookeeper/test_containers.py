"""Container and TTL znodes as Apache ZooKeeper 3.8 has them: the create flags on
every create opcode and in multi, reaping by the container manager, TTL nodes only
with zookeeper.extendedTypesEnabled (raw frames: kazoo has no API for either)."""

from __future__ import annotations

import time

from lab.services.zookeeper.containers import candidates
from lab.services.zookeeper.datatree import OPEN_ACL_UNSAFE
from lab.services.zookeeper.jute import Writer
from lab.services.zookeeper.minicluster import ThreadedServer
from lab.services.zookeeper.proto import (
    Create2Response,
    CreateRequest,
    CreateResponse,
    CreateTTLRequest,
    DeleteRequest,
    Err,
    ExistsRequest,
    MultiHeader,
    Op,
    SetDataRequest,
    Stat,
    ttl_of,
    ttl_owner,
)

from .rawclient import RawClient

ACL = list(OPEN_ACL_UNSAFE)


def wait_for(cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


class Client:
    def __init__(self, port, host="127.0.0.1"):
        self.c = RawClient(host, port)
        self.c.connect()
        self.xid = 0

    def call(self, op, body):
        self.xid += 1
        return self.c.request(self.xid, op, body)

    def create(self, op, path, flags, ttl=None):
        if op == Op.CREATE_TTL:
            body = CreateTTLRequest(path, b"", ACL, flags, ttl).serialize()
        else:
            body = CreateRequest(path, b"", ACL, flags).serialize()
        return self.call(op, body)

    def exists(self, path):
        h, r = self.call(Op.EXISTS, ExistsRequest(path, False).serialize())
        return Stat.read(r) if h.err == 0 else None


def test_container_flag_on_every_create_opcode(tmp_path):
    srv = ThreadedServer(str(tmp_path / "d"))
    try:
        c = Client(srv.port)
        # create and create2 with flags=4 make a plain persistent node, as Apache's
        # (their txn carries only "ephemeral or not"); createContainer a container.
        h, r = c.create(Op.CREATE, "/p1", 4)
        assert h.err == 0 and CreateResponse.read(r).path == "/p1"
        h, r = c.create(Op.CREATE2, "/p2", 4)
        assert h.err == 0 and Create2Response.read(r).path == "/p2"
        h, r = c.create(Op.CREATE_CONTAINER, "/box", 4)
        assert h.err == 0
        reply = Create2Response.read(r)  # createContainer answers with path and Stat
        assert reply.path == "/box" and reply.stat.ephemeralOwner == 0
        assert srv.run(lambda: sorted(srv.server.tree.containers)) == ["/box"]
        h, _ = c.create(Op.CREATE, "/bad", 7)
        assert h.err == Err.BAD_ARGUMENTS
        # inside a multi: the container's result comes back as a create2 result
        w = Writer()
        MultiHeader(Op.CREATE_CONTAINER, False, -1).write(w)
        CreateRequest("/box2", b"", ACL, 4).write(w)
        MultiHeader(-1, True, -1).write(w)
        h, r = c.call(Op.MULTI, w.getvalue())
        assert h.err == 0
        sub = MultiHeader.read(r)
        assert (sub.type, sub.err) == (Op.CREATE2, 0)
        assert Create2Response.read(r).path == "/box2"
        assert srv.run(lambda: sorted(srv.server.tree.containers)) == ["/box", "/box2"]
        # a sequential create at a malformed-looking name is only validated with its
        # suffix, as Apache does
        h, r = c.create(Op.CREATE, "/p1/.", 2)
        assert h.err == 0 and CreateResponse.read(r).path == "/p1/.0000000000"
    finally:
        srv.stop()


def test_ttl_nodes_need_extended_types(tmp_path):
    srv = ThreadedServer(str(tmp_path / "d"))
    try:
        c = Client(srv.port)
        h, _ = c.create(Op.CREATE_TTL, "/t", 5, 1000)
        assert h.err == Err.UNIMPLEMENTED
        h, _ = c.create(Op.CREATE, "/t", 5)
        assert h.err == Err.UNIMPLEMENTED
        assert c.exists("/t") is None
    finally:
        srv.stop()


def test_ttl_owner_encoding_is_apaches():
    # EphemeralType.TTL.toEphemeralOwner: 0xff in the top byte, the TTL below
    assert ttl_owner(1000) == 0xFF000000000003E8 - (1 << 64)
    assert ttl_of(ttl_owner(1000)) == 1000
    assert ttl_of(-(1 << 63)) == 0 and ttl_of(0x1234) == 0


def test_containers_and_ttl_nodes_are_reaped(tmp_path):
    srv = ThreadedServer(
        str(tmp_path / "d"),
        extendedTypesEnabled="true",
        **{"znode.container.checkIntervalMs": 100, "znode.container.maxPerMinute": 600},
    )
    try:
        c = Client(srv.port)
        assert c.create(Op.CREATE_CONTAINER, "/box", 4)[0].err == 0
        assert c.create(Op.CREATE_CONTAINER, "/fresh", 4)[0].err == 0
        assert c.create(Op.CREATE, "/box/item", 0)[0].err == 0
        h, r = c.create(Op.CREATE_TTL, "/ttl", 5, 300)
        assert h.err == 0 and Create2Response.read(r).path == "/ttl"
        assert srv.run(lambda: srv.server.tree.nodes["/ttl"].owner) == ttl_owner(300)
        h, _ = c.create(Op.CREATE_TTL, "/ttl-held", 5, 300)
        assert c.create(Op.CREATE, "/ttl-held/kid", 0)[0].err == 0
        h, _ = c.create(Op.CREATE_TTL, "/bad", 5, 0)
        assert h.err == Err.BAD_ARGUMENTS
        h, _ = c.create(Op.CREATE_TTL, "/bad", 0, 1000)
        assert h.err == Err.BAD_ARGUMENTS
        # a TTL node with no change for longer than its TTL goes; one with a child stays
        assert wait_for(lambda: c.exists("/ttl") is None, 10)
        assert c.exists("/ttl-held") is not None
        # a used container goes once empty; a never-used one stays
        assert c.exists("/box") is not None
        assert c.call(Op.DELETE, DeleteRequest("/box/item", -1).serialize())[0].err == 0
        assert wait_for(lambda: c.exists("/box") is None, 10)
        assert c.exists("/fresh") is not None
        # setData renews a TTL node (its mtime is the clock)
        assert c.call(Op.DELETE, DeleteRequest("/ttl-held/kid", -1).serialize())[0].err == 0
        for _ in range(6):
            c.call(Op.SET_DATA, SetDataRequest("/ttl-held", b"x", -1).serialize())
            time.sleep(0.05)
        assert wait_for(lambda: c.exists("/ttl-held") is None, 10)
        assert srv.run(lambda: candidates(srv.server.tree, int(time.time() * 1000))) == []
    finally:
        srv.stop()


def test_ensemble_reaps_through_the_quorum(tmp_path):
    """Created through a follower (forwarded to the leader), reaped by the leader's
    container manager as ordinary deletes: every member ends without them."""
    from lab.services.zookeeper.minicluster import Ensemble

    ens = Ensemble(
        str(tmp_path),
        n=3,
        base=160,
        extendedTypesEnabled="true",
        **{"znode.container.checkIntervalMs": 100},
    )
    clients = []
    try:
        ens.start()
        leader = ens.wait_leader()
        for i in ens.servers:
            ens.wait_serving(i)
        follower = next(i for i in ens.servers if i != leader)
        s = ens.servers[follower]
        c = Client(s.port, s.host)
        assert c.create(Op.CREATE_CONTAINER, "/box", 4)[0].err == 0
        assert c.create(Op.CREATE, "/box/item", 0)[0].err == 0
        assert c.create(Op.CREATE_TTL, "/ttl", 5, 200)[0].err == 0
        assert c.call(Op.DELETE, DeleteRequest("/box/item", -1).serialize())[0].err == 0
        for i in ens.servers:
            zk = ens.client(i)
            clients.append(zk)

            def gone(zk=zk):
                zk.sync("/")
                return zk.exists("/box") is None and zk.exists("/ttl") is None

            assert wait_for(gone, 15), f"server {i} still has them"
        c.c.close()
    finally:
        for zk in clients:
            zk.stop()
            zk.close()
        ens.stop_all()
