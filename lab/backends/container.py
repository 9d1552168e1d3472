"""The `container` node: one Docker container per node, driven through the docker SDK.

The container starts with Docker's network mode "none": the rack network plugs it in
through ``netns()`` (/proc/PID/ns/net of its init) exactly as it plugs namespace
nodes, so addresses, names, delay and chaos are one code path for every kind.
Limits (cpus, memory, pids, io) are Docker's own; stats are read from the
container's cgroup. Everything created carries the label ``racklab.lab=<lab>`` so
``cleanup`` finds it again after a crash.

One concept, the container kind (its node and its backend, as process.py holds the
process kind's), in one module of a little over 600 lines; what Docker engines share
with pods is in docker_engine.py, `docker exec` as a Popen in docker_exec.py.
"""

from __future__ import annotations

import io
import os
import signal as _signal
import tarfile
import threading
import time
import uuid
from pathlib import Path, PurePosixPath

from lab import cgroups
from lab.backends.base import NODE_DATA_DIR, NODE_IMAGE, Backend, Node, NodeSpec, Stats
from lab.backends.docker_engine import (
    IMAGE_PYTHON,
    LABEL_LAB,
    LABEL_NODE,
    LABEL_NODE_CGROUP,
    LABEL_ROLE,
    ContainerError,
    cleanup_lab,
    container_name,
    delegated_cgroup_kwargs,
    docker_client,
    docker_errors,
    limit_kwargs,
    node_labels,
    resolve_python,
    wait_running,
)
from lab.backends.docker_exec import EXEC_WRAPPER, ContainerProcess
from lab.cgroups import Cgroup

# Run inside the node by stop(): SIGTERM to every process but tini (PID 1), its idle
# child and this shell, then wait up to $WAIT seconds for them to exit.
_TERM_SERVICES = r"""
skip() {
  [ "$1" = 1 ] && return 0
  [ "$1" = $$ ] && return 0
  ppid=$(cut -d' ' -f4 /proc/$1/stat 2>/dev/null) || return 0
  [ "$ppid" = $$ ] && return 0
  [ "$ppid" = 1 ] && [ "$(cat /proc/$1/comm 2>/dev/null)" = sleep ] && return 0
  return 1
}
others() { for d in /proc/[0-9]*; do p=${d#/proc/}; skip "$p" || echo "$p"; done; }
for p in $(others); do kill -TERM "$p" 2>/dev/null; done
i=0
while [ -n "$(others)" ] && [ $i -lt $((WAIT * 10)) ]; do sleep 0.1; i=$((i + 1)); done
"""


# ---- the node -----------------------------------------------------------------------


class ContainerNode(Node):
    kind = "container"
    python = IMAGE_PYTHON

    def __init__(
        self,
        spec: NodeSpec,
        client,
        container_id: str,
        volume: str | None = None,
        node_cgroup: str | None = None,
    ):
        super().__init__(spec)
        self.client = client
        self.container_id = container_id
        self.volume = volume
        # The node's own cgroup (relative path): parent of its containers' cgroups and
        # holder of the node's limits, made by racklab, delegated to the node (see
        # delegated_cgroup_kwargs). None where Docker cannot nest containers under a
        # cgroup of ours (the systemd driver): the container's own cgroup is the node's.
        self.node_cgroup = node_cgroup

    # docker objects
    def container(self, ident: str | None = None):
        return self.client.containers.get(ident or self.container_id)

    def _init_pid(self, ident: str | None = None) -> int | None:
        try:
            pid = self.client.api.inspect_container(ident or self.container_id)["State"]["Pid"]
        except Exception:
            return None
        return pid or None

    def _state(self) -> dict:
        return self.client.api.inspect_container(self.container_id)["State"]

    def alive(self) -> bool:
        try:
            return bool(self._state().get("Running"))
        except docker_errors().NotFound:
            return False  # removed behind racklab's back

    def _exec_target(self) -> str:
        """The container commands run in (a pod overrides this with its infra container)."""
        return self.container_id

    # lifecycle
    def start(self) -> None:
        state = self._state()
        if state.get("Paused"):
            self.resume()
        elif not state.get("Running"):
            self.container().start()

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM to every process in the node, then stop the container.

        `docker stop` alone signals only tini, whose one child is the idle `sleep`:
        it exits at once and the kernel SIGKILLs everything else in the PID namespace,
        so services started with exec would never see their SIGTERM."""
        state = self._state()
        if not state.get("Running"):
            return
        if state.get("Paused"):
            self.resume()  # a frozen process cannot hear SIGTERM
        # (an image without a shell fails here: Docker's own stop is then all there is)
        self.exec(
            ["/bin/sh", "-c", _TERM_SERVICES], timeout=timeout + 5, env={"WAIT": str(int(timeout))}
        )
        self.container().stop(timeout=int(timeout))

    def kill(self, sig: int = _signal.SIGKILL) -> None:
        state = self._state()
        if not state.get("Running"):
            return
        if state.get("Paused"):
            self.container().unpause()  # frozen processes take no signal, not even SIGKILL
        self.container().kill(signal=int(sig))
        if sig == _signal.SIGKILL:
            self.container().wait(timeout=30)

    def pause(self) -> None:
        if not self._state().get("Paused"):
            self.container().pause()

    def resume(self) -> None:
        if self._state().get("Paused"):
            self.container().unpause()

    def destroy(self) -> None:
        import docker.errors

        try:
            self.container().remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        if self.volume:
            try:
                self.client.volumes.get(self.volume).remove(force=True)
            except docker.errors.NotFound:
                pass
        if self.node_cgroup:
            _remove_node_cgroup(self.spec.lab, self.node_cgroup)

    # commands and files
    def popen(self, argv: list[str], **kwargs) -> ContainerProcess:
        """``docker exec -i`` in a subprocess: streams like any local process.

        Accepts subprocess.Popen's kwargs; ``env`` adds variables inside the node
        (not the host's environment), ``cwd`` is a directory inside the node.
        """
        env = kwargs.pop("env", None) or {}
        cwd = kwargs.pop("cwd", None)
        user = kwargs.pop("user", None)
        target = self._exec_target()
        token = uuid.uuid4().hex
        cmd = ["docker", "exec", "-i", "-e", f"RACKLAB_EXEC_TOKEN={token}"]
        if kwargs.pop("tty", False):
            cmd.append("-t")
        for key, value in env.items():
            cmd += ["-e", f"{key}={value}"]
        if cwd:
            cmd += ["-w", str(cwd)]
        if user:
            cmd += ["-u", str(user)]
        cmd += [target, "/bin/sh", "-c", EXEC_WRAPPER, "sh", *resolve_python(list(argv))]
        return ContainerProcess(cmd, node=self, container=target, token=token, **kwargs)

    def command_prefix(self) -> list[str]:
        """What `lab shell` puts before a command to run it in this node."""
        return ["docker", "exec", "-it", "-e", f"PS1=[{self.name}] \\w# ", self._exec_target()]

    def testinfra_host(self):
        """testinfra's own Docker backend on the container commands run in."""
        import testinfra

        return testinfra.get_host(f"docker://{self._exec_target()}")

    # services: each runs detached through the Docker API (no `docker exec` client left
    # on the host per service), output appended to a log file under the data dir.
    def start_service(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> dict:
        log = f"{NODE_DATA_DIR}/logs/{name}.log"
        script = 'mkdir -p "${0%/*}"; exec "$@" >>"$0" 2>&1 </dev/null'
        exec_id = self.client.api.exec_create(
            self._exec_target(),
            ["/bin/sh", "-c", script, log, *resolve_python(list(argv))],
            environment=env or {},
            workdir=NODE_DATA_DIR,
        )["Id"]
        self.client.api.exec_start(exec_id, detach=True)
        pid = 0
        deadline = time.monotonic() + 10
        while not pid and time.monotonic() < deadline:
            info = self.client.api.exec_inspect(exec_id)
            pid = info.get("Pid") or 0
            if not pid and not info.get("Running") and info.get("ExitCode") is not None:
                break
            time.sleep(0.02)
        return {"exec": exec_id, "pid": pid or None, "log": log}

    def service_running(self, name: str, info: dict) -> bool:
        import docker.errors

        try:
            return bool(self.client.api.exec_inspect(info["exec"])["Running"])
        except (docker.errors.NotFound, KeyError):
            return False  # the container restarted since: its execs are gone

    def stop_service(self, name: str, info: dict, timeout: float = 10) -> None:
        pid = info.get("pid")
        if not pid or not self.service_running(name, info):
            return
        os.kill(pid, _signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.service_running(name, info) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.service_running(name, info):
            os.kill(pid, _signal.SIGKILL)

    def kill_service(self, name: str, info: dict) -> str:
        """SIGKILL the service's process from the host (an exec has no restart policy:
        it stays down until start_service)."""
        pid = info.get("pid")
        if pid and self.service_running(name, info):
            try:
                os.kill(pid, _signal.SIGKILL)
            except ProcessLookupError:
                pass
        return "SIGKILL"

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        import docker.errors

        p = PurePosixPath(path)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(p.name)
            info.size = len(data)
            info.mode = mode
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
        container = self.container(self._exec_target())
        try:
            ok = container.put_archive(str(p.parent), buf.getvalue())
        except docker.errors.NotFound:
            ok = False
        if not ok:
            self.exec(["mkdir", "-p", str(p.parent)]).check()
            container.put_archive(str(p.parent), buf.getvalue())

    def get_file(self, path: str) -> bytes:
        import docker.errors

        try:
            stream, _ = self.container(self._exec_target()).get_archive(path)
        except docker.errors.NotFound:
            raise FileNotFoundError(f"{self.name}:{path}") from None
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            if member is None or not member.isfile():
                raise IsADirectoryError(f"{self.name}:{path} is not a regular file")
            f = tar.extractfile(member)
            assert f is not None
            return f.read()

    def logs(self, tail: int | str = "all") -> str:
        """The container's own output, then every service log under /srv/node/logs,
        each line prefixed with the service's name (as a pod's logs are)."""
        import docker.errors

        parts = self.container().logs(tail=tail).decode(errors="replace").splitlines()
        try:
            stream, _ = self.container(self._exec_target()).get_archive(f"{NODE_DATA_DIR}/logs")
        except docker.errors.NotFound:
            stream = None
        if stream is not None:
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                for member in sorted(
                    (m for m in tar.getmembers() if m.isfile()), key=lambda m: m.name
                ):
                    f = tar.extractfile(member)
                    lines = f.read().decode(errors="replace").splitlines() if f else []
                    if isinstance(tail, int):
                        lines = lines[-tail:]
                    name = PurePosixPath(member.name).name.removesuffix(".log")
                    parts += [f"{name} | {line}" for line in lines]
        return "\n".join(parts) + ("\n" if parts else "")

    # where other layers plug in
    def netns(self) -> str:
        pid = self._init_pid(self._exec_target())
        if not pid:
            raise ContainerError(f"node {self.name} is not running (no network namespace)")
        return f"/proc/{pid}/ns/net"

    def _cgroup(self, ident: str | None = None) -> Cgroup | None:
        pid = self._init_pid(ident)
        return Cgroup.of_pid(pid) if pid else None

    def cgroup(self) -> str:
        if self.node_cgroup:
            return self.node_cgroup
        cg = self._cgroup()
        return cg.rel if cg is not None else ""

    def _limit_cgroups(self) -> list[Cgroup]:
        """The cgroups holding the node's limits, innermost first: Docker's own for
        the container and, where racklab nests it, the node's cgroup above it."""
        inner = self._cgroup()
        outer = Cgroup(self.node_cgroup) if self.node_cgroup else None
        return [cg for cg in (inner, outer) if cg is not None and cg.exists()]

    def set_limits(self, cpus: float | None = None, memory: int | None = None) -> None:
        cgs = self._limit_cgroups()
        if cpus is not None and cgs:
            # cgroup v1 refuses a parent's CFS quota below a child's: going down, the
            # container's goes first; going up, the node's
            now = cgs[-1].limits()["cpus"]
            down = now is None or (cpus > 0 and cpus < now)
            for cg in cgs if down else reversed(cgs):
                cg.set_cpus(cpus)
        if memory is not None:
            for cg in cgs:
                cg.set_memory(memory)

    def restore_limits(self) -> None:
        cgs = self._limit_cgroups()
        for cg in reversed(cgs):  # up again: the node's first
            cg.set_cpus(self.spec.cpus)
        for cg in cgs:
            cg.set_memory(self.spec.memory)

    def stats(self) -> Stats:
        # the node's cgroup, when it has one, also counts what the node's services
        # made under it (YARN containers); while the container runs
        cg = self._cgroup()
        if cg is not None and self.node_cgroup and Cgroup(self.node_cgroup).exists():
            cg = Cgroup(self.node_cgroup)
        if cg is not None:
            return cg.summary()
        # Not running: the cgroup is gone, but Docker remembers an OOM kill.
        try:
            state = self._state()
        except docker_errors().NotFound:
            return Stats(pids=0)
        return Stats(oom_kills=1 if state.get("OOMKilled") else 0, pids=0)

    def describe(self) -> dict:
        try:
            info = self.client.api.inspect_container(self.container_id)
        except docker_errors().NotFound:
            # removed behind racklab's back (docker rm -f): say so, `lab down` still cleans up
            return {
                **super().describe(),
                "container": self.container_id,
                "status": "missing",
                "running": False,
            }
        state = info["State"]
        return {
            **super().describe(),
            "container": info["Id"],
            "container_name": info["Name"].lstrip("/"),
            "image": info["Config"]["Image"],
            "pid": state.get("Pid") or None,
            "status": state.get("Status"),
            "running": bool(state.get("Running")),
            "paused": bool(state.get("Paused")),
            # Docker flags an OOM only when it killed the container's init; the cgroup
            # counts every OOM kill inside (a service or a command run in the node).
            "oom_killed": bool(state.get("OOMKilled")),
            "oom_kills": self.stats().oom_kills
            if state.get("Running")
            else int(bool(state.get("OOMKilled"))),
            "exit_code": state.get("ExitCode"),
            "volume": self.volume,
            "node_cgroup": self.node_cgroup,
        }


def _remove_node_cgroup(lab: str, rel: str) -> None:
    """A node's own cgroup, with what its services made under it, and the lab's when
    that leaves it empty (racklab made it for the lab's nodes)."""
    cg = Cgroup(rel)
    if cg.exists():
        cg.remove()
    lab_cg = cgroups.lab_cgroup(lab)
    if lab_cg.exists() and not any(p.is_dir() for d in lab_cg.dirs() for p in d.iterdir()):
        lab_cg.remove()


# ---- the backend --------------------------------------------------------------------


def _address(addr: str) -> str:
    return addr.split("/", 1)[0]


_image_lock = threading.Lock()
_ensured_image: str | None = None


class ContainerBackend(Backend):
    kind = "container"
    node_class = ContainerNode
    graph_shape = "box3d"
    host_packages = ("docker.io",)
    host_daemons = (("docker", "dockerd", "dockerd"),)
    host_image = NODE_IMAGE

    @classmethod
    def with_sent_image(cls, sent=None) -> Backend:
        # the controller streamed the node image into the host's engine: never build
        return cls(build_missing=False)

    def __init__(self, client=None, image: str | None = None, build_missing: bool = True):
        """image: the node image to use when a node names none (default: the image
        `lab images build` makes, rebuilt first when racklab's source changed)."""
        self._client = client
        self._image = image
        self.build_missing = build_missing

    @property
    def client(self):
        if self._client is None:
            self._client = docker_client()
        return self._client

    def prepare(self, specs: list[NodeSpec], progress=lambda msg: None) -> None:
        self.client  # noqa: B018 - an engine that does not answer says so first, in its words
        if self._image is None and any(s.image is None for s in specs):
            progress("node image (built once, then cached)")
            self._node_image(progress=False)

    def facts(self) -> dict:
        return {
            "docker": self.client.version()["Version"],
            "image": self._image or _ensured_image,
        }

    def _node_image(self, progress: bool = True) -> str:
        """racklab's node image, ensured once per process: the orchestrator creates
        nodes from several threads, and container and pod nodes of one lab must run
        the same image."""
        from lab.images import NODE_LATEST, ensure_node_image

        global _ensured_image
        with _image_lock:
            if _ensured_image is None:
                _ensured_image = (
                    ensure_node_image(progress=progress) if self.build_missing else NODE_LATEST
                )
            return _ensured_image

    def image_for(self, spec: NodeSpec) -> str:
        """The image for ``spec``, which must already be in the engine: nothing can be
        pulled here, and Docker's attempt would only end in a registry error."""
        import docker.errors

        image = spec.image or self._image
        if image is None:
            image = self._image = self._node_image()
        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound:
            raise ContainerError(
                f"node {spec.name}: image {image!r} is not in the Docker engine "
                "(nothing can be pulled here; `lab images build` makes racklab's image)"
            ) from None
        return image

    def _data_mount(self, spec: NodeSpec) -> tuple[dict, str | None]:
        """/srv/node: a bind of <state_dir>/data when the node has a state dir, else a
        labelled named volume (which cleanup removes)."""
        if str(spec.state_dir) not in ("", "."):
            data = Path(spec.state_dir) / "data"
            data.mkdir(parents=True, exist_ok=True)
            return {str(data.resolve()): {"bind": NODE_DATA_DIR, "mode": "rw"}}, None
        name = container_name(spec.lab, spec.name) + "-data"
        self.client.volumes.create(name=name, labels=node_labels(spec, "data"))
        return {name: {"bind": NODE_DATA_DIR, "mode": "rw"}}, name

    def run_kwargs(self, spec: NodeSpec, role: str) -> tuple[dict, str | None]:
        volumes, volume = self._data_mount(spec)
        kw = dict(
            image=self.image_for(spec),
            name=container_name(spec.lab, spec.name),
            hostname=spec.name,
            network_mode="none",
            # /etc/hosts: Docker writes the file and adds these entries even with no network.
            extra_hosts={name: _address(addr) for name, addr in spec.hosts.items() if addr},
            labels=node_labels(spec, role),
            volumes=volumes,
            working_dir=NODE_DATA_DIR,
            detach=True,
            stdin_open=False,
            **limit_kwargs(spec.cpus, spec.memory, spec.pids, spec.io_bps, Path(spec.state_dir)),
        )
        return kw, volume

    def _nests_cgroups(self) -> bool:
        """Docker's cgroupfs driver puts a container under any cgroup_parent path we
        name; the systemd driver only under systemd slices, which we do not make."""
        if not hasattr(self, "_driver"):
            self._driver = self.client.info().get("CgroupDriver", "")
        return self._driver == "cgroupfs"

    def _make_node_cgroup(self, spec: NodeSpec) -> str | None:
        """The node's own cgroup with its limits, which its containers go under (as
        Kubernetes makes one per pod); None with the systemd driver."""
        if not self._nests_cgroups():
            return None
        cg = cgroups.node_cgroup(spec.lab, spec.name).create()
        cg.set_cpus(spec.cpus)
        cg.set_memory(spec.memory)
        cg.set_pids(spec.pids)
        return cg.rel

    def remove_stale(self, spec: NodeSpec) -> None:
        """Remove what an earlier incarnation of this node left (a crash before `lab
        down`): its name would clash, and its data volume must not leak into the new
        node. The orchestrator creates a node only for a lab that is not up."""
        import docker.errors

        selector = {"label": [f"{LABEL_LAB}={spec.lab}", f"{LABEL_NODE}={spec.name}"]}
        stale = self.client.containers.list(all=True, filters=selector)
        stale.sort(key=lambda c: c.labels.get(LABEL_ROLE) != "service")  # services first
        for c in stale:
            try:
                c.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
        for v in self.client.volumes.list(filters=selector):
            try:
                v.remove(force=True)
            except docker.errors.NotFound:
                pass

    def create(self, spec: NodeSpec) -> ContainerNode:
        self.remove_stale(spec)
        kw, volume = self.run_kwargs(spec, "node")
        node_cgroup = self._make_node_cgroup(spec)
        if node_cgroup:
            # the container keeps Docker's limits too; the node's cgroup holds them for
            # the container and what the node's services make beside it
            kw["cgroup_parent"] = "/" + node_cgroup
            kw["labels"][LABEL_NODE_CGROUP] = node_cgroup
            delegated = delegated_cgroup_kwargs(node_cgroup)
            kw["volumes"] = {**kw["volumes"], **delegated.pop("volumes")}
            kw.update(delegated)
        return self._run(spec, kw, volume, node_cgroup, f"node {spec.name}", "the container")

    def _run(self, spec: NodeSpec, kw: dict, volume, node_cgroup, who: str, what: str):
        """Run the node's (or pod's infra) container and wait until it runs; if Docker
        refuses, remove its volume and cgroup again and say why."""
        import docker.errors

        try:
            container = self.client.containers.run(**kw)
        except docker.errors.APIError as exc:
            if volume:
                self.client.volumes.get(volume).remove(force=True)
            if node_cgroup:
                Cgroup(node_cgroup).remove()
            raise ContainerError(
                f"{who}: docker could not start {what}: {exc.explanation or exc}"
            ) from exc
        node = self.node_class(spec, self.client, container.id, volume, node_cgroup)
        wait_running(node, container.id)
        return node

    def attach(self, spec: NodeSpec, saved: dict) -> ContainerNode:
        return ContainerNode(
            spec, self.client, saved["container"], saved.get("volume"), saved.get("node_cgroup")
        )

    def engine_answers(self) -> bool:
        try:
            self.client  # noqa: B018 (connects)
        except ContainerError:
            return False
        return True

    def cleanup(self, lab: str, labid: str) -> list[str]:
        """Safe to call for any lab, also with no Docker engine (then nothing of the
        lab can exist in one), so `lab clean NAME` may always try this kind."""
        if not self.engine_answers():
            return []
        # the nodes' cgroups are named on the containers: read them before removing those
        selector = {"label": [f"{LABEL_LAB}={lab}", LABEL_NODE_CGROUP]}
        node_cgroups = {
            c.labels[LABEL_NODE_CGROUP]
            for c in self.client.containers.list(all=True, filters=selector)
        }
        removed = cleanup_lab(self.client, lab)
        lab_cg = cgroups.lab_cgroup(lab)
        if lab_cg.exists():
            # a node whose container went behind racklab's back left no label to find
            # its cgroup by: the lab's node cgroups that hold no process go too (the
            # lab is being removed; a live namespace node's cgroup holds its init)
            for d in lab_cg.dirs()[:1]:
                node_cgroups |= {
                    lab_cg.child(p.name).rel
                    for p in d.iterdir()
                    if p.is_dir() and not lab_cg.child(p.name).pids()
                }
        for rel in sorted(node_cgroups):
            cg = Cgroup(rel)
            if cg.exists():
                cg.remove()  # with whatever the node's services made under it
                removed.append(f"cgroup {rel}")
        if (
            node_cgroups
            and lab_cg.exists()
            and not any(p.is_dir() for d in lab_cg.dirs() for p in d.iterdir())
        ):
            lab_cg.remove()  # made for these nodes alone (namespace nodes live in it too)
        return removed
