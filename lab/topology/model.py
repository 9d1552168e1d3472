"""A validated, resolved topology: every node with its rack and effective limits."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from . import yamlsource
from .errors import TopologyError
from .hosts import HostDef, check_hosts
from .schema import NODE_KINDS, NodeSettings, TopologyFile
from .services import check_services
from .suggest import did_you_mean, model_fields

LAB_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
# Node names become host names and interface names in the router (15 chars max).
NODE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,14}$")
RACK_NAME = re.compile(r"^[a-z][a-z0-9-]{0,11}$")


@dataclass
class NodeDef:
    name: str
    rack: str
    kind: str
    cpus: float | None
    memory: int | None
    pids: int | None
    io: int | None
    image: str | None


@dataclass
class Topology:
    name: str
    file: str
    racks: dict[str, list[str]]  # rack -> node names, in file order
    nodes: dict[str, NodeDef]
    supernet: str  # "auto" or a CIDR
    inter_rack_delay: float  # seconds, one way
    inter_rack_jitter: float
    inter_rack_loss: float  # percent
    services: dict[str, dict] = field(default_factory=dict)
    k8s: dict = field(default_factory=dict)  # kubeconfig, context, namespace for k8s nodes
    source: yamlsource.Source | None = None
    hosts: dict[str, HostDef] = field(default_factory=dict)  # empty: a local lab
    rack_host: dict[str, str] = field(default_factory=dict)  # rack -> its host

    @property
    def labid(self) -> str:
        return labid_of(self.name)

    def error(self, path: tuple, message: str) -> TopologyError:
        if self.source is None:
            return TopologyError(self.file, None, yamlsource.dotted(path), message)
        return self.source.error(path, message)

    def service_nodes(self) -> dict[str, list[str]]:
        """node name -> services placed on it (for status and the graph)."""
        out: dict[str, list[str]] = {n: [] for n in self.nodes}
        for svc, section in self.services.items():
            for role, value in section.items():
                if role in (
                    "nodes",
                    "namenode",
                    "secondarynamenode",
                    "datanodes",
                    "resourcemanager",
                    "nodemanagers",
                ):
                    for n in [value] if isinstance(value, str) else value:
                        label = svc if role == "nodes" else role.removesuffix("s")
                        out[n].append(label)
        return out


def labid_of(name: str) -> str:
    """Four hex digits naming the lab's kernel objects (rl<labid>-...)."""
    return hashlib.sha1(name.encode()).hexdigest()[:4]


def load(path: str | Path) -> Topology:
    return from_source(yamlsource.load(path))


def loads(text: str, file: str = "<topology>") -> Topology:
    return from_source(yamlsource.loads(text, file))


def from_source(src: yamlsource.Source) -> Topology:
    if not isinstance(src.data, dict):
        raise src.error((), "the top level must be a mapping (name, racks, nodes, ...)")
    try:
        parsed = TopologyFile.model_validate(src.data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        # pydantic names the union member in the path (nodes.n4.NodeSettings.memory); drop it
        loc = tuple(p for p in loc if not (isinstance(p, str) and p[:1].isupper()))
        message = _message(err)
        if err["type"] == "extra_forbidden" and loc:
            message += did_you_mean(loc[-1], model_fields(TopologyFile))
        raise src.error(loc, message) from None

    if not LAB_NAME.match(parsed.name):
        raise src.error(("name",), "use lower-case letters, digits and '-' (at most 32)")
    if not parsed.racks:
        raise src.error(("racks",), "at least one rack is needed")

    racks: dict[str, list[str]] = {}
    rack_of: dict[str, str] = {}
    for rack, rdef in parsed.racks.items():
        if not RACK_NAME.match(rack):
            raise src.error(
                ("racks", rack),
                "rack names: a lower-case letter, then letters, digits, '-' (12 max)",
            )
        if not rdef.nodes:
            raise src.error(("racks", rack, "nodes"), "a rack needs at least one node")
        for i, n in enumerate(rdef.nodes):
            if not isinstance(n, str) or not NODE_NAME.match(n):
                raise src.error(
                    ("racks", rack, "nodes", i),
                    f"bad node name {n!r}: a lower-case letter, then letters, digits, '-' (15 max)",
                )
            if n in rack_of:
                raise src.error(
                    ("racks", rack, "nodes", i),
                    f"node {n} is already in rack {rack_of[n]}; a node sits in one rack",
                )
            rack_of[n] = rack
        racks[rack] = list(rdef.nodes)

    hosts, rack_host = check_hosts(parsed, src)

    for n in parsed.nodes:
        if n not in rack_of:
            raise src.error(("nodes", n), f"node {n} is not in any rack")

    nodes: dict[str, NodeDef] = {}
    d = parsed.defaults
    for n, rack in rack_of.items():
        own = parsed.nodes.get(n) or NodeSettings()
        kind = own.kind or d.kind or "process"
        if kind not in NODE_KINDS:
            path = ("nodes", n, "kind") if own.kind else ("defaults", "kind")
            raise src.error(path, f"unknown kind {kind!r} (known: {', '.join(NODE_KINDS)})")
        nodes[n] = NodeDef(
            name=n,
            rack=rack,
            kind=kind,
            cpus=_pick(own.cpus, d.cpus),
            memory=_pick(own.memory, d.memory),
            pids=_pick(own.pids, d.pids),
            io=_pick(own.io, d.io),
            image=_pick(own.image, d.image),
        )

    supernet = parsed.network.supernet
    if supernet != "auto":
        try:
            net = ipaddress.IPv4Network(supernet, strict=True)
        except ValueError as e:
            raise src.error(("network", "supernet"), f"not an IPv4 network: {e}") from None
        if net.prefixlen > 22:
            raise src.error(
                ("network", "supernet"), "too small: use a /22 or larger (a /24 per rack)"
            )
        if 2 ** (24 - net.prefixlen) < len(racks) + 1:
            raise src.error(
                ("network", "supernet"),
                f"too small for {len(racks)} racks (a /24 each, plus one for the router)",
            )
    for rack, members in racks.items():
        if len(members) > 240:
            raise src.error(("racks", rack, "nodes"), "at most 240 nodes in a rack (one /24)")

    check_services(parsed.services, set(nodes), src.error)

    imp = parsed.network.inter_rack
    return Topology(
        name=parsed.name,
        file=src.file,
        racks=racks,
        nodes=nodes,
        supernet=supernet,
        inter_rack_delay=imp.delay,
        inter_rack_jitter=imp.jitter,
        inter_rack_loss=imp.loss,
        services=parsed.services,
        k8s=parsed.k8s.model_dump(exclude_none=True),
        source=src,
        hosts=hosts,
        rack_host=rack_host,
    )


def _pick(a, b):
    return a if a is not None else b


def _message(err: dict) -> str:
    typ, msg = err["type"], err["msg"]
    if typ == "extra_forbidden":
        return "unknown field"
    if typ == "missing":
        return "missing required field"
    if msg.startswith("Value error, "):
        return msg[len("Value error, ") :]
    return msg[:1].lower() + msg[1:]
