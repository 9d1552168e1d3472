"""Containers without cgroups, as Hadoop's DefaultContainerExecutor runs them: each in a
session of its own, its processes found by that session in /proc, its memory enforced by
the ContainersMonitor's polling (the kill and -104 diagnostic are the same), no kernel
limit behind it. The NodeManager falls back to this where it cannot make cgroups (a
Docker node whose cgroupfs is mounted read-only, a host without a memory controller)."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

from .cgroups import kill_pids

log = logging.getLogger("yarn.nm.processtree")


def session_pids(sid: int) -> list[int]:
    """Every live process whose session is `sid` (what setsid at launch gave the
    container), read from /proc/<pid>/stat."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the command: state ppid pgrp session ...
        if fields[0] != "Z" and int(fields[3]) == sid:
            out.append(int(entry.name))
    return sorted(out)


class ProcessTreeContainer:
    """The same face as a ContainerCgroup, over a session instead of a cgroup."""

    version = "none"
    procs_files: list[Path] = []  # nothing for the launch script to join

    def __init__(self) -> None:
        self.sid: int | None = None

    def attach(self, pid: int) -> None:
        self.sid = pid  # launched with start_new_session: the leader's pid is the session

    def pids(self) -> list[int]:
        return session_pids(self.sid) if self.sid else []

    def oom_kills(self) -> int:
        return 0  # no cgroup: only the monitor's polling kills

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        kill_pids(self.pids(), sig)

    def remove(self, timeout: float = 5.0) -> bool:
        self.kill_all()
        return True


class ProcessTreeManager:
    """The CgroupManager's face for the fallback: nothing to set up or tear down."""

    version = "none"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def setup(self) -> None:
        log.warning(
            "container cgroups unavailable (%s): containers run in sessions of their own "
            "and their memory is enforced by polling, as with Hadoop's DefaultContainerExecutor",
            self.reason,
        )

    def create(self, name: str, memory_mb: int, vcores: int) -> ProcessTreeContainer:
        return ProcessTreeContainer()

    def memory_limit(self, cg) -> int:
        return -1

    def teardown(self) -> None:
        return
