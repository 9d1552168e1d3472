"""What each kind of node costs: native vs process vs container vs VM, measured the same
way for every kind (the method of Felter et al., IBM 2015: the same benchmarks natively,
in a container and in a VM, reported as ratios to native).

    python -m lab bench overhead [--kinds native,process,container,vm] [--runs 3] [--quick]

For every kind but native, a lab of two fresh nodes in one rack is made for the run;
each tool runs inside a node (native: on the host itself, and its "network" is the
host's loopback, the best a host can do). A figure that cannot be measured says why.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab import cgroups

KINDS = ("native", "process", "container", "vm")

# metric -> (unit, True when higher is better)
METRICS = {
    "start_s": ("s", False),
    "cpu_events_s": ("events/s", True),
    "mem_mib_s": ("MiB/s", True),
    "disk_randread_iops": ("IOPS", True),
    "disk_randwrite_iops": ("IOPS", True),
    "disk_seqread_mib_s": ("MiB/s", True),
    "disk_seqwrite_mib_s": ("MiB/s", True),
    "net_gbit_s": ("Gbit/s", True),
    "net_rtt_ms": ("ms", False),
    "idle_memory_mib": ("MiB", False),
}


@dataclass
class Settings:
    runs: int = 3
    cpu_seconds: float = 5
    mem_total: str = "4G"
    fio_size: str = "256M"
    fio_seconds: int = 5
    net_seconds: int = 5
    pings: int = 50

    @classmethod
    def quick(cls) -> Settings:
        return cls(runs=1, cpu_seconds=1, mem_total="256M", fio_size="16M", fio_seconds=1,
                   net_seconds=1, pings=5)  # fmt: skip


@dataclass
class KindResult:
    kind: str
    samples: dict[str, list[float]] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)  # metric -> why it could not be measured
    facts: dict[str, str] = field(default_factory=dict)

    def add(self, metric: str, value: float | None, why: str = "") -> None:
        if value is None:
            self.why.setdefault(metric, why or "no figure")
        else:
            self.samples.setdefault(metric, []).append(value)


# --- the measurements, each a command run by `run(argv) -> stdout` -----------------


def _num(pattern: str, text: str) -> float | None:
    m = re.search(pattern, text)
    return float(m.group(1)) if m else None


def cpu(run, s: Settings) -> float | None:
    out = run(["sysbench", "cpu", "--threads=1", f"--time={s.cpu_seconds}",
               "--cpu-max-prime=20000", "run"])  # fmt: skip
    return _num(r"events per second:\s+([0-9.]+)", out)


def memory(run, s: Settings) -> float | None:
    out = run(["sysbench", "memory", "--threads=1", "--memory-block-size=1M",
               f"--memory-total-size={s.mem_total}", "--memory-oper=write", "run"])  # fmt: skip
    return _num(r"\(([0-9.]+) MiB/sec\)", out)


def disk(run, directory: str, s: Settings) -> dict[str, float | None]:
    """fio with direct I/O: 4 KiB random read/write IOPS, 1 MiB sequential throughput."""
    out: dict[str, float | None] = {}
    jobs = {
        "disk_randread_iops": ("randread", "4k"),
        "disk_randwrite_iops": ("randwrite", "4k"),
        "disk_seqread_mib_s": ("read", "1M"),
        "disk_seqwrite_mib_s": ("write", "1M"),
    }
    for metric, (rw, bs) in jobs.items():
        text = run(["fio", "--name=bench", f"--directory={directory}", f"--rw={rw}", f"--bs={bs}",
                    f"--size={s.fio_size}", "--direct=1", "--ioengine=psync", "--time_based",
                    f"--runtime={s.fio_seconds}", "--output-format=json"])  # fmt: skip
        try:
            job = json.loads(text[text.index("{") :])["jobs"][0]
        except (ValueError, KeyError, IndexError):
            out[metric] = None
            continue
        side = job["read"] if "read" in rw else job["write"]
        out[metric] = side["iops"] if metric.endswith("iops") else side["bw"] / 1024
    run(["sh", "-c", f"rm -f {directory}/bench.*"])
    return out


def network(server_run, client_run, server_addr: str, s: Settings) -> tuple:
    """iperf3 throughput and ping round trip from client to server."""
    server_run(["sh", "-c", "iperf3 -s -1 -D --logfile /dev/null"])
    time.sleep(0.3)
    out = client_run(["iperf3", "-c", server_addr, "-t", str(s.net_seconds), "-J"])
    try:
        gbit = json.loads(out[out.index("{") :])["end"]["sum_received"]["bits_per_second"] / 1e9
    except (ValueError, KeyError):
        gbit = None
    ping = client_run(["ping", "-n", "-q", "-c", str(s.pings), "-i", "0.01", server_addr])
    rtt = _num(r"= [0-9.]+/([0-9.]+)/", ping)
    return gbit, rtt


# --- kinds ----------------------------------------------------------------------


def _host_run(argv: list[str]) -> str:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    return res.stdout + res.stderr


def bench_native(s: Settings, out: KindResult) -> None:
    for _ in range(s.runs):
        t = time.perf_counter()
        subprocess.run(["true"])
        out.add("start_s", time.perf_counter() - t)
        out.add("cpu_events_s", cpu(_host_run, s))
        out.add("mem_mib_s", memory(_host_run, s))
        d = Path(tempfile.mkdtemp(prefix="racklab-bench-", dir="/var/tmp"))
        try:
            for k, v in disk(_host_run, str(d), s).items():
                out.add(k, v)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        gbit, rtt = network(_host_run, _host_run, "127.0.0.1", s)
        out.add("net_gbit_s", gbit)
        out.add("net_rtt_ms", rtt)
    out.why["idle_memory_mib"] = "native is the host itself: nothing extra to count"


def _topology(kind: str) -> str:
    from lab.backends import backend_class

    # a kind whose nodes hold their memory from the start gets less, so two fit beside
    # the host's own work
    memory = "1Gi" if backend_class(kind).reserves_memory else "2Gi"
    return (f"name: bench-{kind}\ndefaults: {{kind: {kind}, memory: {memory}}}\n"
            "racks:\n  r1: {nodes: [b1, b2]}\n")  # fmt: skip


def bench_lab_kind(kind: str, s: Settings, out: KindResult, progress) -> None:
    from lab.backends import BackendUnavailable, get_backend
    from lab.orchestrator import lab as orch
    from lab.topology import loads

    try:
        get_backend(kind)
    except BackendUnavailable as e:
        for m in METRICS:
            out.add(m, None, str(e))
        return
    topo = loads(_topology(kind), f"<bench {kind}>")
    orch.clean(topo.name)
    try:
        state = orch.up(topo, progress=progress)
    except Exception as e:  # noqa: BLE001 - the table says why instead of a number
        for m in METRICS:
            out.add(m, None, f"lab up failed: {e}")
        return
    try:
        nodes = orch.attach_nodes(state)
        b1, b2 = nodes["b1"], nodes["b2"]

        accel = b1.describe().get("accelerator")
        if accel:
            out.facts["accelerator"] = accel

        def runner(node):
            return lambda argv: (lambda r: r.stdout + r.stderr)(node.exec(argv, timeout=600))

        time.sleep(1)  # idle: what the node costs doing nothing
        mem = b1.stats().memory_bytes
        out.add("idle_memory_mib", mem / 2**20 if mem else None, "the node reports no memory use")
        missing = [
            t
            for t in ("sysbench", "fio", "iperf3")
            if not b1.exec(["sh", "-c", f"command -v {t}"]).ok
        ]
        for _ in range(s.runs):
            if missing:
                for m in METRICS:
                    if m not in ("start_s", "idle_memory_mib"):
                        out.add(m, None, f"not installed in the node: {', '.join(missing)}")
                break
            out.add("cpu_events_s", cpu(runner(b1), s))
            out.add("mem_mib_s", memory(runner(b1), s))
            for k, v in disk(runner(b1), "/srv/node", s).items():
                out.add(k, v)
            addr = state["network"]["nodes"]["b2"]
            gbit, rtt = network(runner(b2), runner(b1), addr, s)
            out.add("net_gbit_s", gbit)
            out.add("net_rtt_ms", rtt)
        # last, as a restarted node may come back without its network
        for _ in range(s.runs):
            try:
                out.add("start_s", restart_to_ready(b2))
            except Exception as e:  # noqa: BLE001 - the table says why instead of a number
                out.add("start_s", None, f"could not restart: {e}")
    finally:
        orch.clean(topo.name)


def restart_to_ready(node) -> float:
    """Seconds from starting a stopped node to a command answering inside it (for a
    VM: through SSH, the banner and a login included)."""
    node.stop()
    t = time.perf_counter()
    node.start()
    if not node.exec(["true"], timeout=120).ok:
        raise RuntimeError("the node did not answer after its start")
    return time.perf_counter() - t


# --- the report -----------------------------------------------------------------


def summarize(results: list[KindResult]) -> dict:
    native = next((r for r in results if r.kind == "native"), None)
    table = {}
    for r in results:
        row = {}
        for metric, (unit, _) in METRICS.items():
            xs = r.samples.get(metric)
            if not xs:
                row[metric] = {"why": r.why.get(metric, "not measured")}
                continue
            med = statistics.median(xs)
            cell = {"median": med, "min": min(xs), "max": max(xs), "n": len(xs), "unit": unit}
            base = native.samples.get(metric) if native else None
            if base and statistics.median(base):
                cell["ratio_to_native"] = med / statistics.median(base)
            row[metric] = cell
        table[r.kind] = {"metrics": row, "facts": r.facts}
    return table


def machine(results: list[KindResult]) -> dict:
    accel = next((r.facts["accelerator"] for r in results if r.facts.get("accelerator")), None)
    if accel is None:
        from lab.backends import BackendUnavailable, get_backend
        from lab.backends.base import NodeError

        try:
            accel = get_backend("vm").facts()["accelerator"]
        except (BackendUnavailable, NodeError):  # no libvirt here: say so
            accel = "n/a (no libvirt)"
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "cgroup": f"v{cgroups.version()}",
        "vm_accelerator": accel,
        "python": platform.python_version(),
    }


# what each metric is called where a person reads it (tables, plots)
LABELS = {
    "start_s": "start to ready",
    "cpu_events_s": "CPU (sysbench)",
    "mem_mib_s": "memory bandwidth",
    "disk_randread_iops": "disk random read",
    "disk_randwrite_iops": "disk random write",
    "disk_seqread_mib_s": "disk sequential read",
    "disk_seqwrite_mib_s": "disk sequential write",
    "net_gbit_s": "network throughput",
    "net_rtt_ms": "network round trip",
    "idle_memory_mib": "host memory per idle node",
}


def number(v: float) -> str:
    """Three significant digits, with k and M for large numbers: 28674 -> 28.7k."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.3g}"


def print_table(report: dict, write=print) -> None:
    """One block per metric, one line per kind: median, [min .. max] over the runs,
    and the ratio to native; every line fits 80 columns."""
    m = report["machine"]
    write(f"# {m['host']}: {m['cpus']} CPUs, {m['memory_gib']} GiB, kernel {m['kernel']}")
    write(f"# cgroup {m['cgroup']}, VM accelerator {m['vm_accelerator']}; "
          f"{report['settings']['runs']} runs: median [min .. max], x native")  # fmt: skip
    for metric, (unit, higher) in METRICS.items():
        write(f"{LABELS.get(metric, metric)}, {unit} ({'higher' if higher else 'lower'} is better)")
        for k, row in report["kinds"].items():
            c = row["metrics"][metric]
            if "median" not in c:
                write(f"  {k:<10} {'-':>8}   {c['why'][:56]}")
                continue
            spread = f"[{number(c['min'])} .. {number(c['max'])}]"
            ratio = f"x{c['ratio_to_native']:.2f}" if "ratio_to_native" in c else ""
            write(f"  {k:<10} {number(c['median']):>8}   {spread:<22} {ratio}".rstrip())


def plot(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in report["kinds"] if k != "native"]
    metrics = [m for m in METRICS if m not in ("idle_memory_mib",)]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / max(1, len(kinds))
    for i, k in enumerate(kinds):
        # one direction for every bar: the ratio is turned round for lower-is-better
        # metrics, so that below 1 always means slower or bigger than native
        ys = []
        for m in metrics:
            r = report["kinds"][k]["metrics"][m].get("ratio_to_native", 0)
            ys.append(r if METRICS[m][1] or not r else 1 / r)
        ax.bar([j + i * width for j in range(len(metrics))], ys, width, label=k)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")  # start-up ratios run to thousands, the rest sit near 1
    ax.set_xticks([j + width * (len(kinds) - 1) / 2 for j in range(len(metrics))])
    ax.set_xticklabels([LABELS.get(m, m) for m in metrics], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("performance relative to native\n(1 = native, higher is better)")
    m = report["machine"]
    ax.set_title(f"racklab overhead: {m['kernel']}, cgroup {m['cgroup']}, "
                 f"VM accelerator {m['vm_accelerator']}", fontsize=9)  # fmt: skip
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(kinds: list[str], settings: Settings, outdir: Path, progress=lambda m: None) -> dict:
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"unknown kind {k!r} (known: {', '.join(KINDS)})")
    results = []
    for k in kinds:
        progress(f"measuring {k}")
        r = KindResult(k)
        if k == "native":
            bench_native(settings, r)
        else:
            bench_lab_kind(k, settings, r, progress)
        results.append(r)
    report = {
        "machine": machine(results),
        "settings": settings.__dict__,
        "kinds": summarize(results),
    }
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "overhead.json").write_text(json.dumps(report, indent=1))
    report["plot"] = str(plot(report, outdir / "overhead.png"))
    return report


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m lab.bench.overhead")
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--runs", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    p.add_argument("--out", type=Path, default=Path("runs/overhead"))
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    s = Settings.quick() if a.quick else Settings()
    if a.runs:
        s.runs = a.runs
    report = run(a.kinds.split(","), s, a.out, progress=lambda m: print(f"· {m}", file=sys.stderr))
    if a.json:
        print(json.dumps(report, indent=1))
    else:
        print_table(report)
        print(f"plot: {report['plot']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
