"""A throw-away process node for the demos: made, used, and removed even on error.

Each demo run owns a lab named ``<prefix>-<pid of the demo>``, so two demos running at
once (a user's and a test's) never share a cgroup, and the cgroups of a demo that was
killed outright (kill -9 skips every ``finally``) are recognised by their dead PID and
removed by the next run.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lab import cgroups
from lab.backends import Node, NodeSpec, get_backend


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def demo_labs(prefix: str) -> list[str]:
    """Names of the demo labs with this prefix that have a cgroup now."""
    names: set[str] = set()
    for d in cgroups.Cgroup(cgroups.LAB_PARENT).dirs():
        if d.is_dir():
            names.update(
                p.name for p in d.iterdir() if p.is_dir() and p.name.startswith(prefix + "-")
            )
    return sorted(names)


def remove_stale(prefix: str) -> list[str]:
    """Remove what earlier runs whose demo process is dead left: their cgroups (and so
    their processes) and their node files."""
    removed = []
    for name in demo_labs(prefix):
        owner = name.rpartition("-")[2]
        if owner.isdigit() and not _pid_alive(int(owner)):
            cgroups.lab_cgroup(name).remove()
            removed.append(name)
    pattern = re.compile(rf"racklab-{re.escape(prefix)}-(\d+)-")
    for d in scratch_dir().glob(f"racklab-{prefix}-*"):
        m = pattern.match(d.name)
        if m and not _pid_alive(int(m.group(1))):
            shutil.rmtree(d, ignore_errors=True)
    return removed


def scratch_dir() -> Path:
    """Where node files go: /var/tmp, which is a real disk on most hosts (the I/O demo
    needs a block device under the node's data directory; /tmp is often a tmpfs)."""
    var_tmp = Path("/var/tmp")
    return var_tmp if var_tmp.is_dir() else Path(tempfile.gettempdir())


@contextmanager
def demo_node(prefix: str, name: str, **limits) -> Iterator[Node]:
    """A running process node with ``limits`` (cpus, memory, pids, io_bps)."""
    remove_stale(prefix)
    lab = f"{prefix}-{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix=f"racklab-{lab}-", dir=scratch_dir()))
    node = None
    try:
        spec = NodeSpec(
            name=name,
            lab=lab,
            labid="dm",
            kind="process",
            rack="r1",
            state_dir=tmp / name,
            **limits,
        )
        # If create() fails half-way, removing the lab's cgroup below kills what it started.
        node = get_backend("process").create(spec)
        yield node
    finally:
        try:
            if node is not None:
                node.destroy()
        finally:
            cgroups.lab_cgroup(lab).remove()
            shutil.rmtree(tmp, ignore_errors=True)
