"""A lab of `k8s` nodes whose pods carry the rack network themselves, as pods on a
cluster must (lab/backends/k8s_overlay.py): here podman's pods on a podman network of
the lab's own, a privileged router pod with the rack bridges and the inter-rack
delay, VXLAN from each node pod to it, and this machine's way in over the relay's
TCP stream. The same wiring code a cluster's pods run; only the engine's API calls
differ. All four services are used from this machine with the unmodified clients,
chaos partitions run with the pods' own iptables (racklab's image has it now) and
kills through the node contract, and `lab down` leaves nothing.

The same tests run against a real cluster (the "cluster" parameter) where
RACKLAB_KUBECONFIG names one and RACKLAB_K8S_IMAGE racklab's image in a registry it
pulls from; this machine then reaches the lab through the API server's
port-forward. Without them that half is skipped and says why: no cluster was
reachable where this was written."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import uuid

import pytest

from tests.k8s.test_k8s_lab import (
    LAB,
    chaos_judged_valid,
    engines_or_skip,
    four_services_answer,
    lab_from,
    leftovers,
    podman_out,
)

# about 2.5 min (a lab of four pods with four services, a 30 s chaos run): the default
# suite is at its budget, and tests/k8s/test_k8s_lab.py already brings up a podman lab
pytestmark = pytest.mark.slow

DELAY_MS = 5
KUBECONFIG = os.environ.get("RACKLAB_KUBECONFIG")
IMAGE = os.environ.get("RACKLAB_K8S_IMAGE")


def _skip_unless_engine(engine: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("racklab labs need root")
    if engine == "cluster":
        if not (KUBECONFIG and IMAGE):
            pytest.skip(
                "no cluster: set RACKLAB_KUBECONFIG to a kubeconfig and RACKLAB_K8S_IMAGE to "
                "racklab's node image in a registry the cluster pulls from to run this"
            )
        return
    engines_or_skip()


@pytest.fixture(scope="module", params=["podman", "cluster"])
def lab(request):

    engine = request.param
    _skip_unless_engine(engine)
    name = "kov" + uuid.uuid4().hex[:6]
    if engine == "cluster":
        k8s, image = f"{{kubeconfig: {KUBECONFIG}}}", f", image: {IMAGE}"
    else:
        k8s, image = "{network: overlay}", ""
    more = f"network: {{inter_rack: {{delay: {DELAY_MS}ms}}}}\nk8s: {k8s}"
    with lab_from(LAB.format(name=name, defaults=image, more=more)) as (factory, state):
        state.engine = engine
        yield factory, state


def _addr(state, node: str) -> str:
    return state["network"]["nodes"][node].split("/")[0]


def _rtt_ms(node, target: str) -> float:
    out = node.exec(["/bin/ping", "-c5", "-i0.2", "-W5", target], timeout=30)
    assert out.ok, out.stderr
    return float(re.search(r"= [\d.]+/([\d.]+)/", out.stdout).group(1))


def test_the_pods_carry_the_rack_network(lab):
    factory, state = lab
    nodes = factory.nodes(state)
    router = state["impairment"]
    # a router pod of the lab's own, on the podman network, holds the racks
    assert router["router_pod"] == f"racklab-{state.name}-router"
    if state.engine == "podman":
        assert router["router_pod"] in podman_out("pod", "ps", "--format", "{{.Name}}")
    assert router["method"] in ("netem", "delayline")
    n1, n3 = nodes["n1"], nodes["n3"]
    link = n1.exec(["ip", "-d", "-o", "link", "show", "lab0"]).stdout
    assert f"vxlan id {sorted(nodes).index('n1') + 1} remote {router['router_ip']}" in link
    assert n1.exec(["ip", "-4", "-o", "addr", "show", "lab0"]).stdout.split()[3] == (
        state["network"]["nodes"]["n1"] + "/24"
    )
    # names, and the inter-rack delay only between racks (both ways: 2x the delay)
    assert _rtt_ms(n1, "n3") >= 2 * DELAY_MS
    assert _rtt_ms(n1, "n2") < DELAY_MS
    # this machine reaches every node through the relay to the router pod
    for n in nodes:
        ping = subprocess.run(["ping", "-c1", "-W5", _addr(state, n)], capture_output=True)
        assert ping.returncode == 0, n
    this_machine = str(ipaddress.ip_network(state["network"]["host_link"])[2])
    assert n3.exec(["/bin/ping", "-c1", "-W5", this_machine]).ok


def test_partitions_use_the_pods_own_iptables(lab):
    """Packet filter rules go into the pod's own network stack with its own iptables
    (racklab's image has it), as on a cluster, where racklab cannot enter it."""
    from lab.net import faults as netfaults

    factory, state = lab
    nodes = factory.nodes(state)
    n2, n3 = nodes["n2"], nodes["n3"]
    assert n2.exec(["iptables", "-V"]).stdout.startswith("iptables v1.8")
    netfaults.block_from(n2.net_exec, [_addr(state, "n3")])
    try:
        assert netfaults.blocked(n2.net_exec) == [_addr(state, "n3")]
        assert not n3.exec(["/bin/ping", "-c1", "-W1", "n2"]).ok
        assert n3.exec(["/bin/ping", "-c1", "-W5", "n1"]).ok
    finally:
        netfaults.unblock(n2.net_exec)
    assert n3.exec(["/bin/ping", "-c1", "-W5", "n2"]).ok


def test_packet_faults_are_netem_inside_the_pod(lab):
    """A packet fault is netem on the node's lab0, inside the pod; a kernel without
    netem (this machine's) gets one sentence: racklab's userspace fault line lives in
    a router namespace on this machine, which such labs do not have."""
    from lab.backends.base import NodeError
    from lab.net import faults as netfaults

    factory, state = lab
    nodes = factory.nodes(state)
    n1, n3 = nodes["n1"], nodes["n3"]
    fault = netfaults.PacketFault(delay=0.05)
    if not netfaults.have_netem():
        with pytest.raises(NodeError, match="packet faults on pods need netem in the kernel"):
            n3.start_packet_fault(fault, seed=1)
        return
    before = _rtt_ms(n1, "n3")
    info = n3.start_packet_fault(fault, seed=1)
    try:
        assert _rtt_ms(n1, "n3") >= before + 40
    finally:
        n3.heal_packet_fault(info)
    assert _rtt_ms(n1, "n3") < before + 40


def test_four_services_with_unmodified_clients(lab):
    # a larger file than on racklab's veths: WebHDFS's redirect and the write
    # pipeline both cross the overlay
    four_services_answer(lab[1], size=20000)


def test_chaos_partition_kill_and_node_kill(lab, chaos_run):
    _, state = lab
    nemesis = "partition-majority,kill,kill-node"
    history, ctx = chaos_judged_valid(chaos_run, state, nemesis, 30, 3)
    assert "majority" in history and "killed node" in history
    assert "(SIGKILL)" in history  # kill_service: SIGKILL inside the pod
    # a node killed and booted again (a new pod address) is back on its rack
    assert ctx.nodes["n3"].exec(["/bin/ping", "-c1", "-W5", "n1"]).ok


def test_lab_down_leaves_nothing(lab):
    from lab.backends.k8s_local import network_name
    from lab.orchestrator import lab as orch

    factory, state = lab
    name, labid = state.name, state["labid"]
    removed = orch.down(name)
    if state.engine == "cluster":  # the namespace, waited for until it was gone
        assert f"namespace racklab-{name}" in removed
        links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
        assert f"rl{labid}" not in links
        return
    assert leftovers(name, labid) == []
    assert network_name(labid) not in podman_out("network", "ls", "--format", "{{.Name}}").split()
