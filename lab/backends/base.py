"""The node-backend interface every node kind implements: the whole contract.

Modelled on pytest-testinfra's backends: one small class per transport over this
base. The orchestrator, the network layer, chaos, the CLI and the pytest plugin only
ever talk to a node through these methods, so racks, services and chaos are one code
path for every kind: nothing outside lab/backends names a concrete node class or
asks a node which kind it is.
"""

from __future__ import annotations

import abc
import signal as _signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lab.cgroups import Cgroup, Stats


class NodeError(RuntimeError):
    """A node that could not be made, started or reached (Docker, libvirt, namespaces):
    every kind's failure, one sentence for the user; callers catch this, not a kind's."""


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

    # how a shell or a command from the host gets in (`lab shell`)
    @abc.abstractmethod
    def command_prefix(self) -> list[str]:
        """argv to put before a command to run it inside the node from a terminal
        (nsenter, docker exec, ssh), after ``join_cgroup``."""

    def join_cgroup(self, leaf: str | None = None) -> None:
        """Move the calling process into the node's cgroup, so that what it execs next
        is counted and limited with the node. Nothing to do where the command prefix
        itself lands the command in the node's cgroup (docker exec, ssh)."""
        return  # a default, not a stub

    # services: long-running programs in the node, each with its own log (and, where
    # the kind allows, its own cgroup under the node's)
    @abc.abstractmethod
    def start_service(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> dict:
        """Start ``argv`` detached as the service ``name``, its output appended to
        NODE_DATA_DIR/logs/<name>.log. Returns what ``stop_service`` and
        ``service_running`` need to find it again (saved in the lab's state)."""

    @abc.abstractmethod
    def stop_service(self, name: str, info: dict) -> None:
        """SIGTERM, a grace period, then SIGKILL; a manual stop (no restart policy)."""

    @abc.abstractmethod
    def service_running(self, name: str, info: dict) -> bool: ...

    def remove_service(self, name: str) -> None:
        """Forget a stopped service, so that it can be started again under its name
        (a pod keeps a stopped service's container); nothing to do for most kinds."""
        return  # a default, not a stub

    def service_cgroup(self, name: str) -> Cgroup | None:
        """The service's own cgroup, where the kind gives each service one (chaos
        kills and freezes the service there); None where it shares the node's."""
        return None

    @property
    def python(self) -> str:
        """The node's Python, with racklab importable (replaces "{python}" in argv)."""
        return "python3"

    def alive(self) -> bool:
        """Whether the node runs (a paused node runs)."""
        return bool(self.describe().get("running", True))

    # where other layers plug in
    @abc.abstractmethod
    def netns(self) -> str:
        """A path naming the node's network namespace (e.g. /proc/PID/ns/net)."""

    def attach_network(self) -> None:
        """Give the node its eth0 on its rack's bridge, with its address and route:
        a veth from the router namespace into ``netns()``. Called after the node
        starts, at `lab up` and when chaos boots a killed node again."""
        from lab.net import fabric

        spec = self.spec
        fabric.plug(spec.labid, self.name, spec.rack, self.netns(), spec.address, spec.gateway)

    def net_exec(self, argv: list[str], timeout: float = 30) -> ExecResult:
        """Run a networking tool (ip, iptables, tc) on the node's own network stack:
        the host's tool entered into ``netns()`` (so an image needs none of them), or
        the guest's own where the stack is inside a VM. Chaos partitions and packet
        faults act through this."""
        argv = ["nsenter", f"--net={self.netns()}", "--", *argv]
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return ExecResult(argv, 124, "", f"timed out after {timeout}s")
        return ExecResult(argv, r.returncode, r.stdout, r.stderr)

    # packet faults on what the node sends (chaos): netem on its eth0 where the kernel
    # has it, else racklab's fault line beside its rack's router (lab/net/faults.py)
    def start_packet_fault(self, fault, seed: int, log_path: str | None = None) -> dict:
        """Impair what the node sends (``fault``: a PacketFault, or its fields as a
        dict); returns what ``heal_packet_fault`` needs. The fault line's log goes to
        ``log_path``, or beside the node's state."""
        from lab.net import fabric, faults

        if isinstance(fault, dict):  # as it comes over an agent's JSON
            fault = faults.PacketFault(**fault)
        if log_path is None:
            Path(self.spec.state_dir).mkdir(parents=True, exist_ok=True)
            log_path = str(Path(self.spec.state_dir) / "faultline.log")
        router = fabric.router_ns(self.spec.labid)
        return faults.start_packet_fault(router, self.name, self.net_exec, fault, seed, log_path)

    def heal_packet_fault(self, info: dict) -> None:
        from lab.net import faults

        faults.heal_packet_fault(info, self.net_exec)

    def clear_packet_faults(self) -> bool:
        """Remove any packet fault from the node, also one a crashed run left behind;
        whether a fault line was found."""
        from lab.net import fabric, faults

        router = fabric.router_ns(self.spec.labid)
        found = faults.undo_line(router, self.name, faults.mac_of(self.net_exec))
        if faults.have_netem():
            faults.heal_packet_fault({"method": "netem"}, self.net_exec)
        return found

    @abc.abstractmethod
    def cgroup(self) -> str:
        """The node's cgroup, relative to the hierarchy root (e.g. racklab/quick/n1)."""

    # what chaos does to a running node besides its network: crash a service, squeeze
    # the node's CPU and memory. Defaults work on the node's cgroup on the host.
    def kill_service(self, name: str, info: dict) -> str:
        """SIGKILL the service at once, as a crash would, and leave it down until
        ``start_service`` (no runtime restarts it). Returns how, for the history."""
        cg = self.service_cgroup(name)
        if cg is not None:
            cg.kill_all()
            return "SIGKILL"
        self.stop_service(name, info)
        return "stopped"

    def memory_used(self) -> int | None:
        """Bytes of memory the node uses now, as its memory limit counts them."""
        return Cgroup(self.cgroup()).stats().get("memory_bytes")

    def set_limits(self, cpus: float | None = None, memory: int | None = None) -> None:
        """Change the running node's CPU quota (in CPUs) and memory limit (bytes); an
        argument left None stays as it is. ``restore_limits`` puts the spec's back."""
        cg = Cgroup(self.cgroup())
        if cpus is not None:
            cg.set_cpus(cpus)
        if memory is not None:
            cg.set_memory(memory)

    def restore_limits(self) -> None:
        """The CPU quota and memory limit of the node's spec again (none: unlimited)."""
        cg = Cgroup(self.cgroup())
        if cg.rel and cg.exists():
            cg.set_cpus(self.spec.cpus)
            cg.set_memory(self.spec.memory)  # raising memory+swap first where v1 has it

    @abc.abstractmethod
    def stats(self) -> Stats: ...

    def describe(self) -> dict:
        """What ``lab status`` shows and what a later command needs to find the node again."""
        return {"name": self.name, "kind": self.kind, "rack": self.spec.rack}

    def testinfra_host(self):
        """A testinfra Host for this node (host.socket, host.process, host.file...):
        by default testinfra commands run through ``popen``."""
        from lab.backends.testinfra_backend import host_over_popen

        return host_over_popen(self)


# The images of racklab's own a kind's nodes may run (Backend.host_image)
NODE_IMAGE, VM_IMAGE = "node", "vm"


class Backend(abc.ABC):
    """Makes nodes of one kind and finds them again from saved state."""

    kind: str = "?"
    # What a machine needs for this kind's nodes, for `lab hosts install` to prepare a
    # host: Debian's packages, and the daemons to start where none runs, each as
    # (systemd unit, process name, command that starts it where no systemd runs)
    host_packages: tuple[str, ...] = ()
    host_daemons: tuple[tuple[str, str, str], ...] = ()
    # Which of racklab's images this kind's nodes run when they name none, for a lab
    # spread over hosts to send it there (lab/hosts): "node" (the node image, in the
    # host's Docker engine), "vm" (the VM image), or None (nothing to send). A host's
    # agent then makes its backend with what was sent (Backend.with_sent_image).
    host_image: str | None = None  # NODE_IMAGE, VM_IMAGE or None
    # Whether a node holds its whole memory limit on the machine from its start (a VM's
    # guest RAM), rather than using what it touches (namespaces, containers, pods)
    reserves_memory: bool = False
    # How `lab graph` draws this kind's nodes (a Graphviz node shape)
    graph_shape: str = "box"

    @classmethod
    def with_sent_image(cls, sent=None) -> Backend:
        """This kind's backend on a host that builds no image: its nodes run what the
        controller sent (``sent``: what lab/hosts recorded for ``host_image``)."""
        return cls()

    def prepare(self, specs: list[NodeSpec], progress=lambda msg: None) -> None:
        """Slow one-time work before any node of this kind is made (an image build),
        so that `lab up` can show it as a step of its own."""
        return  # a default, not a stub

    def preload(self, specs: list[NodeSpec], modules: list[str]) -> None:
        """Told at the start of `lab up`, while the nodes are made: the Python modules
        (``python -m MODULE``) the lab's services will run on these nodes. A kind may
        load them ahead so that each service starts without a Python start-up and its
        imports (the process kind forks them from one pre-imported parent); until
        ``preload_done`` its nodes' ``start_service`` may use what it loaded."""
        return  # a default, not a stub

    def preload_done(self) -> None:
        """`lab up` has started its services: release what ``preload`` holds."""
        return  # a default, not a stub

    def rack_network(self, specs: list[NodeSpec]):
        """The rack network as an overlay these nodes carry themselves (pods of a
        cluster that racklab's bridges cannot reach: lab/backends/k8s_overlay.py), or
        None: the nodes are plugged into racklab's router on this machine."""
        return None

    def facts(self) -> dict:
        """What a report should say about the machinery under this kind on this
        machine (the engine's version, a VM's accelerator), for benchmarks' headers;
        raises NodeError when that machinery does not answer."""
        return {}

    @abc.abstractmethod
    def create(self, spec: NodeSpec) -> Node: ...

    def create_many(self, specs: list[NodeSpec]) -> list[Node]:
        """Make several nodes, in the order given. By default a few at a time in
        threads (their waits overlap); a kind may do better (see ProcessBackend)."""
        if len(specs) <= 1:
            return [self.create(s) for s in specs]
        with ThreadPoolExecutor(max_workers=min(4, len(specs))) as pool:
            return list(pool.map(self.create, specs))

    @abc.abstractmethod
    def attach(self, spec: NodeSpec, saved: dict) -> Node:
        """Rebuild the Node object of a running node from ``describe()`` output."""

    def cleanup(self, lab: str, labid: str) -> list[str]:
        """Remove whatever this backend left of a lab, even after a crash. Returns what it removed."""
        return []

    def labs(self) -> set[str]:
        """Names of labs this backend holds things of that outlive a lost state
        directory (libvirt remembers domains): for `lab clean --all`."""
        return set()
