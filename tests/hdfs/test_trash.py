"""Trash as Hadoop's NameNode and shell have it: fs.trash.interval in getServerDefaults
(hdfs-native's Client.trash refuses when it is 0, Hadoop's default), `lab hdfs dfs -rm`
moving into /user/USER/.Trash/Current unless -skipTrash, and the NameNode's emptier turning
Current into a dated checkpoint and deleting checkpoints older than the interval."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from lab.services.hdfs.minicluster import MiniCluster
from lab.services.hdfs.trash import CHECKPOINT_FORMAT, checkpoint_time

from .rawipc import RawIpc
from .shellrun import run_shell

hdfs_native = pytest.importorskip("hdfs_native")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with MiniCluster(
        tmp_path_factory.mktemp("dfs"),
        racks={"/rack1": 1},
        # A day's trash, checkpointed every 1.2 s.
        settings={"fs.trash.interval": "1440", "fs.trash.checkpoint.interval": "0.02"},
    ).running() as c:
        yield c


def sh(cluster, *argv: str) -> tuple[int, str, str]:
    return run_shell(cluster, "dfs", *argv)


def names(cluster, path: str) -> list[str]:
    raw = RawIpc(cluster)
    try:
        listing = raw.call("getListing", {"src": path, "startAfter": b"", "needLocation": False})
        return [bytes(st["path"]).decode() for st in listing["dirList"]["partialListing"]]
    finally:
        raw.close()


def test_trash_off_by_default(tmp_path):
    with MiniCluster(tmp_path, racks={"/rack1": 1}).running() as c:
        client = hdfs_native.Client(f"hdfs://{c.nn_ip}:{c.nn_rpc}")
        client.mkdirs("/t")
        with pytest.raises(Exception, match="Trash is not enabled"):
            client.trash("/t")
        assert run_shell(c, "dfs", "-rm", "-r", "/t") == (0, "Deleted /t\n", "")


def test_server_defaults_say_the_interval(cluster):
    with urllib.request.urlopen(f"{cluster.url}/webhdfs/v1/?op=GETSERVERDEFAULTS") as r:
        d = json.loads(r.read())["FsServerDefaults"]
    assert d["trashInterval"] == 1440 and d["checksumType"] == 2 and d["replication"] == 3
    raw = RawIpc(cluster)
    try:
        assert raw.call("getServerDefaults", {})["serverDefaults"]["trashInterval"] == 1440
    finally:
        raw.close()


def test_rm_moves_to_trash_and_the_emptier_checkpoints_it(cluster):
    client = hdfs_native.Client(f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}")
    client.mkdirs("/data/x", create_parent=True)
    with client.create("/data/x/f") as f:
        f.write(b"keep me a day")
    uri = f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}"
    rc, out, err = sh(cluster, "-rm", "-r", "/data/x")
    assert (rc, out) == (0, "")
    assert err == (
        f"INFO fs.TrashPolicyDefault: Moved: '{uri}/data/x' to trash at: "
        f"{uri}/user/root/.Trash/Current/data/x\n"
    )
    assert names(cluster, "/data") == []
    st = client.get_file_info("/user/root/.Trash")
    assert st.permission == 0o700
    # hdfs-native moves into the same place.
    with client.create("/data/g") as f:
        f.write(b"g")
    moved = client.trash("/data/g")
    assert moved and moved.endswith("/user/root/.Trash/Current/data/g")
    # Through the WebHDFS door too (its GETSERVERDEFAULTS says the interval).
    with client.create("/data/w") as f:
        f.write(b"w")
    rc, out, err = run_shell(cluster, "dfs", "-rm", "/data/w", native=False)
    assert (rc, out) == (0, "") and err.endswith("/user/root/.Trash/Current/data/w\n")
    # -skipTrash deletes.
    with client.create("/data/h") as f:
        f.write(b"h")
    assert sh(cluster, "-rm", "-skipTrash", "/data/h")[1] == "Deleted /data/h\n"
    # A checkpoint long past the interval, and something that is no checkpoint.
    old = time.strftime(CHECKPOINT_FORMAT, time.localtime(time.time() - 2 * 86400))
    client.mkdirs(f"/user/root/.Trash/{old}")
    client.mkdirs("/user/root/.Trash/not-a-checkpoint")

    def checkpointed():
        got = names(cluster, "/user/root/.Trash")
        return got if "Current" not in got and old not in got else None

    got = cluster.wait(checkpointed, 60, "the emptier to checkpoint Current")
    # Every name but the stray one is a checkpoint of now (the emptier may have run more
    # than once meanwhile), and what was removed is in one of them.
    fresh = [n for n in got if n != "not-a-checkpoint"]
    assert fresh and all(abs(checkpoint_time(n) - time.time()) < 60 for n in fresh)
    held = [n for n in fresh if "x" in names(cluster, f"/user/root/.Trash/{n}/data")]
    assert len(held) == 1
    with client.read(f"/user/root/.Trash/{held[0]}/data/x/f") as r:
        assert r.read() == b"keep me a day"
    assert "not-a-checkpoint" in got
