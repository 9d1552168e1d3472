"""What every demo test checks afterwards: the demo left nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

from lab import cgroups
from lab.demos.demonode import scratch_dir


def assert_nothing_left(data: dict) -> None:
    """No cgroup of the demo's lab in any hierarchy, and the node's init is gone."""
    node_cg = cgroups.Cgroup(data["node"]["cgroup"])
    lab_rel = node_cg.rel.rpartition("/")[0]
    lab_cg = cgroups.Cgroup(lab_rel)
    assert lab_cg.rel.startswith(f"{cgroups.LAB_PARENT}/demo-")
    assert not lab_cg.exists(), f"cgroup {lab_rel} left behind: {lab_cg.dirs()}"
    pid = data["node"]["host_pid"]
    assert process_gone(pid), f"node init {pid} still runs"
    leftovers = list(scratch_dir().glob(f"racklab-{lab_rel.rpartition('/')[2]}-*"))
    assert leftovers == [], f"node files left behind: {leftovers}"


def process_gone(pid: int) -> bool:
    """Dead, or a zombie waiting for its parent (it holds nothing any more)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def demo_cgroups_of_this_process() -> list[str]:
    from lab.demos.demonode import demo_labs

    mine = str(os.getpid())
    return [n for p in ("demo-ns", "demo-cg") for n in demo_labs(p) if n.endswith("-" + mine)]
