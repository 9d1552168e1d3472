"""A `k8s` node where no cluster is configured: its Pod object played by `podman kube
play` on this machine.

The pod starts with podman's network "none"; the rack network plugs it in through
``netns()`` (the pod's shared network namespace) exactly as it plugs every other
kind, so addresses, names, the inter-rack delay and chaos are one code path.
With `k8s: {network: overlay}` the pods instead join a podman network of the lab's
own and carry the rack network themselves, with the code a cluster's pods use
(lab/backends/k8s_overlay.py): a router pod, VXLAN over the podman network, and
chaos with the pod's own ip, tc and iptables.
Commands run with `podman exec`; services run detached in the node container with a
pid file, so they can be found, signalled and checked again from a later command.
"""

from __future__ import annotations

import io
import os
import signal as _signal
import subprocess
import tarfile
import time
import uuid
from pathlib import Path, PurePosixPath

import yaml

from lab.backends import k8s_overlay, k8s_podman
from lab.backends.base import NODE_DATA_DIR, Backend, ExecResult, Node, NodeSpec, Stats
from lab.backends.k8s_pod import (
    CONTAINER,
    KILL_SERVICE,
    LABEL_LAB,
    hosts_file,
    pod_name,
    pod_object,
    volume_name,
)
from lab.backends.k8s_podman import PodmanError, podman
from lab.cgroups import Cgroup

IMAGE_PYTHON = "/usr/bin/python3"
EXEC_PID_DIR = "/run/racklab/exec"
SERVICE_PID_DIR = "/run/racklab/services"
# record the command's in-container pid (so a signal reaches it, not only the podman
# client), then become the command
_WRAPPER = f'mkdir -p {EXEC_PID_DIR} && echo $$ > {EXEC_PID_DIR}/"$RACKLAB_EXEC_TOKEN" && exec "$@"'
# a service: its pid file (written whole: a reader never sees it half-made), its log
# under the data dir, detached from the exec session
_SERVICE = (
    f'mkdir -p {SERVICE_PID_DIR} "${{1%/*}}" && echo $$ > {SERVICE_PID_DIR}/"$0".new'
    f' && mv {SERVICE_PID_DIR}/"$0".new {SERVICE_PID_DIR}/"$0".pid'
    ' && log="$1" && shift && exec "$@" >>"$log" 2>&1 </dev/null'
)

# SIGTERM to each service by its pid file, then wait for all of them ($0 tenths of a s)
_TERM_SERVICES = (
    f'pids=$(cat {SERVICE_PID_DIR}/*.pid 2>/dev/null); [ -n "$pids" ] || exit 0; '
    "kill -TERM $pids 2>/dev/null; i=0; "
    'while [ $i -lt "$0" ]; do alive=""; for p in $pids; do [ -d /proc/$p ] && alive=1; done; '
    '[ -n "$alive" ] || exit 0; sleep 0.1; i=$((i+1)); done'
)


def _resolve_python(argv: list[str]) -> list[str]:
    return [IMAGE_PYTHON if a == "{python}" else a for a in argv]


class PodmanProcess(subprocess.Popen):
    """A `podman exec -i` client whose signals also reach the command inside."""

    def __init__(self, argv: list[str], *, node: PodmanNode, token: str, **kwargs):
        self._node, self._token = node, token
        super().__init__(argv, **kwargs)

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            inner = self._node._read_inner(f"{EXEC_PID_DIR}/{self._token}")
            if inner:
                self._node.exec(["kill", f"-{int(sig)}", str(inner)], timeout=30)
        super().send_signal(sig)


class PodmanNode(Node):
    kind = "k8s"
    python = IMAGE_PYTHON

    def __init__(self, spec: NodeSpec, pod: str, supernet: str | None = None):
        super().__init__(spec)
        self.pod = pod
        self.container = f"{pod}-{CONTAINER}"  # podman's name for a played container
        self.supernet = supernet  # set: the pods carry the rack network (overlay)

    # podman facts
    def _state(self) -> dict:
        info = k8s_podman.inspect(self.container)
        return info["State"] if info else {}

    def _pid(self) -> int | None:
        """The host pid of the node container's init: remembered while it lives (a
        `podman inspect` per file read would be slow, and under load it can fail)."""
        pid = getattr(self, "_known_pid", None)
        if pid and os.path.exists(f"/proc/{pid}"):
            return pid
        self._known_pid = self._state().get("Pid") or None
        return self._known_pid

    def _host_path(self, path: str) -> Path | None:
        pid = self._pid()
        return Path(f"/proc/{pid}/root{path}") if pid else None

    def _read_inner(self, path: str) -> int | None:
        host = self._host_path(path)
        try:
            text = host.read_text().strip() if host else ""
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def alive(self) -> bool:
        return bool(self._state().get("Running"))

    # lifecycle: the whole pod, as a node is the whole pod
    def start(self) -> None:
        state = self._state()
        if state.get("Paused"):
            self.resume()
        elif not state.get("Running"):
            podman("pod", "start", self.pod)
            # the container's root filesystem outlives a restart: pid files of the
            # processes that died with it would name new, unrelated processes
            self.exec(["/bin/rm", "-rf", SERVICE_PID_DIR, EXEC_PID_DIR]).check()
            self._write_hosts()

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM to every service first: they are not the init's children, and when
        the pod stops the kernel would only SIGKILL them."""
        if self._state().get("Running"):
            self.resume()
            self.exec(
                ["/bin/sh", "-c", _TERM_SERVICES, str(int(timeout * 10))], timeout=timeout + 30
            )
            podman("pod", "stop", "--time", str(int(timeout)), self.pod, timeout=timeout + 60)

    def kill(self, sig: int = _signal.SIGKILL) -> None:
        if not self._state().get("Running"):
            return
        self.resume()  # a frozen process takes no signal, not even SIGKILL
        podman("pod", "kill", "--signal", str(int(sig)), self.pod)
        if sig == _signal.SIGKILL:
            podman("wait", self.container, check=False, timeout=60)

    def pause(self) -> None:
        if not self._state().get("Paused"):
            podman("pod", "pause", self.pod)

    def resume(self) -> None:
        if self._state().get("Paused"):
            podman("pod", "unpause", self.pod)

    def destroy(self) -> None:
        k8s_podman.remove_pod(self.pod)
        k8s_podman.remove_volume(f"{self.pod}-data")

    # commands and files
    def popen(self, argv: list[str], **kwargs) -> PodmanProcess:
        env = kwargs.pop("env", None) or {}
        cwd = kwargs.pop("cwd", None)
        token = uuid.uuid4().hex
        cmd = ["podman", "exec", "-i", "-e", f"RACKLAB_EXEC_TOKEN={token}"]
        if kwargs.pop("tty", False):
            cmd.append("-t")
        for key, value in env.items():
            cmd += ["-e", f"{key}={value}"]
        if cwd:
            cmd += ["-w", str(cwd)]
        cmd += [self.container, "/bin/sh", "-c", _WRAPPER, "sh", *_resolve_python(list(argv))]
        kwargs.setdefault("env", k8s_podman.env())
        return PodmanProcess(cmd, node=self, token=token, **kwargs)

    def command_prefix(self) -> list[str]:
        return [
            "env", f"CONTAINERS_CONF={k8s_podman.conf_path()}",
            "podman", "exec", "-it", "-e", f"PS1=[{self.name}] \\w# ", self.container,
        ]  # fmt: skip

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """A tar over the exec's stdin, unpacked by the pod's own tar (as kubectl cp)."""
        p = PurePosixPath(path)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(p.name)
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        proc = subprocess.run(
            ["podman", "exec", "-i", self.container, "/bin/sh", "-c",
             'mkdir -p "$0" && tar -x -m -C "$0"', str(p.parent)],
            input=buf.getvalue(), capture_output=True, env=k8s_podman.env(), timeout=120,
        )  # fmt: skip
        if proc.returncode != 0:
            raise PodmanError(
                f"node {self.name}: cannot write {path}: {proc.stderr.decode()[-200:]}"
            )

    def get_file(self, path: str) -> bytes:
        proc = subprocess.run(
            ["podman", "exec", self.container, "/bin/cat", path],
            capture_output=True, env=k8s_podman.env(), timeout=120,
        )  # fmt: skip
        if proc.returncode != 0:
            raise FileNotFoundError(f"{self.name}:{path}")
        return proc.stdout

    def logs(self) -> str:
        res = self.exec(
            ["/bin/sh", "-c", f'for f in {NODE_DATA_DIR}/logs/*.log; do [ -f "$f" ] || continue; '
             'n=${f##*/}; sed "s/^/${n%.log} | /" "$f"; done; true']
        )  # fmt: skip
        return res.stdout

    # services
    def start_service(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> dict:
        log = f"{NODE_DATA_DIR}/logs/{name}.log"
        cmd = ["exec", "-d", "-w", NODE_DATA_DIR]
        for key, value in (env or {}).items():
            cmd += ["-e", f"{key}={value}"]
        podman(
            *cmd, self.container, "/bin/sh", "-c", _SERVICE, name, log,
            *_resolve_python(list(argv)),
        )  # fmt: skip
        pidfile = f"{SERVICE_PID_DIR}/{name}.pid"
        deadline = time.monotonic() + 60
        pid = None
        while pid is None and time.monotonic() < deadline:
            pid = self._read_inner(pidfile)
            if pid is None:
                time.sleep(0.05)
        if pid is None:
            raise PodmanError(f"node {self.name}: {name} did not start within 60 s")
        return {"pidfile": pidfile, "pid": pid, "log": log}

    def _host_pid(self, inner: int) -> int | None:
        """The host pid of the pod's process ``inner``: among the processes of the
        container's cgroup, the one whose innermost NSpid is ``inner``. (The pod's own
        /proc through /proc/PID/root misses new processes on some kernels.)"""
        cg = self._cgroup()
        for pid in cg.pids() if cg is not None else []:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("NSpid:") and line.split()[-1] == str(inner):
                    return pid
        return None

    def service_running(self, name: str, info: dict) -> bool:
        inner = self._read_inner(info.get("pidfile") or f"{SERVICE_PID_DIR}/{name}.pid")
        pid = self._host_pid(inner) if inner else None
        try:
            # alive unless gone or a zombie
            stat = Path(f"/proc/{pid}/stat").read_text() if pid else ""
        except OSError:
            return False
        return bool(stat) and stat.rsplit(")", 1)[1].split()[0] != "Z"

    def stop_service(self, name: str, info: dict, timeout: float = 10) -> None:
        pid = self._read_inner(info.get("pidfile") or f"{SERVICE_PID_DIR}/{name}.pid")
        if not pid or not self.service_running(name, info):
            return
        self.exec(["kill", "-TERM", str(pid)])
        deadline = time.monotonic() + timeout
        while self.service_running(name, info) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.service_running(name, info):
            self.exec(["kill", "-KILL", str(pid)])

    def kill_service(self, name: str, info: dict) -> str:
        pidfile = info.get("pidfile") or f"{SERVICE_PID_DIR}/{name}.pid"
        self.exec(["/bin/sh", "-c", KILL_SERVICE, pidfile])
        return "SIGKILL"

    # where other layers plug in
    def attach_network(self) -> None:
        if self.supernet is None:
            return super().attach_network()
        router = k8s_overlay.router_spec(self.spec)
        k8s_overlay.attach(PodmanNode(router, pod_name(router)), self, self.supernet)

    def net_exec(self, argv: list[str], timeout: float = 30) -> ExecResult:
        if self.supernet is None:
            return super().net_exec(argv, timeout)
        # as on a cluster: the pod's own tools, inside it (its NET_ADMIN)
        return self.exec(argv, timeout=timeout)

    # packet faults: on a node that carries its rack network, netem inside the pod
    def start_packet_fault(self, fault, seed: int, log_path: str | None = None) -> dict:
        if self.supernet is None:
            return super().start_packet_fault(fault, seed, log_path)
        return k8s_overlay.start_packet_fault(self, fault)

    def heal_packet_fault(self, info: dict) -> None:
        if self.supernet is None:
            return super().heal_packet_fault(info)
        k8s_overlay.heal_packet_fault(self)

    def clear_packet_faults(self) -> bool:
        if self.supernet is None:
            return super().clear_packet_faults()
        k8s_overlay.heal_packet_fault(self)
        return False  # no fault line: only netem, which holds nothing to find

    def netns(self) -> str:
        pid = self._pid()
        if not pid:
            raise PodmanError(f"node {self.name} is not running (no network namespace)")
        return f"/proc/{pid}/ns/net"

    def _cgroup(self) -> Cgroup | None:
        pid = self._pid()
        return Cgroup.of_pid(pid) if pid else None

    def cgroup(self) -> str:
        cg = self._cgroup()
        return cg.rel if cg is not None else ""

    def set_limits(self, cpus: float | None = None, memory: int | None = None) -> None:
        # never the hierarchy's root, which an empty path would name
        if not self.cgroup():
            raise PodmanError(f"node {self.name} is not running: no cgroup to limit")
        super().set_limits(cpus, memory)

    def stats(self) -> Stats:
        cg = self._cgroup()
        return cg.summary() if cg is not None else Stats(pids=0)

    def describe(self) -> dict:
        state = self._state()
        return {
            **super().describe(),
            "engine": "podman",
            "pod": self.pod,
            "container": self.container,
            "pid": state.get("Pid") or None,
            "status": state.get("Status", "missing"),
            "running": bool(state.get("Running")),
            "paused": bool(state.get("Paused")),
            **({"supernet": self.supernet} if self.supernet else {}),
        }

    def _write_hosts(self) -> None:
        # podman 4.3 ignores the Pod's hostAliases: the same names, written by racklab
        if self.spec.hosts:
            self.exec(["/bin/sh", "-c", "cat > /etc/hosts"], input=hosts_file(self.spec)).check()


class PodmanBackend(Backend):
    kind = "k8s"

    def __init__(self, image: str | None = None, network: str = "host"):
        self._image = image
        self.network = network  # "host": a veth from racklab's router; "overlay"
        self.supernet: str | None = None  # the overlay's, once it is built

    def prepare(self, specs: list[NodeSpec], progress=lambda msg: None) -> None:
        why = k8s_podman.available()
        if why:
            raise PodmanError(f"k8s nodes without a kubeconfig run in podman, but {why}")
        progress("node image for podman (built once, loaded once)")
        self.image()
        if self.network == "overlay" and specs:
            progress("podman network for the pods")
            k8s_podman.make_network(network_name(specs[0].labid), list(specs[0].hosts.values()))

    def rack_network(self, specs: list[NodeSpec]):
        return k8s_overlay.Overlay(self, specs) if self.network == "overlay" else None

    def _play(self, spec: NodeSpec, **kwargs) -> PodmanNode:
        image = spec.image or self.image()
        name = pod_name(spec)
        k8s_podman.remove_pod(name)  # an earlier incarnation left by a crash, and its data
        k8s_podman.remove_volume(volume_name(spec))
        net = network_name(spec.labid) if self.network == "overlay" else "none"
        try:
            k8s_podman.play(yaml.safe_dump(pod_object(spec, image, **kwargs)), network=net)
        except PodmanError as e:
            k8s_podman.remove_pod(name)
            raise PodmanError(f"node {spec.name}: {e}") from None
        return PodmanNode(spec, name, self.supernet)

    def create_router(self, spec: NodeSpec) -> PodmanNode:
        return self._play(spec, privileged=True)

    relay_listen = "0.0.0.0"  # this machine connects to the router pod's own address

    def relay_route(self, router: PodmanNode, router_ip: str) -> list[str]:
        # this machine reaches podman's pods on their network's bridge
        return ["--tcp", f"{router_ip}:{k8s_overlay.RELAY_PORT}"]

    def image(self) -> str:
        if self._image is None:
            from lab.backends.container import ContainerBackend

            # racklab's node image, built in Docker (as for container nodes), then loaded
            self._image = k8s_podman.ensure_image(ContainerBackend()._node_image(progress=False))
        return self._image

    def create(self, spec: NodeSpec) -> PodmanNode:
        node = self._play(spec)
        node._write_hosts()
        return node

    def attach(self, spec: NodeSpec, saved: dict) -> PodmanNode:
        return PodmanNode(spec, saved.get("pod") or pod_name(spec), saved.get("supernet"))

    def cleanup(self, lab: str, labid: str) -> list[str]:
        if k8s_podman.available():
            return []
        removed = []
        for pod in k8s_podman.pods(f"{LABEL_LAB}={lab}"):
            k8s_podman.remove_pod(pod)
            removed.append(f"pod {pod}")
            if k8s_podman.remove_volume(f"{pod}-data"):
                removed.append(f"volume {pod}-data")
        if k8s_podman.remove_network(network_name(labid)):
            removed.append(f"podman network {network_name(labid)}")
        return removed


def network_name(labid: str) -> str:
    """The podman network of a lab whose pods carry the rack network."""
    return f"racklab-{labid}"
