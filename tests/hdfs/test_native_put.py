"""`lab hdfs dfs -put` over Hadoop's protocols as `hdfs dfs -put` behaves: the bytes go to
DST._COPYING_, renamed to DST once whole and deleted when the copy fails; a DataNode killed
mid-block is recovered from as Hadoop's DataStreamer does (the bad node dropped, a new
generation stamp, the survivors set up with PIPELINE_SETUP_STREAMING_RECOVERY, the
unacknowledged packets sent again, updatePipeline), and a later block placed on the dead
node before the NameNode knows it is abandoned and asked for again without it.

The local source is a FIFO, so the test decides when the shell is mid-block: the shell
reads 1 MiB at a time, and with 768 KiB blocks the first read leaves the second block
open with 256 KiB sent."""

from __future__ import annotations

import contextlib
import os
import threading

import pytest

from lab.services.hdfs.minicluster import MiniCluster
from lab.services.hdfs.nativeclient import NativeClient
from lab.services.hdfs.replacedatanode import BEST_EFFORT_KEY as BEST_EFFORT
from lab.services.hdfs.replacedatanode import POLICY_KEY as POLICY
from lab.services.hdfs.replacedatanode import replacement_wanted

from .rawipc import RawIpc, located_blocks
from .shellrun import run_shell

BLOCK = 768 * 1024
FIRST = 1024 * 1024  # what the shell's first read of the source takes
SIZE = 3 * BLOCK + 5000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with MiniCluster(
        tmp_path_factory.mktemp("dfs"),
        racks={"/rack1": 3, "/rack2": 2},
        settings={"dfs.blocksize": str(BLOCK)},
    ).running() as c:
        yield c


def put(cluster, *argv: str) -> tuple[int, str, str]:
    return run_shell(cluster, "dfs", *argv)


def exists(cluster, path: str) -> bool:
    raw = RawIpc(cluster)
    try:
        return raw.call("getFileInfo", {"src": path}).get("fs") is not None
    finally:
        raw.close()


def put_through_fifo(
    cluster, tmp_path, data: bytes, dst: str, midway, *options: str, cmd: str = "-put"
):
    """`-put` (or `cmd`) of a FIFO fed `data`: its first MiB, then `midway()` while the
    shell waits for more, then the rest. -> the shell's (rc, out, err) and what midway
    returned."""
    fifo = tmp_path / "source"
    os.mkfifo(fifo)
    result = {}
    written = dst + "._COPYING_" if cmd == "-put" else dst

    def run():
        result["put"] = put(cluster, *options, cmd, str(fifo), dst)

    t = threading.Thread(target=run)
    t.start()
    f = open(fifo, "wb")  # noqa: SIM115 (closed below, where a failed put broke it)
    try:
        f.write(data[:FIRST])
        f.flush()
        # The shell has its first MiB once the file's second block is being written.
        cluster.wait(
            lambda: (
                exists(cluster, written) and len(located_blocks(cluster, written)["blocks"]) == 2
            ),
            30,
            "the put to reach its second block",
        )
        seen = midway()
        f.write(data[FIRST:])
        f.close()
    except BrokenPipeError:  # the put gave up and closed its source
        pass
    finally:
        with contextlib.suppress(BrokenPipeError):
            f.close()
        t.join(120)
    assert not t.is_alive()
    return result["put"], seen


def open_pipeline(cluster, path: str) -> list:
    last = located_blocks(cluster, path)["blocks"][-1]
    ips = [d["id"]["ipAddr"] for d in last["locs"]]
    return [next(d for d in cluster.datanodes if d.ip == ip) for ip in ips]


@pytest.fixture
def calls(monkeypatch):
    """The ClientNamenodeProtocol methods the shell's client calls, in order."""
    made = []
    call = NativeClient._call

    def recorded(self, method, **request):
        made.append(method)
        return call(self, method, **request)

    monkeypatch.setattr(NativeClient, "_call", recorded)
    return made


# The default suite kills the middle node (an error ack); the first node (a broken
# connection) is killed in the default suite by the append test below. Each case also
# waits for the NameNode's re-replication, which takes 2-25 s: head and tail are slow.
@pytest.mark.parametrize(
    "position",
    [
        pytest.param(0, marks=pytest.mark.slow),
        1,
        pytest.param(2, marks=pytest.mark.slow),
    ],
    ids=["head", "middle", "tail"],
)
def test_put_survives_a_datanode_killed_mid_block(cluster, tmp_path, position, calls):
    data = os.urandom(SIZE)
    dst = f"/put/killed-{position}"
    put(cluster, "-mkdir", "-p", "/put")
    victim = {}

    def kill():
        # While the put is under way its bytes are under DST._COPYING_, not DST.
        copying = exists(cluster, dst + "._COPYING_"), exists(cluster, dst)
        pipeline = open_pipeline(cluster, dst + "._COPYING_")
        victim["d"] = pipeline[position]
        victim["gs"] = located_blocks(cluster, dst + "._COPYING_")["blocks"][-1]["b"][
            "generationStamp"
        ]
        cluster.kill(victim["d"])
        return copying, len(pipeline)

    try:
        (rc, out, err), (copying, width) = put_through_fifo(cluster, tmp_path, data, dst, kill)
        assert (rc, err) == (0, ""), err
        assert copying == (True, False) and width == 3
        # ReplaceDatanodeOnFailure DEFAULT at replication 3 with two nodes left, not an
        # append, not hflushed: no replacement; the NameNode re-replicates afterwards.
        assert "updateBlockForPipeline" in calls and "updatePipeline" in calls
        assert "getAdditionalDatanode" not in calls
        assert not exists(cluster, dst + "._COPYING_")
        got = tmp_path / "got"
        assert put(cluster, "-get", dst, str(got))[0] == 0
        assert got.read_bytes() == data
        blocks = located_blocks(cluster, dst)["blocks"]
        assert len(blocks) == 4
        # The recovered block has a new generation stamp, so the dead node's copy is stale,
        # and neither it nor a later block lists the dead node among its replicas (the
        # first block was finished on it before it died).
        assert blocks[1]["b"]["generationStamp"] > victim["gs"]
        for b in blocks[1:]:
            assert victim["d"].ip not in {d["id"]["ipAddr"] for d in b["locs"]}
        # The block written on by two nodes is copied to a third by the NameNode.
        cluster.wait(
            lambda: (
                [b["status"] for b in cluster.fsck(dst)["files"][0]["blocks"]] == ["HEALTHY"] * 4
            ),
            60,
            "re-replication to 3 live replicas",
        )
    finally:
        if "d" in victim:
            cluster.restart(victim["d"])


def test_failed_put_leaves_nothing(cluster, tmp_path):
    """At replication 1 the pipeline's only DataNode killed mid-block: Hadoop's words
    ("All datanodes ... are bad. Aborting..."), exit 1, and neither DST nor
    DST._COPYING_ left behind."""
    data = os.urandom(SIZE)
    dst = "/put/failed"
    put(cluster, "-mkdir", "-p", "/put")
    victim = {}

    def kill():
        (victim["d"],) = open_pipeline(cluster, dst + "._COPYING_")
        cluster.kill(victim["d"])

    try:
        (rc, out, err), _ = put_through_fifo(
            cluster, tmp_path, data, dst, kill, "-D", "dfs.replication=1"
        )
        assert rc == 1
        assert err.startswith("put: All datanodes [") and "are bad. Aborting" in err
        assert not exists(cluster, dst) and not exists(cluster, dst + "._COPYING_")
    finally:
        if "d" in victim:
            cluster.restart(victim["d"])


def test_put_refuses_an_existing_target_and_overwrites_with_f(cluster, tmp_path):
    local = tmp_path / "f"
    local.write_bytes(b"one\n")
    assert put(cluster, "-mkdir", "-p", "/put/over")[0] == 0
    assert put(cluster, "-put", str(local), "/put/over/f")[0] == 0
    local.write_bytes(b"two\n")
    assert put(cluster, "-put", str(local), "/put/over/f") == (
        1,
        "",
        "put: `/put/over/f': File exists\n",
    )
    assert put(cluster, "-put", str(local), "/put/over") == (
        1,
        "",
        "put: `/put/over/f': File exists\n",
    )
    assert put(cluster, "-put", "-f", str(local), "/put/over/f") == (0, "", "")
    assert put(cluster, "-cat", "/put/over/f")[1] == "two\n"
    # -d: written in place, no ._COPYING_ name on the way.
    assert put(cluster, "-put", "-d", str(local), "/put/over/g") == (0, "", "")
    assert put(cluster, "-ls", "/put/over")[1].count("._COPYING_") == 0


def test_append_replaces_a_killed_datanode(cluster, tmp_path, calls):
    """An append's pipeline that loses a node is given a replacement (DEFAULT: the stream
    was opened by append), which a survivor fills with what was acknowledged
    (OP_TRANSFER_BLOCK) before the write goes on with three."""
    head = os.urandom(100_000)
    data = os.urandom(SIZE)
    dst = "/put/appended"
    local = tmp_path / "head"
    local.write_bytes(head)
    assert put(cluster, "-put", str(local), dst)[0] == 0
    victim = {}

    def kill():
        # The first node: the writer's next send fails at once, while the block is still
        # streaming. A later node's death reaches the writer as an error ack, which on a
        # loaded machine can come after the block's last packet: then, as in Hadoop, the
        # closing block is not given a replacement (the NameNode re-replicates it).
        victim["d"] = open_pipeline(cluster, dst)[0]
        cluster.kill(victim["d"])

    try:
        (rc, out, err), _ = put_through_fifo(
            cluster, tmp_path, data, dst, kill, cmd="-appendToFile"
        )
        assert (rc, err) == (0, ""), err
        assert calls.count("getAdditionalDatanode") == 1
        blocks = located_blocks(cluster, dst)["blocks"]
        holders = {d["id"]["ipAddr"] for d in blocks[1]["locs"]}
        assert len(holders) == 3 and victim["d"].ip not in holders
        got = tmp_path / "got"
        assert put(cluster, "-get", dst, str(got))[0] == 0
        assert got.read_bytes() == head + data
    finally:
        if "d" in victim:
            cluster.restart(victim["d"])


@pytest.mark.parametrize(
    "policy,replication,left,append,wanted",
    [
        ("DEFAULT", 3, 2, False, False),  # a plain write at 3 goes on with two
        ("DEFAULT", 3, 2, True, True),  # an append does not
        ("DEFAULT", 3, 1, False, True),  # at most half left
        ("DEFAULT", 2, 1, True, False),  # under 3, never
        ("DEFAULT", 5, 2, False, True),
        ("DEFAULT", 5, 3, False, False),
        ("ALWAYS", 2, 1, False, True),
        ("ALWAYS", 3, 3, False, False),  # nothing missing
        ("NEVER", 3, 1, True, False),
    ],
)
def test_replace_datanode_on_failure_policy(policy, replication, left, append, wanted):
    assert replacement_wanted(policy, replication, left, append, False) is wanted


def test_append_on_three_nodes_needs_best_effort(tmp_path_factory, tmp_path):
    """With three DataNodes there is no replacement for a dead one: an append that loses
    a node fails as Hadoop's does ("Failed to replace a bad datanode ... policy is
    DEFAULT ..."), unless -D ...replace-datanode-on-failure.best-effort=true lets it go on
    with the two left."""
    with MiniCluster(
        tmp_path_factory.mktemp("three"),
        racks={"/rack1": 3},
        settings={"dfs.blocksize": str(BLOCK)},
    ).running() as three:
        local = tmp_path / "head"
        local.write_bytes(os.urandom(100_000))
        for name, options, ok in (
            ("strict", (), False),
            ("lenient", ("-D", f"{BEST_EFFORT}=true"), True),
        ):
            dst, data = f"/three/{name}", os.urandom(SIZE)
            assert put(three, "-mkdir", "-p", "/three")[0] == 0
            assert run_shell(three, "dfs", "-put", str(local), dst)[0] == 0
            victim = {}

            def kill(dst=dst, victim=victim):
                victim["d"] = open_pipeline(three, dst)[1]
                three.kill(victim["d"])

            fifo_dir = tmp_path / name
            fifo_dir.mkdir()
            try:
                (rc, _, err), _ = put_through_fifo(
                    three, fifo_dir, data, dst, kill, *options, cmd="-appendToFile"
                )
            finally:
                three.restart(victim["d"])
            if ok:
                assert (rc, err) == (0, "")
                got = tmp_path / f"{name}.got"
                assert put(three, "-get", dst, str(got))[0] == 0
                assert got.read_bytes() == local.read_bytes() + data
            else:
                assert rc == 1
                assert "Failed to replace a bad datanode on the existing pipeline" in err
                assert "The current failed datanode replacement policy is DEFAULT" in err


def test_unknown_replacement_policy_is_refused(cluster):
    rc, out, err = put(cluster, "-D", f"{POLICY}=SOMETIMES", "-ls", "/")
    assert rc == 255 and err.startswith(f"Illegal value for {POLICY}: SOMETIMES")
