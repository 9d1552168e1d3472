"""Nemeses: impossible ones refused in one sentence; on a real lab each fault acts and
its heal puts everything back; schedules repeat with their seed."""

from __future__ import annotations

import random
import time

import pytest

from lab.chaos import nemesis as nem
from lab.chaos.labctx import ChaosError, LabContext
from lab.net import faults as netfaults
from lab.orchestrator.state import State
from lab.services.ports import port_answers


class FakeNode:
    def __init__(self, rack):
        self.spec = type("S", (), {"rack": rack})()


def fake_ctx(racks: dict[str, str], zk_nodes: list[str]) -> LabContext:
    services = {f"zookeeper-server-{n}": {"service": "zookeeper", "role": "server", "node": n,
                                         "name": "zookeeper-server"} for n in zk_nodes}  # fmt: skip
    state = State("fake", {"labid": "zz", "services": services})
    nodes = {n: FakeNode(r) for n, r in racks.items()}
    return LabContext(state, nodes, {n: f"10.9.0.{i}" for i, n in enumerate(racks)}, racks)


def test_a_majority_of_one_node_is_refused():
    ctx = fake_ctx({"n1": "r1", "n2": "r1"}, ["n1"])
    [n] = nem.make("partition-majority", "zookeeper")
    with pytest.raises(ChaosError, match=r"at least 3 nodes and zookeeper runs on 1 \(n1\)"):
        n.validate(ctx)


def test_impossible_partitions_are_refused():
    ctx = fake_ctx({"n1": "r1", "n2": "r1", "n3": "r1"}, ["n1", "n2", "n3"])
    with pytest.raises(ChaosError, match="one rack"):
        nem.make("partition-rack", "zookeeper")[0].validate(ctx)
    with pytest.raises(ChaosError, match="at least 4 nodes"):
        nem.make("partition-majorities-ring", "zookeeper")[0].validate(ctx)
    with pytest.raises(ChaosError, match="runs no kafka"):
        nem.make("kill", "kafka")[0].validate(ctx)
    nem.make("partition-majority", "zookeeper")[0].validate(ctx)  # three will do


def test_unknown_nemesis_is_refused():
    with pytest.raises(ChaosError, match=r"unknown nemesis 'explode' \(known: .*partition-one"):
        nem.make("kill,explode", "zookeeper")


def test_grudges_have_the_promised_shape():
    racks = {f"n{i}": "r1" if i <= 3 else "r2" for i in range(1, 7)}
    ctx = fake_ctx(racks, ["n1", "n2", "n3", "n4", "n5"])
    rng = random.Random(3)
    g, _ = nem.PartitionMajority("zookeeper").grudge(ctx, rng)
    minority = [n for n in ctx.service_nodes("zookeeper") if g.get(n) and "n6" in g[n]]
    assert len(minority) == 2  # of five servers, two cut off from the rest (and from n6)
    g, _ = nem.PartitionMajoritiesRing("zookeeper").grudge(ctx, rng)
    views = {n: frozenset(set(ctx.service_nodes("zookeeper")) - g[n]) for n in g}
    assert all(len(v) >= 3 for v in views.values())  # each sees a majority of five
    assert len(set(views.values())) == 5  # and no two the same one
    assert all(a in g[b] for a in g for b in g[a])  # cut links are cut both ways
    g, desc = nem.PartitionRack(None).grudge(ctx, rng)
    assert set(g) == set(racks) and "cut off" in desc
    g, _ = nem.PartitionOneWay("zookeeper").grudge(ctx, rng)
    assert len(g) == 1 and len(next(iter(g.values()))) == 5


def test_schedules_repeat_with_their_seed_and_leave_time_to_recover():
    a = nem.schedule(["kill", "pause"], 120, 10, "random", 7)
    assert a == nem.schedule(["kill", "pause"], 120, 10, "random", 7)
    assert a != nem.schedule(["kill", "pause"], 120, 10, "random", 8)
    for ev in a:
        assert ev.end <= 120 - 24  # a fifth of the run stays quiet at the end
    fixed = nem.schedule(["kill", "pause"], 60, 10, "fixed", 1)
    assert [(e.start, e.end, e.nemesis) for e in fixed] == [(10, 20, "kill"), (30, 40, "pause")]
    with pytest.raises(ChaosError, match="cannot fit one fault"):
        nem.schedule(["kill"], 20, 10, "fixed", 1)


# on a real lab

LAB = """
name: chaosnem
defaults: {kind: process, cpus: 0.5, memory: 512Mi, pids: 1024}
network: {supernet: auto}
racks:
  r1: {nodes: [n1, n2, n3]}
  r2: {nodes: [n4, n5, n6]}
services:
  zookeeper: {nodes: [n1, n2, n4], tickTime: 500}
"""


@pytest.fixture(scope="module")
def ctx(module_lab):
    state, _ = module_lab
    return LabContext.attach(state)


def zk_answers(ctx, node, timeout=20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_answers(ctx.addresses[node], 2181):
            return True
        time.sleep(0.1)
    return False


def start(ctx, name, tmp_path):
    [n] = nem.make(name, "zookeeper", log_dir=str(tmp_path))
    n.validate(ctx)
    return n.start(ctx, random.Random(1))


def test_kill_and_restart_a_service(ctx, tmp_path):
    f = start(ctx, "kill", tmp_path)
    [sid] = [s for s, v in ctx.services("zookeeper").items() if v["node"] == f.targets[0]]
    assert not ctx.service_running(sid)
    f.heal()
    assert ctx.service_running(sid) and zk_answers(ctx, f.targets[0])


def test_pause_freezes_the_service_cgroup(ctx, tmp_path):
    f = start(ctx, "pause", tmp_path)
    [sid] = [s for s, v in ctx.services("zookeeper").items() if v["node"] == f.targets[0]]
    assert ctx._svc_cgroup(sid).frozen()
    f.heal()
    assert not ctx._svc_cgroup(sid).frozen()


def test_kill_node_boots_it_again_with_its_network_and_services(ctx, tmp_path):
    f = start(ctx, "kill-node", tmp_path)
    node = ctx.nodes[f.targets[0]]
    assert not node.alive()
    f.heal()
    assert node.alive()
    assert zk_answers(ctx, f.targets[0])
    other = next(n for n in ctx.nodes if n != f.targets[0])
    assert ctx.nodes[other].exec(["ping", "-c1", "-W2", f.targets[0]]).ok


@pytest.mark.parametrize("name", ["partition-majority", "partition-rack", "partition-one-way"])
def test_partitions_block_and_heal(ctx, tmp_path, name):
    f = start(ctx, name, tmp_path)
    grudge = f.detail["grudge"]
    for node, enemies in grudge.items():
        assert sorted(netfaults.blocked(ctx.netns(node))) == sorted(
            ctx.addresses[e] for e in enemies
        )
    a = next(iter(grudge))
    b = grudge[a][0]
    assert not ctx.nodes[a].exec(["ping", "-c1", "-W1", b]).ok
    f.heal()
    assert all(netfaults.blocked(ctx.netns(n)) == [] for n in ctx.nodes)
    assert ctx.nodes[a].exec(["ping", "-c1", "-W2", b]).ok


def test_packet_delay_on_the_targets_heals(ctx, tmp_path):
    f = start(ctx, "delay", tmp_path)
    try:
        src = f.targets[0]
        out = ctx.nodes[src].exec(["ping", "-c3", "-i0.2", "n3"]).stdout
        avg = float(out.strip().splitlines()[-1].split("/")[4])
        assert avg >= 25  # 50 ms +- 20 ms on what the target sends
    finally:
        f.heal()
    assert ctx.nodes[f.targets[0]].exec(["ping", "-c1", "-W2", "n3"]).ok


def test_cpu_and_memory_squeeze_are_restored(ctx, tmp_path):
    f = start(ctx, "cpu", tmp_path)
    cg = ctx.node_cgroup(f.targets[0])
    assert cg.limits()["cpus"] == pytest.approx(0.05)
    f.heal()
    assert cg.limits()["cpus"] == pytest.approx(0.5)
    f = start(ctx, "memory", tmp_path)
    cg = ctx.node_cgroup(f.targets[0])
    assert cg.limits()["memory"] < 512 << 20
    f.heal()
    assert cg.limits()["memory"] == 512 << 20


def test_heal_everything_undoes_a_crashed_run(ctx, tmp_path):
    faults_left = [start(ctx, n, tmp_path) for n in ("partition-one", "pause", "cpu")]
    assert faults_left  # left unhealed on purpose, as a crashed runner would
    ctx.heal_everything()
    assert all(netfaults.blocked(ctx.netns(n)) == [] for n in ctx.nodes)
    for sid in ctx.services("zookeeper"):
        assert not ctx._svc_cgroup(sid).frozen()
        assert ctx.service_running(sid)
    assert all(ctx.node_cgroup(n).limits()["cpus"] == pytest.approx(0.5) for n in ctx.nodes)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(
        zk_answers(ctx, n, 1) for n in ctx.service_nodes("zookeeper")
    ):
        time.sleep(0.2)
