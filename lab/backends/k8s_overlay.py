"""The rack network carried by the pods themselves, for `k8s` nodes whose pods live
where racklab's bridges cannot reach them (a cluster; podman with `k8s: {network:
overlay}`, which runs the very same code here).

    node pod n1                   router pod racklab-<lab>-router        node pod n3
    lab0 10.X.1.10 ~~VXLAN~~~~~~  n1 -+- br-r1 10.X.1.1                  lab0 10.X.2.10
                                      |          (routes, inter-rack     ~~VXLAN~~ n3 -+- br-r2
    (eth0: the engine's pod                       delay)                               10.X.2.1
     network carries the VXLAN)   ctl 10.X.0.1 <== TCP (k8s_relay) ==> tap rl<id>-t 10.X.0.2
                                                                       on the machine running lab

One router pod per lab holds what racklab's router namespace holds on one machine:
a bridge per rack with its gateway, IP forwarding between racks, and the inter-rack
delay (netem on the bridges where the kernel has it, racklab's delay line
otherwise). Each node pod gets ``lab0``, a VXLAN interface to the router pod over the
pod network with the node's lab address and a route to the lab's supernet; in the
router pod its other end is a VXLAN interface named after the node on the rack's
bridge (as the router end of a node's veth is named on one machine). VNIs are per
node (every pair has its own segment); UDP port 4789 inside the pods' own network
namespaces, so a CNI's own VXLAN on the cluster nodes is not disturbed. The MTU is
the pod network's less the 50 bytes VXLAN adds.

The machine running `lab` reaches the lab through a TAP whose frames travel to the
router pod over TCP (lab/backends/k8s_relay.py): directly where it reaches pod IPs,
through the API server's port-forward otherwise.

The router pod is privileged (IP forwarding is a sysctl Kubernetes calls unsafe, and
the relay and the delay line need /dev/net/tun); node pods only have NET_ADMIN and
NET_RAW, and chaos acts inside them with their own ip, tc and iptables.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace

from lab.backends.base import Node, NodeError, NodeSpec
from lab.backends.k8s_relay import PORT as RELAY_PORT
from lab.net.backbone import OVERHEAD
from lab.net.fabric import Impairment, bridge_mac, bridge_name

ROUTER = "router"  # the router pod's node name: its pod is racklab-<lab>-router
VXLAN_PORT = 4789
NODE_IF = "lab0"
CTL_IF = "ctl"

# the router pod: forwarding on, the relay's TAP addressed, one bridge per rack
# ($0 mtu, $1 the host link address, then BRIDGE,MAC,CIDR per rack)
_ROUTER_SETUP = r"""
set -e
echo 1 > /proc/sys/net/ipv4/ip_forward
mtu=$0 ctl=$1; shift
ip link set ctl mtu "$mtu" up
ip addr replace "$ctl" dev ctl
echo 1 > /proc/sys/net/ipv6/conf/ctl/disable_ipv6 || true
for rack in "$@"; do
    br=${rack%%,*}; rest=${rack#*,}; mac=${rest%%,*}; cidr=${rest#*,}
    ip link show "$br" >/dev/null 2>&1 || ip link add "$br" address "$mac" type bridge
    ip addr replace "$cidr" dev "$br"
    ip link set "$br" up
    echo 1 > /proc/sys/net/ipv6/conf/$br/disable_ipv6 || true
done
"""
# one node's segment in the router pod, made anew (a node booted again has a new IP)
# ($0 name, $1 vni, $2 the node pod's IP, $3 port, $4 mtu, $5 bridge)
_ROUTER_PORT = r"""
set -e
ip link del "$0" 2>/dev/null || true
ip link add "$0" type vxlan id "$1" remote "$2" dstport "$3"
ip link set "$0" mtu "$4" master "$5" up
echo 1 > /proc/sys/net/ipv6/conf/$0/disable_ipv6 2>/dev/null || true
"""
# the node's end ($0 vni, $1 the router pod's IP, $2 port, $3 mtu, $4 address/prefix,
# $5 supernet, $6 gateway); the pod keeps its default route on the pod network
_NODE_PORT = rf"""
set -e
ip link del {NODE_IF} 2>/dev/null || true
ip link add {NODE_IF} type vxlan id "$0" remote "$1" dstport "$2"
ip link set {NODE_IF} mtu "$3" up
ip addr add "$4" dev {NODE_IF}
ip route replace "$5" via "$6" dev {NODE_IF}
"""
_POD_IP = (
    "ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1; cat /sys/class/net/eth0/mtu"
)


class OverlayError(NodeError):
    pass


def vni(spec: NodeSpec) -> int:
    """The node's segment: its place among the lab's nodes, from 1 (the same on both
    ends, and again when the node is booted anew)."""
    return sorted(spec.hosts).index(spec.name) + 1


def router_spec(spec: NodeSpec) -> NodeSpec:
    """The router pod's spec, made from any node's spec of the lab."""
    return replace(
        spec, name=ROUTER, rack="", cpus=None, memory=None, pids=None, io_bps=None,
        address="", gateway="", hosts={}, image=spec.image,
    )  # fmt: skip


def pod_facts(node: Node) -> tuple[str, int]:
    """The pod's address on the engine's pod network and that network's MTU."""
    res = node.exec(["/bin/sh", "-c", _POD_IP])
    lines = res.stdout.split()
    if not res.ok or len(lines) != 2 or not lines[1].isdigit():
        raise OverlayError(
            f"node {node.name}: no address on the pod network (eth0): "
            f"{(res.stderr or res.stdout).strip()[-200:]}"
        )
    return lines[0], int(lines[1])


# what the pod network uses, as a pod sees it: its routes, its address, its DNS server
# (a Service address, from the cluster's service range)
_POD_NETWORKS = "ip -4 -o route show; ip -4 -o addr show; grep '^nameserver' /etc/resolv.conf"


def clash(supernet: str, seen: str) -> str | None:
    """The first network or address in ``seen`` (the output of _POD_NETWORKS) that
    overlaps the lab's ``supernet``, else None. A lab whose addresses overlap the pod
    network, or the cluster's Service range its DNS server is in, would send the
    pods' own cluster traffic into the lab."""
    import ipaddress

    lab = ipaddress.ip_network(supernet)
    for word in seen.split():
        if word.startswith(("127.", "default")) or not word[:1].isdigit():
            continue
        try:
            net = ipaddress.ip_network(word, strict=False)
        except ValueError:
            continue
        if net.version == 4 and net.prefixlen > 0 and net.overlaps(lab):
            return str(net)
    return None


def _refuse_clash(router: Node, supernet: str) -> None:
    found = clash(supernet, router.exec(["/bin/sh", "-c", _POD_NETWORKS]).stdout)
    if found:
        raise OverlayError(
            f"the lab's addresses {supernet} overlap {found}, which the pods' own network "
            "uses; set network.supernet to a range the cluster does not use"
        )


def _sh(node: Node, script: str, *args: str) -> None:
    res = node.exec(["/bin/sh", "-c", script, *args], timeout=60)
    if not res.ok:
        raise OverlayError(f"{node.name}: {(res.stderr or res.stdout).strip()[-300:]}")


def _running(node: Node, name: str, argv: list[str]) -> dict:
    """Start a helper in the router pod and wait until it says ready in its log."""
    info = node.start_service(name, argv)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            log = node.get_file(info["log"]).decode(errors="replace")
        except OSError:
            log = ""
        if "ready" in log.split():
            return info
        if not node.service_running(name, info):
            raise OverlayError(f"the router pod's {name} ended: {log.strip()[-300:]}")
        time.sleep(0.2)
    raise OverlayError(f"the router pod's {name} did not start within 30 s")


def build_router(router: Node, plan, imp: Impairment, listen: str) -> dict:
    """Make the router pod the lab's router: the relay's TAP, the rack bridges, and the
    inter-rack delay. Returns what was done, for the lab's state."""
    ip, pod_mtu = pod_facts(router)
    _refuse_clash(router, str(plan.supernet))
    mtu = pod_mtu - OVERHEAD
    relay = ["{python}", "-m", "lab.backends.k8s_relay", "serve", "--tap", CTL_IF]
    _running(router, "relay", [*relay, "--port", str(RELAY_PORT), "--listen", listen])
    racks = [
        f"{bridge_name(r)},{bridge_mac(router.spec.labid, r)},{plan.gateways[r]}/{net.prefixlen}"
        for r, net in plan.racks.items()
    ]
    _sh(router, _ROUTER_SETUP, str(mtu), f"{plan.router_host_ip}/{plan.host_link.prefixlen}",
        *racks)  # fmt: skip
    done = {"router_pod": router.describe().get("pod"), "router_ip": ip, "mtu": mtu}
    if not imp:
        return {**done, "method": "none"}
    bridges = [bridge_name(r) for r in plan.racks]
    netem = ["tc", "qdisc", "replace", "dev"]
    if all(router.exec([*netem, br, "root", "netem", *imp.netem_args()]).ok for br in bridges):
        return {**done, "method": "netem"}
    # no netem in this kernel: racklab's delay line, inside the router pod
    _running(router, "delayline", ["{python}", "-m", "lab.net.delayline",
        "--delay", str(imp.delay), "--jitter", str(imp.jitter), "--loss", str(imp.loss),
        "--bridges", ",".join(bridges), "--supernet", str(plan.supernet),
        "--exempt", str(plan.host_link)])  # fmt: skip
    return {**done, "method": "delayline"}


def connect_host(labid: str, plan, mtu: int, how: list[str], cgroup, log_path: str) -> int:
    """The relay's end on this machine (a TAP with the host's address and the route to
    the lab), in the lab's cgroup so that `lab down` and `lab clean` end it. ``how``:
    the relay's arguments naming the way to the router pod. Returns its pid."""
    argv = [
        sys.executable, "-m", "lab.backends.k8s_relay", "connect", "--tap", tap_name(labid),
        "--address", f"{plan.host_ip}/{plan.host_link.prefixlen}",
        "--route", f"{plan.supernet}={plan.router_host_ip}", "--mtu", str(mtu), *how,
    ]  # fmt: skip
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
            preexec_fn=cgroup.joiner(), start_new_session=True,
        )  # fmt: skip
    line = proc.stdout.readline().decode().strip()
    proc.stdout.close()
    if line != "ready":
        proc.kill()
        raise OverlayError(line or "the relay to the router pod did not start (see relay.log)")
    return proc.pid


def tap_name(labid: str) -> str:
    return f"rl{labid}-t"


def attach(router: Node, node: Node, supernet: str) -> None:
    """Plug ``node`` into its rack: its segment in the router pod, then its lab0 with
    a route to the lab's ``supernet``."""
    spec = node.spec
    router_ip, pod_mtu = pod_facts(router)
    node_ip, node_mtu = pod_facts(node)
    mtu = min(pod_mtu, node_mtu) - OVERHEAD
    _sh(router, _ROUTER_PORT, node.name, str(vni(spec)), node_ip, str(VXLAN_PORT), str(mtu),
        bridge_name(spec.rack))  # fmt: skip
    _sh(node, _NODE_PORT, str(vni(spec)), router_ip, str(VXLAN_PORT), str(mtu), spec.address,
        supernet, spec.gateway)  # fmt: skip


class Overlay:
    """What `lab up` asks of a kind whose pods carry the rack network: made after the
    engine is prepared and before the nodes exist. ``engine`` makes the router pod
    (``create_router``) and says how this machine reaches its relay (``relay_route``)."""

    def __init__(self, engine, specs: list[NodeSpec]):
        # engine: create_router(spec), relay_route(router, ip) -> the relay's
        # connect arguments, relay_listen (the address the relay serves on)
        self.engine = engine
        self.spec = router_spec(specs[0])
        if any(s.name == ROUTER for s in specs):
            raise OverlayError(
                f"node name {ROUTER!r} is taken by the lab's router pod on this engine; "
                "rename the node"
            )

    def build(self, plan, imp: Impairment, cgroup, log_path: str) -> dict:
        router = self.engine.create_router(self.spec)
        done = build_router(router, plan, imp, self.engine.relay_listen)
        how = self.engine.relay_route(router, done["router_ip"])
        pid = connect_host(self.spec.labid, plan, done["mtu"], how, cgroup, log_path)
        self.engine.supernet = str(plan.supernet)
        return {**done, "relay_pid": pid}


# Packet faults on a node that carries its rack network: netem on its lab0, inside the
# pod (racklab's fault line, for kernels without netem, lives in a router namespace
# on this machine, which such labs do not have).
def start_packet_fault(node: Node, fault) -> dict:
    from lab.net import faults

    if isinstance(fault, dict):
        fault = faults.PacketFault(**fault)
    netem = ["tc", "qdisc", "replace", "dev", NODE_IF, "root", "netem", *fault.netem_args()]
    res = node.net_exec(netem)
    if not res.ok:
        raise OverlayError(
            f"node {node.name}: packet faults on pods need netem in the kernel, and this "
            f"one has none ({(res.stderr or '').strip()[-120:]})"
        )
    return {"method": "netem"}


def heal_packet_fault(node: Node) -> bool:
    """Remove a packet fault from the node's lab0; whether there was one."""
    return node.net_exec(["tc", "qdisc", "del", "dev", NODE_IF, "root"]).ok
