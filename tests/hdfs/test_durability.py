"""NameNode metadata: edit log replay after a restart (safe mode first), checkpoints by
the secondary NameNode shrinking the edit log, recovery from fsimage plus edits."""

from __future__ import annotations

import os

import pytest
from hdfs import HdfsError, InsecureClient

from lab.services.hdfs.minicluster import MiniCluster
from lab.services.hdfs.storage import NNStorage

BLOCK = 64 * 1024


@pytest.fixture
def dc(tmp_path):
    with MiniCluster(
        tmp_path,
        racks={"/rack1": 2, "/rack2": 1},
        secondary=True,
        settings={
            "dfs.blocksize": "64k",
            "dfs.namenode.safemode.extension": "1500",
            "dfs.namenode.checkpoint.txns": "120",
            "dfs.namenode.checkpoint.check.period": "0.3s",
            "dfs.namenode.num.checkpoints.retained": "1",
            "dfs.namenode.num.extra.edits.retained": "0",
        },
    ).running() as c:
        yield c


def test_restart_enters_safe_mode_then_leaves_with_files_intact(dc):
    client = InsecureClient(dc.url, user="root")
    files = {f"/keep/f{i}": os.urandom(i * 20_000) for i in range(6)}
    for p, d in files.items():
        client.write(p, d, overwrite=True)
    client.write("/keep/f1", b"appended", append=True)
    files["/keep/f1"] += b"appended"
    client.rename("/keep/f5", "/keep/renamed")
    files["/keep/renamed"] = files.pop("/keep/f5")
    client.delete("/keep/f4")
    files.pop("/keep/f4")
    client.set_permission("/keep/f3", "640")
    dc.restart_namenode()
    info = dc.jmx("NameNodeInfo")
    assert info["Safemode"].startswith("Safe mode is ON")
    with pytest.raises(HdfsError) as exc:
        client.makedirs("/during-safemode")
    assert exc.value.exception == "SafeModeException"
    dc.wait_active()
    assert sorted(client.list("/keep")) == sorted(p.rsplit("/", 1)[1] for p in files)
    for p, d in files.items():
        with client.read(p) as r:
            assert r.read() == d
    assert client.status("/keep/f3")["permission"] == "640"
    client.write("/keep/after", b"new", overwrite=True)  # writable again


def test_checkpoint_shrinks_edit_log_and_restart_uses_it(dc):
    client = InsecureClient(dc.url, user="root")
    client.makedirs("/ck")
    client.set_acl("/ck", "user:bob:r-x,default:user:bob:r-x", clear=False)
    peak, after = 0, None
    for i in range(400):  # one change at a time until the secondary has checkpointed
        client.makedirs(f"/ck/d{i}")
        state = dc.jmx("FSNamesystem")
        if state["MostRecentCheckpointTxId"] > 0:
            after = state
            break
        peak = max(peak, state["EditLogBytes"])
    assert after is not None, "no checkpoint after 400 transactions with checkpoint.txns=120"
    assert after["MostRecentCheckpointTxId"] >= 120
    assert after["EditLogBytes"] < peak / 2
    for j in range(5):
        client.write(f"/ck/d{j}/f{j}", f"file {j}".encode(), overwrite=True)
    storage = NNStorage(dc.root / "name")
    assert storage.images()[-1] == after["MostRecentCheckpointTxId"]
    assert all(first > storage.images()[0] for first, _, _ in storage.segments())
    client.write("/ck/late", b"after the checkpoint", overwrite=True)
    dc.restart_namenode()
    dc.wait_active()
    assert len(client.list("/ck")) == i + 2
    # The ACL set before the checkpoint came back from the image, and the directories
    # made after it inherited its default entry (replayed from the image and the log).
    acl = client.acl_status("/ck")["entries"]
    assert "user:bob:r-x" in acl and "default:user:bob:r-x" in acl
    assert "user:bob:r-x" in client.acl_status(f"/ck/d{i}")["entries"]
    with client.read("/ck/d3/f3") as r:
        assert r.read() == b"file 3"
    with client.read("/ck/late") as r:
        assert r.read() == b"after the checkpoint"


def test_torn_edit_record_is_dropped_on_recovery(tmp_path):
    """A crash can leave half a line at the end of the in-progress segment; that change
    was never synced, so never acknowledged, and recovery must drop it cleanly."""
    c = MiniCluster(tmp_path, racks={"/r": 1}, settings={"dfs.replication": "1"})
    try:
        c.start()
        c.wait_active()
        client = InsecureClient(c.url, user="root")
        client.makedirs("/a/b")
        c.kill(c.namenode)
        seg = [p for _, last, p in NNStorage(tmp_path / "name").segments() if last is None][0]
        with open(seg, "ab") as f:
            f.write(b'{"op":"OP_MKDIR","path":"/torn"')
        c._spawn(c.namenode, 30)
        c.wait_active()
        assert client.status("/a/b")["type"] == "DIRECTORY"
        assert client.status("/torn", strict=False) is None
    finally:
        c.stop()


def test_acknowledged_changes_survive_kill_9(dc):
    """The edit log is fsync'ed before a change is acknowledged, so SIGKILL right after
    the acknowledgements loses none of them."""
    client = InsecureClient(dc.url, user="root")
    files = {f"/k9/f{i}": os.urandom(1000 + i * 7000) for i in range(8)}
    for p, d in files.items():
        client.write(p, d, overwrite=True)
    client.makedirs("/k9/empty-dir")
    client.rename("/k9/f7", "/k9/moved")
    files["/k9/moved"] = files.pop("/k9/f7")
    dc.kill(dc.namenode)  # SIGKILL: no shutdown code runs
    dc._spawn(dc.namenode, 30)
    dc.wait_active()
    assert client.status("/k9/empty-dir")["type"] == "DIRECTORY"
    for p, d in files.items():
        with client.read(p) as r:
            assert r.read() == d


def test_checkpoint_on_period(tmp_path):
    c = MiniCluster(
        tmp_path,
        racks={"/r": 1},
        secondary=True,
        settings={
            "dfs.replication": "1",
            "dfs.namenode.checkpoint.period": "2s",
            "dfs.namenode.checkpoint.txns": "1000000",
            "dfs.namenode.checkpoint.check.period": "0.3s",
        },
    )
    try:
        c.start()
        c.wait_active()
        client = InsecureClient(c.url, user="root")
        for i in range(5):
            client.makedirs(f"/period/d{i}")
        txid = c.jmx("FSNamesystem")["LastWrittenTransactionId"]
        c.wait(
            lambda: c.jmx("FSNamesystem")["MostRecentCheckpointTxId"] >= txid,
            30,
            "a checkpoint after dfs.namenode.checkpoint.period",
        )
    finally:
        c.stop()
