"""``lab bench multihost FILE``: what spreading a lab over hosts costs, in one run.

FILE is a lab with a hosts section (examples/multihost.yaml with real hosts, or with
the section ``lab hosts simulate 3`` prints). Measured, in this order:

1. the agent removed from every host, then ``lab up`` of FILE: the agent's first
   install (per host) and the whole up; round trips between two nodes of racks on
   different hosts and between two nodes of one rack; ``lab down``;
2. ``lab up`` of FILE again: the agent reused; ``lab down``;
3. the same lab on this machine alone (FILE without its hosts): ``lab up``, the same
   round trips (racks on one machine), ``lab down``.

Round trips are measured with the inter-rack delay set to 0 in every variant, so they
show what the hosts' transport (VXLAN, the extra router) adds, not the configured
delay: ``ping`` from inside the first node, the minimum and median of 20.
"""

from __future__ import annotations

import platform
import re
import statistics
import time

from lab.topology import Topology, loads

PINGS = 20


def _variant(topo: Topology, local: bool) -> Topology:
    text = topo.source.text if topo.source is not None else ""
    text = re.sub(r"(inter_rack:\s*\{[^}]*)delay:\s*[^,}]+", r"\1delay: 0ms", text)
    text = re.sub(r"jitter:\s*[^,}]+", "jitter: 0ms", text)
    if local:
        text = re.sub(r"^hosts:\n(?:[ \t]+.*\n)+", "", text, flags=re.M)
        text = re.sub(r"host:\s*[\w-]+,\s*", "", text)
    return loads(text, topo.file)


def _rtt(node, target: str) -> tuple[float, float]:
    r = node.exec(["ping", "-c", str(PINGS), "-i", "0.05", "-W", "2", target], timeout=60)
    times = [float(t) for t in re.findall(r"time=([\d.]+) ms", r.stdout)]
    if not times:
        raise RuntimeError(f"ping {target} from {node.name} failed: {r.stdout}{r.stderr}")
    return min(times), statistics.median(times)


def _pairs(topo: Topology) -> tuple[tuple[str, str], tuple[str, str]]:
    """(two nodes of different racks, two nodes of one rack)."""
    racks = list(topo.racks.values())
    return (racks[0][0], racks[1][0]), (racks[0][0], racks[0][1])


def _one(topo: Topology, progress) -> dict:
    from lab.orchestrator import lab as orch

    t0 = time.monotonic()
    state = orch.up(topo, progress)
    up_s = time.monotonic() - t0
    try:
        nodes = orch.attach_nodes(state)
        (a, b), (c, d) = _pairs(topo)
        across = _rtt(nodes[a], b)
        inside = _rtt(nodes[c], d)
        agents = state.get("agents", {})
    finally:
        orch.down(topo.name, progress)
    return {"up_s": round(up_s, 1), "across_ms": across, "inside_ms": inside,
            "agents": {h: {"reused": a["reused"], "seconds": round(a["seconds"], 2),
                           "sent_mib": round(a["sent_bytes"] / 2**20, 1)}
                       for h, a in agents.items()}}  # fmt: skip


def run(topo: Topology, progress=lambda msg: None) -> dict:
    from lab.hosts import agent
    from lab.hosts.ssh import Hosts, each

    if not topo.hosts:
        raise ValueError(f"{topo.file} has no hosts section")
    spread, local = _variant(topo, local=False), _variant(topo, local=True)
    with Hosts(topo.hosts.values()) as hosts:
        each(hosts, agent.purge)
    progress("lab up across hosts, the agent installed")
    first = _one(spread, progress)
    progress("lab up across hosts again, the agent reused")
    again = _one(spread, progress)
    progress("the same lab on this machine alone")
    alone = _one(local, progress)
    return {
        "machine": f"{platform.node()} {platform.machine()}, kernel {platform.release()}",
        "hosts": len(topo.hosts),
        "nodes": len(topo.nodes),
        "services": list(topo.services),
        "first": first,
        "again": again,
        "local": alone,
    }


def table(r: dict) -> str:
    def rt(v) -> str:
        return f"{v[0]:.3f} / {v[1]:.3f}"

    f, a, loc = r["first"], r["again"], r["local"]
    inst = [x for x in f["agents"].values()]
    lines = [
        f"{r['nodes']} nodes, {r['hosts']} hosts, services {', '.join(r['services'])}; {r['machine']}",
        "",
        "| | lab up (s) | RTT across racks, min / median (ms) | RTT in a rack (ms) |",
        "| --- | --- | --- | --- |",
        f"| {r['hosts']} hosts, agent installed | {f['up_s']} | {rt(f['across_ms'])} | {rt(f['inside_ms'])} |",
        f"| {r['hosts']} hosts, agent reused | {a['up_s']} | {rt(a['across_ms'])} | {rt(a['inside_ms'])} |",
        f"| one machine | {loc['up_s']} | {rt(loc['across_ms'])} | {rt(loc['inside_ms'])} |",
        "",
        "agent install per host: "
        + ", ".join(f"{x['seconds']} s ({x['sent_mib']} MiB sent)" for x in inst)
        + "; reuse: "
        + ", ".join(f"{x['seconds']} s" for x in a["agents"].values()),
    ]
    return "\n".join(lines)
