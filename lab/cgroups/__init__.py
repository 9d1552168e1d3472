"""Control groups, v1 and v2, behind one small class.

Most hosts today are cgroup v2 only (one tree, controllers enabled per subtree); these
machines mount the v1 controllers separately with an empty v2 tree beside them. The
version is detected at run time; everything else in racklab uses ``Cgroup`` and never
touches the files directly.

    v1                                      v2
    cpu.cfs_quota_us / cpu.cfs_period_us    cpu.max  "QUOTA PERIOD"
    memory.limit_in_bytes                   memory.max
    memory.oom_control: oom_kill N          memory.events: oom_kill N
    pids.max                                pids.max
    blkio.throttle.{read,write}_bps_device  io.max  "MAJ:MIN rbps=N wbps=N"
    freezer.state FROZEN / THAWED           cgroup.freeze 1 / 0

A ``Cgroup`` is named by a path relative to the hierarchy root (the ones racklab makes)
or found from a process (``Cgroup.of_pid``: a Docker container's, a VM's qemu), and
reads its usage in the one shape every node kind reports (``Stats``). The hierarchies
are found in /proc/self/mountinfo; a ``root`` (default: $RACKLAB_CGROUP_ROOT when set)
names a directory laid out like /sys/fs/cgroup instead.
"""

from __future__ import annotations

import errno
import functools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(os.environ.get("RACKLAB_CGROUP_ROOT", "/sys/fs/cgroup"))
# an explicit root replaces the mount table (a test tree, a host's root mounted elsewhere)
ROOT_GIVEN = "RACKLAB_CGROUP_ROOT" in os.environ
V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "pids", "blkio", "freezer")
V2_CONTROLLERS = ("cpu", "memory", "pids", "io")
CPU_PERIOD_US = 100_000
LAB_PARENT = "racklab"
# a lab's cgroups beside its nodes': the router (its delay line) and the process kind's
# zygote, which forks services at lab up (lab/backends/process_zygote.py)
ROUTER_CGROUP = "router"
ZYGOTE_CGROUP = "zygote"


@functools.cache
def mounts() -> dict[str, Path]:
    """Controller name -> mount point (v1); key "unified" -> the v2 mount."""
    out: dict[str, Path] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            fstype, _src, superopts = right.split()[:3]
            mountpoint = Path(fields[4])
            if fstype == "cgroup2":
                out.setdefault("unified", mountpoint)
            elif fstype == "cgroup":
                for opt in superopts.split(","):
                    if opt in V1_CONTROLLERS:
                        out.setdefault(opt, mountpoint)
    return out


@functools.cache
def version() -> int:
    """2 when the v2 tree holds the controllers we limit with (a v2-only host); else 1.

    A hybrid host (like these) mounts a v2 tree that holds next to nothing (hugetlb)
    while cpu, memory and pids sit in v1 hierarchies."""
    forced = os.environ.get("RACKLAB_CGROUP_VERSION")
    if forced in ("1", "2"):
        return int(forced)
    m = mounts()
    unified = m.get("unified")
    if unified is not None:
        try:
            if {"cpu", "memory", "pids"} <= set(
                (unified / "cgroup.controllers").read_text().split()
            ):
                return 2
        except OSError:
            pass
    if any(c in m for c in V1_CONTROLLERS):
        return 1
    return 2


def v1_controllers() -> list[str]:
    return [c for c in V1_CONTROLLERS if c in mounts()]


@dataclass
class Stats:
    """What a node costs, the same fields for every node kind (None: not known)."""

    cpu_usec: int | None = None
    memory_bytes: int | None = None
    memory_max: int | None = None
    oom_kills: int | None = None
    io_read_bytes: int | None = None
    io_write_bytes: int | None = None
    pids: int | None = None

    def __add__(self, other: Stats) -> Stats:
        def plus(x, y):
            return y if x is None else x if y is None else x + y

        return Stats(**{k: plus(getattr(self, k), getattr(other, k)) for k in vars(self)})


def pid_paths(pid: int) -> dict[str, str]:
    """controller -> cgroup path of ``pid`` ("" key for the v2 unified hierarchy);
    empty when the process is gone."""
    out = {}
    for line in _read(Path(f"/proc/{pid}/cgroup")).splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            out[c] = path
    return out


# $1 files to write "0" into (the shell itself moves), then the command to exec
JOIN_SCRIPT = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo 0 > "$1" || exit 125; '
    'shift; n=$((n - 1)); done; exec "$@"'
)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _keyed(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _int(text: str) -> int | None:
    text = text.strip()
    if text.isdigit():
        return int(text)
    return None


def block_device_of(path: str | Path) -> str:
    """'MAJ:MIN' of the whole disk holding ``path`` (I/O limits apply to disks, not partitions)."""
    st = os.stat(path)
    dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    sysdev = Path("/sys/dev/block") / dev
    if (sysdev / "partition").exists():
        dev = (sysdev.resolve().parent / "dev").read_text().strip()
    return dev


class Cgroup:
    """One cgroup, named by its path relative to the hierarchy root (e.g. racklab/quick/n1).

    ``paths`` (controller -> path, as in /proc/PID/cgroup) places it per v1 controller,
    for cgroups made by others, whose path may differ from one controller to the next."""

    def __init__(self, rel: str, *, root: Path | None = None, paths: dict[str, str] | None = None):
        self.rel = rel.strip("/")
        self.root = Path(root) if root is not None else (ROOT if ROOT_GIVEN else None)
        self.paths = {c: p.strip("/") for c, p in paths.items()} if paths is not None else None
        if self.paths is None:
            self.version = version()
        else:  # a v1 memory path whose hierarchy is mounted: the process lives in v1
            self.version = 1 if "memory" in self.paths and self._mount("memory") else 2

    @classmethod
    def of_pid(cls, pid: int, root: Path | None = None) -> Cgroup | None:
        """The cgroup ``pid`` is in (None when the process is gone)."""
        paths = pid_paths(pid)
        if not paths:
            return None
        return cls(paths.get("memory") or paths.get("", ""), root=root, paths=paths)

    def __repr__(self) -> str:
        return f"Cgroup({self.rel!r}, v{self.version})"

    # where the files are
    def _mount(self, controller: str) -> Path | None:
        """The hierarchy holding ``controller`` ("unified": the v2 tree)."""
        if self.root is None:
            if controller == "unified":
                return mounts().get("unified", ROOT)
            return mounts().get(controller)
        if controller == "unified":
            return self.root / "unified" if (self.root / "unified").is_dir() else self.root
        d = self.root / controller
        return d if d.is_dir() else None

    def _rel(self, controller: str) -> str:
        if self.paths is None:
            return self.rel
        return self.paths.get(controller, self.paths.get("", self.rel))

    def _controllers(self) -> list[str]:
        if self.root is None and self.paths is None:
            return v1_controllers()
        return [c for c in V1_CONTROLLERS if self._mount(c) is not None]

    def dirs(self) -> list[Path]:
        if self.version == 2:
            return [self._mount("unified") / self._rel("")]
        seen, out = set(), []
        for c in self._controllers():
            d = self._mount(c) / self._rel(c)
            if d not in seen:
                seen.add(d)
                out.append(d)
        return out

    def _file(self, controller: str, name: str) -> Path:
        if self.version == 2:
            return self.dirs()[0] / name
        mount = self._mount(controller)
        if mount is None:  # reads find nothing, writes fail: as for a file the kernel lacks
            return Path("/proc/racklab-no-cgroup-hierarchy") / controller / name
        return mount / self._rel(controller) / name

    def procs_files(self) -> list[str]:
        """Write a PID into each of these to move it into this cgroup."""
        return [str(d / "cgroup.procs") for d in self.dirs()]

    def child(self, name: str) -> Cgroup:
        paths = {c: f"{p}/{name}" for c, p in self.paths.items()} if self.paths else None
        return Cgroup(f"{self.rel}/{name}", root=self.root, paths=paths)

    def exists(self) -> bool:
        return any(d.is_dir() for d in self.dirs())

    # life
    def create(self) -> Cgroup:
        if self.version == 2:
            self._enable_v2_controllers()
        for d in self.dirs():
            d.mkdir(parents=True, exist_ok=True)
        return self

    def _enable_v2_controllers(self) -> None:
        root = self._mount("unified")
        available = set(_read(root / "cgroup.controllers").split())
        wanted = " ".join(f"+{c}" for c in V2_CONTROLLERS if c in available)
        parts = self.rel.split("/")
        d = root
        for part in parts[:-1]:
            d = d / part
            d.mkdir(exist_ok=True)
        # every ancestor must hand the controllers down, the root first
        d = root
        for part in [None] + parts[:-1]:
            if part:
                d = d / part
            if wanted:
                try:
                    (d / "cgroup.subtree_control").write_text(wanted)
                except OSError:
                    pass  # a controller busy higher up; the limits that need it will say so

    def add(self, pid: int) -> None:
        for f in self.procs_files():
            with open(f, "w") as fh:
                fh.write(str(pid))

    def joiner(self):
        """A preexec_fn for subprocess: the child moves itself in here before it execs,
        so it and everything it starts are counted and limited from the first instant."""
        files = self.procs_files()

        def join() -> None:  # between fork and exec: plain system calls only
            for f in files:
                fd = os.open(f, os.O_WRONLY)
                os.write(fd, b"0")  # "0" is the writing process itself
                os.close(fd)

        return join

    def populated(self) -> bool:
        """Whether any process is in this cgroup or below it: the first one found
        answers, so a running service costs one file read, not every hierarchy's tree
        (`lab up` asks this of every starting service several times a second)."""
        for d in self.dirs():
            for sub, _dirs, files in os.walk(d):
                if "cgroup.procs" in files and _read(Path(sub) / "cgroup.procs").strip():
                    return True
        return False

    def join_prefix(self) -> list[str]:
        """argv to put before a command so that it runs in this cgroup from its first
        instant: a shell moves itself in (a "0" written is the writer), then execs the
        command. Unlike ``joiner`` it needs no preexec_fn, so subprocess may vfork
        instead of copying the calling process (tens of ms for a large Python)."""
        files = self.procs_files()
        return ["/bin/sh", "-c", JOIN_SCRIPT, "sh", str(len(files)), *files]

    def pids(self) -> list[int]:
        out: set[int] = set()
        for d in self.dirs():
            for sub, _dirs, files in os.walk(d):
                if "cgroup.procs" in files:
                    for line in _read(Path(sub) / "cgroup.procs").split():
                        out.add(int(line))
        return sorted(out)

    # limits
    def set_cpus(self, cpus: float | None) -> None:
        quota = -1 if not cpus else int(cpus * CPU_PERIOD_US)
        if self.version == 2:
            self._file("cpu", "cpu.max").write_text(
                f"{'max' if quota < 0 else quota} {CPU_PERIOD_US}"
            )
        else:
            self._file("cpu", "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
            self._file("cpu", "cpu.cfs_quota_us").write_text(str(quota))

    def set_memory(self, limit: int | None) -> None:
        if self.version == 2:
            self._file("memory", "memory.max").write_text(str(limit) if limit else "max")
            try:  # no swap escape hatch, as with v1 without memsw
                self._file("memory", "memory.swap.max").write_text("0" if limit else "max")
            except OSError:
                pass
        else:
            mem = self._file("memory", "memory.limit_in_bytes")
            memsw = self._file("memory", "memory.memsw.limit_in_bytes")  # only with swap accounting
            # memory+swap may never be below memory: raise memsw first, lower memory first
            if limit:
                current = _int(_read(mem))
                first, then = (
                    (mem, memsw) if current is not None and limit < current else (memsw, mem)
                )
                for f in (first, then):
                    if f is mem or memsw.exists():
                        f.write_text(str(limit))
            else:
                if memsw.exists():
                    memsw.write_text("-1")
                mem.write_text("-1")

    def set_pids(self, limit: int | None) -> None:
        self._file("pids", "pids.max").write_text(str(limit) if limit else "max")

    def set_io(self, bps: int | None, device: str) -> None:
        """Read and write bytes/s on the disk ``device`` ('MAJ:MIN')."""
        if self.version == 2:
            value = "max" if not bps else str(bps)
            self._file("io", "io.max").write_text(f"{device} rbps={value} wbps={value}")
        else:
            # v1 throttles each cgroup on its own rule, not its children's: the rule goes on
            # this cgroup and every one below it (callers also set it on leaves made later).
            # So in v1 each leaf of a node gets the full rate, unlike v2's shared io.max.
            value = str(bps or 0)  # 0 removes the rule in v1
            base = self._file("blkio", "blkio.throttle.read_bps_device").parent
            for sub, _dirs, _files in os.walk(base):
                for name in ("blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device"):
                    (Path(sub) / name).write_text(f"{device} {value}")

    def limits(self) -> dict:
        """The limits as the kernel holds them (not as configured)."""
        if self.version == 2:
            cpu = _read(self._file("cpu", "cpu.max")).split()
            quota = None if not cpu or cpu[0] == "max" else int(cpu[0]) / int(cpu[1])
            mem = _int(_read(self._file("memory", "memory.max")))
        else:
            q = _read(self._file("cpu", "cpu.cfs_quota_us")).strip()
            p = _read(self._file("cpu", "cpu.cfs_period_us")).strip()
            quota = int(q) / int(p) if q.lstrip("-").isdigit() and int(q) > 0 and p else None
            mem = _int(_read(self._file("memory", "memory.limit_in_bytes")))
            if mem is not None and mem >= 2**62:
                mem = None
        pids = _int(_read(self._file("pids", "pids.max")))
        return {"cpus": quota, "memory": mem, "pids": pids}

    # freezing, for pause/resume
    def freeze(self, frozen: bool = True, timeout: float = 5.0) -> bool:
        """Freeze (or thaw) and wait until the kernel says it is done: freezing is
        asynchronous (v1 passes through FREEZING; a task in uninterruptible sleep holds
        it there). Returns whether the state was reached within ``timeout``."""
        if self.version == 2:
            self._file("cpu", "cgroup.freeze").write_text("1" if frozen else "0")
        else:
            self._file("freezer", "freezer.state").write_text("FROZEN" if frozen else "THAWED")
        deadline = time.monotonic() + timeout
        while self._frozen_now() != frozen:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _frozen_now(self) -> bool:
        if self.version == 2:
            return _keyed(_read(self._file("cpu", "cgroup.events"))).get("frozen") == 1
        return _read(self._file("freezer", "freezer.state")).strip() == "FROZEN"

    def frozen(self) -> bool:
        """Asked to be frozen (v2: cgroup.freeze; v1: freezer.state FROZEN or FREEZING)."""
        if self.version == 2:
            return _read(self._file("cpu", "cgroup.freeze")).strip() == "1"
        return _read(self._file("freezer", "freezer.state")).strip() in ("FROZEN", "FREEZING")

    # statistics
    def stats(self) -> dict:
        s: dict = {}
        if self.version == 2:
            cpu = _keyed(_read(self._file("cpu", "cpu.stat")))
            s["cpu_usec"] = cpu.get("usage_usec")
            s["nr_periods"] = cpu.get("nr_periods")
            s["nr_throttled"] = cpu.get("nr_throttled")
            s["throttled_usec"] = cpu.get("throttled_usec")
            s["memory_bytes"] = _int(_read(self._file("memory", "memory.current")))
            s["memory_peak"] = _int(_read(self._file("memory", "memory.peak")))
            s["oom_kills"] = _keyed(_read(self._file("memory", "memory.events"))).get("oom_kill")
            io = {"rbytes": 0, "wbytes": 0}
            for line in _read(self._file("io", "io.stat")).splitlines():
                for kv in line.split()[1:]:
                    k, _, v = kv.partition("=")
                    if k in io:
                        io[k] += int(v)
            s["io_read_bytes"], s["io_write_bytes"] = io["rbytes"], io["wbytes"]
        else:
            usage = _int(_read(self._file("cpuacct", "cpuacct.usage")))
            s["cpu_usec"] = usage // 1000 if usage is not None else None
            cpu = _keyed(_read(self._file("cpu", "cpu.stat")))
            s["nr_periods"] = cpu.get("nr_periods")
            s["nr_throttled"] = cpu.get("nr_throttled")
            t = cpu.get("throttled_time")
            s["throttled_usec"] = t // 1000 if t is not None else None
            s["memory_bytes"] = _int(_read(self._file("memory", "memory.usage_in_bytes")))
            s["memory_peak"] = _int(_read(self._file("memory", "memory.max_usage_in_bytes")))
            # v1 counts an OOM kill only in the victim's own cgroup: add up the subtree
            s["oom_kills"] = self._v1_subtree_sum("memory", "memory.oom_control", "oom_kill")
            rd = wr = 0
            io_file = self._file("blkio", "blkio.throttle.io_service_bytes_recursive")
            if not io_file.exists():  # older kernels: the cgroup's own count only
                io_file = io_file.with_name("blkio.throttle.io_service_bytes")
            for line in _read(io_file).splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[1] == "Read":
                    rd += int(parts[2])
                elif len(parts) == 3 and parts[1] == "Write":
                    wr += int(parts[2])
            s["io_read_bytes"], s["io_write_bytes"] = rd, wr
        s["pids"] = _int(_read(self._file("pids", "pids.current")))
        if self.version == 2:
            s["pids_max_hits"] = _keyed(_read(self._file("pids", "pids.events"))).get("max")
        else:  # v1 counts a refused fork only in the forking process's own cgroup
            s["pids_max_hits"] = self._v1_subtree_sum("pids", "pids.events", "max")
        return s

    def summary(self) -> Stats:
        """The usage every node kind reports (``stats`` has more, for the demos)."""
        s = self.stats()
        return Stats(
            cpu_usec=s.get("cpu_usec"),
            memory_bytes=s.get("memory_bytes"),
            memory_max=self.limits().get("memory"),
            oom_kills=s.get("oom_kills"),
            io_read_bytes=s.get("io_read_bytes"),
            io_write_bytes=s.get("io_write_bytes"),
            pids=s.get("pids"),
        )

    def _v1_subtree_sum(self, controller: str, filename: str, key: str) -> int | None:
        base = self._file(controller, filename).parent
        total, seen = 0, False
        for sub, _dirs, files in os.walk(base):
            if filename in files:
                value = _keyed(_read(Path(sub) / filename)).get(key)
                if value is not None:
                    total, seen = total + value, True
        return total if seen else None

    # the end
    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL every process in this cgroup and its children, until none is left."""
        if not self.exists():
            return
        if self.version == 2:
            kill = self.dirs()[0] / "cgroup.kill"
            if kill.exists():
                try:
                    kill.write_text("1")
                except OSError:
                    pass
        deadline = time.monotonic() + timeout
        frozen = False
        while True:
            pids = self.pids()
            if not pids:
                break
            if not frozen and self.version == 1:
                # frozen processes cannot fork between our reading and our killing
                try:
                    self.freeze(True)
                    frozen = True
                except OSError:
                    pass
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if frozen:
                try:
                    self.freeze(False)  # SIGKILL is delivered once thawed
                    frozen = False
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"processes left in {self}: {pids}")
            time.sleep(0.02)

    def thaw_tree(self) -> None:
        """Thaw this cgroup and every one under it (a frozen process never sees SIGKILL)."""
        name = "cgroup.freeze" if self.version == 2 else "freezer.state"
        value = "0" if self.version == 2 else "THAWED"
        base = self._file("freezer", name).parent
        for sub, _dirs, files in os.walk(base):
            if name in files:
                try:
                    (Path(sub) / name).write_text(value)
                except OSError:
                    pass

    def remove(self) -> None:
        """Kill what runs inside, then remove this cgroup and everything under it."""
        if not self.exists():
            return
        self.thaw_tree()
        self.kill_all()
        for d in self.dirs():
            if not d.is_dir():
                continue
            for sub, dirs, _files in os.walk(d, topdown=False):
                for name in dirs:
                    _rmdir(Path(sub) / name)
            _rmdir(d)


def _rmdir(d: Path) -> None:
    for _ in range(50):
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise
            time.sleep(0.02)  # the last process is still leaving
    d.rmdir()


def lab_cgroup(lab: str) -> Cgroup:
    return Cgroup(f"{LAB_PARENT}/{lab}")


def node_cgroup(lab: str, node: str) -> Cgroup:
    return Cgroup(f"{LAB_PARENT}/{lab}/{node}")
