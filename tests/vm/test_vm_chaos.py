"""Chaos on a VM node (slow: one VM boot for the module, and a second when kill-node
pulls its plug). A ZooKeeper ensemble of two namespace nodes and one VM: every nemesis
lands on the VM through the node contract (partition rules and netem-less packet
faults, libvirt suspend for pause, a SIGKILL over SSH, libvirt's vCPU quota, the
guest's memory limit, destroy and boot for kill-node), then a chaos run with a
partition and a kill on the VM is judged by the checker, and `lab down` leaves nothing.

The tests run in file order on one lab; the last one takes it down."""

from __future__ import annotations

import random
import uuid

import pytest

from lab.chaos import nemesis
from lab.chaos.labctx import LabContext
from lab.net import faults as netfaults

from ..integration.leftovers import leftovers
from .conftest import domains_of

pytestmark = pytest.mark.slow

TOPOLOGY = """
name: {name}
defaults: {{kind: process, cpus: 0.5, memory: 256Mi}}
network: {{supernet: auto}}
racks:
  r1: {{nodes: [p1, v1]}}
  r2: {{nodes: [p2]}}
nodes:
  v1: {{kind: vm, cpus: 1, memory: 512Mi}}
services:
  zookeeper: {{nodes: [p1, p2, v1], tickTime: 500}}
"""


@pytest.fixture(scope="module")
def vm_lab(libvirt_conn, vm_image):
    from lab.orchestrator import lab as orch
    from lab.topology import loads

    name = "kv" + uuid.uuid4().hex[:8]
    state = orch.up(loads(TOPOLOGY.format(name=name), "vm-chaos.yaml"))
    yield state
    if orch.State.load(name) is not None:
        orch.teardown(name, orch.State.load(name))


def _picking(node: str, pool: list[str], picks: int = 1, derive=lambda s: s) -> int:
    """A seed whose generator's first ``picks`` choices among ``pool`` are all ``node``
    (nemeses pick victims with the run's generator, ``derive(seed)`` of it)."""

    def hits(seed):
        rng = random.Random(derive(seed))
        return all(rng.choice(pool) == node for _ in range(picks))

    return next(s for s in range(10_000) if hits(s))


def _ping(ctx, src: str, dst: str):
    return ctx.nodes[src].exec(
        ["ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", ctx.addresses[dst]], timeout=30
    )


def _rtt_min(result) -> float:
    assert result.ok, result.stdout + result.stderr
    return float(result.stdout.rsplit("=", 1)[1].split("/")[0])


def _start(ctx, name: str, victim: str, tmp_path=None):
    nem = nemesis.make(name, "zookeeper", log_dir=str(tmp_path or "/tmp"))[0]
    seed = _picking(victim, ctx.service_nodes("zookeeper"))
    return nem.start(ctx, random.Random(seed))


def _zk_sid(ctx) -> str:
    (sid,) = [s for s, x in ctx.services("zookeeper").items() if x["node"] == "v1"]
    return sid


def test_partition_and_packet_faults_act_in_the_vm(vm_lab, tmp_path):
    ctx = LabContext.attach(vm_lab.name)
    fault = _start(ctx, "partition-one", "v1")
    try:
        assert fault.description == "isolated v1 from every other node"
        # the rules are in the guest's own iptables, and the VM hears nobody
        assert sorted(netfaults.blocked(ctx.net("v1"))) == sorted(
            [ctx.addresses["p1"], ctx.addresses["p2"]]
        )
        assert not _ping(ctx, "v1", "p1").ok
    finally:
        fault.heal()
    assert netfaults.blocked(ctx.net("v1")) == []
    assert _ping(ctx, "v1", "p1").ok

    one_way = _start(ctx, "partition-one-way", "v1")
    try:
        assert not _ping(ctx, "v1", "p2").ok  # v1 hears no reply
        assert _ping(ctx, "p2", "v1").ok is False  # nor p2's requests: a ping needs both
        assert netfaults.blocked(ctx.net("p2")) == []  # p2 still hears v1
    finally:
        one_way.heal()

    # a delay on what every zookeeper node sends (the VM's through its tap); the round
    # trip is at least the one-way delay less its jitter, whatever the machine
    delay = nemesis.make("delay", "zookeeper", log_dir=str(tmp_path))[0]
    fault = delay.start(ctx, random.Random(1))
    try:
        assert "v1" in fault.targets
        assert _rtt_min(_ping(ctx, "v1", "p1")) >= 29.0
    finally:
        fault.heal()
    assert _ping(ctx, "v1", "p1").ok


def test_kill_pause_and_pressure_act_on_the_vm(vm_lab):
    ctx = LabContext.attach(vm_lab.name)
    v1, sid = ctx.nodes["v1"], _zk_sid(ctx)

    fault = _start(ctx, "kill", "v1")
    assert fault.description == "killed zookeeper on v1 (SIGKILL)"
    assert not ctx.service_running(sid)
    fault.heal()
    assert ctx.service_running(sid)

    fault = _start(ctx, "pause", "v1")
    try:
        assert fault.description == "paused zookeeper on v1 (node)"
        assert v1.describe()["paused"] is True  # libvirt's suspend
    finally:
        fault.heal()
    assert v1.describe()["paused"] is False and ctx.service_running(sid)

    fault = _start(ctx, "cpu", "v1")
    try:
        params = v1.domain().schedulerParameters()
        assert params["vcpu_quota"] == 5000 and params["vcpu_period"] == 100000
    finally:
        fault.heal()
    assert v1.domain().schedulerParameters()["vcpu_quota"] == -1  # cpus: 1 = its one vCPU

    fault = _start(ctx, "memory", "v1")
    try:
        limit = int(v1.exec(["cat", "/sys/fs/cgroup/racklab/memory.max"]).stdout)
        assert f"squeezed to {limit >> 20} MiB" in fault.description
    finally:
        fault.heal()
    assert v1.exec(["cat", "/sys/fs/cgroup/racklab/memory.max"]).stdout.strip() == "max"
    assert ctx.service_running(sid)


def test_kill_node_destroys_the_domain_and_boots_it_again(vm_lab):
    ctx = LabContext.attach(vm_lab.name)
    v1 = ctx.nodes["v1"]
    fault = _start(ctx, "kill-node", "v1")
    assert not v1.alive()
    fault.heal()
    assert v1.alive() and v1.describe()["paused"] is False
    assert ctx.service_running(_zk_sid(ctx))
    assert _ping(ctx, "v1", "p2").ok  # its tap is back on the rack bridge


def test_zookeeper_run_with_a_partition_and_a_kill_on_the_vm(vm_lab, chaos_run):
    ctx = LabContext.attach(vm_lab.name)
    # the runner's nemesis draws from Random(seed ^ 0x5EED): two draws, both the VM
    seed = _picking("v1", ctx.service_nodes("zookeeper"), 2, lambda s: s ^ 0x5EED)
    result = chaos_run(vm_lab, "zk-register", "partition-one,kill", time_s=40, rate=10,
                       seed=seed, interval=6)  # fmt: skip
    history = (result.run_dir / "history.jsonl").read_text()
    assert "isolated v1 from every other node" in history
    assert "killed zookeeper on v1 (SIGKILL)" in history
    assert result.verdict["nemesis_errors"] == []
    assert result.valid is True, result.anomalies
    report = result.report.read_text()
    assert "isolated v1 from every other node" in report
    assert "killed zookeeper on v1" in report
    ctx = LabContext.attach(vm_lab.name)
    assert all(netfaults.blocked(ctx.net(n)) == [] for n in ctx.nodes)
    down = [s for s in ctx.services() if not ctx.service_running(s)]
    assert down == [], [ctx.nodes["v1"].exec(["tail", "-3", "/srv/node/logs/zookeeper.log"])]


def test_down_leaves_nothing(vm_lab, libvirt_conn):
    from lab.orchestrator import lab as orch

    orch.down(vm_lab.name)
    assert domains_of(libvirt_conn, vm_lab.name) == []
    assert leftovers(vm_lab.name) == []
