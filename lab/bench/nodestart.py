"""Node start-to-ready: namespace nodes vs containers vs pods (issue 7).

    python -m lab.bench.nodestart [--runs 7] [--lab-nodes 30] [--lab-runs 2] [--json]

Start-to-ready of one node is timed from the backend's ``create`` call until a
command run inside the node (``true``) has returned, so every kind is measured at
the same point: the node exists, has its limits, and answers. For a pod, "ready"
also includes its one service container running (a pod with no service is only
half a pod). Kinds are measured interleaved (process, container, pod, process, ...)
so a slow moment of the shared machine hits all of them alike. Teardown is not
timed. With --lab-nodes N, the whole `lab up` of an N-node lab (three racks) is
also timed for every kind, in process, and given as a ratio to namespace nodes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from lab.backends import NodeSpec, get_backend

KINDS = ("process", "container", "pod")


def _spec(kind: str, lab: str, name: str, state_root: Path) -> NodeSpec:
    return NodeSpec(
        name=name,
        lab=lab,
        labid=lab[-6:],
        kind=kind,
        rack="r1",
        cpus=0.5,
        memory=256 << 20,
        pids=512,
        hosts={name: "10.250.0.2/24"},
        state_dir=state_root / name,
    )


def start_to_ready(kind: str, lab: str, i: int, state_root: Path) -> float:
    backend = get_backend(kind)
    spec = _spec(kind, lab, f"{kind[:3]}{i}", state_root)
    t0 = time.perf_counter()
    node = backend.create(spec)
    try:
        if kind == "pod":
            node.start_service("svc", ["sleep", "infinity"])
        node.exec(["true"]).check()
        return time.perf_counter() - t0
    finally:
        node.destroy()
        backend.cleanup(lab, spec.labid)


def lab_up(kind: str, nodes: int, lab: str) -> tuple[float, float]:
    """(up seconds, down seconds) of an N-node lab of one kind, in process."""
    from lab.orchestrator import lab as orch
    from lab.topology import loads

    per_rack = -(-nodes // 3)
    names = [f"n{i:02d}" for i in range(1, nodes + 1)]
    racks = {f"r{r + 1}": names[r * per_rack : (r + 1) * per_rack] for r in range(3)}
    text = f"name: {lab}\ndefaults: {{kind: {kind}, cpus: 0.25, memory: 256Mi, pids: 512}}\n"
    text += "network: {supernet: auto, inter_rack: {delay: 1ms}}\nracks:\n"
    text += "".join(f"  {r}: {{nodes: [{', '.join(ns)}]}}\n" for r, ns in racks.items() if ns)
    topo = loads(text, f"{lab}.yaml")
    t0 = time.perf_counter()
    state = orch.up(topo)
    t1 = time.perf_counter()
    orch.teardown(lab, state)
    return t1 - t0, time.perf_counter() - t1


def summary(xs: list[float]) -> dict:
    return {
        "median": statistics.median(xs),
        "min": min(xs),
        "max": max(xs),
        "stdev": statistics.stdev(xs) if len(xs) > 1 else 0.0,
        "runs": len(xs),
    }


def fmt(s: dict, unit: str = "ms") -> str:
    k = 1000 if unit == "ms" else 1
    return f"{s['median'] * k:8.1f} {unit}  [{s['min'] * k:.1f} .. {s['max'] * k:.1f}]  sd {s['stdev'] * k:.1f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.bench.nodestart")
    p.add_argument("--runs", type=int, default=7, help="starts per kind")
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument(
        "--lab-nodes", type=int, default=0, help="also time `lab up` of an N-node lab per kind"
    )
    p.add_argument("--lab-runs", type=int, default=2)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("needs root (namespaces, cgroups, Docker)")
    kinds = [k for k in a.kinds.split(",") if k]
    engine = {}
    if set(kinds) & {"container", "pod"}:
        # the node image, ensured once for this process: every backend made below and
        # `lab up` use it, so nothing is rebuilt mid-run
        docker = get_backend("container")
        docker.prepare(
            [_spec("container", "bench", "probe", Path())],
            progress=lambda msg: print(msg, file=sys.stderr),
        )
        engine = docker.facts()
    from lab import cgroups

    machine = {
        "host": platform.node(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "cgroup": cgroups.version(),
        "python": platform.python_version(),
        "docker": engine.get("docker"),
        "image": engine.get("image", ""),
    }
    times: dict[str, list[float]] = {k: [] for k in kinds}
    lab = "bn" + uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory(prefix="racklab-bench-") as tmp:
        for i in range(a.runs):
            for kind in kinds:
                times[kind].append(start_to_ready(kind, lab, i, Path(tmp)))
    result = {"machine": machine, "start_to_ready": {k: summary(v) for k, v in times.items()}}
    if a.lab_nodes:
        ups: dict[str, list[float]] = {k: [] for k in kinds}
        downs: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(a.lab_runs):
            for kind in kinds:
                u, d = lab_up(kind, a.lab_nodes, "bl" + uuid.uuid4().hex[:6])
                ups[kind].append(u)
                downs[kind].append(d)
        base = statistics.median(ups["process"]) if "process" in ups else None
        result["lab"] = {
            "nodes": a.lab_nodes,
            "up": {k: summary(v) for k, v in ups.items()},
            "down": {k: summary(v) for k, v in downs.items()},
            "up_ratio_to_process": {k: statistics.median(v) / base for k, v in ups.items()}
            if base
            else {},
        }
    if a.json:
        print(json.dumps(result, indent=1))
        return 0
    m = machine
    print(
        f"# {m['host']}: {m['cpus']} cpus, kernel {m['kernel']}, cgroup v{m['cgroup']}, "
        f"Python {m['python']}, Docker {m['docker']}, image {m['image']}"
    )
    print(f"# start-to-ready of one node (create -> a command inside returned), {a.runs} runs each")
    print(f"{'kind':<10} {'median  [min .. max]  stdev':<40} ratio to process")
    st = result["start_to_ready"]
    for kind in kinds:
        ratio = st[kind]["median"] / st["process"]["median"] if "process" in st else float("nan")
        print(f"{kind:<10} {fmt(st[kind]):<40} {ratio:6.1f}x")
    if a.lab_nodes:
        lab_res = result["lab"]
        print(f"# lab up / down of a {a.lab_nodes}-node lab (three racks), {a.lab_runs} runs each")
        for kind in kinds:
            ratio = lab_res["up_ratio_to_process"].get(kind, float("nan"))
            print(
                f"{kind:<10} up {fmt(lab_res['up'][kind], 's'):<36} ratio {ratio:5.1f}x"
                f"   down {fmt(lab_res['down'][kind], 's')}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
