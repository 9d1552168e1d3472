"""Per-container cgroups for the NodeManager, cgroup v1 or v2 (detected at run time).

Like Hadoop's CGroupsHandler: one hierarchy directory per NodeManager
(yarn.nodemanager.linux-container-executor.cgroups.hierarchy) and one child per
container holding its memory limit and CPU weight. v1 hosts get a directory in
each of the memory and cpu controllers; v2 hosts get one directory in the unified
tree, with the controllers enabled on the way down.

Where the node is a container or pod, racklab hands the node its own cgroup, writable,
where this code looks (/sys/fs/cgroup/<controller>, or /sys/fs/cgroup on v2), so the
same code makes its containers' cgroups under the node's. No racklab import here: a
service package runs alone and imports nothing above lab/services (DESIGN.md), and
lab/cgroups sits above it. What the two would share is small (finding the mounts,
writing a file); this file is Hadoop's CGroupsHandler, part of the service's lesson,
while lab/cgroups is racklab's own (node limits, stats, freezing). So the little
overlap is kept on purpose rather than moved into a package both would import.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger("yarn.nm.cgroups")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError as e:
        log.debug("write %s=%s failed: %s", path, value, e)
        return False


def _write_errno(path: Path, value: str) -> int:
    """0 when written, else the errno (EBUSY: the cgroup holds processes itself)."""
    try:
        path.write_text(value)
        return 0
    except OSError as e:
        return e.errno or -1


def detect(mount: str = "/sys/fs/cgroup") -> tuple[str, Path] | None:
    """('v2', root) where a unified tree offers memory, ('v1', mount) where controllers are mounted."""
    root = Path(mount)
    for candidate in (root, root / "unified"):
        if "memory" in _read(candidate / "cgroup.controllers").split():
            return "v2", candidate
    if (root / "memory" / "memory.limit_in_bytes").exists():
        return "v1", root
    return None


def kill_pids(pids: list[int], sig: int = signal.SIGKILL) -> None:
    """Signal each of pids; one already gone is no error."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class ContainerCgroup:
    def __init__(self, version: str, dirs: list[Path]):
        self.version = version
        self.dirs = dirs  # first one carries memory

    def attach(self, pid: int) -> None:
        """The launch script put itself in the cgroup already (procs_files)."""
        return

    @property
    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs]

    def pids(self) -> list[int]:
        out: set[int] = set()
        for d in self.dirs:
            for line in _read(d / "cgroup.procs").split():
                out.add(int(line))
        return sorted(out)

    def oom_kills(self) -> int:
        mem = self.dirs[0]
        text = _read(mem / ("memory.events" if self.version == "v2" else "memory.oom_control"))
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "oom_kill":
                return int(parts[1])
        return 0

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        kill_pids(self.pids(), sig)

    def remove(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            self.kill_all()
            left = [d for d in self.dirs if d.exists()]
            for d in left:
                try:
                    d.rmdir()
                except OSError:
                    pass
            if not any(d.exists() for d in self.dirs):
                return True
            if time.monotonic() > deadline:
                log.warning("cgroup %s could not be removed", self.dirs)
                return False
            time.sleep(0.05)


class CgroupManager:
    def __init__(self, mount: str, hierarchy: str, strict_cpu: bool = False):
        found = detect(mount)
        if found is None:
            raise OSError(
                f"no usable cgroup memory controller under {mount}: containers cannot be limited"
            )
        self.version, self.root = found
        self.hierarchy = hierarchy.strip("/") or "hadoop-yarn"
        self.strict_cpu = strict_cpu
        self.bases: list[Path] = []

    def setup(self) -> None:
        if self.version == "v1":
            self.bases = [self.root / "memory" / self.hierarchy, self.root / "cpu" / self.hierarchy]
            for b in self.bases:
                b.mkdir(parents=True, exist_ok=True)
        else:
            base = self.root / self.hierarchy
            # v2 controllers must be enabled in every ancestor's subtree_control.
            node = self.root
            for part in [""] + list(Path(self.hierarchy).parts):
                node = node / part if part else node
                node.mkdir(exist_ok=True)
                want = [
                    c for c in ("memory", "cpu") if c in _read(node / "cgroup.controllers").split()
                ]
                for c in want:
                    err = _write_errno(node / "cgroup.subtree_control", f"+{c}")
                    if err == errno.EBUSY and node == self.root:
                        # A namespace's root cgroup that holds processes (a container's
                        # init, this NM) cannot delegate (no internal processes in v2):
                        # move them to a leaf, as container runtimes do, and try again.
                        self._evacuate(node)
                        _write(node / "cgroup.subtree_control", f"+{c}")
            if "memory" not in _read(base / "cgroup.controllers").split():
                raise OSError(
                    f"cgroup v2: the memory controller could not be enabled for {base}; "
                    f"delegate memory and cpu to {self.root} (its subtree_control) first"
                )
            self.bases = [base]
        # Containers of a previous run of this NodeManager (it crashed): gone with it.
        for b in self.bases:
            for child in b.glob("*/"):
                log.warning("removing stale container cgroup %s", child)
                ContainerCgroup(self.version, [child]).remove(timeout=2)
        log.info("container cgroups: %s under %s", self.version, [str(b) for b in self.bases])

    def _evacuate(self, node: Path) -> None:
        leaf = node / "racklab-init"
        leaf.mkdir(exist_ok=True)
        for pid in _read(node / "cgroup.procs").split():
            _write(leaf / "cgroup.procs", pid)

    def create(self, name: str, memory_mb: int, vcores: int) -> ContainerCgroup:
        dirs = [b / name for b in self.bases]
        for d in dirs:
            d.mkdir(exist_ok=True)
        limit = memory_mb * 1024 * 1024
        if self.version == "v1":
            mem, cpu = dirs
            _write(mem / "memory.limit_in_bytes", str(limit))
            _write(mem / "memory.memsw.limit_in_bytes", str(limit))  # no swap, where accounted
            _write(cpu / "cpu.shares", str(1024 * max(1, vcores)))
            if self.strict_cpu:
                _write(cpu / "cpu.cfs_period_us", "100000")
                _write(cpu / "cpu.cfs_quota_us", str(100000 * max(1, vcores)))
        else:
            d = dirs[0]
            _write(d / "memory.max", str(limit))
            _write(d / "memory.swap.max", "0")
            _write(d / "cpu.weight", str(min(10000, 100 * max(1, vcores))))
            if self.strict_cpu:
                _write(d / "cpu.max", f"{100000 * max(1, vcores)} 100000")
        return ContainerCgroup(self.version, dirs)

    def memory_limit(self, cg: ContainerCgroup) -> int:
        name = "memory.max" if self.version == "v2" else "memory.limit_in_bytes"
        text = _read(cg.dirs[0] / name).strip()
        return int(text) if text.isdigit() else -1

    def teardown(self) -> None:
        for b in self.bases:
            for child in sorted(b.glob("*/"), reverse=True):
                ContainerCgroup(self.version, [child]).remove(timeout=2)
            try:
                b.rmdir()
            except OSError as e:
                log.warning("could not remove %s: %s", b, e)
