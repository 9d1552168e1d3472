"""The unmodified hdfs-native client against a lab's HDFS (process nodes in two racks,
the NameNode on fs.defaultFS port 8020 of its node): what a user on the host does with it,
and a DataNode's process killed in the middle of a write."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from lab.chaos.labctx import LabContext

from .rawipc import located_blocks

hdfs_native = pytest.importorskip("hdfs_native")

LAB = """
name: native-t
defaults: {kind: process, cpus: 0.5, memory: 384Mi}
racks:
  r1: {nodes: [n1, n2, n3]}
  r2: {nodes: [n4, n5]}
services:
  hdfs: {namenode: n1, datanodes: [n2, n3, n4, n5], dfs.replication: 3, dfs.blocksize: 1m}
"""
BLOCK = 1024 * 1024


@pytest.fixture(scope="module")
def ctx(module_lab):
    state, _ = module_lab
    return LabContext.attach(state)


@pytest.fixture(scope="module")
def namenode(ctx):
    [nn] = ctx.service_nodes("hdfs", "namenode")
    return SimpleNamespace(nn_ip=ctx.addresses[nn], nn_rpc=8020)


@pytest.fixture(scope="module")
def url(namenode):
    return f"hdfs://{namenode.nn_ip}:{namenode.nn_rpc}"


@pytest.fixture(scope="module")
def client(url):
    return hdfs_native.Client(url)


def test_files_through_the_native_doors_of_a_lab(client, url, monkeypatch):
    client.mkdirs("/u/a", create_parent=True)
    data = os.urandom(2 * BLOCK + 12345)
    with client.create("/u/a/f", hdfs_native.WriteOptions(replication=3)) as f:
        f.write(data)
    with client.read("/u/a/f") as r:
        assert r.read() == data
    assert [s.path for s in client.list_status("/u/a")] == ["/u/a/f"]
    with client.append("/u/a/f") as f:
        f.write(b"tail")
    client.rename("/u/a/f", "/u/a/g")
    with client.read("/u/a/g") as r:
        assert r.read() == data + b"tail"
    st = client.get_file_info("/u/a/g")
    assert (st.length, st.replication, st.blocksize) == (len(data) + 4, 3, BLOCK)
    assert client.delete("/u", recursive=True) is True
    monkeypatch.setenv("HADOOP_USER_NAME", "acc")  # read when a client connects
    with pytest.raises(RuntimeError, match="org.apache.hadoop.security.AccessControlException"):
        hdfs_native.Client(url).mkdirs("/not-mine")


def test_write_survives_a_datanode_killed_in_a_lab(ctx, client, namenode):
    data = os.urandom(
        2 * BLOCK - 1000
    )  # the kill lands in the last block (see test_native_recovery)
    with client.create("/k/f", hdfs_native.WriteOptions(replication=3)) as f:
        f.write(data[: BLOCK + 300_000])
        # The middle DataNode of the pipeline writing the last block, its process killed.
        pipeline = [
            d["id"]["ipAddr"] for d in located_blocks(namenode, "/k/f")["blocks"][-1]["locs"]
        ]
        assert len(pipeline) == 3
        node = next(n for n, ip in ctx.addresses.items() if ip == pipeline[1])
        [sid] = [s for s, svc in ctx.services("hdfs", "datanode").items() if svc["node"] == node]
        ctx.kill_service(sid)
        f.write(data[BLOCK + 300_000 :])
    with client.read("/k/f") as r:
        assert r.read() == data
    assert client.get_file_info("/k/f").length == len(data)
    last = located_blocks(namenode, "/k/f")["blocks"][-1]
    holders = {d["id"]["ipAddr"] for d in last["locs"]}
    # The two survivors and the fourth DataNode, which replaced the dead one.
    assert pipeline[1] not in holders and len(holders) == 3
