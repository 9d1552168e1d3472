"""`lab graph`: racks as boxes, nodes with kind, address and services, the router between."""

from __future__ import annotations

from pathlib import Path

import graphviz

from lab.topology import Topology, load

from .lab import LabError, resolve_lab, topology_of

KIND_SHAPE = {"process": "box", "container": "box3d", "pod": "folder", "vm": "component"}
SERVICE_COLOR = {
    "zookeeper": "#d9ead3",
    "kafka": "#fce5cd",
    "namenode": "#cfe2f3",
    "secondarynamenode": "#cfe2f3",
    "datanode": "#cfe2f3",
    "resourcemanager": "#ead1dc",
    "nodemanager": "#ead1dc",
}


def build(topo: Topology, addresses: dict[str, str] | None = None) -> graphviz.Graph:
    g = graphviz.Graph(topo.name, graph_attr={"label": f"lab {topo.name}", "labelloc": "t",
                                              "fontname": "Helvetica", "compound": "true"})  # fmt: skip
    g.attr("node", fontname="Helvetica", fontsize="10", style="filled", fillcolor="white")
    delay = topo.inter_rack_delay * 1000
    g.node("router", f"router\n(inter-rack {delay:g} ms)", shape="diamond", fillcolor="#eeeeee")
    placed = topo.service_nodes()
    for rack, members in topo.racks.items():
        with g.subgraph(name=f"cluster_{rack}") as c:
            c.attr(label=f"rack {rack}", style="rounded", color="#888888")
            c.node(f"br-{rack}", f"br-{rack}", shape="point", width="0.15")
            for n in members:
                nd = topo.nodes[n]
                svcs = placed.get(n, [])
                label = f"{n}\n{nd.kind}"
                if addresses and n in addresses:
                    label += f"\n{addresses[n]}"
                if svcs:
                    label += "\n" + "\n".join(svcs)
                color = SERVICE_COLOR.get(svcs[0], "white") if svcs else "white"
                c.node(n, label, shape=KIND_SHAPE.get(nd.kind, "box"), fillcolor=color)
                c.edge(f"br-{rack}", n)
        g.edge("router", f"br-{rack}")
    return g


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
