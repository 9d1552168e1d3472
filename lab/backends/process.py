"""The `process` node: a set of Linux namespaces held by a tiny init, and a cgroup.

No image and no daemon: the node shares the host's files (read the same /usr, the
same Python) but has its own PID 1, host name, network stack, IPC, mounts (/proc,
/sys, /tmp, /run, /dev/shm, /etc/hosts, /srv/node) and cgroup root. Commands enter it
with nsenter(1) after joining the node's cgroup, so they are counted and limited
with everything else in the node.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lab import cgroups
from lab.backends.base import NODE_DATA_DIR, Backend, Node, NodeError, NodeSpec, Stats
from lab.backends.process_zygote import Zygote, ZygoteGone

INIT = Path(__file__).resolve().parent.parent / "ns" / "init.py"
PROJECT = INIT.parents[2]  # the directory holding the lab package
SHELL_LEAF = "shell"  # leaf cgroup for `lab exec` / `lab shell` commands
INIT_LEAF = "init"


class NodeStartError(NodeError):
    pass


def _starttime(pid: int) -> int | None:
    """The kernel's start time of a live ``pid``: tells a running node from a reused PID.

    A dead init lingers as a zombie until the host's PID 1 reaps it: count it as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def hosts_file(hosts: dict[str, str], own: str) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    for name, addr in hosts.items():
        lines.append(f"{addr}\t{name}")
    if own not in hosts:
        lines.append(f"127.0.1.1\t{own}")
    return "\n".join(lines) + "\n"


class ProcessNode(Node):
    kind = "process"

    def __init__(self, spec: NodeSpec, pid: int | None = None, starttime: int | None = None):
        super().__init__(spec)
        self.pid = pid
        self.starttime = starttime
        self.cg = cgroups.node_cgroup(spec.lab, spec.name)
        self.zygote: Zygote | None = None  # set during `lab up` (ProcessBackend.preload)

    # paths on the host
    @property
    def dir(self) -> Path:
        return Path(self.spec.state_dir)

    def alive(self) -> bool:
        return self.pid is not None and _starttime(self.pid) == self.starttime

    def _prepare(self) -> Path:
        for sub in ("data", "tmp"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir / "tmp", 0o1777)
        (self.dir / "hosts").write_text(hosts_file(self.spec.hosts, self.spec.name))
        (self.dir / "hostname").write_text(self.spec.name + "\n")
        Path(NODE_DATA_DIR).mkdir(parents=True, exist_ok=True)  # the mount point, empty
        cg = self.cg.create()
        cg.set_cpus(self.spec.cpus)
        cg.set_memory(self.spec.memory)
        cg.set_pids(self.spec.pids)
        if cgroups.version() == 2:
            # v2 lets no process into a cgroup that hands controllers down, and the init
            # must sit in the node's cgroup to root its cgroup namespace there: the
            # leaves are made bare now and get their controllers once the init has moved
            # into its leaf (wait_ready)
            for leaf in (INIT_LEAF, SHELL_LEAF):
                for d in cg.child(leaf).dirs():
                    d.mkdir(parents=True, exist_ok=True)
            # a node started again: its cgroup handed them down the first time
            ctl = cg.dirs()[0] / "cgroup.subtree_control"
            enabled = ctl.read_text().split() if ctl.exists() else []
            if enabled:
                ctl.write_text(" ".join(f"-{c}" for c in enabled))
        else:
            self._leaf(INIT_LEAF)
            self._leaf(SHELL_LEAF)
        cfg = {
            "hostname": self.spec.name,
            "init_cgroup_procs": cg.child(INIT_LEAF).procs_files(),
            "cgroup_version": cgroups.version(),
            "cgroup_controllers": cgroups.v1_controllers(),
            "binds": [
                [str(self.dir / "hosts"), "/etc/hosts"],
                [str(self.dir / "hostname"), "/etc/hostname"],
                [str(self.dir / "data"), NODE_DATA_DIR],
                [str(self.dir / "tmp"), "/tmp"],  # last: it may hide the other sources
            ],
        }
        covered = ("/tmp", "/run", "/dev/shm", NODE_DATA_DIR)
        cfg["keep"] = sorted(
            {p for p in (sys.prefix, str(PROJECT)) if any(_under(p, c) for c in covered)}
        )
        path = self.dir / "init.json"
        path.write_text(json.dumps(cfg, indent=1))
        return path

    def _leaf(self, name: str) -> cgroups.Cgroup:
        """A child cgroup for processes (v2 allows processes only in leaves)."""
        leaf = self.cg.child(name).create()
        if self.spec.io_bps:  # v1 does not pass I/O rules down: each leaf gets its own
            leaf.set_io(self.spec.io_bps, cgroups.block_device_of(self.dir))
        return leaf

    def spawn(self) -> subprocess.Popen:
        """Start the init without waiting for it (``wait_ready`` finishes the start)."""
        cfg = self._prepare()
        log = open(self.dir / "init.log", "ab")
        try:
            # the join prefix puts it in the node's cgroup before Python starts, with no
            # preexec_fn: subprocess may vfork rather than copy `lab up` (tens of ms each)
            return subprocess.Popen(
                [*self.cg.join_prefix(), sys.executable, "-E", "-s", "-S", str(INIT), str(cfg)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # Ctrl-C on `lab up` must not reach the node
                close_fds=True,
            )
        finally:
            log.close()

    def wait_ready(self, proc: subprocess.Popen, timeout: float = 30) -> None:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise NodeStartError(f"node {self.name}: init did not answer in {timeout}s") from None
        line = out.decode().strip()
        if proc.returncode != 0 or not line.isdigit():
            log = (self.dir / "init.log").read_text(errors="replace").strip().splitlines()
            why = log[-1] if log else f"exit code {proc.returncode}"
            raise NodeStartError(f"node {self.name}: init failed: {why}")
        self.pid = int(line)
        self.starttime = _starttime(self.pid)
        if cgroups.version() == 2:  # the init is in its leaf now: the leaves get their limits
            self._leaf(INIT_LEAF)
            self._leaf(SHELL_LEAF)

    # lifecycle
    def start(self) -> None:
        if self.alive():
            return
        self.wait_ready(self.spawn())

    def stop(self, timeout: float = 10) -> None:
        if not self.alive():
            return
        self.resume()  # a frozen init cannot hear SIGTERM
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.alive():
            self.kill()

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 30) -> None:
        if not self.alive():
            return
        if sig == signal.SIGKILL and self.cg.exists():
            # PID 1 dying takes the whole PID namespace with it, and waits for every
            # process in it to die: a frozen one (a paused service) never would
            self.cg.thaw_tree()
        os.kill(self.pid, sig)
        if sig == signal.SIGKILL:
            deadline = time.monotonic() + timeout
            while self.alive():
                if time.monotonic() > deadline:
                    raise NodeStartError(
                        f"node {self.name}: init {self.pid} outlived SIGKILL for {timeout:.0f}s"
                    )
                time.sleep(0.01)

    def pause(self) -> None:
        self.cg.freeze(True)

    def resume(self) -> None:
        if self.cg.exists():
            self.cg.freeze(False)

    def destroy(self) -> None:
        self.resume()
        self.kill()
        self.cg.remove()

    # commands and files
    def popen(self, argv: list[str], cgroup_leaf: str = SHELL_LEAF, **kwargs) -> subprocess.Popen:
        if not self.alive():
            raise NodeStartError(f"node {self.name} is not running")
        env = dict(kwargs.pop("env", None) or os.environ)
        env["HOSTNAME"] = self.name
        cmd = [
            *self.cg.child(cgroup_leaf).join_prefix(),
            "nsenter",
            "-t",
            str(self.pid),
            "-a",
            "--",
            *argv,
        ]
        return subprocess.Popen(cmd, env=env, **kwargs)

    def command_prefix(self) -> list[str]:
        """What `lab shell` execs after joining the cgroup (see ``join_cgroup``)."""
        return ["nsenter", "-t", str(self.pid), "-a", "--"]

    def join_cgroup(self, leaf: str | None = None) -> None:
        self.cg.child(leaf or SHELL_LEAF).add(os.getpid())

    def _inside(self, path: str) -> Path:
        # /proc/PID/root is the node's root as its own mount namespace sees it
        return Path(f"/proc/{self.pid}/root") / path.lstrip("/")

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        target = self._inside(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        os.chmod(target, mode)

    def get_file(self, path: str) -> bytes:
        return self._inside(path).read_bytes()

    def logs(self) -> str:
        try:
            return (self.dir / "init.log").read_text(errors="replace")
        except OSError:
            return ""

    def netns(self) -> str:
        return f"/proc/{self.pid}/ns/net"

    def cgroup(self) -> str:
        return self.cg.rel

    def stats(self) -> Stats:
        return self.cg.summary()

    def describe(self) -> dict:
        return {
            **super().describe(),
            "pid": self.pid,
            "starttime": self.starttime,
            "cgroup": self.cg.rel,
            "running": self.alive(),
            "paused": self.cg.exists() and self.cg.frozen(),
        }

    @property
    def python(self) -> str:
        return sys.executable

    def start_service(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> dict:
        leaf = f"svc-{name}"
        self._leaf(leaf)
        log = self.dir / "data" / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env["HOSTNAME"] = self.name
        info = {"log": f"{NODE_DATA_DIR}/logs/{name}.log", "cgroup": leaf}
        pid = self._fork_service(leaf, argv, full_env, log)
        if pid is not None:
            return {"pid": pid, **info}
        with open(log, "ab") as out:
            proc = self.popen(
                argv,
                cgroup_leaf=leaf,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                cwd=str(self.dir / "data"),
            )
        # the service is in its cgroup once the join prefix ran: callers may look for
        # it there at once (is it running? stop it)
        while proc.poll() is None and not self.service_cgroup(name).populated():
            time.sleep(0.001)
        return {"pid": proc.pid, **info}

    def _fork_service(self, leaf: str, argv: list[str], env: dict, log: Path) -> int | None:
        """``python -m MODULE ...`` forked by the lab's zygote, in the service's cgroup
        when this returns; None where the ordinary path must start it (no zygote: after
        `lab up`, or it is gone; another program)."""
        if self.zygote is None or len(argv) < 3 or argv[:2] != [self.python, "-m"]:
            return None
        if not self.alive():
            raise NodeStartError(f"node {self.name} is not running")
        try:
            return self.zygote.spawn(argv[2], argv[3:], env=env, init_pid=self.pid,
                                     cgroup_procs=self.cg.child(leaf).procs_files(),
                                     log=str(log))  # fmt: skip
        except ZygoteGone:
            return None

    def stop_service(self, name: str, info: dict) -> None:
        leaf = self.service_cgroup(name)
        for pid in leaf.pids():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while leaf.populated() and time.monotonic() < deadline:
            time.sleep(0.05)
        leaf.kill_all()

    def service_running(self, name: str, info: dict) -> bool:
        return self.service_cgroup(name).populated()

    def service_cgroup(self, name: str) -> cgroups.Cgroup:
        return self.cg.child(f"svc-{name}")


class ProcessBackend(Backend):
    kind = "process"

    def __init__(self):
        self.zygote: Zygote | None = None

    def preload(self, specs: list[NodeSpec], modules: list[str]) -> None:
        """One zygote for the lab (lab/backends/process_zygote.py), in a cgroup of the
        lab's own beside the router: its imports are the lab's CPU, not a node's."""
        if not specs or not modules or self.zygote is not None:
            return
        lab_dir = Path(specs[0].state_dir).parents[1]
        lab_dir.mkdir(parents=True, exist_ok=True)
        cg = cgroups.lab_cgroup(specs[0].lab).child(cgroups.ZYGOTE_CGROUP).create()
        self.zygote = Zygote(modules, cg.join_prefix(), lab_dir / "zygote.log")

    def preload_done(self) -> None:
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None

    def create(self, spec: NodeSpec) -> ProcessNode:
        node = ProcessNode(spec)
        node.start()
        node.zygote = self.zygote
        return node

    def create_many(self, specs: list[NodeSpec]) -> list[ProcessNode]:
        """Spawn every init first, then collect their answers, so that the Python
        start-up of all the inits overlaps."""
        pending = [(node, node.spawn()) for node in map(ProcessNode, specs)]
        for node, proc in pending:
            node.wait_ready(proc)
            node.zygote = self.zygote
        return [node for node, _ in pending]

    def attach(self, spec: NodeSpec, saved: dict) -> ProcessNode:
        node = ProcessNode(spec, saved.get("pid"), saved.get("starttime"))
        node.zygote = self.zygote
        return node

    def cleanup(self, lab: str, labid: str) -> list[str]:
        cg = cgroups.lab_cgroup(lab)
        if not cg.exists():
            return []
        n = len(cg.pids())
        cg.remove()
        return [f"cgroup {cg.rel} ({n} processes killed)"]
