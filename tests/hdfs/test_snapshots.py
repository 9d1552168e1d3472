"""HDFS snapshots through HdfsCLI (WebHDFS's ALLOWSNAPSHOT, CREATESNAPSHOT, RENAMESNAPSHOT,
DELETESNAPSHOT, DISALLOWSNAPSHOT) and ClientNamenodeProtocol, read back through both
doors as DIR/.snapshot/NAME: a snapshot keeps what its files held when it was taken
(after appends, deletes and new files), its blocks stay on the DataNodes while it names
them, nothing is written into it, and it survives a NameNode restart and a checkpoint."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import pytest
from hdfs import InsecureClient
from hdfs.util import HdfsError

from lab.services.hdfs.namespace import Namespace

from .conftest import one_datanode
from .rawipc import RawIpc, located_blocks
from .shellrun import run_shell

hdfs_native = pytest.importorskip("hdfs_native")
BLOCK = 64 * 1024


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with one_datanode(tmp_path_factory, BLOCK).running() as c:
        yield c


def read(client, path: str) -> bytes:
    with client.read(path) as r:
        return r.read()


def wait_heartbeats(cluster) -> None:
    """Long enough for the DataNode to have carried out a deletion the NameNode gave it
    (dfs.heartbeat.interval is 1 s in a MiniCluster), before checking that a replica
    which must stay is still there (on a slow machine the check only gets weaker)."""
    time.sleep(3)


def test_snapshot_keeps_what_was_there(cluster):
    web = InsecureClient(cluster.url, user="root")
    native = hdfs_native.Client(f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}")
    web.makedirs("/snap")
    f, f2 = os.urandom(3 * BLOCK + 100), os.urandom(BLOCK + 7)
    web.write("/snap/f", f)
    web.write("/snap/dir/f2", f2)
    web.allow_snapshot("/snap")
    assert web.create_snapshot("/snap", "s1") == "/snap/.snapshot/s1"
    # The live tree moves on.
    web.write("/snap/f", b"appended", append=True)
    web.delete("/snap/dir", recursive=True)
    web.write("/snap/g", b"new")
    assert web.list("/snap/.snapshot") == ["s1"]
    assert web.list("/snap/.snapshot/s1") == ["dir", "f"]
    assert web.status("/snap/.snapshot/s1/f")["length"] == len(f)
    wait_heartbeats(cluster)  # a deleted file's blocks would be gone by now
    (data_dir,) = cluster.root.glob("data-*")
    on_disk = {p.name for p in data_dir.rglob("blk_*") if not p.name.endswith(".meta")}
    f2_id = located_blocks(cluster, "/snap/.snapshot/s1/dir/f2")["blocks"][0]["b"]["blockId"]
    assert f"blk_{f2_id}" in on_disk
    for client in (web, native):
        assert read(client, "/snap/.snapshot/s1/f") == f
        assert read(client, "/snap/.snapshot/s1/dir/f2") == f2
    assert read(web, "/snap/f") == f + b"appended"
    assert native.get_file_info("/snap/.snapshot/s1/dir/f2").length == len(f2)
    # Read-only, and the directory cannot go while it has snapshots.
    with pytest.raises(RuntimeError) as err:
        native.mkdirs("/snap/.snapshot/s1/x")
    assert "SnapshotAccessControlException" in str(err.value)
    assert "Modification on a read-only snapshot is disallowed" in str(err.value)
    with pytest.raises(HdfsError, match="read-only snapshot"):
        web.delete("/snap/.snapshot/s1/f")
    with pytest.raises(HdfsError, match="cannot be deleted since /snap is snapshottable"):
        web.delete("/snap", recursive=True)
    # Across a restart (the edit log replayed; the blocks only the snapshot names are
    # known again, so the DataNode's block report does not get them deleted).
    cluster.restart_namenode()
    cluster.wait_active()
    wait_heartbeats(cluster)
    assert read(web, "/snap/.snapshot/s1/dir/f2") == f2
    # Renamed, then deleted: its blocks are released.
    web.rename_snapshot("/snap", "s1", "kept")
    assert web.list("/snap/.snapshot") == ["kept"]
    f2_block = located_blocks(cluster, "/snap/.snapshot/kept/dir/f2")["blocks"][0]["b"]
    web.delete_snapshot("/snap", "kept")
    assert web.list("/snap/.snapshot") == []
    raw = RawIpc(cluster)
    try:
        reply = raw.call("getBlockLocations", {"src": "/snap/f", "offset": 0, "length": 1})
        assert reply["locations"]["blocks"]  # the live file is untouched
    finally:
        raw.close()
    # The replica of the file only the snapshot named goes from the DataNode's disk (at
    # its next heartbeat's commands); the live file's stay.
    (data_dir,) = cluster.root.glob("data-*")

    def on_disk() -> set[str]:
        return {p.name for p in data_dir.rglob("blk_*") if not p.name.endswith(".meta")}

    cluster.wait(
        lambda: f"blk_{f2_block['blockId']}" not in on_disk(), 30, "the replica to be deleted"
    )
    live_block = located_blocks(cluster, "/snap/f")["blocks"][0]["b"]
    assert f"blk_{live_block['blockId']}" in on_disk()
    web.disallow_snapshot("/snap")
    web.delete("/snap", recursive=True)


def test_snapshot_refusals(cluster):
    web = InsecureClient(cluster.url, user="root")
    native = hdfs_native.Client(f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}")
    web.makedirs("/plain")
    with pytest.raises(HdfsError, match='".snapshot" is a reserved name.'):
        web.makedirs("/plain/.snapshot")
    with pytest.raises(HdfsError, match="Directory is not a snapshottable directory: /plain"):
        web.create_snapshot("/plain", "s")
    with pytest.raises(HdfsError, match="Superuser privilege is required"):
        InsecureClient(cluster.url, user="bob").allow_snapshot("/plain")
    web.allow_snapshot("/plain")
    web.create_snapshot("/plain", "s")
    with pytest.raises(HdfsError, match='there is already a snapshot with the same name "s"'):
        web.create_snapshot("/plain", "s")
    with pytest.raises(HdfsError, match="Cannot delete snapshot t from path /plain: the snapshot"):
        web.delete_snapshot("/plain", "t")
    with pytest.raises(HdfsError, match="The snapshot t does not exist for directory /plain"):
        web.rename_snapshot("/plain", "t", "u")
    with pytest.raises(HdfsError, match="has snapshot\\(s\\). Please redo the operation"):
        web.disallow_snapshot("/plain")
    # A default name, as Snapshot.generateDefaultSnapshotName makes it.
    raw = RawIpc(cluster)
    try:
        made = raw.call("createSnapshot", {"snapshotRoot": "/plain"})["snapshotPath"]
    finally:
        raw.close()
    assert made.startswith("/plain/.snapshot/s2") and len(made.rsplit("/", 1)[1]) == 20
    assert native.get_file_info(made).isdir


def test_snapshots_in_the_fsimage():
    ns = Namespace("root", "supergroup")
    ns.apply({"op": "OP_MKDIR", "path": "/d/e", "inodeIds": [16386, 16387], "owner": "root",
              "group": "supergroup", "mode": 0o755, "mtime": 1})  # fmt: skip
    ns.apply({"op": "OP_ALLOW_SNAPSHOT", "path": "/d"})
    ns.apply({"op": "OP_CREATE_SNAPSHOT", "path": "/d", "name": "s1", "mtime": 5})
    ns.apply({"op": "OP_DELETE", "path": "/d/e", "timestamp": 6})
    image = json.loads(json.dumps(dict(ns.to_image(), txid=1)))
    again = Namespace("root", "supergroup")
    again.load_image(image)
    assert again.lookup("/d/e") is None
    assert again.get("/d/.snapshot/s1/e").is_dir
    assert again.get("/d/.snapshot/s1").mtime == 5
    assert again.snapshottable == {16386}
    image["snapshots"][0]["dir"] = 99999
    with pytest.raises(ValueError, match="names no directory"):
        Namespace("root", "supergroup").load_image(image)


@pytest.mark.parametrize("native", [False, True], ids=["webhdfs", "native"])
def test_shell_snapshot_commands(cluster, native):
    d = f"/shsnap-{native}"
    assert run_shell(cluster, "dfs", "-mkdir", d, native=native)[0] == 0
    assert run_shell(cluster, "dfs", "-createSnapshot", d, "a", native=native) == (
        1,
        "",
        f"createSnapshot: Directory is not a snapshottable directory: {d}\n",
    )
    assert run_shell(cluster, "dfsadmin", "-allowSnapshot", d, native=native) == (
        0,
        f"Allowing snapshot on {d} succeeded\n",
        "",
    )
    assert run_shell(cluster, "dfs", "-createSnapshot", d, "a", native=native) == (
        0,
        f"Created snapshot {d}/.snapshot/a\n",
        "",
    )
    assert run_shell(cluster, "dfs", "-renameSnapshot", d, "a", "b", native=native)[0] == 0
    rc, out, _ = run_shell(cluster, "dfs", "-ls", f"{d}/.snapshot", native=native)
    assert rc == 0 and out.rstrip().endswith(f"{d}/.snapshot/b")
    assert run_shell(cluster, "dfs", "-deleteSnapshot", d, "b", native=native) == (0, "", "")
    assert run_shell(cluster, "dfsadmin", "-disallowSnapshot", d, native=native) == (
        0,
        f"Disallowing snapshot on {d} succeeded\n",
        "",
    )


def test_snapshottable_directory_listing(cluster):
    """getSnapshottableDirListing and WebHDFS's GETSNAPSHOTTABLEDIRECTORYLIST: the
    directories the caller owns (every one for the superuser), with their snapshot count."""
    web = InsecureClient(cluster.url, user="root")
    web.makedirs("/listed/mine")
    web.allow_snapshot("/listed/mine")
    web.create_snapshot("/listed/mine", "one")
    raw = RawIpc(cluster)
    try:
        listing = raw.call("getSnapshottableDirListing", {})["snapshottableDirList"]
    finally:
        raw.close()
    mine = next(
        s for s in listing["snapshottableDirListing"] if bytes(s["dirStatus"]["path"]) == b"mine"
    )
    assert (mine["snapshot_number"], mine["snapshot_quota"]) == (1, 65536)
    assert bytes(mine["parent_fullpath"]) == b"/listed"
    url = f"{cluster.url}/webhdfs/v1/?op=GETSNAPSHOTTABLEDIRECTORYLIST"
    with urllib.request.urlopen(url + "&user.name=root") as r:
        entries = json.loads(r.read())["SnapshottableDirectoryList"]
    entry = next(e for e in entries if e["dirStatus"]["pathSuffix"] == "mine")
    assert (entry["parentFullPath"], entry["snapshotNumber"]) == ("/listed", 1)
    with urllib.request.urlopen(url + "&user.name=bob") as r:  # owns none of them
        assert json.loads(r.read()) == {"SnapshottableDirectoryList": None}


def test_snapshot_diff(cluster):
    """getSnapshotDiffReport and WebHDFS's GETSNAPSHOTDIFF: M for what changed (a
    directory whose children changed too), + and - for the tops of what was created and
    deleted, R for a move within the root; "" or "." for the directory as it is now."""
    web = InsecureClient(cluster.url, user="root")
    for p in ("/diff/keep/a", "/diff/gone/b", "/diff/moved/c", "/diff/data"):
        web.write(p, b"x")
    web.allow_snapshot("/diff")
    web.create_snapshot("/diff", "s0")
    web.write("/diff/data", b"more", append=True)
    web.delete("/diff/gone", recursive=True)
    web.rename("/diff/moved", "/diff/renamed")
    web.write("/diff/new/d", b"y")
    web.set_permission("/diff/keep/a", "600")
    web.create_snapshot("/diff", "s1")
    want = [
        ("M", "", None),
        ("M", "data", None),
        ("-", "gone", None),
        ("M", "keep/a", None),
        ("+", "new", None),
        ("R", "moved", "renamed"),
    ]
    raw = RawIpc(cluster)
    try:
        for to in ("s1", "."):
            request = {"snapshotRoot": "/diff", "fromSnapshot": "s0", "toSnapshot": to}
            report = raw.call("getSnapshotDiffReport", request)["diffReport"]
            got = [
                (
                    e["modificationLabel"],
                    bytes(e["fullpath"]).decode(),
                    bytes(e["targetPath"]).decode() if e.get("targetPath") else None,
                )
                for e in report["diffReportEntries"]
            ]
            assert sorted(got, key=str) == sorted(want, key=str)
        same = {"snapshotRoot": "/diff", "fromSnapshot": "s1", "toSnapshot": "."}
        assert raw.call("getSnapshotDiffReport", same)["diffReport"].get("diffReportEntries") in (
            None,
            [],
        )
    finally:
        raw.close()
    url = f"{cluster.url}/webhdfs/v1/diff?op=GETSNAPSHOTDIFF&user.name=root"
    with urllib.request.urlopen(url + "&oldsnapshotname=s0&snapshotname=s1") as r:
        report = json.loads(r.read())["SnapshotDiffReport"]
    assert (report["snapshotRoot"], report["fromSnapshot"], report["toSnapshot"]) == (
        "/diff",
        "s0",
        "s1",
    )
    assert {"sourcePath": "moved", "targetPath": "renamed", "type": "RENAME"} in report["diffList"]
    assert {"sourcePath": "new", "type": "CREATE"} in report["diffList"]
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url + "&oldsnapshotname=s0&snapshotname=nope")
    assert "Cannot find the snapshot of directory /diff with name nope" in err.value.read().decode()


def test_lab_hdfs_lists_snapshottable_dirs_and_diffs_snapshots(cluster):
    """`hdfs lsSnapshottableDir` and `hdfs snapshotDiff` as Hadoop prints them."""
    assert run_shell(cluster, "dfs", "-mkdir", "-p", "/sd/keep", "/sd/gone")[0] == 0
    assert run_shell(cluster, "dfsadmin", "-allowSnapshot", "/sd")[0] == 0
    assert run_shell(cluster, "dfs", "-createSnapshot", "/sd", "a")[0] == 0
    assert run_shell(cluster, "dfs", "-mv", "/sd/keep", "/sd/kept")[0] == 0
    assert run_shell(cluster, "dfs", "-rm", "-r", "-skipTrash", "/sd/gone")[0] == 0
    assert run_shell(cluster, "dfs", "-mkdir", "/sd/new")[0] == 0
    assert run_shell(cluster, "dfs", "-createSnapshot", "/sd", "b")[0] == 0
    rc, out, _ = run_shell(cluster, "lsSnapshottableDir")
    line = next(x for x in out.splitlines() if x.endswith(" /sd"))
    assert rc == 0 and line.startswith("drwxr-xr-x 0 root ") and line.split()[-3:] == [
        "2", "65536", "/sd"
    ]  # fmt: skip
    rc, out, _ = run_shell(cluster, "snapshotDiff", "/sd", "a", "b")
    lines = out.splitlines()
    assert (
        rc == 0 and lines[0] == "Difference between snapshot a and snapshot b under directory /sd:"
    )
    assert sorted(lines[1:]) == sorted(["M\t.", "+\t./new", "-\t./gone", "R\t./keep -> ./kept"])
    rc, out, _ = run_shell(cluster, "snapshotDiff", "/sd", "b", ".")
    assert out.splitlines()[0].endswith("snapshot b and current directory under directory /sd:")
    rc, _, err = run_shell(cluster, "snapshotDiff", "/sd", "a")
    assert rc == 255 and err.startswith("Usage: hdfs snapshotDiff")
