"""The rack network: a router namespace holding one bridge per rack, a veth per node.

    host ns                  router ns  rl<id>-router                 node ns (each)
    rl<id>-h 10.X.0.2 ===== host 10.X.0.1
                             br-r1 10.X.1.1 --+-- n1 ============== eth0 10.X.1.10
                                              +-- n2 ============== eth0 10.X.1.11
                             br-r2 10.X.2.1 --+-- n4 ============== eth0 10.X.2.10

Within a rack, frames are switched by the rack's bridge. Between racks, packets are
routed by the router namespace, which delays them: so only traffic that crosses racks is
delayed (one way: the configured delay; a round trip: twice it). With netem (where the
kernel has it) the delay sits on the way out through the destination rack's bridge,
which also delays the host's packets to a node; racklab's delay line (kernels without
netem) delays only rack-to-rack traffic.

The bridges live in the router namespace, not on the host, for two reasons: the whole
fabric disappears with one namespace, and a host running Docker (whose br_netfilter
sends bridged frames through the host's FORWARD chain, policy DROP) cannot drop the
lab's traffic. The host reaches the lab through its own veth and one route.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass

from pyroute2 import IPRoute, netns

from lab.ns.syscalls import run_in_netns

NETNS_DIR = "/run/netns"


def router_ns(labid: str) -> str:
    return f"rl{labid}-router"


def router_path(labid: str) -> str:
    return f"{NETNS_DIR}/{router_ns(labid)}"


def host_ifname(labid: str) -> str:
    return f"rl{labid}-h"


def bridge_name(rack: str) -> str:
    return f"br-{rack}"


def bridge_mac(labid: str, rack: str) -> str:
    """A locally administered unicast MAC, the same for a rack each time the lab is made."""
    digest = hashlib.sha256(f"{labid}/{rack}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


@dataclass
class Impairment:
    delay: float = 0.0  # seconds, one way
    jitter: float = 0.0
    loss: float = 0.0  # percent

    def netem_args(self) -> list[str]:
        args = []
        if self.delay or self.jitter:
            args += ["delay", f"{self.delay * 1e6:.0f}us"]
            if self.jitter:
                args += [f"{self.jitter * 1e6:.0f}us"]
        if self.loss:
            args += ["loss", f"{self.loss}%"]
        return args

    def __bool__(self) -> bool:
        return bool(self.delay or self.jitter or self.loss)


def _up(ipr: IPRoute, ifname: str) -> int:
    idx = ipr.link_lookup(ifname=ifname)[0]
    ipr.link("set", index=idx, state="up")
    return idx


def _sysctl(key: str, value: str) -> None:
    # /proc/sys/net belongs to the network namespace of the thread that opens it
    with open(f"/proc/sys/{key.replace('.', '/')}", "w") as f:
        f.write(value)


def create_router(labid: str, plan, inter_rack: Impairment) -> None:
    """The router namespace, its rack bridges, and the host's link into it."""
    name = router_ns(labid)
    netns.create(name)

    def inside():
        with IPRoute() as ipr:
            _up(ipr, "lo")
            _sysctl("net.ipv4.ip_forward", "1")
            for rack, net in plan.racks.items():
                br = bridge_name(rack)
                # a MAC of its own: a bridge without one takes its lowest port's, and
                # changes it when ports come and go (a node booted again, a fault
                # line's tap), stranding every node's ARP entry for its gateway
                ipr.link("add", ifname=br, kind="bridge", address=bridge_mac(labid, rack))
                idx = _up(ipr, br)
                ipr.addr("add", index=idx, address=plan.gateways[rack], prefixlen=net.prefixlen)
                # no IPv6 chatter (router solicitations, DAD) on lab links
                _sysctl(f"net.ipv6.conf.{br}.disable_ipv6", "1")

    run_in_netns(router_path(labid), inside)

    hostif = host_ifname(labid)
    fd = os.open(router_path(labid), os.O_RDONLY)
    try:
        with IPRoute() as ipr:
            ipr.link("add", ifname=hostif, kind="veth", peer={"ifname": "host", "net_ns_fd": fd})
            idx = _up(ipr, hostif)
            ipr.addr("add", index=idx, address=plan.host_ip, prefixlen=plan.host_link.prefixlen)
            ipr.route(
                "add",
                dst=str(plan.supernet.network_address),
                dst_len=plan.supernet.prefixlen,
                gateway=plan.router_host_ip,
            )
    finally:
        os.close(fd)

    def host_side():
        with IPRoute() as ipr:
            idx = _up(ipr, "host")
            ipr.addr("add", index=idx, address=plan.router_host_ip,
                     prefixlen=plan.host_link.prefixlen)  # fmt: skip

    run_in_netns(router_path(labid), host_side)


def impair_inter_rack(labid: str, plan, imp: Impairment, cgroup, log_path: str) -> dict:
    """Delay (jitter, loss) traffic between racks: netem where the kernel has it, else
    racklab's userspace delay line (see delayline.py). Returns what was done, for status."""
    return start_impairment(labid, plan, imp, cgroup, log_path).result()


class Impairing:
    """The inter-rack impairment being put in place: ``result()`` waits until it is
    (the delay line's Python start-up can overlap the making of the nodes) and returns
    what was done, for status."""

    def __init__(self, done: dict | None = None, proc=None, log_path: str = ""):
        self.done, self.proc, self.log_path = done, proc, log_path

    def result(self) -> dict:
        if self.done is None:
            line = self.proc.stdout.readline().decode().strip()
            self.proc.stdout.close()
            if line != "ready":
                self.proc.kill()
                err = open(self.log_path, errors="replace").read().strip().splitlines()
                raise RuntimeError(
                    f"the delay line did not start: {err[-1] if err else 'no output'}"
                )
            self.done = {"method": "delayline", "pid": self.proc.pid}
        return self.done


def start_impairment(labid: str, plan, imp: Impairment, cgroup, log_path: str) -> Impairing:
    """Begin ``impair_inter_rack``: netem is in place at once; the delay line is
    started and answers ``ready`` later."""
    if not imp:
        return Impairing({"method": "none"})
    bridges = [bridge_name(r) for r in plan.racks]
    try:
        for br in bridges:
            tc_router(labid, ["qdisc", "replace", "dev", br, "root", "netem", *imp.netem_args()])
        return Impairing({"method": "netem"})
    except subprocess.CalledProcessError as e:
        if b"unknown" not in (e.stderr or b""):
            raise
    argv = [
        *cgroup.join_prefix(),  # the lab's cgroup (`lab clean` finds it there), no fork
        "nsenter", f"--net={router_path(labid)}", "--",
        sys.executable, "-m", "lab.net.delayline",
        "--delay", str(imp.delay), "--jitter", str(imp.jitter), "--loss", str(imp.loss),
        "--bridges", ",".join(bridges), "--supernet", str(plan.supernet),
        "--exempt", str(plan.host_link),
    ]  # fmt: skip

    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    return Impairing(proc=proc, log_path=log_path)


def tc_router(labid: str, args: list[str]) -> None:
    subprocess.run(["tc", "-n", router_ns(labid), *args], check=True, capture_output=True)


def plug(labid: str, node: str, rack: str, node_netns: str, cidr: str, gateway: str) -> None:
    """Give the node (by its netns path) an eth0 on its rack's bridge, address and route."""
    fd = os.open(node_netns, os.O_RDONLY)
    try:

        def router_side():
            with IPRoute() as ipr:
                # the router end of an earlier incarnation's veth (a node booted again)
                for old in ipr.link_lookup(ifname=node):
                    ipr.link("del", index=old)
                ipr.link("add", ifname=node, kind="veth",
                         peer={"ifname": "eth0", "net_ns_fd": fd})  # fmt: skip
                br = ipr.link_lookup(ifname=bridge_name(rack))[0]
                idx = ipr.link_lookup(ifname=node)[0]
                ipr.link("set", index=idx, master=br, state="up")

        run_in_netns(router_path(labid), router_side)
    finally:
        os.close(fd)
    addr, prefix = cidr.split("/")

    def node_side():
        with IPRoute() as ipr:
            _up(ipr, "lo")
            idx = _up(ipr, "eth0")
            ipr.addr("add", index=idx, address=addr, prefixlen=int(prefix))
            ipr.route("add", dst="0.0.0.0", dst_len=0, gateway=gateway)
        _sysctl("net.ipv6.conf.eth0.disable_ipv6", "1")

    run_in_netns(node_netns, node_side)


def attach_tap(labid: str, ifname: str, rack: str, name: str | None = None) -> None:
    """Put a VM's tap (made on the host by libvirt, held open by qemu) on its rack's
    bridge: move it into the router namespace, rename it ``name`` (the node's name, as
    the router-side end of a veth is named, so per-node tc and chaos find it the same
    way) and enslave it. The guest sets its own address; a tap can change namespace
    while qemu holds its file descriptor."""
    fd = os.open(router_path(labid), os.O_RDONLY)
    try:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=ifname)
            if not found:
                raise RuntimeError(f"no interface {ifname} on the host to plug into the lab")
            ipr.link("set", index=found[0], state="down")
            ipr.link("set", index=found[0], net_ns_fd=fd)
    finally:
        os.close(fd)

    def router_side():
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname=ifname)[0]
            if name and name != ifname:
                ipr.link("set", index=idx, ifname=name)
            br = ipr.link_lookup(ifname=bridge_name(rack))[0]
            ipr.link("set", index=idx, master=br, state="up")
        _sysctl(f"net.ipv6.conf.{name or ifname}.disable_ipv6", "1")

    run_in_netns(router_path(labid), router_side)


def attached(labid: str, node: str) -> bool:
    """Whether the router namespace has an interface named after ``node``."""

    def router_side() -> bool:
        with IPRoute() as ipr:
            return bool(ipr.link_lookup(ifname=node))

    return os.path.exists(router_path(labid)) and run_in_netns(router_path(labid), router_side)


def unplug(labid: str, node: str) -> None:
    def router_side():
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=node)
            if found:
                ipr.link("del", index=found[0])

    if os.path.exists(router_path(labid)):
        run_in_netns(router_path(labid), router_side)


def exists(labid: str) -> bool:
    return os.path.exists(router_path(labid))


def destroy(labid: str) -> list[str]:
    """Remove the host link and the router namespace (which takes the bridges and every
    node-facing veth with it). Safe to call on a half-made or already removed fabric."""
    removed = []
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=host_ifname(labid))
        if found:
            ipr.link("del", index=found[0])
            removed.append(f"interface {host_ifname(labid)}")
    if os.path.exists(router_path(labid)):
        netns.remove(router_ns(labid))
        removed.append(f"netns {router_ns(labid)}")
    return removed


def leftovers() -> dict[str, list[str]]:
    """Lab ids with kernel objects on this host: {labid: [what]}; for `lab clean --all`."""
    out: dict[str, list[str]] = {}
    for name in netns.listnetns():
        if name.startswith("rl") and name.endswith("-router"):
            out.setdefault(name[2:-7], []).append(f"netns {name}")
    with IPRoute() as ipr:
        for link in ipr.get_links():
            ifname = link.get_attr("IFLA_IFNAME")
            if ifname.startswith("rl") and ifname.endswith("-h"):
                out.setdefault(ifname[2:-2], []).append(f"interface {ifname}")
    return out
