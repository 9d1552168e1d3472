"""Benchmark of `lab up` and `lab down` for the example labs (issue 2).

    python -m lab.bench.updown [--runs 5] [FILE ...]

Each run is the real command (`python -m lab up FILE --json`, then `lab down`), timed
from the outside, so the figures include Python's start-up as a user sees it; the
in-process time `up_in` that the lab records is shown beside it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lab import cgroups
from lab.topology import load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def once(file: Path) -> tuple[float, float, float]:
    name = load(file).name
    subprocess.run([sys.executable, "-m", "lab", "clean", name], capture_output=True)
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "lab", "up", str(file), "--json"],
                         capture_output=True, text=True)  # fmt: skip
    t1 = time.perf_counter()
    if res.returncode != 0:
        raise SystemExit(f"lab up {file} failed: {res.stderr.strip()}")
    up_in = json.loads(res.stdout)["up_in"]
    t2 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "lab", "down", name], capture_output=True, text=True
    )
    t3 = time.perf_counter()
    if res.returncode != 0:
        raise SystemExit(f"lab down {name} failed: {res.stderr.strip()}")
    return t1 - t0, up_in, t3 - t2


def fmt(xs: list[float]) -> str:
    """'  1.06 [0.91..1.48]': median and spread in seconds, 19 wide (fits 80 columns)."""
    return f"{statistics.median(xs):6.2f} [{min(xs):.2f}..{max(xs):.2f}]"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.bench.updown")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("files", nargs="*", type=Path,
                   default=[EXAMPLES / "quickstart.yaml", EXAMPLES / "three-racks.yaml"])  # fmt: skip
    a = p.parse_args(argv)
    print(f"# {platform.node()}: {platform.machine()}, kernel {platform.release()}, "
          f"cgroup v{cgroups.version()}, Python {platform.python_version()}, {a.runs} runs each")  # fmt: skip
    print("# seconds: median [min..max] over the runs")
    print(f"{'lab':<12} {'nodes':>5}  {'up (command)':<19} {'up (in process)':<19} {'down':<19}")
    for f in a.files:
        nodes = len(load(f).nodes)
        ups, inner, downs = [], [], []
        for _ in range(a.runs):
            u, i, d = once(f)
            ups.append(u)
            inner.append(i)
            downs.append(d)
        name = load(f).name
        print(f"{name:<12} {nodes:>5}  {fmt(ups):<19} {fmt(inner):<19} {fmt(downs):<19}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
