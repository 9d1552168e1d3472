"""The backbone of a lab spread over hosts: the routers of every host (and of the
machine running ``lab``) joined by one VXLAN segment.

    host A                      host B                       controller
    rl<id>-router               rl<id>-router                rl<id>-router
      br-r1 10.X.1.1              br-r2 10.X.2.1               host 10.X.0.1 (link to lab)
      vx 10.X.255.2 ~~~~~~~~~~~~~ vx 10.X.255.3 ~~~~~~~~~~~~~~ vx 10.X.255.1
         (UDP <port> between the hosts' own addresses)

The VXLAN device is made in the host's main network namespace, so its UDP socket
lives there and talks over the host's own network, then moved into the router
namespace, where its frames are routed. No multicast: one all-zero FDB entry per peer
(head-end replication), the lab's own UDP port, MTU lowered by the 50 bytes the
encapsulation adds. Each router routes every other member's racks to that member's
backbone address.
"""

from __future__ import annotations

import subprocess

VX_IF = "vx"  # the name inside the router namespace
VNI_BASE = 1000
OVERHEAD = 50  # outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14)


def vni(labid: str) -> int:
    return VNI_BASE + int(labid, 16)


def temp_ifname(labid: str) -> str:
    return f"rl{labid}-vx"  # in the main namespace only for the moment it is made


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")


def create_host_router(labid: str, racks: dict[str, tuple[str, int]]) -> None:
    """A host's router namespace with a bridge per rack of the host (rack -> (gateway,
    prefix length)) and no link into the host itself: the lab reaches it over the
    backbone only, so no route of the host ever points into a lab."""
    from lab.net.fabric import bridge_name, router_ns

    ns = router_ns(labid)
    _ip("netns", "add", ns)
    _ip("-n", ns, "link", "set", "lo", "up")
    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
                    "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"],
                   check=True, capture_output=True)  # fmt: skip
    for rack, (gateway, prefixlen) in racks.items():
        br = bridge_name(rack)
        _ip("-n", ns, "link", "add", "name", br, "type", "bridge")
        _ip("-n", ns, "addr", "add", f"{gateway}/{prefixlen}", "dev", br)
        _ip("-n", ns, "link", "set", br, "up")


def join(
    labid: str,
    router_ns: str,
    port: int,
    local: str | None,
    backbone_cidr: str,
    peers: list[str],
    routes: dict[str, str],
    underlay_mtu: int = 1500,
) -> None:
    """Give ``router_ns`` its VXLAN interface: address ``backbone_cidr``, flooding to
    each underlay address in ``peers``, and a route for each of ``routes`` (network ->
    the backbone address of the member that has it)."""
    tmp = temp_ifname(labid)
    args = ["link", "add", "name", tmp, "type", "vxlan", "id", str(vni(labid)),
            "dstport", str(port), "nolearning"]  # fmt: skip
    if local:
        args += ["local", local]
    _ip(*args)
    try:
        _ip("link", "set", tmp, "netns", router_ns)
    except RuntimeError:
        _ip("link", "del", tmp)
        raise
    _ip("-n", router_ns, "link", "set", tmp, "name", VX_IF)
    _ip("-n", router_ns, "link", "set", VX_IF, "mtu", str(underlay_mtu - OVERHEAD))
    _ip("-n", router_ns, "addr", "add", backbone_cidr, "dev", VX_IF)
    _ip("-n", router_ns, "link", "set", VX_IF, "up")
    for peer in peers:
        subprocess.run(
            ["bridge", "-n", router_ns, "fdb", "append", "00:00:00:00:00:00",
             "dev", VX_IF, "dst", peer],
            check=True, capture_output=True,
        )  # fmt: skip
    for net, via in routes.items():
        _ip("-n", router_ns, "route", "replace", net, "via", via, "dev", VX_IF)
