"""A DataNode killed while the unmodified hdfs-native client writes: the client recovers its
pipeline as it does against Hadoop (getAdditionalDatanode for a replacement, OP_TRANSFER_BLOCK
to copy the acknowledged bytes to it, updateBlockForPipeline for a new generation stamp,
OP_WRITE_BLOCK PIPELINE_SETUP_STREAMING_RECOVERY with the survivors, the unacknowledged
packets sent again, updatePipeline) and the file is complete, as with WebHDFS
(tests/hdfs/test_pipeline.py)."""

from __future__ import annotations

import os

import pytest
from hdfs import InsecureClient

from lab.services.hdfs.minicluster import MiniCluster

from .rawipc import located_blocks

hdfs_native = pytest.importorskip("hdfs_native")

BLOCK = 1024 * 1024
PIECE = 64 * 1024
# The kill lands in the file's last block. hdfs-native does not retry an addBlock whose
# pipeline cannot be set up (Hadoop's Java client abandons the block and asks again without
# the node), so a later block the NameNode placed on the dead node before it knew would fail
# the write in the client, against Hadoop's NameNode as against this one.
SIZE = 2 * BLOCK - 1000
KILL_AT = BLOCK + 4 * PIECE
POLICY = "dfs.client.block.write.replace-datanode-on-failure.policy"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with MiniCluster(
        tmp_path_factory.mktemp("dfs"),
        racks={"/rack1": 3, "/rack2": 2},
        settings={"dfs.blocksize": "1m"},
    ).running() as c:
        yield c


def pipeline_of_last_block(cluster, path: str) -> tuple[list[str], int]:
    """The DataNodes writing the file's last block, in pipeline order (getBlockLocations
    shows a block under construction at its expected locations), and its generation stamp."""
    last = located_blocks(cluster, path)["blocks"][-1]
    return [d["id"]["ipAddr"] for d in last["locs"]], last["b"]["generationStamp"]


# Head, middle and tail of the pipeline: the client learns of the head's death from its
# own connection, of the others' from the acks (SUCCESS then ERROR for the node after the
# last one still heard). With the DEFAULT policy hdfs-native asks for a replacement
# (it counts a block with bytes in it as appended to); with NEVER it goes on with two.
CASES = [(0, "DEFAULT"), (1, "DEFAULT"), (2, "DEFAULT"), (1, "NEVER")]


@pytest.mark.parametrize(
    "position,policy", CASES, ids=["head", "middle", "tail", "middle-no-replacement"]
)
def test_write_survives_a_datanode_killed_mid_block(cluster, position, policy):
    url = f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}"
    client = hdfs_native.Client(url, config={POLICY: policy})
    data = os.urandom(SIZE)
    path = f"/killed/{position}-{policy}"
    with client.create(path, hdfs_native.WriteOptions(replication=3)) as f:
        f.write(data[:KILL_AT])
        pipeline, gen_stamp = pipeline_of_last_block(cluster, path)
        assert len(pipeline) == 3
        victim = next(d for d in cluster.datanodes if d.ip == pipeline[position])
        cluster.kill(victim)
        for i in range(KILL_AT, SIZE, PIECE):
            f.write(data[i : i + PIECE])
    try:
        with client.read(path) as r:
            assert r.read() == data
        st = client.get_file_info(path)
        assert st.length == SIZE and st.replication == 3
        located = located_blocks(cluster, path)
        assert not located["underConstruction"] and located["isLastBlockComplete"]
        last = located["blocks"][-1]
        # A new generation stamp: a replica the dead node kept is recognisably stale.
        assert last["b"]["generationStamp"] > gen_stamp
        holders = {d["id"]["ipAddr"] for d in last["locs"]}
        assert victim.ip not in holders
        survivors = set(pipeline) - {victim.ip}
        if policy == "DEFAULT":  # the survivors and the node that replaced the dead one
            assert len(holders) == 3 and survivors < holders
        else:
            assert holders == survivors
        report = cluster.fsck(path)
        assert report["files"][0]["blocks"][-1]["live"] == len(holders)
    finally:
        cluster.restart(victim)
        cluster.wait_active()
    # Through the other door, once the node is back (its stale replica is not served).
    with InsecureClient(cluster.url, user="root").read(path) as r:
        assert r.read() == data
