"""A DataNode dies in the middle of a write: the writer recovers the pipeline with the
survivors (new generation stamp, replicas cut back to the acknowledged length, the rest
sent again), asks for pipelines without the dead node, and the file is complete."""

from __future__ import annotations

import json
import os
import signal

import pytest
import requests
from hdfs import InsecureClient

from lab.services.hdfs.minicluster import MiniCluster

PIECE = 64 * 1024


def wait_stale(pc, victim):
    """Until the NameNode counts the victim stale, a WebHDFS read may still be sent to it
    (as with Hadoop); once stale, it is the last choice for any read."""

    def stale():
        nodes = json.loads(pc.jmx("NameNodeInfo")["LiveNodes"])
        entry = next((n for n in nodes.values() if n["xferaddr"].startswith(victim.ip + ":")), None)
        return entry is None or entry["lastContact"] >= 4

    pc.wait(stale, 30, "the killed DataNode to go stale")


@pytest.fixture
def pc(tmp_path):
    with MiniCluster(
        tmp_path,
        racks={"/rack1": 2, "/rack2": 1},
        settings={
            "dfs.blocksize": "1m",
            "dfs.heartbeat.interval": "1s",
            "dfs.namenode.stale.datanode.interval": "3000",
        },
    ).running() as c:
        yield c


def test_write_survives_a_datanode_killed_mid_block(pc):
    data = os.urandom(64 * PIECE + 1234)  # 4 MiB and a bit: four full blocks and a tail
    r = requests.put(
        f"{pc.url}/webhdfs/v1/p/f?op=CREATE&noredirect=true&user.name=root", timeout=10
    )
    location = r.json()["Location"]
    writer_ip = location.split("//", 1)[1].split(":", 1)[0]
    victim = next(d for d in pc.datanodes if d.ip != writer_ip)

    def body():
        for i in range(0, len(data), PIECE):
            if i == 24 * PIECE:  # inside the second block: every pipeline has all three nodes
                pc.kill(victim, signal.SIGKILL)
            yield data[i : i + PIECE]

    put = requests.put(location, data=body(), timeout=120)
    assert put.status_code == 201, put.text
    wait_stale(pc, victim)
    client = InsecureClient(pc.url, user="root")
    with client.read("/p/f") as f:
        assert f.read() == data
    report = pc.fsck("/p/f")
    blocks = report["files"][0]["blocks"]
    assert len(blocks) == 5
    for b in blocks:
        hosts = {loc["addr"].split(":")[0] for loc in b["locations"]}
        assert hosts - {victim.ip}, b
        assert len(hosts - {victim.ip}) == 2  # both survivors hold every block
    # The stale replica the dead node kept never serves: reads stay right after it is declared dead.
    pc.wait(lambda: pc.jmx("FSNamesystem")["NumDeadDataNodes"] == 1, 30, "the victim declared dead")
    with client.read("/p/f", offset=PIECE * 20, length=PIECE * 10) as f:
        assert f.read() == data[PIECE * 20 : PIECE * 30]


def test_append_survives_a_datanode_killed_mid_append(pc):
    client = InsecureClient(pc.url, user="root")
    head = os.urandom(300_000)
    client.write("/p/a", head, overwrite=True)
    r = requests.post(
        f"{pc.url}/webhdfs/v1/p/a?op=APPEND&noredirect=true&user.name=root", timeout=10
    )
    location = r.json()["Location"]
    writer_ip = location.split("//", 1)[1].split(":", 1)[0]
    victim = next(d for d in pc.datanodes if d.ip != writer_ip)
    tail = os.urandom(40 * PIECE)

    def body():
        for i in range(0, len(tail), PIECE):
            if i == 5 * PIECE:
                pc.kill(victim, signal.SIGKILL)
            yield tail[i : i + PIECE]

    post = requests.post(location, data=body(), timeout=120)
    assert post.status_code == 200, post.text
    wait_stale(pc, victim)
    for _ in range(3):
        with client.read("/p/a") as f:
            assert f.read() == head + tail
