"""A native writer that hsyncs and dies, and nobody calls recoverLease: the NameNode's lease
hard limit (dfs.namenode.lease-hard-limit-sec, short here) starts block recovery itself, the
DataNodes still hold the unfinished replicas (as RBW, or as RWR after a restart), and the file
is closed with every byte the writer's hsync had acknowledged, as Hadoop's NameNode does.

The DataNodes' socket timeout is shorter than the hard limit here: a DataNode that gave up on
an unfinished replica once its writer was silent that long (racklab's old rule) would lose it.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest
from hdfs import InsecureClient

from lab.services.hdfs.minicluster import MiniCluster

from .rawipc import located_blocks
from .test_native_recovery import WRITER

hdfs_native = pytest.importorskip("hdfs_native")

BLOCK = 1024 * 1024
HARD_LIMIT = 4  # seconds
SOCKET_TIMEOUT_MS = 2500


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with MiniCluster(
        tmp_path_factory.mktemp("dfs"),
        racks={"/rack1": 2, "/rack2": 1},
        settings={
            "dfs.blocksize": "1m",
            "dfs.namenode.lease-hard-limit-sec": str(HARD_LIMIT),
            "dfs.client.socket-timeout": str(SOCKET_TIMEOUT_MS),
        },
    ).running() as c:
        yield c


def write_sync_and_die(cluster, path: str, size: int, synced: int) -> bytes:
    """Run the writer (its first `synced` bytes hsynced, the rest written after) until its
    hsync is acknowledged, then kill -9 it. -> the data it was writing."""
    url = f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, path, str(size), str(synced)],
        stdout=subprocess.PIPE,
    )
    try:
        assert writer.stdout.readline() == b"synced\n"
        time.sleep(0.2)  # some of the unsynced rest reaches the DataNodes, or not
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
    return random.Random(7).randbytes(size)  # the writer's data


def wait_closed(cluster, path: str, timeout: float = 90) -> dict:
    """Until the NameNode closes the file by itself (nobody calls recoverLease)."""
    return cluster.wait(
        lambda: (lambda lb: None if lb["underConstruction"] else lb)(located_blocks(cluster, path)),
        timeout,
        f"the NameNode to close {path} after the lease hard limit",
        interval=0.5,
    )


def check_closed_with_synced_bytes(cluster, path: str, data: bytes, synced: int) -> None:
    client = hdfs_native.Client(f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}")
    located = wait_closed(cluster, path)
    assert located["isLastBlockComplete"]
    st = client.get_file_info(path)
    assert synced <= st.length <= len(data)
    with client.read(path) as r:
        assert r.read() == data[: st.length]
    # Every block on three nodes: the complete first block as soon as every DataNode has
    # reported it again (after DataNodes restart, one may not have yet when the file
    # closes), the last on every node that recovered it, or re-replicated to three nodes
    # when one of them did not answer in time (its stale replica deleted first).
    cluster.wait(
        lambda: [len(b["locs"]) for b in located_blocks(cluster, path)["blocks"]] == [3, 3],
        60,
        f"three replicas of each block of {path}",
    )
    # An ordinary file again: appended to, and read through the other door.
    with client.append(path) as f:
        f.write(b"more")
    with InsecureClient(cluster.url, user="root").read(path) as r:
        assert r.read() == data[: st.length] + b"more"


def test_the_hard_limit_keeps_what_a_dead_writer_synced(cluster):
    path, size, synced = "/expiry/plain", BLOCK + 400_000, BLOCK + 300_000
    data = write_sync_and_die(cluster, path, size, synced)
    # Past the DataNodes' socket timeout with the writer gone: the replicas are kept.
    time.sleep(SOCKET_TIMEOUT_MS / 1000 + 1)
    check_closed_with_synced_bytes(cluster, path, data, synced)


def test_the_hard_limit_keeps_synced_bytes_across_datanode_restarts(cluster):
    path, size, synced = "/expiry/restarted", BLOCK + 500_000, BLOCK + 200_000
    data = write_sync_and_die(cluster, path, size, synced)
    # Every DataNode of the last block's pipeline dies and comes back: each finds its
    # unfinished replica on disk (RWR) and reports it; the recovery can only use those (a
    # recovery tried while they are all down finds nothing and is tried again later).
    last = located_blocks(cluster, path)["blocks"][-1]
    pipeline = [d for d in cluster.datanodes if d.ip in {n["id"]["ipAddr"] for n in last["locs"]}]
    assert len(pipeline) == 3
    for d in pipeline:
        cluster.kill(d)
    for d in pipeline:
        cluster.restart(d)
    check_closed_with_synced_bytes(cluster, path, data, synced)


def test_the_hard_limit_keeps_synced_bytes_across_a_namenode_restart(cluster):
    path, size, synced = "/expiry/nn-restarted", BLOCK + 300_000, BLOCK + 100_000
    data = write_sync_and_die(cluster, path, size, synced)
    # The NameNode forgets where the unfinished block was being written; the DataNodes'
    # block reports (their RBW replicas) tell it again, and its recovery finds them.
    cluster.kill(cluster.namenode)
    cluster.restart_namenode()
    cluster.wait_active()
    check_closed_with_synced_bytes(cluster, path, data, synced)
