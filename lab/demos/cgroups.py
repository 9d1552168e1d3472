"""`lab demo cgroups`: each limit of a node, exercised inside it and measured.

One process node gets a memory limit, a CPU quota, a PID limit and an I/O rate limit.
Then, each in a leaf cgroup of its own under the node (so the kernel's counters say
who hit what):

- memory: a process allocates and touches memory past the limit until the kernel's
  OOM killer ends it; the kernel's own oom_kill counter and the exit signal say so;
- cpu: busy processes spin for a bounded time; the share they got is the cgroup's CPU
  usage over the wall time, beside the CFS throttling counters;
- pids: a process forks until fork fails; pids.current and the pids.events "max"
  counter say why;
- io: dd writes with O_DIRECT to the node's data directory; the rate it got is
  compared with the limit on that disk.

Every figure comes from the run; a limit the host cannot exercise (no I/O controller,
data directory not on a block device) is reported with the reason instead.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

from lab import cgroups
from lab.cgroups import Cgroup

MiB = 1 << 20
MEMORY = 64 * MiB
CPUS = 0.5
PIDS = 20
IO_BPS = 5_000_000
CPU_SECONDS = 2.5
CPU_WORKERS = 2  # two spinners could use two CPUs: the quota holds them both to 0.5
IO_MIB = 10
# A limit "held" when the measured figure stays within this factor of the configured
# one: the kernel enforces CPU quotas per 100 ms period and I/O limits per time slice,
# so a short run can overshoot a little.
TOLERANCE = 1.2

# Stdlib-only programs run inside the node (python -E -s -S -c ...).
MEMORY_HOG = """
import sys
chunks = []
for i in range(int(sys.argv[1])):
    chunks.append(b"x" * (1 << 20))  # a filled buffer: every page is touched and charged
    print(i + 1, flush=True)
"""

CPU_SPINNER = """
import os, sys, time
workers, seconds = int(sys.argv[1]), float(sys.argv[2])
for _ in range(workers - 1):
    if os.fork() == 0:
        break
end = time.monotonic() + seconds
while time.monotonic() < end:
    pass
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
"""

FORKER = """
import errno, json, os, signal, sys
kids, error = [], None
for _ in range(int(sys.argv[1])):
    try:
        pid = os.fork()
    except OSError as e:
        error = f"{errno.errorcode.get(e.errno, e.errno)} ({e.strerror})"
        break
    if pid == 0:
        signal.pause()
        os._exit(0)
    kids.append(pid)
print(json.dumps({"made": len(kids), "error": error}), flush=True)
sys.stdin.readline()  # the host reads the cgroup's counters meanwhile
for pid in kids:
    os.kill(pid, signal.SIGKILL)
for pid in kids:
    os.waitpid(pid, 0)
"""

DD_REPORT = re.compile(r"^(\d+) bytes .* copied, ([0-9.]+) s", re.M)


def _python(node, script: str, *args) -> list[str]:
    return [node.python, "-E", "-s", "-S", "-c", script, *map(str, args)]


def _subtree(cg: Cgroup) -> list[Cgroup]:
    rels = {cg.rel}
    for d in cg.dirs():
        for sub, dirs, _files in os.walk(d):
            for name in dirs:
                rels.add(f"{cg.rel}/{(Path(sub) / name).relative_to(d)}")
    return [Cgroup(r) for r in sorted(rels)]


def _counters(cg: Cgroup, key: str) -> dict[str, int]:
    """A kernel event counter in ``cg`` and every cgroup under it.

    v2 counts an event in the cgroup where it happened and in every ancestor; v1 only
    in one cgroup (e.g. memory.oom_control's oom_kill in the victim's own cgroup, not
    in the node's), so the demo looks at the whole subtree."""
    return {c.rel: c.stats().get(key) or 0 for c in _subtree(cg)}


def _delta(before: dict[str, int], after: dict[str, int]) -> tuple[int, list[str]]:
    """The number of events, and the cgroups that counted them."""
    rises = {rel: after[rel] - before.get(rel, 0) for rel in after}
    n = max(rises.values(), default=0)
    return n, [rel for rel, d in rises.items() if d > 0]


def _counter_file(name: str) -> str:
    v1 = {"oom_kills": "memory.oom_control oom_kill", "pids_max_hits": "pids.events max"}
    v2 = {"oom_kills": "memory.events oom_kill", "pids_max_hits": "pids.events max"}
    return (v2 if cgroups.version() == 2 else v1)[name]


def _watchdog(seconds: float, cg: Cgroup) -> threading.Timer:
    """Kill everything in ``cg`` if an exercise hangs (bounded whatever happens)."""
    timer = threading.Timer(seconds, cg.kill_all)
    timer.daemon = True
    timer.start()
    return timer


def _signal_name(returncode: int | None) -> str | None:
    if returncode is None or returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


# --- the exercises ---------------------------------------------------------------------


def _cg(node) -> cgroups.Cgroup:
    """The node's cgroup, where the exercises make their leaves and read the counters."""
    return cgroups.Cgroup(node.cgroup())


def exercise_memory(node) -> dict:
    leaf = _cg(node).child("memhog").create()
    limit = _cg(node).limits()["memory"]
    cap = 4 * MEMORY // MiB  # if the limit fails, the hog stops by itself at 4x
    before = _counters(_cg(node), "oom_kills")
    proc = node.popen(
        _python(node, MEMORY_HOG, cap),
        cgroup_leaf="memhog",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    timer = _watchdog(30, leaf)
    try:
        out, _err = proc.communicate()
    finally:
        timer.cancel()
    kills, where = _delta(before, _counters(_cg(node), "oom_kills"))
    counts = [int(x) for x in out.split() if x.isdigit()]
    allocated = counts[-1] if counts else 0
    stats = _cg(node).stats()
    killed_by = _signal_name(proc.returncode)
    held = kills >= 1 and killed_by == "SIGKILL" and allocated < cap
    return {
        "limit": "memory",
        "configured": MEMORY,
        "kernel_value": limit,
        "exercise": f"a process allocates 1 MiB at a time, up to {cap} MiB",
        "measured": {
            "allocated_mib_before_kill": allocated,
            "exit": proc.returncode,
            "killed_by": killed_by,
            "oom_kills": kills,
            "oom_counter": _counter_file("oom_kills"),
            "counted_in": where,
            "memory_peak": stats.get("memory_peak"),
        },
        "held": held,
        "summary": (
            f"killed by {killed_by or 'nothing'} after {allocated} MiB; "
            f"oom_kill +{kills} ({_counter_file('oom_kills')})"
            + (f"; peak {stats['memory_peak'] / MiB:.1f} MiB" if stats.get("memory_peak") else "")
        ),
    }


def exercise_cpu(node) -> dict:
    leaf = _cg(node).child("cpuhog").create()
    quota = _cg(node).limits()["cpus"]
    s0, t0 = _cg(node).stats(), time.monotonic()
    proc = node.popen(
        _python(node, CPU_SPINNER, CPU_WORKERS, CPU_SECONDS),
        cgroup_leaf="cpuhog",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    timer = _watchdog(CPU_SECONDS + 20, leaf)
    try:
        _out, err = proc.communicate()
    finally:
        timer.cancel()
    s1, t1 = _cg(node).stats(), time.monotonic()
    wall = t1 - t0
    used = (s1["cpu_usec"] - s0["cpu_usec"]) / 1e6
    share = used / wall
    periods = (s1.get("nr_periods") or 0) - (s0.get("nr_periods") or 0)
    throttled = (s1.get("nr_throttled") or 0) - (s0.get("nr_throttled") or 0)
    throttled_s = ((s1.get("throttled_usec") or 0) - (s0.get("throttled_usec") or 0)) / 1e6
    held = proc.returncode == 0 and quota is not None and share <= quota * TOLERANCE
    return {
        "limit": "cpu",
        "configured": CPUS,
        "kernel_value": quota,
        "exercise": f"{CPU_WORKERS} busy processes spin for {CPU_SECONDS:g} s "
        f"(unlimited, they could use {min(CPU_WORKERS, os.cpu_count() or 1)} CPUs)",
        "measured": {
            "wall_s": round(wall, 3),
            "cpu_s": round(used, 3),
            "share": round(share, 3),
            "nr_periods": periods,
            "nr_throttled": throttled,
            "throttled_s": round(throttled_s, 3),
            "exit": proc.returncode,
            "error": err.strip()[-300:] or None,
        },
        "held": held,
        "summary": f"{share:.2f} CPU ({used:.2f} s of CPU in {wall:.2f} s); "
        f"throttled in {throttled} of {periods} periods, {throttled_s:.2f} s in all",
    }


def exercise_pids(node) -> dict:
    leaf = _cg(node).child("forker").create()
    limit = _cg(node).limits()["pids"]
    cap = 10 * PIDS  # if the limit fails, the forker stops by itself
    before = _counters(_cg(node), "pids_max_hits")
    proc = node.popen(
        _python(node, FORKER, cap),
        cgroup_leaf="forker",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    timer = _watchdog(30, leaf)
    try:
        line = proc.stdout.readline()
        current = _cg(node).stats().get("pids")  # while the forker's children are all alive
        hits, where = _delta(before, _counters(_cg(node), "pids_max_hits"))
        _out, err = proc.communicate(input="\n")
    finally:
        timer.cancel()
    try:
        report = json.loads(line)
    except ValueError:
        report = {"made": None, "error": f"forker said nothing: {err.strip()[-300:]}"}
    made, error = report["made"], report["error"]
    held = error is not None and limit is not None and current is not None and current <= limit
    return {
        "limit": "pids",
        "configured": PIDS,
        "kernel_value": limit,
        "exercise": f"a process forks until fork fails (at most {cap} times)",
        "measured": {
            "forked": made,
            "fork_error": error,
            "pids_current": current,
            "pids_max_events": hits,
            "counted_in": where,
        },
        "held": held,
        "summary": f"{made} forks, then {error or 'no failure'}; "
        f"pids.current {current}; pids.events max +{hits}",
    }


def io_unavailable_reason(path: Path) -> str | None:
    """Why an I/O limit cannot be exercised under ``path`` on this host (None: it can)."""
    if cgroups.version() == 2:
        root = cgroups.mounts().get("unified", cgroups.ROOT)
        try:
            controllers = (root / "cgroup.controllers").read_text().split()
        except OSError:
            controllers = []
        if "io" not in controllers:
            return "the cgroup v2 tree has no io controller"
    elif "blkio" not in cgroups.mounts():
        return "no cgroup v1 blkio controller is mounted"
    try:
        dev = cgroups.block_device_of(path)
    except OSError as e:
        return f"cannot find the disk under {path}: {e}"
    if not (Path("/sys/dev/block") / dev).exists():
        return f"{path} is not on a block device (device {dev}: tmpfs, overlay or btrfs?)"
    return None


def _io_limit_file(cg: Cgroup, device: str) -> str | None:
    """The write limit on ``device`` as the kernel holds it for ``cg`` (None: no rule)."""
    if cg.version == 2:
        path = cgroups.mounts().get("unified", cgroups.ROOT) / cg.rel / "io.max"
        pattern = re.compile(rf"^{re.escape(device)} .*\bwbps=(\S+)", re.M)
    else:
        path = cgroups.mounts()["blkio"] / cg.rel / "blkio.throttle.write_bps_device"
        pattern = re.compile(rf"^{re.escape(device)} (\d+)", re.M)
    try:
        m = pattern.search(path.read_text())
    except OSError:
        return None
    return m.group(1) if m else None


def _dd(node, leaf: str) -> dict:
    cg = _cg(node).child(leaf).create()
    before = cg.stats().get("io_write_bytes") or 0
    target = "/srv/node/io-demo"
    t0 = time.monotonic()
    res = node.popen(
        ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={IO_MIB}", "oflag=direct"],
        cgroup_leaf=leaf,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    timer = _watchdog(IO_MIB * MiB / IO_BPS * 4 + 10, cg)
    try:
        _out, err = res.communicate()
    finally:
        timer.cancel()
    wall = time.monotonic() - t0
    counted = (cg.stats().get("io_write_bytes") or 0) - before
    node.exec(["rm", "-f", target])
    m = DD_REPORT.search(err)
    if res.returncode != 0 or not m:
        return {"error": f"dd failed ({res.returncode}): {err.strip()[-300:]}"}
    nbytes, secs = int(m.group(1)), float(m.group(2))
    return {
        "cgroup": cg.rel,
        "bytes": nbytes,
        "seconds": secs,
        "rate_bps": round(nbytes / secs) if secs > 0 else None,
        "wall_s": round(wall, 3),
        "kernel_counted_bytes": counted,
    }


def exercise_io(node, device: str) -> list[dict]:
    """dd in the node's shell cgroup (where `lab exec` runs) against the node's limit.

    cgroup v1's blk-throttle is flat, not hierarchical: a rule on the node's cgroup does
    not reach processes in the cgroups below it. When the node's rule does not hold and
    the host is v1, a second run puts the same rule on the writer's own cgroup, to show
    the kernel enforcing it where v1 applies it."""
    note = (
        "v1 throttles only direct or synchronous I/O (buffered writes reach the disk later, "
        "from the kernel's flusher, uncharged)"
        if cgroups.version() == 1
        else "v2 throttles buffered writeback too"
    )
    rows = []
    m = _dd(node, "shell")
    rows.append(_io_row(_cg(node), device, m, "the node's cgroup (as racklab sets it)", note))
    if cgroups.version() == 1 and not rows[-1]["held"] and "error" not in m:
        writer = _cg(node).child("iowriter").create()
        writer.set_io(IO_BPS, device)
        m2 = _dd(node, "iowriter")
        rows.append(
            _io_row(
                writer,
                device,
                m2,
                "the writer's own cgroup (set by this demo)",
                "v1 blk-throttle is flat: a rule applies only to the processes in that very "
                "cgroup, so the node's rule missed the writer in its leaf cgroup",
            )
        )
    return rows


def _io_row(cg: Cgroup, device: str, m: dict, where: str, note: str) -> dict:
    kernel = _io_limit_file(cg, device)
    row = {
        "limit": "io",
        "on": "writer" if cg.rel.endswith("/iowriter") else "node",  # whose cgroup has the rule
        "configured": IO_BPS,
        "kernel_value": int(kernel) if kernel and kernel.isdigit() else kernel,
        "device": device,
        "exercise": f"dd writes {IO_MIB} MiB with O_DIRECT to /srv/node; limit on {where}",
        "measured": m,
        "note": note,
    }
    if "error" in m:
        row.update(held=None, summary=m["error"])
        return row
    rate = m["rate_bps"]
    row["held"] = rate is not None and rate <= IO_BPS * TOLERANCE
    row["summary"] = (
        f"{rate / 1e6:.2f} MB/s ({m['bytes'] / MiB:.0f} MiB in {m['seconds']:.2f} s; "
        f"kernel counted {m['kernel_counted_bytes'] / MiB:.1f} MiB written)"
    )
    return row


# --- the demo -------------------------------------------------------------------------


def run(progress=lambda msg: None) -> dict:
    from lab.demos.demonode import demo_node, scratch_dir

    io_why = io_unavailable_reason(scratch_dir())
    limits = {"cpus": CPUS, "memory": MEMORY, "pids": PIDS, "io_bps": None if io_why else IO_BPS}
    results: list[dict] = []
    t0 = time.monotonic()
    progress(f"making a node with cpus={CPUS}, memory={MEMORY // MiB}Mi, pids={PIDS}")
    with demo_node("demo-cg", "cgdemo", **limits) as node:
        info = {"name": node.name, "host_pid": node.describe()["pid"], "cgroup": node.cgroup()}
        steps = [
            ("memory", f"memory: allocating past {MEMORY // MiB} MiB", exercise_memory),
            ("cpu", f"cpu: {CPU_WORKERS} spinners for {CPU_SECONDS:g} s", exercise_cpu),
            ("pids", f"pids: forking past pids.max {PIDS}", exercise_pids),
        ]
        for name, msg, fn in steps:
            progress(msg)
            try:
                results.append(fn(node))
            except (OSError, subprocess.SubprocessError, KeyError, TypeError) as e:
                results.append(_failed(name, e))
        if io_why:
            results.append(
                {
                    "limit": "io",
                    "configured": IO_BPS,
                    "kernel_value": None,
                    "held": None,
                    "exercise": "not exercised",
                    "measured": None,
                    "summary": io_why,
                }  # fmt: skip
            )
        else:
            device = cgroups.block_device_of(node.dir / "data")
            progress(f"io: O_DIRECT writes at {IO_BPS / 1e6:g} MB/s on disk {device}")
            try:
                results.extend(exercise_io(node, device))
            except (OSError, subprocess.SubprocessError) as e:
                results.append(_failed("io", e))
    return {
        "node": info,
        "cgroup_version": cgroups.version(),
        "kernel": os.uname().release,
        "limits": results,
        "seconds": round(time.monotonic() - t0, 2),
    }


def _failed(name: str, e: Exception) -> dict:
    return {"limit": name, "configured": None, "kernel_value": None, "held": None,
            "exercise": "failed", "measured": None, "summary": f"{type(e).__name__}: {e}"}  # fmt: skip


def _fmt(limit: str, value) -> str:
    if value is None:
        return "-"
    if limit == "memory":
        return f"{value / MiB:g} MiB"
    if limit == "cpu":
        return f"{value:g} CPU"
    if limit == "io":
        return f"{int(value) / 1e6:g} MB/s" if str(value).isdigit() else str(value)
    return str(value)


def show(data: dict, console) -> None:
    from rich.table import Table

    t = Table(
        title=f"cgroups (v{data['cgroup_version']}): node {data['node']['name']}, "
        f"{data['node']['cgroup']}",
        show_lines=True,
    )
    t.add_column("limit", style="bold")
    t.add_column("configured")
    t.add_column("measured")
    t.add_column("held?")
    notes: list[str] = []
    for r in data["limits"]:
        held = {True: "[green]yes[/]", False: "[red]no[/]", None: "[yellow]n/a[/]"}[r["held"]]
        measured = r["summary"]
        if r.get("note"):
            notes.append(r["note"])
            measured += f" [dim]({len(notes)})[/]"
        t.add_row(
            r["limit"] + (f" [dim]({r['on']})[/]" if r.get("on") else ""),
            f"{_fmt(r['limit'], r['configured'])}\n"
            f"[dim]kernel holds {_fmt(r['limit'], r['kernel_value'])}[/]",
            measured,
            held,
        )
    console.print(t)
    for r in data["limits"]:
        on = f" ({r['on']})" if r.get("on") else ""
        console.print(f"[bold]{r['limit']}{on}[/]: {r['exercise']}", highlight=False)
    for i, note in enumerate(notes, 1):
        console.print(f"[dim]({i}) {note}[/]", highlight=False)
    console.print(f"[dim]{data['seconds']:.1f} s in all, kernel {data['kernel']}[/]")
