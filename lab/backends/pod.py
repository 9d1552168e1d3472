"""The `pod` node: the Kubernetes pod model on Docker.

An infra container (the image's tini, doing nothing but hold the namespaces, as
Kubernetes' "pause" container does) owns the pod's network, IPC and PID namespaces,
and its host name. (Docker accepts no "container:" UTS mode, unlike Podman: a
container joined to another's network gets a copy of its host name and /etc/hosts
but a UTS namespace of its own, so a `hostname` run in one service would not show
in the others.) Each service runs in a container of its own that joins them, with its
own limits and restart policy: when a service's process dies, Docker restarts
that container only, and the others keep running with the same process ids.

Limits: as Kubernetes makes a cgroup per pod, the pod gets racklab/<lab>/<node>,
which holds the node's limits (cpus, memory, pids) and has every container of the
pod nested under it; a service's own limits apply within. Docker's systemd cgroup
driver cannot nest a container under a cgroup we make, so there the node's limits
become each service's default limits instead.

The rack network plugs the infra container in (``netns()``), so every service in
the pod shares one address, as in Kubernetes. Files: service containers share only
the /srv/node data mount with the infra container (Kubernetes shares volumes, not
root filesystems), so ``put_file`` writes into the infra container and every
service container, present and later ones.
"""

from __future__ import annotations

import io
import os
import signal as _signal
import tarfile
import time
from dataclasses import dataclass
from pathlib import PurePosixPath

from lab import cgroups
from lab.backends.base import NODE_DATA_DIR, NodeSpec, Stats
from lab.backends.container import ContainerBackend, ContainerNode
from lab.backends.docker_engine import (
    LABEL_LAB,
    LABEL_NODE,
    LABEL_NODE_CGROUP,
    LABEL_ROLE,
    ContainerError,
    container_name,
    delegated_cgroup_kwargs,
    docker_errors,
    limit_kwargs,
    resolve_python,
    wait_running,
)

LABEL_SERVICE = "racklab.service"
LABEL_RESTART = "racklab.restart"  # the policy to put back when a stopped pod starts again
RESTART_POLICIES = ("always", "on-failure", "unless-stopped", "no")


@dataclass
class PodService:
    name: str
    container_id: str
    pid: int | None  # host pid of the service's process (None when not running)
    status: str
    restart_count: int
    oom_killed: bool
    exit_code: int | None


def _tar(files: dict[str, tuple[bytes, int]]) -> dict[str, bytes]:
    """One tar per target directory (Docker's put_archive extracts into one directory)."""
    by_dir: dict[str, list[tuple[str, bytes, int]]] = {}
    for path, (data, mode) in files.items():
        p = PurePosixPath(path)
        by_dir.setdefault(str(p.parent), []).append((p.name, data, mode))
    out = {}
    for directory, items in by_dir.items():
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data, mode in items:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = mode
                info.mtime = int(time.time())
                tar.addfile(info, io.BytesIO(data))
        out[directory] = buf.getvalue()
    return out


# The service's output goes to its log file under the shared data mount, as on every kind.
_LOG_WRAPPER = 'mkdir -p "${0%/*}"; exec "$@" >>"$0" 2>&1 </dev/null'


class PodNode(ContainerNode):
    kind = "pod"

    def __init__(
        self,
        spec: NodeSpec,
        client,
        container_id: str,
        volume: str | None = None,
        pod_cgroup: str | None = None,
    ):
        # the pod's own cgroup is the node's (ContainerNode.node_cgroup), as Kubernetes
        # makes one per pod
        super().__init__(spec, client, container_id, volume, pod_cgroup)
        self._files: dict[str, tuple[bytes, int]] = {}  # put_file'd paths, for later services

    @property
    def pod_cgroup(self) -> str | None:
        return self.node_cgroup

    # the infra container is the node's container: exec, netns and the data mount
    # all go through it; services are looked up by label.
    def _service_containers(self) -> list:
        return self.client.containers.list(
            all=True,
            filters={
                "label": [
                    f"{LABEL_LAB}={self.spec.lab}",
                    f"{LABEL_NODE}={self.spec.name}",
                    f"{LABEL_ROLE}=service",
                ]
            },
        )

    def _service(self, name: str):
        for c in self._service_containers():
            if c.labels.get(LABEL_SERVICE) == name:
                return c
        raise KeyError(f"pod {self.name} has no service {name!r}")

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Into the infra container and every service container, present and future
        (the orchestrator writes a service's config files before starting it)."""
        super().put_file(path, data, mode)
        self._files[path] = (data, mode)
        for c in self._service_containers():
            self._put(c, {path: (data, mode)})

    def start_service(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        *,
        files: dict[str, str | bytes] | None = None,
        cpus: float | None = None,
        memory: int | None = None,
        pids: int | None = None,
        restart: str = "always",
        max_retries: int = 0,
    ) -> dict:
        """Run ``argv`` as the pod's service ``name`` in a container joined to the pod.

        Its output goes to /srv/node/logs/<name>.log as on every node kind.
        restart: Docker's restart policy for this service ("always", "on-failure",
        "unless-stopped", "no"); max_retries caps "on-failure" (0 = no cap).
        cpus/memory/pids: this service's limits (default: the node's).
        """
        import docker.errors

        if restart not in RESTART_POLICIES:
            raise ValueError(
                f"restart policy must be one of {', '.join(RESTART_POLICIES)}, not {restart!r}"
            )
        infra = self.container_id
        argv = resolve_python(list(argv))
        log = f"{NODE_DATA_DIR}/logs/{name}.log"
        if self.pod_cgroup is None:
            # no pod cgroup to hold the node's limits: each service gets them instead
            cpus = cpus if cpus is not None else self.spec.cpus
            memory = memory if memory is not None else self.spec.memory
            pids = pids if pids is not None else self.spec.pids
        extra, delegated = {}, {}
        if self.pod_cgroup:
            # each service sits in the pod's cgroup and may make cgroups under it
            delegated = delegated_cgroup_kwargs(self.pod_cgroup)
            extra = {"cgroup_parent": "/" + self.pod_cgroup}
            if "cgroupns" in delegated:
                extra["cgroupns"] = delegated["cgroupns"]
        policy = {"Name": restart}
        if restart == "on-failure" and max_retries:
            policy["MaximumRetryCount"] = max_retries
        info = self.client.api.inspect_container(infra)
        labels = {
            **{k: v for k, v in info["Config"]["Labels"].items() if k.startswith("racklab.")},
            LABEL_ROLE: "service",
            LABEL_SERVICE: name,
            LABEL_RESTART: restart if restart != "on-failure" else f"on-failure:{max_retries}",
        }
        try:
            container = self.client.containers.create(
                image=info["Config"]["Image"],
                name=f"{info['Name'].lstrip('/')}-{name}",
                # argv[0] runs directly: the infra's tini is the pod's PID 1 and reaps orphans,
                # as the pause container does in Kubernetes.
                entrypoint=["/bin/sh", "-c", _LOG_WRAPPER, log],
                command=argv,
                environment=env or {},
                network_mode=f"container:{infra}",  # also shares UTS: hostname and /etc/hosts
                ipc_mode=f"container:{infra}",
                pid_mode=f"container:{infra}",
                volumes={
                    **{
                        m["Source"] if m["Type"] == "bind" else m["Name"]: {
                            "bind": m["Destination"],
                            "mode": "rw",
                        }
                        for m in info["Mounts"]
                        if m["Destination"] == NODE_DATA_DIR
                    },
                    **delegated.get("volumes", {}),
                },
                working_dir=NODE_DATA_DIR,
                labels=labels,
                restart_policy=policy,
                **limit_kwargs(cpus, memory, pids),
                **extra,
            )
        except docker.errors.APIError as exc:
            raise ContainerError(
                f"pod {self.name}: service {name}: {exc.explanation or exc}"
            ) from exc
        wanted = dict(self._files)
        for path, content in (files or {}).items():
            wanted[path] = (content.encode() if isinstance(content, str) else content, 0o644)
        self._put(container, wanted)
        container.start()
        wait_running(self, container.id)
        svc = self._describe_service(container)
        return {"container": svc.container_id, "pid": svc.pid, "log": log, "restart": restart}

    def _put(self, container, files: dict[str, tuple[bytes, int]]) -> None:
        for directory, blob in _tar(files).items():
            # put_archive needs the directory to exist, and the container may not have
            # run yet: create it with a small archive of directories first.
            self._mkdirs(container, directory)
            container.put_archive(directory, blob)

    def _mkdirs(self, container, directory: str) -> None:
        parts = PurePosixPath(directory).parts[1:]
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for i in range(1, len(parts) + 1):
                info = tarfile.TarInfo("/".join(parts[:i]))
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
        if parts:
            container.put_archive("/", buf.getvalue())

    def _describe_service(self, container) -> PodService:
        info = self.client.api.inspect_container(container.id)
        state = info["State"]
        return PodService(
            name=info["Config"]["Labels"].get(LABEL_SERVICE, "?"),
            container_id=info["Id"],
            pid=state.get("Pid") or None,
            status=state.get("Status", "?"),
            restart_count=info.get("RestartCount", 0),
            oom_killed=bool(state.get("OOMKilled")),
            exit_code=state.get("ExitCode"),
        )

    def services(self) -> dict[str, PodService]:
        return {s.name: s for s in (self._describe_service(c) for c in self._service_containers())}

    def kill_service(self, name: str, info: dict | None = None) -> str:
        """SIGKILL the service's container through Docker: a manual kill, so its
        restart policy leaves it down until start_service (chaos's kill)."""
        try:
            self._service(name).kill()
        except KeyError:
            pass
        except docker_errors().APIError:
            if self.service_running(name):
                raise
        return "SIGKILL"

    def crash_service(self, name: str, sig: int = _signal.SIGKILL) -> None:
        """Signal the service's process from the host, as a crash would: Docker's
        restart policy then applies (a `docker kill` would count as a manual stop)."""
        svc = self._describe_service(self._service(name))
        if svc.pid:
            os.kill(svc.pid, sig)

    def stop_service(self, name: str, info: dict | None = None, timeout: float = 10) -> None:
        """A manual stop: Docker does not restart it."""
        try:
            self._service(name).stop(timeout=int(timeout))
        except KeyError:
            pass

    def service_running(self, name: str, info: dict | None = None) -> bool:
        try:
            return self._describe_service(self._service(name)).status == "running"
        except KeyError:
            return False

    def remove_service(self, name: str) -> None:
        self._service(name).remove(force=True)

    def service_logs(self, name: str) -> str:
        """The service's log file, on the data mount its container shares with the infra."""
        try:
            return self.get_file(f"{NODE_DATA_DIR}/logs/{name}.log").decode(errors="replace")
        except FileNotFoundError:
            return ""

    # lifecycle of the whole pod
    def start(self) -> None:
        super().start()  # the infra first: services join its namespaces
        for c in self._service_containers():
            c.reload()
            if c.status != "running":
                c.start()

    def stop(self, timeout: float = 10) -> None:
        self.resume()
        for c in self._service_containers():
            c.stop(timeout=int(timeout))  # a manual stop: restart policies stay quiet
        super().stop(timeout)

    def kill(self, sig: int = _signal.SIGKILL) -> None:
        self.resume()  # frozen processes take no signal, not even SIGKILL
        if sig != _signal.SIGKILL:
            # a signal for the pod reaches every service, as `kill` of a node would
            for c in self._service_containers():
                c.reload()
                if c.status == "running":
                    c.kill(signal=int(sig))
            return
        # The infra's death empties the PID namespace and so kills every service; their
        # containers then exit and Docker counts that as a manual kill only for a
        # `docker kill`, so kill them through the API first to keep them down.
        for c in self._service_containers():
            c.reload()
            if c.status in ("running", "restarting"):
                try:
                    c.kill()
                except Exception:
                    pass
        super().kill(sig)

    def pause(self) -> None:
        for c in self._service_containers():
            c.reload()
            if c.status == "running":
                c.pause()
        super().pause()

    def resume(self) -> None:
        super().resume()
        for c in self._service_containers():
            c.reload()
            if c.status == "paused":
                c.unpause()

    def destroy(self) -> None:
        for c in self._service_containers():
            c.remove(force=True, v=True)
        super().destroy()

    def logs(self, tail: int | str = "all") -> str:
        """Each service's log, lines prefixed with its name; Docker's own log of a
        service container (the wrapper's errors, e.g. a command not found) follows."""
        parts = []
        for c in self._service_containers():
            name = c.labels.get(LABEL_SERVICE, c.name)
            text = self.service_logs(name) + c.logs(tail=tail).decode(errors="replace")
            lines = text.splitlines()
            if isinstance(tail, int):
                lines = lines[-tail:]
            parts += [f"{name} | {line}" for line in lines]
        return "\n".join(parts) + ("\n" if parts else "")

    def cgroup(self) -> str:
        return self.pod_cgroup or super().cgroup()

    def _limit_cgroups(self) -> list[cgroups.Cgroup]:
        """The pod's cgroup alone: its containers have no limits of their own (without
        one, the infra container's cgroup, as for any node)."""
        cg = cgroups.Cgroup(self.cgroup()) if self.cgroup() else None
        return [cg] if cg is not None and cg.exists() else []

    def stats(self) -> Stats:
        """The pod's total: its cgroup's (which counts every container in it), or the
        sum over the infra and every running service container."""
        if self.pod_cgroup:
            cg = cgroups.Cgroup(self.pod_cgroup)
            if cg.exists():
                s = cg.summary()
                # cgroup v1 counts an OOM kill in the victim's cgroup, which goes with its
                # container: add the kills Docker remembers on exited service containers.
                gone = sum(
                    1
                    for svc in self.services().values()
                    if svc.status != "running" and svc.oom_killed
                )
                s.oom_kills = (s.oom_kills or 0) + gone
                return s
        total = super().stats()
        for c in self._service_containers():
            pid = self.client.api.inspect_container(c.id)["State"].get("Pid")
            cg = cgroups.Cgroup.of_pid(pid) if pid else None
            if cg is not None:
                total = total + cg.summary()
        return total

    def describe(self) -> dict:
        return {
            **super().describe(),
            "pod_cgroup": self.pod_cgroup,
            "services": {n: vars(s) for n, s in self.services().items()},
        }


class PodBackend(ContainerBackend):
    kind = "pod"
    graph_shape = "folder"
    node_class = PodNode

    def run_kwargs(self, spec: NodeSpec, role: str) -> tuple[dict, str | None]:
        kw, volume = super().run_kwargs(spec, role)
        # The node's limits belong to the pod cgroup (or, without one, are each
        # service's default limits); the infra container only holds namespaces.
        for key in ("nano_cpus", "mem_limit", "memswap_limit", "pids_limit"):
            kw.pop(key, None)
        kw["ipc_mode"] = "shareable"
        kw["name"] = container_name(spec.lab, spec.name)
        return kw, volume

    def create(self, spec: NodeSpec) -> PodNode:
        self.remove_stale(spec)
        kw, volume = self.run_kwargs(spec, "infra")
        pod_cgroup = self._make_node_cgroup(spec)
        if pod_cgroup:
            kw["cgroup_parent"] = "/" + pod_cgroup
            kw["labels"][LABEL_NODE_CGROUP] = pod_cgroup
        return self._run(spec, kw, volume, pod_cgroup, f"pod {spec.name}", "the infra container")

    def attach(self, spec: NodeSpec, saved: dict) -> PodNode:
        return PodNode(
            spec, self.client, saved["container"], saved.get("volume"), saved.get("pod_cgroup")
        )
