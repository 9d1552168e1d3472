"""`make demo`: bring the quickstart lab up, show it, try it end to end, tear it down."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lab.demos import trial
from lab.orchestrator import lab as orch
from lab.orchestrator.graph import render
from lab.topology import load

PING = re.compile(r"^PING (\S+) .*?\n.*?time=([0-9.]+) ms", re.S)


def ping_matrix(state) -> dict[tuple[str, str], float | None]:
    """Round trip in ms from every node to every other, by name (None: unreachable)."""
    nodes = orch.attach_nodes(state)
    names = list(nodes)
    out: dict[tuple[str, str], float | None] = {}
    for src, node in nodes.items():
        script = "; ".join(f"ping -n -c1 -W2 {dst} 2>&1; echo ==" for dst in names if dst != src)
        res = node.exec(["sh", "-c", script], timeout=60)
        chunks = [c for c in res.stdout.split("==") if c.strip()]
        for dst, chunk in zip([d for d in names if d != src], chunks, strict=False):
            m = re.search(r"time=([0-9.]+) ms", chunk)
            out[(src, dst)] = float(m.group(1)) if m else None
    return out


def summarize(state, matrix) -> dict:
    racks = {n["name"]: n["rack"] for n in orch.status(state)["nodes"]}
    intra = [v for (a, b), v in matrix.items() if v is not None and racks[a] == racks[b]]
    inter = [v for (a, b), v in matrix.items() if v is not None and racks[a] != racks[b]]
    return {
        "pairs": len(matrix),
        "reachable": sum(v is not None for v in matrix.values()),
        "intra_rack_ms": statistics.median(intra) if intra else None,
        "inter_rack_ms": statistics.median(inter) if inter else None,
    }


def run(file: Path, out: Console, progress, show_status, outdir: Path = Path("runs")) -> bool:
    """show_status(status_dict): how the caller prints `lab status` (the CLI's table);
    the lab's graph goes to ``outdir``."""
    topo = load(file)
    ok = False
    try:
        state = orch.up(topo, progress=progress)
        show_status(orch.status(state))
        outdir.mkdir(parents=True, exist_ok=True)
        for p in render(None, topo.name, outdir / f"{topo.name}-graph.svg"):
            out.print(f"graph: {p}")
        progress("trial: every node pings every other by name")
        s = summarize(state, ping_matrix(state))
        t = Table(title="end-to-end trial", box=None)
        for col in ("pairs", "reachable", "median RTT in a rack", "median RTT across racks",
                    "configured one-way inter-rack delay"):  # fmt: skip
            t.add_column(col)
        t.add_row(str(s["pairs"]), str(s["reachable"]), f"{s['intra_rack_ms']:.3f} ms",
                  f"{s['inter_rack_ms']:.3f} ms", f"{topo.inter_rack_delay * 1000:g} ms")  # fmt: skip
        out.print(t)
        ok = s["reachable"] == s["pairs"] and s["inter_rack_ms"] >= topo.inter_rack_delay * 1000
        if topo.services:
            progress("trial: each service with its real clients")
            results = trial.run(state)
            t = Table(title="services", box=None)
            for col in ("service", "result", "what was done", "time"):
                t.add_column(col)
            for r in results:
                mark = "[green]ok[/]" if r["ok"] else "[red]FAILED[/]"
                t.add_row(r["service"], mark, r["detail"], f"{r['seconds']:.1f} s")
            out.print(t)
            ok = ok and all(r["ok"] for r in results)
        for name in ("namespaces", "cgroups"):
            try:
                mod = __import__(f"lab.demos.{name}", fromlist=["run", "show"])
            except ImportError:
                out.print(f"(demo {name} is not available yet)")
                continue
            progress(f"demo {name}")
            data = mod.run() if name == "namespaces" else mod.run(progress=progress)
            mod.show(data, out)
    finally:
        progress("tearing down")
        removed = orch.clean(topo.name)
        progress(f"lab {topo.name} is down: removed {'; '.join(removed) or 'nothing'}")
    out.print(f"[bold]{'PASS' if ok else 'FAIL'}[/]: quickstart trial")
    return ok
