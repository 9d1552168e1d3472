"""Addresses for a lab: a supernet split into one /24 per rack, checked against the host.

supernet 10.X.0.0/16   (auto: X from the lab id, first one free on this host)
10.X.0.0/24            the link between the host and the router (.1 router, .2 host)
10.X.<i>.0/24          rack i (1-based, file order): .1 gateway on the rack bridge,
                       .10, .11, ... the rack's nodes in file order
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from pyroute2 import IPRoute

FIRST_HOST = 10


class AddressError(ValueError):
    pass


@dataclass
class Plan:
    supernet: ipaddress.IPv4Network
    host_link: ipaddress.IPv4Network
    router_host_ip: str  # router side of the host link
    host_ip: str  # host side of the host link
    racks: dict[str, ipaddress.IPv4Network] = field(default_factory=dict)
    gateways: dict[str, str] = field(default_factory=dict)  # rack -> gateway ip
    nodes: dict[str, str] = field(default_factory=dict)  # node -> ip

    def cidr(self, node: str, rack: str) -> str:
        return f"{self.nodes[node]}/{self.racks[rack].prefixlen}"

    def to_json(self) -> dict:
        return {
            "supernet": str(self.supernet),
            "host_link": str(self.host_link),
            "racks": {r: str(n) for r, n in self.racks.items()},
            "gateways": self.gateways,
            "nodes": self.nodes,
        }


def host_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 destination the host routes, and every network on its interfaces."""
    nets = []
    with IPRoute() as ipr:
        for r in ipr.get_routes(family=2, table=254) + ipr.get_routes(family=2, table=255):
            dst = r.get_attr("RTA_DST")
            if dst and r["dst_len"] > 0:
                nets.append(ipaddress.IPv4Network(f"{dst}/{r['dst_len']}", strict=False))
        for a in ipr.get_addr(family=2):
            addr = a.get_attr("IFA_ADDRESS")
            if addr and not addr.startswith("127."):
                nets.append(ipaddress.IPv4Network(f"{addr}/{a['prefixlen']}", strict=False))
    return nets


def overlapping(net: ipaddress.IPv4Network, others: list[ipaddress.IPv4Network]):
    for o in others:
        if net.overlaps(o):
            return o
    return None


def choose_supernet(labid: str, taken: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """A /16 in 10.0.0.0/8 that nothing on the host uses, starting from the lab's own."""
    start = int(labid, 16) % 200 + 50  # 10.50.0.0 .. 10.249.0.0
    for i in range(200):
        net = ipaddress.IPv4Network(f"10.{(start - 50 + i) % 200 + 50}.0.0/16")
        if not overlapping(net, taken):
            return net
    raise AddressError("no free /16 in 10.0.0.0/8 on this host; set network.supernet")


def plan(supernet: ipaddress.IPv4Network, racks: dict[str, list[str]]) -> Plan:
    subnets = list(supernet.subnets(new_prefix=24))
    if len(subnets) < len(racks) + 1:
        raise AddressError(f"{supernet} is too small for {len(racks)} racks")
    link = subnets[0]
    p = Plan(
        supernet=supernet,
        host_link=link,
        router_host_ip=str(link.network_address + 1),
        host_ip=str(link.network_address + 2),
    )
    for i, (rack, members) in enumerate(racks.items(), start=1):
        net = subnets[i]
        p.racks[rack] = net
        p.gateways[rack] = str(net.network_address + 1)
        for j, node in enumerate(members):
            p.nodes[node] = str(net.network_address + FIRST_HOST + j)
    return p
