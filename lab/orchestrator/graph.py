"""`lab graph`: racks as boxes, nodes with kind, address and services, the router between."""

from __future__ import annotations

from pathlib import Path

import graphviz

from lab.backends import backend_class
from lab.topology import Topology, load

from .lab import LabError, resolve_lab, topology_of

SERVICE_COLOR = {
    "zookeeper": "#d9ead3",
    "kafka": "#fce5cd",
    "namenode": "#cfe2f3",
    "secondarynamenode": "#cfe2f3",
    "datanode": "#cfe2f3",
    "resourcemanager": "#ead1dc",
    "nodemanager": "#ead1dc",
}


PER_COLUMN = 5  # nodes stacked in one column of a rack: 30 nodes stay a readable page


def build(topo: Topology, addresses: dict[str, str] | None = None) -> graphviz.Graph:
    """The router on the left, the racks stacked beside it, each rack's nodes in columns
    of PER_COLUMN, and a legend of the shapes (node kinds) and colours (services)."""
    g = graphviz.Graph(topo.name, graph_attr={"label": f"lab {topo.name}", "labelloc": "t",
                                              "fontname": "Helvetica", "compound": "true",
                                              "rankdir": "LR", "nodesep": "0.15",
                                              "ranksep": "0.3"})  # fmt: skip
    g.attr("node", fontname="Helvetica", fontsize="10", style="filled", fillcolor="white")
    delay = topo.inter_rack_delay * 1000
    g.node("router", f"router\n(inter-rack {delay:g} ms)", shape="diamond", fillcolor="#eeeeee")
    placed = topo.service_nodes()
    for rack, members in topo.racks.items():
        with g.subgraph(name=f"cluster_{rack}") as c:
            on = f" on host {topo.rack_host[rack]}" if rack in topo.rack_host else ""
            c.attr(label=f"rack {rack}{on} (bridge br-{rack})", style="rounded", color="#888888")
            for n in members:
                nd = topo.nodes[n]
                svcs = placed.get(n, [])
                label = f"{n}\n{nd.kind}"
                if addresses and n in addresses:
                    label += f"\n{addresses[n]}"
                if svcs:
                    label += "\n" + "\n".join(svcs)
                color = SERVICE_COLOR.get(svcs[0], "white") if svcs else "white"
                c.node(n, label, shape=_shape(nd.kind), fillcolor=color)
            # columns: each node sits right of the one PER_COLUMN before it (edges
            # drawn invisibly: they only place the nodes)
            for k in range(PER_COLUMN, len(members)):
                c.edge(members[k - PER_COLUMN], members[k], style="invis")
        g.edge("router", members[0], lhead=f"cluster_{rack}")
    _legend(g, topo, placed)
    return g


def _legend(g: graphviz.Graph, topo: Topology, placed: dict[str, list[str]]) -> None:
    kinds = sorted({nd.kind for nd in topo.nodes.values()})
    roles = sorted({r for rs in placed.values() for r in rs}, key=list(SERVICE_COLOR).index)
    with g.subgraph(name="cluster_legend") as c:
        c.attr(label="legend", style="dashed", color="#bbbbbb", fontsize="9")
        for k in kinds:
            c.node(f"legend-kind-{k}", k, shape=_shape(k), fontsize="9")
        for r in roles:
            c.node(f"legend-role-{r}", r, shape="box", fillcolor=SERVICE_COLOR[r], fontsize="9")


FORMATS = ("svg", "png", "pdf")


def render(source: str | None, lab: str | None, output: Path) -> list[Path]:
    """Write the picture in the format the output's suffix names (.svg, .png, .pdf), or
    as SVG and PNG side by side when it names none; returns the paths."""
    output = Path(output)
    fmt = output.suffix.lstrip(".").lower()
    if fmt and fmt not in FORMATS:
        raise LabError(f"{output}: lab graph writes {', '.join(f'.{f}' for f in FORMATS)}")
    if source:
        topo, addresses = load(source), None
    else:
        state = resolve_lab(lab)
        topo, addresses = topology_of(state), state["network"]["nodes"]
    g = build(topo, addresses)
    stem = output.with_suffix("")
    return [
        Path(g.render(outfile=f"{stem}.{f}", format=f, cleanup=True))
        for f in ([fmt] if fmt else ["svg", "png"])
    ]


def _shape(kind: str) -> str:
    """How a kind's nodes are drawn: its backend says (Backend.graph_shape)."""
    return backend_class(kind).graph_shape
