"""A DataNode killed while the unmodified hdfs-native client writes: the client recovers its
pipeline as it does against Hadoop (getAdditionalDatanode for a replacement, OP_TRANSFER_BLOCK
to copy the acknowledged bytes to it, updateBlockForPipeline for a new generation stamp,
OP_WRITE_BLOCK PIPELINE_SETUP_STREAMING_RECOVERY with the survivors, the unacknowledged
packets sent again, updatePipeline) and the file is complete, as with WebHDFS
(tests/hdfs/test_pipeline.py)."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest
from hdfs import InsecureClient
from hdfs.util import HdfsError

from lab.services.hdfs.minicluster import MiniCluster

from .rawipc import RawIpc, located_blocks, read_block, visible_length

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
SOFT_LIMIT = 3  # seconds (Hadoop's is 60)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with MiniCluster(
        tmp_path_factory.mktemp("dfs"),
        racks={"/rack1": 3, "/rack2": 2},
        settings={"dfs.blocksize": "1m", "racklab.namenode.lease-soft-limit-sec": str(SOFT_LIMIT)},
    ).running() as c:
        yield c


def pipeline_of_last_block(cluster, path: str) -> tuple[list[str], int]:
    """The DataNodes writing the file's last block, in pipeline order (getBlockLocations
    shows a block under construction at its expected locations), and its generation stamp."""
    last = located_blocks(cluster, path)["blocks"][-1]
    return [d["id"]["ipAddr"] for d in last["locs"]], last["b"]["generationStamp"]


def wait_registered(cluster, d) -> None:
    """Until the NameNode knows a restarted DataNode at its new port (it listens on a new
    one, and a read sent to the old one would be refused)."""

    def registered():
        raw = RawIpc(cluster)
        try:
            live = raw.call("getDatanodeReport", {"type": "LIVE"})["di"]
        finally:
            raw.close()
        return (d.ip, d.ready["xfer"]) in {(n["id"]["ipAddr"], n["id"]["xferPort"]) for n in live}

    cluster.wait(registered, 30, f"DataNode {d.ip} to register again")


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
        wait_registered(cluster, victim)
    # Through the other door, once the node is back (its stale replica is not served).
    with InsecureClient(cluster.url, user="root").read(path) as r:
        assert r.read() == data


# A writer in its own process, killed after an hsync: what it synced is acknowledged.
WRITER = """
import random, sys, time
import hdfs_native
data = random.Random(7).randbytes(int(sys.argv[3]))
f = hdfs_native.Client(sys.argv[1]).create(sys.argv[2], hdfs_native.WriteOptions(replication=3))
f.write(data[: int(sys.argv[4])])
f.hsync()
print("synced", flush=True)
f.write(data[int(sys.argv[4]) :])
time.sleep(600)
"""


def recover(client, path: str) -> int:
    """recoverLease until it answers true, as a client takes over a file; -> calls made."""
    for calls in range(1, 200):
        if client.recover_lease(path):
            return calls
        time.sleep(0.1)
    raise AssertionError(f"the lease of {path} was not recovered")


def test_recover_lease_of_a_dead_writer_keeps_what_it_synced(cluster):
    url = f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}"
    path, size, synced = "/lease/dead", BLOCK + 400_000, BLOCK + 300_000
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, path, str(size), str(synced)],
        stdout=subprocess.PIPE,
    )
    try:
        assert writer.stdout.readline() == b"synced\n"
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()
    client = hdfs_native.Client(url)
    # The last block's replicas are still open: false first (block recovery started),
    # then true once the file is closed with them.
    assert recover(client, path) > 1
    data = random.Random(7).randbytes(size)
    st = client.get_file_info(path)
    assert synced <= st.length <= size
    with client.read(path) as r:
        assert r.read() == data[: st.length]
    located = located_blocks(cluster, path)
    assert not located["underConstruction"]
    assert [len(b["locs"]) for b in located["blocks"]] == [3, 3]
    assert client.recover_lease(path) is True  # a closed file: true at once
    # And the file is an ordinary file again: appended to, read through the other door.
    with client.append(path) as f:
        f.write(b"more")
    with InsecureClient(cluster.url, user="root").read(path) as r:
        assert r.read() == data[: st.length] + b"more"


def test_recover_lease_fences_the_old_writer(cluster):
    url = f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}"
    path = "/lease/fenced"
    old = hdfs_native.Client(url)
    f = old.create(path, hdfs_native.WriteOptions(replication=3))
    f.write(os.urandom(3 * PIECE))  # whole packets sent down the pipeline
    recover(hdfs_native.Client(url), path)
    # The old writer lost its lease (and its DataNodes stopped its pipeline): closing is
    # refused, and nothing it sends now lands in the file.
    with pytest.raises((RuntimeError, OSError)):
        f.write(os.urandom(PIECE))
        f.close()
    st = hdfs_native.Client(url).get_file_info(path)
    assert st.length <= 3 * PIECE
    with hdfs_native.Client(url).read(path) as r:
        assert len(r.read()) == st.length


def test_recover_lease_refusals(cluster):
    client = hdfs_native.Client(f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}")
    with pytest.raises(FileNotFoundError, match="File does not exist: /lease/none"):
        client.recover_lease("/lease/none")
    client.mkdirs("/lease/dir", create_parent=True)
    with pytest.raises(FileNotFoundError, match="Path is not a file: /lease/dir"):
        client.recover_lease("/lease/dir")


def test_a_writer_silent_past_the_soft_limit_loses_its_file_to_another(cluster):
    """FSNamesystem.recoverLeaseInternal: while the writer renews its lease, another
    client's append or create is refused with Hadoop's AlreadyBeingCreatedException and
    words, through either door; once the writer has been silent past the soft limit, the
    next one starts lease recovery (RecoveryInProgressException meanwhile) and then gets
    the file, with every byte the writer had flushed. A file with no block to recover is
    handed over at once; the holder itself asking again is refused whatever the time."""
    url = f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}"
    path = "/soft/taken"
    data = os.urandom(BLOCK + 3 * PIECE)  # the second block still under construction
    silent = hdfs_native.Client(url).create("/soft/empty")  # created, never written to
    owner = hdfs_native.Client(url)
    writer = owner.create(path, hdfs_native.WriteOptions(replication=3))
    writer.write(data)
    writer.hsync()  # acknowledged by the pipeline; and an fsync call renews the lease
    with pytest.raises(FileExistsError) as again:
        owner.append(path)
    assert re.match(
        rf"Failed to APPEND_FILE {path} for (hdfs_native_client-\S+) on 127\.0\.0\.1 because "
        r"\1 is already the current lease holder\.$",
        str(again.value),
    ), again.value
    other = hdfs_native.Client(url)
    web = InsecureClient(cluster.url, user="root")
    # The writer's lease: hdfs-native's client name, on the address it connected from.
    owned = r"because this file lease is currently owned by hdfs_native_client-\S+ on 127\.0\.0\.1$"
    writer.hsync()  # each refusal right after a renewal: well within the soft limit
    # hdfs-native raises AlreadyBeingCreatedException as FileExistsError.
    with pytest.raises(FileExistsError) as native:
        other.append(path)
    assert re.match(
        rf"Failed to APPEND_FILE {path} for hdfs_native_client-\S+ on 127\.0\.0\.1 {owned}",
        str(native.value),
    )
    for append in (True, False):  # WebHDFS append, then create without overwrite
        writer.hsync()
        with pytest.raises(HdfsError) as refused:
            web.write(path, b"x", append=append) if append else web.write(path, b"x")
        op = "APPEND_FILE" if append else "CREATE_FILE"
        assert refused.value.exception == "AlreadyBeingCreatedException", refused.value
        # WebHDFS's writer is the DFSClient a DataNode runs for it, on that DataNode.
        assert re.match(
            rf"Failed to {op} {path} for DFSClient_\S+ on {cluster.net}\.\d+ {owned}",
            str(refused.value),
        )
    # The writer goes silent (hdfs-native renews every 30 s). Past the soft limit the next
    # append recovers the lease: refused while the last block is recovered, then granted.
    refusals = []

    def taken_over():
        try:
            return other.append(path)
        except Exception as exc:  # noqa: BLE001 - hdfs-native raises its own classes
            refusals.append(str(exc))
            time.sleep(0.2)
            return None

    started = time.monotonic()
    taker = cluster.wait(taken_over, 60, f"another client to take {path} over")
    assert time.monotonic() - started >= SOFT_LIMIT - 1  # not before the soft limit
    assert any(
        "RecoveryInProgressException" in r
        and "lease recovery is in progress. Try again later." in r
        for r in refusals
    ), refusals
    taker.write(b"more")
    taker.close()
    with web.read(path) as r:
        assert r.read() == data + b"more"
    # The empty file's writer has been silent longer still: WebHDFS appends at once.
    web.write("/soft/empty", b"web", append=True)
    with web.read("/soft/empty") as r:
        assert r.read() == b"web"
    del silent
    with pytest.raises((RuntimeError, OSError)):  # the old writer was fenced off
        writer.write(os.urandom(PIECE))
        writer.close()


def test_the_writers_machine_is_kept_across_a_namenode_restart(cluster):
    """Hadoop's edit log keeps the writer's clientName and clientMachine with OP_ADD (and
    OP_APPEND), so after a NameNode restart a refusal still names where the lease holder
    writes from, not just who it is."""
    path, holder = "/soft/restarted", "DFSClient_NONMAPREDUCE_kept_1"
    writer = RawIpc(cluster)  # connects from 127.0.0.1
    try:
        created = writer.call(
            "create",
            {
                "src": path,
                "masked": {"perm": 0o644},
                "clientName": holder,
                "createFlag": 1,  # CREATE
                "createParent": True,
                "replication": 3,
                "blockSize": BLOCK,
            },
        )
        assert created["fs"]["fileType"] == "IS_FILE", created
    finally:
        writer.close()
    cluster.restart_namenode()
    cluster.wait_active()
    raw = RawIpc(cluster)
    try:
        raw.call("renewLease", {"clientName": holder})  # well within the soft limit now
        refused = raw.call("append", {"src": path, "clientName": "DFSClient_other"})
        assert refused["exceptionClassName"].endswith("AlreadyBeingCreatedException"), refused
        assert refused["errorMsg"] == (
            f"Failed to APPEND_FILE {path} for DFSClient_other on 127.0.0.1 because this file "
            f"lease is currently owned by {holder} on 127.0.0.1"
        )
        assert raw.call("complete", {"src": path, "clientName": holder})["result"]
    finally:
        raw.close()


def test_a_block_being_written_is_read_up_to_what_its_datanodes_acknowledged(cluster):
    """A file open for writing, as Hadoop shows it: getBlockLocations gives the last block
    under construction at its pipeline, with the length the writer's hsync told the
    NameNode, and a LocatedBlocks length without it (so hdfs-native, which reads that far,
    reads the complete blocks, as against Hadoop); each DataNode of the pipeline serves the
    block up to the bytes it has acknowledged, later packets' included (what a Java reader
    gets after asking the DataNodes for the visible length), and no further; WebHDFS reads
    the hsync'd length."""
    url = f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}"
    path = "/uc/open"
    data = os.urandom(BLOCK + 6 * PIECE)
    synced = BLOCK + 2 * PIECE + 100  # ends inside a chunk: its CRC is cut to fit
    writer = hdfs_native.Client(url).create(path, hdfs_native.WriteOptions(replication=3))
    writer.write(data[:synced])
    writer.hsync()  # fsync(lastBlockLength): the NameNode learns the last block's length
    located = located_blocks(cluster, path)
    assert located["underConstruction"] and not located["isLastBlockComplete"]
    assert located["fileLength"] == BLOCK
    last = located["blocks"][-1]
    assert last["offset"] == BLOCK and last["b"]["numBytes"] == synced - BLOCK
    assert len(last["locs"]) == 3
    reader = hdfs_native.Client(url)
    assert reader.get_file_info(path).length == synced
    with reader.read(path) as r:
        assert r.read() == data[:BLOCK]
    # WebHDFS's reader (the DataNode's DFSClient) reads as far as the NameNode knows.
    with InsecureClient(cluster.url, user="root").read(path) as r:
        assert r.read() == data[:synced]
    for loc in last["locs"]:
        # What a Java reader asks each DataNode before reading the last block.
        assert visible_length(loc, last["b"]) == synced - BLOCK
        resp, got = read_block(loc, last["b"], 0, synced - BLOCK)
        assert resp["status"] == "SUCCESS", resp
        assert got == data[BLOCK:synced]
        resp, got = read_block(loc, last["b"], PIECE + 7, synced - BLOCK - PIECE - 7)
        assert got == data[BLOCK + PIECE + 7 : synced]
    # More packets, acknowledged down the pipeline but never told to the NameNode: each
    # DataNode serves them as soon as it has acknowledged them.
    writer.write(data[synced:])
    more = synced - BLOCK + 2 * PIECE
    for loc in last["locs"]:
        cluster.wait(
            lambda loc=loc: read_block(loc, last["b"], 0, more)[1] == data[BLOCK : BLOCK + more],
            20,
            f"{loc['id']['ipAddr']} to serve the acknowledged bytes",
            interval=0.1,
        )
        assert visible_length(loc, last["b"]) >= more
    with InsecureClient(cluster.url, user="root").read(path) as r:  # still the hsync'd length
        assert r.read() == data[:synced]
    resp, _ = read_block(last["locs"][0], last["b"], 0, len(data) - BLOCK + 1)
    assert resp["status"] == "ERROR"
    assert f"don't match block {last['b']['poolId']}:blk_" in resp["message"], resp
    assert int(re.search(r"\( blockLen (\d+) \)", resp["message"]).group(1)) >= more
    writer.close()
    with reader.read(path) as r:
        assert r.read() == data


def test_a_copy_still_arriving_is_gone_after_the_datanode_restarts(cluster):
    """A replica another DataNode is sending (re-replication: racklab's TRANSFER stage) is
    TEMPORARY, in tmp/, as Hadoop's BlockReceiver makes it: a DataNode restarted while it
    arrives deletes it instead of keeping it as a replica waiting to be recovered (RWR),
    which nobody would recover."""
    import json
    import socket

    from lab.services.hdfs.datatransfer import MSG_LEN, encode_packet

    victim = cluster.datanodes[-1]
    current = cluster.root / f"data-{victim.ip}" / "current"
    block_id = 2**40 + 18
    header = {
        "op": "WRITE_BLOCK",
        "block": {"blockId": block_id, "genStamp": 1001, "numBytes": 0},
        "stage": "transfer",
        "targets": [],
    }
    body = json.dumps(header).encode()
    # A blocking socket kept open across the restart: the copy's sender never hangs up.
    with socket.create_connection((victim.ip, victim.ready["xfer"]), timeout=10) as sock:
        sock.sendall(MSG_LEN.pack(len(body)) + body)
        (n,) = MSG_LEN.unpack(sock.recv(MSG_LEN.size, socket.MSG_WAITALL))
        assert json.loads(sock.recv(n, socket.MSG_WAITALL))["status"] == "SUCCESS"
        sock.sendall(b"".join(encode_packet(0, 0, os.urandom(3 * 512 + 100), False, 512)))
        cluster.wait(
            lambda: any(p.stat().st_size for p in current.glob(f"*/blk_{block_id}")),
            10,
            "the copy's first bytes on disk",
        )
        assert [p.parent.name for p in current.glob(f"*/blk_{block_id}")] == ["tmp"]
        cluster.restart(victim, sig=signal.SIGKILL)  # the DataNode dies mid-copy
    leftovers = [p.name for p in current.rglob(f"blk_{block_id}*")]
    assert leftovers == [], leftovers
    wait_registered(cluster, victim)
