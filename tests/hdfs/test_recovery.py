"""Two racks of DataNodes as processes: placement seen from real writers, a killed
DataNode's blocks copied again with the rack rule kept, corrupt replicas caught by
readers and by the block scanner and replaced."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
import requests
from hdfs import InsecureClient
from requests.adapters import HTTPAdapter

from lab.services.hdfs.minicluster import MiniCluster

BLOCK = 64 * 1024


class SourceAddressAdapter(HTTPAdapter):
    """Sends from a chosen local address, so the NameNode sees the writer as that host."""

    def __init__(self, ip: str) -> None:
        self.ip = ip
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.ip, 0)
        super().init_poolmanager(*args, **kwargs)


def client_from(cluster: MiniCluster, ip: str) -> InsecureClient:
    s = requests.Session()
    s.mount("http://", SourceAddressAdapter(ip))
    return InsecureClient(cluster.url, user="root", session=s)


@pytest.fixture(scope="module")
def rc(tmp_path_factory):
    with MiniCluster(
        tmp_path_factory.mktemp("dfs-rec"),
        racks={"/rack1": 3, "/rack2": 3},
        settings={
            "dfs.blocksize": "64k",
            "dfs.heartbeat.interval": "500ms",
            "dfs.namenode.heartbeat.recheck-interval": "2500",
            "dfs.datanode.scan.period.hours": "0.002",
        },
    ).running() as c:
        yield c


def blocks_of(cluster, path):
    return [b for f in cluster.fsck(path)["files"] for b in f["blocks"]]


def rack_of(cluster, addr):
    return cluster.dn_racks[addr.split(":")[0]]


def test_placement_writer_on_a_datanode(rc):
    writer_ip = next(ip for ip, r in rc.dn_racks.items() if r == "/rack1")
    client_from(rc, writer_ip).write("/place/inside", os.urandom(6 * BLOCK), overwrite=True)
    blocks = blocks_of(rc, "/place/inside")
    assert len(blocks) == 6
    for b in blocks:
        hosts = [loc["addr"].split(":")[0] for loc in b["locations"]]
        assert writer_ip in hosts, "first replica on the writer's node"
        others = [h for h in hosts if h != writer_ip]
        assert len(others) == 2 and {rc.dn_racks[h] for h in others} == {"/rack2"}


def test_placement_writer_outside_the_cluster(rc):
    client_from(rc, rc.client_ip).write("/place/outside", os.urandom(8 * BLOCK), overwrite=True)
    for b in blocks_of(rc, "/place/outside"):
        per_rack = Counter(loc["rack"] for loc in b["locations"])
        assert sorted(per_rack.values()) == [1, 2], per_rack


def wait_healthy(rc, path, timeout=60, avoid: str | None = None):
    def ok():
        report = rc.fsck(path)
        for f in report["files"]:
            for b in f["blocks"]:
                hosts = {loc["addr"].split(":")[0] for loc in b["locations"]}
                if b["live"] != f["replication"] or b["corruptLocations"] or avoid in hosts:
                    return False
                if len({loc["rack"] for loc in b["locations"]}) < 2:
                    return False
        return report

    return rc.wait(ok, timeout, f"every block of {path} back at full replication")


def test_dead_datanode_blocks_are_replicated_again(rc):
    client = InsecureClient(rc.url, user="root")
    data = {f"/dead/f{i}": os.urandom(3 * BLOCK + i) for i in range(4)}
    for p, d in data.items():
        client.write(p, d, overwrite=True)
    wait_healthy(rc, "/dead")
    victim = max(
        rc.datanodes,
        key=lambda d: sum(
            1
            for b in blocks_of(rc, "/dead")
            for loc in b["locations"]
            if loc["addr"].startswith(d.ip + ":")
        ),
    )
    rc.kill(victim)
    assert (
        rc.jmx("FSNamesystem")["NumDeadDataNodes"] == 0
    )  # silent, not yet dead: 2*recheck + 10*heartbeat
    rc.wait(
        lambda: rc.jmx("FSNamesystem")["NumDeadDataNodes"] == 1,
        30,
        "the killed DataNode declared dead",
    )
    wait_healthy(rc, "/dead", avoid=victim.ip)
    for p, d in data.items():
        with client.read(p) as r:
            assert r.read() == d


def replica_file(rc, ip: str, block_id: int) -> Path:
    return rc.root / f"data-{ip}" / "current" / "finalized" / f"blk_{block_id}"


def flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def live_ips(rc):
    return [d.ip for d in rc.datanodes if d.proc.poll() is None]


def test_corrupt_replica_read_gives_right_data_and_is_replaced(rc):
    data = os.urandom(2 * BLOCK + 100)
    InsecureClient(rc.url, user="root").write("/corrupt/a", data, overwrite=True)
    block = blocks_of(rc, "/corrupt/a")[1]
    holder = next(
        loc["addr"].split(":")[0]
        for loc in block["locations"]
        if loc["addr"].split(":")[0] in live_ips(rc)
    )
    path = replica_file(rc, holder, block["blockId"])
    flip(path, 1000)
    # Read from the corrupt replica's host: the NameNode sends the reader to the local copy.
    with client_from(rc, holder).read("/corrupt/a") as r:
        assert r.read() == data
    wait_healthy(rc, "/corrupt")
    rc.wait(lambda: not path.exists(), 20, "the corrupt replica deleted from disk")


def test_block_scanner_finds_corruption_nobody_read(rc):
    data = os.urandom(BLOCK + 10)
    InsecureClient(rc.url, user="root").write("/corrupt/b", data, overwrite=True)
    block = blocks_of(rc, "/corrupt/b")[0]
    holder = next(
        loc["addr"].split(":")[0]
        for loc in block["locations"]
        if loc["addr"].split(":")[0] in live_ips(rc)
    )
    path = replica_file(rc, holder, block["blockId"])
    flip(path, 5)
    rc.wait(
        lambda: (
            any(b["corruptLocations"] for b in blocks_of(rc, "/corrupt/b")) or not path.exists()
        ),
        40,
        "the scanner to report the bad replica",
    )
    wait_healthy(rc, "/corrupt/b")
    with InsecureClient(rc.url, user="root").read("/corrupt/b") as r:
        assert r.read() == data


def test_lower_replication_removes_excess_replicas(rc):
    client = InsecureClient(rc.url, user="root")
    client.write("/excess/f", os.urandom(2 * BLOCK), overwrite=True)
    wait_healthy(rc, "/excess")
    client.set_replication("/excess/f", 2)

    def two_racks_two_replicas():
        bl = blocks_of(rc, "/excess/f")
        return all(b["live"] == 2 and len({loc["rack"] for loc in b["locations"]}) == 2 for b in bl)

    rc.wait(two_racks_two_replicas, 20, "excess replicas removed")
    client.set_replication("/excess/f", 3)
    wait_healthy(rc, "/excess")


def test_returning_datanode_brings_excess_replicas_that_are_removed(rc):
    client = InsecureClient(rc.url, user="root")
    data = os.urandom(4 * BLOCK)
    client.write("/back/f", data, overwrite=True)
    wait_healthy(rc, "/back")
    node = next(
        d
        for d in rc.datanodes
        if d.proc.poll() is None
        and any(
            loc["addr"].startswith(d.ip + ":")
            for b in blocks_of(rc, "/back")
            for loc in b["locations"]
        )
    )
    rc.kill(node)
    dead_before = rc.jmx("FSNamesystem")["NumDeadDataNodes"]
    rc.wait(
        lambda: rc.jmx("FSNamesystem")["NumDeadDataNodes"] == dead_before + 1,
        30,
        "the node declared dead",
    )
    wait_healthy(rc, "/back", avoid=node.ip)  # copied elsewhere meanwhile
    rc.restart(node)  # same data directory: its old replicas come back in its block report
    rc.wait(
        lambda: rc.jmx("FSNamesystem")["NumDeadDataNodes"] == dead_before,
        30,
        "the node alive again",
    )
    wait_healthy(rc, "/back")  # exactly 3 live replicas per block again: the excess ones went
    with client.read("/back/f") as r:
        assert r.read() == data
