"""The containers monitor (Hadoop's ContainersMonitorImpl): a container's physical
memory is the RSS of every process in its cgroup (or session), and one over its grant
is killed with YARN's diagnostic. The cgroup's hard limit catches what grows faster
than the monitor looks."""

from __future__ import annotations

from .nmcontainer import NMContainer


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _fmt_mb(b: int) -> str:
    return f"{b / 1048576:.1f} MB"


def over_memory(c: NMContainer) -> str | None:
    """Why a running container must be killed for its physical memory, or None."""
    if c.state != "RUNNING" or c.cgroup is None or c.kill_status is not None:
        return None
    used = sum(_rss(p) for p in c.cgroup.pids())
    limit = c.resource.memory * 1024 * 1024
    if used <= limit:
        return None
    return (
        f"Container [pid={c.proc.pid},containerID={c.id}] is running {used - limit}B beyond the "
        f"'PHYSICAL' memory limit. Current usage: {_fmt_mb(used)} of {c.resource.memory} MB physical "
        "memory used. Killing container."
    )
