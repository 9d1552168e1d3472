"""BlockPlacementPolicyDefault on a hand-made topology (no processes): the rack rule for
new blocks, for writers inside and outside the cluster, and for re-replication."""

from __future__ import annotations

from collections import Counter

from lab.services.hdfs.blockmanager import BlockManager
from lab.services.hdfs.config import Configuration


def make_bm(racks: dict[str, int]) -> BlockManager:
    table, i = {}, 1
    for rack, n in racks.items():
        for _ in range(n):
            table[f"10.0.0.{i}"] = rack
            i += 1
    bm = BlockManager(Configuration(), table)
    for ip in table:
        d = bm.register({"uuid": ip, "ip": ip, "xferPort": 1, "infoPort": 2})
        bm.heartbeat(d, {"capacity": 10**12, "remaining": 10**12})
    return bm


def test_writer_inside_cluster_first_replica_local_then_remote_rack_pair():
    bm = make_bm({"/r1": 3, "/r2": 3, "/r3": 3})
    writer = bm.datanodes["10.0.0.2"]
    for _ in range(200):
        t = bm.choose_target(3, writer, [], set())
        assert t[0] is writer
        assert t[1].rack != writer.rack
        assert t[2].rack == t[1].rack and t[2] is not t[1]


def test_writer_outside_cluster_random_first_then_rule():
    bm = make_bm({"/r1": 3, "/r2": 3})
    firsts = Counter()
    for _ in range(300):
        t = bm.choose_target(3, None, [], set())
        firsts[t[0].uuid] += 1
        assert len({d.uuid for d in t}) == 3
        assert t[1].rack != t[0].rack and t[2].rack == t[1].rack
    assert len(firsts) == 6  # the first replica lands anywhere


def test_more_replicas_than_three_respect_max_per_rack():
    bm = make_bm({"/r1": 4, "/r2": 4})
    for _ in range(100):
        t = bm.choose_target(6, bm.datanodes["10.0.0.1"], [], set())
        per_rack = Counter(d.rack for d in t)
        assert len(t) == 6 and max(per_rack.values()) <= (6 - 1) // 2 + 2


def test_rereplication_keeps_two_racks():
    bm = make_bm({"/r1": 3, "/r2": 3})
    a, b = bm.datanodes["10.0.0.1"], bm.datanodes["10.0.0.2"]  # both on /r1
    for _ in range(100):
        t = bm.choose_target(1, a, [a, b], set(), new_block=False)
        assert t[0].rack == "/r2"


def test_single_rack_cluster_still_places_all_replicas():
    bm = make_bm({"/r1": 3})
    t = bm.choose_target(3, None, [], set())
    assert len({d.uuid for d in t}) == 3


def test_excluded_and_dead_nodes_are_skipped():
    bm = make_bm({"/r1": 2, "/r2": 2})
    bm.datanodes["10.0.0.3"].alive = False
    for _ in range(50):
        t = bm.choose_target(3, None, [], {"10.0.0.1"})
        assert {d.uuid for d in t}.isdisjoint({"10.0.0.1", "10.0.0.3"})
        assert len(t) == 2  # only two usable nodes left


def test_default_dead_interval_is_ten_minutes_thirty():
    bm = BlockManager(Configuration(), {})
    assert bm.expire_interval == 630


def test_rereplication_goes_by_priority():
    from lab.services.hdfs.blockmanager import QUEUE_HIGHEST, QUEUE_LOW
    from lab.services.hdfs.namespace import Block, INodeFile

    bm = make_bm({"/r1": 2, "/r2": 2})
    f = INodeFile(1, "f", "u", "g", 0o644, 0, 0, replication=3)
    f.blocks = [Block(12, 1001, 10), Block(11, 1001, 10)]
    bm.add_file_blocks(f)
    nodes = list(bm.datanodes.values())
    for d in nodes[:2]:
        bm.replica_received(d, [12, 1001, 10])  # two live replicas of three: low redundancy
    bm.replica_received(nodes[2], [11, 1001, 10])  # one live replica: highest priority
    assert 11 in bm.needed[QUEUE_HIGHEST] and 12 in bm.needed[QUEUE_LOW]
    # With room for one block this pass, the single-replica block goes first.
    assert bm.compute_replication_work(budget=1) == 1
    assert 11 in bm.pending and 12 not in bm.pending
    cmd = nodes[2].replicate_queue[0]
    assert cmd["block"]["blockId"] == 11 and len(cmd["targets"]) == 2
    assert bm.compute_replication_work(budget=1) == 1 and 12 in bm.pending
