"""The node-backend interface every node kind implements.

Modelled on pytest-testinfra's backends: one small class per transport over this
base. The orchestrator and the network layer only ever talk to a node through
these methods, so racks, services and chaos are one code path for every kind.
"""

from __future__ import annotations

import abc
import signal as _signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class NodeSpec:
    """What a backend needs to make one node (resolved from the topology)."""

    name: str
    lab: str  # lab name
    labid: str  # short id used in kernel object names (rl<labid>-...)
    kind: str
    rack: str
    cpus: float | None = None
    memory: int | None = None  # bytes
    pids: int | None = None
    io_bps: int | None = None  # bytes/s read and write limit on the data disk
    address: str = ""  # IPv4 address with prefix, e.g. 10.61.1.10/24
    gateway: str = ""
    hosts: dict[str, str] = field(default_factory=dict)  # name -> address, for /etc/hosts
    state_dir: Path = Path()  # host-side directory for this node's files
    image: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class ExecResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def check(self) -> ExecResult:
        if self.returncode != 0:
            raise subprocess.CalledProcessError(
                self.returncode, self.argv, self.stdout, self.stderr
            )
        return self


@dataclass
class Stats:
    cpu_usec: int | None = None
    memory_bytes: int | None = None
    memory_max: int | None = None
    oom_kills: int | None = None
    io_read_bytes: int | None = None
    io_write_bytes: int | None = None
    pids: int | None = None


# Inside every node, whatever its kind, the node's own data lives here.
NODE_DATA_DIR = "/srv/node"


class Node(abc.ABC):
    """A running node. Backends return one from ``Backend.create``."""

    kind: str = "?"

    def __init__(self, spec: NodeSpec):
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    # lifecycle
    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    @abc.abstractmethod
    def kill(self, sig: int = _signal.SIGKILL) -> None: ...

    @abc.abstractmethod
    def pause(self) -> None: ...

    @abc.abstractmethod
    def resume(self) -> None: ...

    @abc.abstractmethod
    def destroy(self) -> None: ...

    # commands and files
    @abc.abstractmethod
    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        """Start ``argv`` inside the node; kwargs as for subprocess.Popen."""

    def exec(
        self,
        argv: list[str],
        *,
        input: str | None = None,
        timeout: float | None = 60,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        proc = self.popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            out, err = proc.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            return ExecResult(argv, 124, out, err + f"\ntimed out after {timeout}s")
        return ExecResult(argv, proc.returncode, out, err)

    @abc.abstractmethod
    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None: ...

    @abc.abstractmethod
    def get_file(self, path: str) -> bytes: ...

    def logs(self) -> str:
        return ""

    # services: long-running programs in the node, each with its own log (and, where
    # the kind allows, its own cgroup under the node's)
    def start_service(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> dict:
        log = f"{NODE_DATA_DIR}/logs/{name}.log"
        script = 'mkdir -p "${0%/*}"; exec "$@" >>"$0" 2>&1 </dev/null'
        proc = self.popen(
            ["sh", "-c", script, log, *argv],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return {"pid": proc.pid, "log": log}

    def stop_service(self, name: str, info: dict) -> None:
        raise NotImplementedError

    def service_running(self, name: str, info: dict) -> bool:
        raise NotImplementedError

    @property
    def python(self) -> str:
        """The node's Python, with racklab importable (replaces "{python}" in argv)."""
        return "python3"

    # where other layers plug in
    @abc.abstractmethod
    def netns(self) -> str:
        """A path naming the node's network namespace (e.g. /proc/PID/ns/net)."""

    @abc.abstractmethod
    def cgroup(self) -> str:
        """The node's cgroup, relative to the hierarchy root (e.g. racklab/quick/n1)."""

    @abc.abstractmethod
    def stats(self) -> Stats: ...

    def describe(self) -> dict:
        """What ``lab status`` shows and what a later command needs to find the node again."""
        return {"name": self.name, "kind": self.kind, "rack": self.spec.rack}


class Backend(abc.ABC):
    """Makes nodes of one kind and finds them again from saved state."""

    kind: str = "?"

    @abc.abstractmethod
    def create(self, spec: NodeSpec) -> Node: ...

    @abc.abstractmethod
    def attach(self, spec: NodeSpec, saved: dict) -> Node:
        """Rebuild the Node object of a running node from ``describe()`` output."""

    def cleanup(self, lab: str, labid: str) -> list[str]:
        """Remove whatever this backend left of a lab, even after a crash. Returns what it removed."""
        return []
