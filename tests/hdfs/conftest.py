"""Clusters of real subprocess daemons on their own 127.a.b.x addresses."""

from __future__ import annotations

import pytest

from lab.services.hdfs.minicluster import MiniCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two racks of two DataNodes, 1 MiB blocks; shared by one test module."""
    with MiniCluster(
        tmp_path_factory.mktemp("dfs"),
        racks={"/rack1": 2, "/rack2": 2},
        settings={"dfs.blocksize": "64k"},
    ).running() as c:
        yield c


def make_cluster(tmp_path, **kwargs) -> MiniCluster:
    return MiniCluster(tmp_path, **kwargs)


def one_datanode(tmp_path_factory, block_size: int) -> MiniCluster:
    """A NameNode and one DataNode, replication 1, blocks of `block_size` bytes: for
    tests of the namespace's features (quotas, snapshots) that need few blocks. Use it
    as `with one_datanode(...).running() as c`."""
    return MiniCluster(
        tmp_path_factory.mktemp("dfs"),
        racks={"/rack1": 1},
        settings={"dfs.blocksize": str(block_size), "dfs.replication": "1"},
    )
