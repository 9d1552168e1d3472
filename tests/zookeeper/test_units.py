"""Unit checks of the codec, path rules, ACL digests and persistence pieces."""

from __future__ import annotations

import pytest
from kazoo.protocol.serialization import Create as KazooCreate
from kazoo.security import OPEN_ACL_UNSAFE as KAZOO_OPEN_ACL
from kazoo.security import make_digest_acl_credential

from lab.services.zookeeper import acl
from lab.services.zookeeper.datatree import OPEN_ACL_UNSAFE, DataTree
from lab.services.zookeeper.jute import JuteError, Reader
from lab.services.zookeeper.persistence import deserialize_tree, serialize_tree
from lab.services.zookeeper.prep import Preparer, validate_path
from lab.services.zookeeper.proto import ACL, CreateRequest, Id, Op, Stat, ZKError
from lab.services.zookeeper.txn import Txn, TxnHeader


def test_create_request_matches_kazoo_encoding():
    ours = CreateRequest("/a/b", b"data", [ACL(31, Id("world", "anyone"))], 3).serialize()
    theirs = KazooCreate("/a/b", b"data", KAZOO_OPEN_ACL, 3).serialize()
    assert ours == bytes(theirs)
    back = CreateRequest.deserialize(ours)
    assert back == CreateRequest("/a/b", b"data", [ACL(31, Id("world", "anyone"))], 3)


def test_null_buffer_and_string_round_trip():
    r = CreateRequest(None, None, None, 0)
    assert CreateRequest.deserialize(r.serialize()) == r


def test_truncated_record_raises():
    data = Stat(*range(11)).serialize()
    with pytest.raises(JuteError):
        Stat.read(Reader(data[:-1]))


def test_lying_lengths_raise_before_allocating():
    with pytest.raises(JuteError):
        Reader(b"\x7f\xff\xff\xff").buffer()
    with pytest.raises(JuteError):
        CreateRequest.deserialize(b"\x00\x00\x00\x02/a" + b"\xff\xff\xff\xff" + b"\x7f\xff\xff\xff")


@pytest.mark.parametrize(
    "path, sequential, ok",
    [
        ("/", False, True),
        ("/a/b", False, True),
        ("/a/", False, False),
        ("/a/", True, True),
        ("a", False, False),
        ("/a//b", False, False),
        ("/a/../b", False, False),
        ("/a/\x00", False, False),
        ("/a/\u0007", False, False),
        ("/zookeeper-ok", False, True),
    ],
)
def test_validate_path(path, sequential, ok):
    if ok:
        validate_path(path, sequential)
    else:
        with pytest.raises(ZKError):
            validate_path(path, sequential)


def test_digest_matches_kazoo():
    assert acl.digest("alice:secret") == make_digest_acl_credential("alice", "secret")


def test_acl_check_and_fixup():
    digest_id = Id("digest", acl.digest("u:p"))
    entries = [ACL(1, digest_id), ACL(2, Id("ip", "10.0.0.0/8"))]
    acl.check(entries, 1, [Id("ip", "127.0.0.1"), digest_id])
    acl.check(entries, 2, [Id("ip", "10.1.2.3")])
    with pytest.raises(ZKError):
        acl.check(entries, 2, [Id("ip", "127.0.0.1"), digest_id])
    assert acl.fixup([ACL(31, Id("auth", ""))], [Id("ip", "1.2.3.4"), digest_id]) == [
        ACL(31, digest_id)
    ]
    for bad in (
        [],
        [ACL(31, Id("auth", ""))],
        [ACL(31, Id("world", "everyone"))],
        [ACL(31, Id("ip", "nope"))],
    ):
        with pytest.raises(ZKError):
            acl.fixup(bad, [Id("ip", "1.2.3.4")])


def test_outstanding_changes_validate_pipelined_writes():
    """Two creates of the same path prepared before either applies: the second fails."""
    tree = DataTree()
    prep = Preparer(tree, 1 << 20)
    req = CreateRequest("/x", b"", list(OPEN_ACL_UNSAFE), 0)
    op, body = prep.prepare(Op.CREATE, req, 1, [], 1)
    with pytest.raises(ZKError) as e:
        prep.prepare(Op.CREATE, req, 1, [], 2)
    assert e.value.code == -110
    tree.apply(Txn(TxnHeader(1, 1, 1, 0, op), body))
    prep.applied(1)
    assert not prep.pending


def test_snapshot_round_trip():
    tree = DataTree()
    prep = Preparer(tree, 1 << 20)
    for z, path in enumerate(["/a", "/a/b", "/c"], 1):
        op, body = prep.prepare(
            Op.CREATE, CreateRequest(path, path.encode(), list(OPEN_ACL_UNSAFE), 0), 7, [], z
        )
        tree.apply(Txn(TxnHeader(7, z, z, 1000 + z, op), body))
    tree.sessions[7] = 4000
    again = deserialize_tree(serialize_tree(tree))
    assert again.last_zxid == 3 and again.sessions == {7: 4000}
    for path, node in tree.nodes.items():
        assert again.nodes[path].stat() == node.stat()
        assert again.nodes[path].data == node.data
        assert again.nodes[path].acl == node.acl


def test_debians_own_zoo_cfg_parses():
    import os

    from lab.services.zookeeper.config import load

    path = "/etc/zookeeper/conf/zoo.cfg"
    if not os.path.exists(path):
        pytest.skip("Debian's zookeeper package is not installed")
    cfg = load(path)
    assert (cfg.tick_time, cfg.init_limit, cfg.sync_limit, cfg.client_port) == (2000, 10, 5, 2181)
    assert cfg.standalone


def test_ensemble_cfg_and_errors(tmp_path):
    from lab.services.zookeeper.config import ConfigError, parse

    (tmp_path / "myid").write_text("2\n")
    text = (
        f"dataDir={tmp_path}\ntickTime=500\nclientPort=2181\nforceSync=no\n"
        "server.1=10.0.0.1:2888:3888\nserver.2=10.0.0.2:2888:3888:participant;10.0.0.2:2182\n"
        "server.3=10.0.0.3:2888:3888\n"
    )
    cfg = parse(text)
    assert cfg.myid == 2 and not cfg.standalone and not cfg.force_sync
    assert cfg.servers[2].client_port == 2182 and cfg.servers[3].election_port == 3888
    assert (cfg.min_timeout, cfg.max_timeout) == (1000, 10000)
    with pytest.raises(ConfigError, match="line 2"):
        parse(f"dataDir={tmp_path}\ntickTime=fast\n")
    with pytest.raises(ConfigError, match="server.1"):
        parse(f"dataDir={tmp_path}\nserver.1=10.0.0.1\n")
    with pytest.raises(ConfigError, match="dataDir"):
        parse("tickTime=100\n")
