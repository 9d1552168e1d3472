"""Benchmark of `lab up` and `lab down` for the example labs (issue 2).

    python -m lab.bench.updown [--runs 5] [--against CHECKOUT] [FILE ...]

Each run is the real command (`python -m lab up FILE --json`, then `lab down`), timed
from the outside, so the figures include Python's start-up as a user sees it; the
in-process time `up_in` that the lab records is shown beside it.

Beside the times, the CPU the up took: the command's own (with the tools it waited
for) and the lab's (its cgroup: node inits, the delay line, the zygote, every service
until it was ready). Their sum over the machine's cores is a floor no scheduling can
beat, and unlike the times it hardly moves with other load on the machine. Each run
also says how many CPUs the rest of the machine kept busy while it ran: the times
are comparable only between runs that competed with about the same; ``--against``
another checkout of racklab (e.g. `git worktree add /tmp/before COMMIT`) alternates
its runs with this one's, so that both compete with the same (and ``--against`` this
very checkout gives the noise of the comparison).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lab import cgroups
from lab.topology import load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEFAULT_FILES = [EXAMPLES / "quickstart.yaml", EXAMPLES / "three-racks.yaml"]


def _machine_busy() -> float:
    """CPU seconds every core of the machine has been busy since boot (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _cpu(cg: cgroups.Cgroup) -> float:
    return (cg.summary().cpu_usec or 0) / 1e6 if cg.exists() else 0.0


def lab_parts(name: str, nodes: list[str]) -> dict[str, float]:
    """The lab's CPU by what spent it: the services (their own cgroups in the nodes),
    the rest of the nodes (their inits), the zygote, and the router (the delay line)."""
    lab = cgroups.lab_cgroup(name)
    services = inits = 0.0
    for n in nodes:
        node = cgroups.node_cgroup(name, n)
        dirs = [d for d in node.dirs() if d.is_dir()]
        leaves = [p.name for p in dirs[0].iterdir() if p.name.startswith("svc-")] if dirs else []
        mine = sum(_cpu(node.child(leaf)) for leaf in leaves)
        services += mine
        inits += _cpu(node) - mine
    return {"services": services, "nodes": inits, "zygote": _cpu(lab.child(cgroups.ZYGOTE_CGROUP)),
            "router": _cpu(lab.child(cgroups.ROUTER_CGROUP))}  # fmt: skip


def once(file: Path, against: Path | None = None) -> tuple[float, ...]:
    """(up, up in process, down, the command's CPU, the lab's CPU), in seconds, and the
    CPUs the rest of the machine kept busy meanwhile (the load this run competed with:
    a load average lags by a minute and counts waiting tasks, this does not).
    ``against``: a checkout of racklab whose `lab` runs instead of this one."""
    topo = load(file)
    name = topo.name
    file = file.resolve()
    # `python -m` puts its working directory first on the path: run in the checkout
    cwd = against.resolve() if against else None
    env = {**os.environ, "PYTHONPATH": str(cwd)} if cwd else None
    run = functools.partial(subprocess.run, capture_output=True, text=True, env=env, cwd=cwd)
    run([sys.executable, "-m", "lab", "clean", name])
    # The command runs in a cgroup of this benchmark's: what it does there is its CPU,
    # what its children do once they moved into the lab's cgroups (node inits, the
    # zygote, services) is the lab's; none is counted twice.
    own = cgroups.Cgroup(f"racklab-bench/{os.getpid()}").create()
    b0 = _machine_busy()
    t0 = time.perf_counter()
    res = run([*own.join_prefix(), sys.executable, "-m", "lab", "up", str(file), "--json"])
    t1 = time.perf_counter()
    busy = _machine_busy() - b0
    command_cpu = (own.summary().cpu_usec or 0) / 1e6
    own.remove()
    for d in cgroups.Cgroup("racklab-bench").dirs():
        try:
            d.rmdir()  # only when empty: another benchmark may be running
        except OSError:
            pass
    lab_cpu = _cpu(cgroups.lab_cgroup(name))
    parts = lab_parts(name, list(topo.nodes))
    if res.returncode != 0:
        raise SystemExit(f"lab up {file} failed: {res.stderr.strip()}")
    status = json.loads(res.stdout)
    up_in = status["up_in"]
    ready_in = status.get("ready_in") or {}  # when each service was ready (older labs: none)
    t2 = time.perf_counter()
    res = run([sys.executable, "-m", "lab", "down", name])
    t3 = time.perf_counter()
    if res.returncode != 0:
        raise SystemExit(f"lab down {name} failed: {res.stderr.strip()}")
    others = max(0.0, busy - command_cpu - lab_cpu) / (t1 - t0)
    return t1 - t0, up_in, t3 - t2, command_cpu, lab_cpu, others, parts, ready_in


def fmt(xs: list[float]) -> str:
    """'  1.06 [0.91..1.48]': median and spread in seconds, 19 wide (fits 80 columns)."""
    return f"{statistics.median(xs):6.2f} [{min(xs):.2f}..{max(xs):.2f}]"


KEYS = ("up_s", "up_in_process_s", "down_s", "command_cpu_s", "lab_cpu_s", "others_cpus",
        "lab_cpu_parts", "ready_in")  # fmt: skip


def measure(files: list[Path], runs: int, against: Path | None = None) -> dict:
    """Every lab's up (outside and in process) and down times, in seconds, per run;
    with ``against`` (another checkout), its runs alternate with this one's, so both
    compete with the same other work, and each lab has a second row, marked "*"."""
    labs = []
    for f in files:
        topo = load(f)
        rows = [{"lab": topo.name, "nodes": len(topo.nodes), **{k: [] for k in KEYS}}]
        if against:
            rows.append({**rows[0], "lab": f"{topo.name}*", **{k: [] for k in KEYS}})
        for _ in range(runs):
            for row, where in zip(rows, (None, against)[: len(rows)], strict=True):
                for key, value in zip(KEYS, once(f, where), strict=True):
                    row[key].append(value)
        labs += rows
    return {
        "machine": {
            "host": platform.node(),
            "arch": platform.machine(),
            "kernel": platform.release(),
            "cgroup": f"v{cgroups.version()}",
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load": os.getloadavg()[0],
        },  # fmt: skip
        "runs": runs,
        "against": str(against) if against else None,  # as given: no machine's paths
        "labs": labs,
    }


def print_table(report: dict, write=print) -> None:
    m = report["machine"]
    write(f"# {m['host']}: {m['arch']}, {m['cpus']} CPUs, kernel {m['kernel']}, "
          f"cgroup {m['cgroup']}, Python {m['python']}")  # fmt: skip
    write(f"# {report['runs']} runs each, load average {m['load']:.1f} at the start")
    if report.get("against"):
        write(f"# *: racklab of {report['against']}, its runs alternating with these")
    write("# seconds: median [min..max] over the runs")
    write(f"{'lab':<12} {'nodes':>5}  {'up (command)':<19} {'up (in process)':<19} {'down':<19}")
    for r in report["labs"]:
        write(f"{r['lab']:<12} {r['nodes']:>5}  {fmt(r['up_s']):<19} "
              f"{fmt(r['up_in_process_s']):<19} {fmt(r['down_s']):<19}".rstrip())  # fmt: skip
    by_name = {r["lab"]: r for r in report["labs"]}
    for r in report["labs"]:
        other = by_name.get(f"{r['lab']}*")
        if other:
            ratio = statistics.median(r["up_s"]) / statistics.median(other["up_s"])
            write(f"# {r['lab']}: up (command) {ratio:.2f}x of {r['lab']}*'s (medians)")
    write("# CPU seconds of lab up: the command's, the lab's (inits, services until")
    write("# ready), and their sum over the cores: the floor of up (command)")
    write(f"{'lab':<12} {'command':<19} {'lab':<19} {'floor':<8}")
    for r in report["labs"]:
        total = [c + lab for c, lab in zip(r["command_cpu_s"], r["lab_cpu_s"], strict=True)]
        floor = statistics.median(total) / (m["cpus"] or 1)
        write(f"{r['lab']:<12} {fmt(r['command_cpu_s']):<19} {fmt(r['lab_cpu_s']):<19} "
              f"{floor:5.2f} s")  # fmt: skip
    write("# the lab's CPU seconds by what spent them (medians): the services, the rest")
    write("# of the nodes (inits), the zygote that forks the services, the delay line")
    for r in report["labs"]:
        parts = {k: statistics.median(p[k] for p in r["lab_cpu_parts"])
                 for k in ("services", "nodes", "zygote", "router")}  # fmt: skip
        write(f"{r['lab']:<12} " + "  ".join(f"{k} {v:.2f}" for k, v in parts.items()))
    if any(any(r["ready_in"]) for r in report["labs"]):
        write("# each service ready, seconds into the up (in process): median/max")
        for r in report["labs"]:
            names = [n for n in r["ready_in"][0]] if r["ready_in"] else []
            cells = [f"{n} {statistics.median(x[n] for x in r['ready_in']):.2f}/"
                     f"{max(x[n] for x in r['ready_in']):.2f}" for n in names]  # fmt: skip
            write(f"{r['lab']:<12} {'  '.join(cells)}".rstrip())
    write("# each run: up (command) in seconds / CPUs the rest of the machine kept busy")
    write("# meanwhile (the other work this run competed with for the cores)")
    for r in report["labs"]:
        runs = [f"{u:.2f}/{o:.1f}" for u, o in zip(r["up_s"], r["others_cpus"], strict=True)]
        for i in range(0, len(runs), 6):  # 80 columns
            write(f"{r['lab'] if i == 0 else '':<12} {'  '.join(runs[i : i + 6])}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.bench.updown")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", action="store_true", help="the figures as JSON")
    p.add_argument("--against", type=Path, help="another racklab checkout to compare with")
    p.add_argument("files", nargs="*", type=Path, default=DEFAULT_FILES)
    a = p.parse_args(argv)
    report = measure(a.files, a.runs, a.against)
    if a.json:
        print(json.dumps(report, indent=1))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
