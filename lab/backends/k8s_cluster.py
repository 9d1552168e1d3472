"""A `k8s` node on a real cluster, through the official `kubernetes` client.

One pod per node (lab/backends/k8s_pod.py) in a namespace of the lab's own
(`racklab-<lab>` unless the file names one); readiness by a watch that resumes after
410 Gone; commands through the exec stream, each on an ApiClient of its own (the
stream replaces the client's request method while it runs, so it must not share one
with other calls); files as tar over exec; a killed node is a deleted pod, booted
again by creating it anew. `lab down` deletes the namespace and waits until it is
gone.

The rack network: racklab's bridges cannot reach a cluster's pods, so the pods carry
it themselves (lab/backends/k8s_overlay.py): a router pod per lab, VXLAN from each
node pod to it over the cluster's pod network, and this machine's way in through the
API server's port-forward to the router pod. The same wiring runs in podman here
(`k8s: {network: overlay}`); this module's API calls were not run against a cluster
on the machines it was written on: none can be reached or started there.
tests/k8s/test_cluster.py runs it when RACKLAB_KUBECONFIG names one.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import signal as _signal
import subprocess
import tarfile
import time
from pathlib import Path, PurePosixPath

from lab.backends import k8s_overlay
from lab.backends.base import NODE_DATA_DIR, Backend, ExecResult, Node, NodeError, NodeSpec, Stats
from lab.backends.k8s_pod import CONTAINER, KILL_SERVICE, LABEL_LAB, pod_name, pod_object

SERVICE_PID_DIR = "/run/racklab/services"
_SERVICE = (
    f'mkdir -p {SERVICE_PID_DIR} "${{1%/*}}" && echo $$ > {SERVICE_PID_DIR}/"$0".new'
    f' && mv {SERVICE_PID_DIR}/"$0".new {SERVICE_PID_DIR}/"$0".pid'
    ' && log="$1" && shift && exec "$@" >>"$log" 2>&1 </dev/null'
)
CHUNK = 48 * 1024  # bytes of a file per exec (base64 in argv stays well under ARG_MAX)
SETTINGS_FILE = "k8s-cluster.json"  # in the lab's state dir: how `lab down` finds the cluster
PULL_ERRORS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName")


class ClusterError(NodeError):
    pass


def lab_dir(lab: str) -> Path:
    # the lab's state directory as DESIGN.md names it (the orchestrator owns it; a
    # backend only drops its own settings file there)
    return Path(os.environ.get("RACKLAB_HOME", "/var/lib/racklab")) / lab


def namespace_of(conf: dict, lab: str) -> str:
    return conf.get("namespace") or f"racklab-{lab}"


def api_client(conf: dict):
    """A fresh ApiClient for the kubeconfig (and context) in ``conf``."""
    from kubernetes import config

    try:
        return config.new_client_from_config(
            config_file=os.path.expanduser(conf["kubeconfig"]), context=conf.get("context")
        )
    except Exception as exc:  # the client raises several types for a bad file
        raise ClusterError(f"cannot use kubeconfig {conf['kubeconfig']}: {exc}") from exc


def _core(conf: dict):
    from kubernetes import client

    return client.CoreV1Api(api_client(conf))


def wait_ready(core, namespace: str, name: str, timeout: float = 300) -> dict:
    """Watch the pod until it is Ready; resumes after 410 Gone (an expired resource
    version) from a fresh list. Returns the pod as a dict."""
    from kubernetes import watch
    from kubernetes.client.rest import ApiException

    deadline = time.monotonic() + timeout
    version = None
    while time.monotonic() < deadline:
        w = watch.Watch()
        try:
            for event in w.stream(
                core.list_namespaced_pod,
                namespace,
                field_selector=f"metadata.name={name}",
                resource_version=version,
                timeout_seconds=max(1, int(deadline - time.monotonic())),
            ):
                if event["type"] == "ERROR":
                    if event["raw_object"].get("code") == 410:
                        version = None
                        break
                    raise ClusterError(f"pod {name}: watch failed: {event['raw_object']}")
                pod = event["object"]
                version = pod.metadata.resource_version
                _refuse_failed(pod)
                conditions = pod.status.conditions or []
                if any(c.type == "Ready" and c.status == "True" for c in conditions):
                    w.stop()
                    return pod.to_dict()
        except ApiException as exc:
            if exc.status == 410:  # Gone: start again from a fresh list
                version = None
                continue
            raise ClusterError(f"pod {name}: {exc.reason}") from exc
    raise ClusterError(f"pod {name} in {namespace} not ready after {timeout:.0f} s")


def _refuse_failed(pod) -> None:
    name = pod.metadata.name
    if pod.status.phase in ("Failed", "Succeeded"):
        raise ClusterError(f"pod {name} ended ({pod.status.phase}) before it was ready")
    for cs in pod.status.container_statuses or []:
        waiting = cs.state.waiting if cs.state else None
        if waiting is not None and waiting.reason in PULL_ERRORS:
            raise ClusterError(
                f"pod {name}: the cluster cannot pull {cs.image} ({waiting.reason}); push "
                "racklab's image to a registry it reaches (`docker tag` and `docker push` "
                "racklab/node:latest) and name it in the topology's image:"
            )


class ClusterNode(Node):
    kind = "k8s"
    python = "/usr/bin/python3"

    def __init__(self, spec: NodeSpec, conf: dict, namespace: str, supernet: str | None = None):
        super().__init__(spec)
        self.conf = conf
        self.namespace = namespace
        self.pod = pod_name(spec)
        self.core = _core(conf)
        self.supernet = supernet  # the lab's, for the route on the node's lab0

    # facts
    def _read(self):
        from kubernetes.client.rest import ApiException

        try:
            return self.core.read_namespaced_pod(self.pod, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise ClusterError(f"pod {self.pod}: {exc.reason}") from exc

    def alive(self) -> bool:
        pod = self._read()
        return pod is not None and pod.status.phase == "Running"

    # lifecycle: a killed node is a deleted pod; starting it makes the pod anew
    def start(self) -> None:
        if self._read() is None:
            ClusterBackend(self.conf).make_pod(self.spec, self.namespace)
        else:
            self.resume()

    def _delete(self, grace: int) -> None:
        from kubernetes.client.rest import ApiException

        try:
            self.core.delete_namespaced_pod(self.pod, self.namespace, grace_period_seconds=grace)
        except ApiException as exc:
            if exc.status != 404:
                raise ClusterError(f"pod {self.pod}: {exc.reason}") from exc
        deadline = time.monotonic() + grace + 120
        while self._read() is not None and time.monotonic() < deadline:
            time.sleep(0.5)

    def stop(self, timeout: float = 10) -> None:
        self._delete(int(timeout))

    def kill(self, sig: int = _signal.SIGKILL) -> None:
        if sig == _signal.SIGKILL:
            self._delete(0)
        else:  # any other signal to every process of the node but its init
            self.exec(["/bin/kill", f"-{int(sig)}", "-1"])

    def pause(self) -> None:
        # no pod-level freeze in Kubernetes: every process but the init, from inside
        self.exec(["/bin/kill", "-STOP", "-1"])

    def resume(self) -> None:
        self.exec(["/bin/kill", "-CONT", "-1"])

    def destroy(self) -> None:
        self._delete(0)

    # commands: the exec stream, on an ApiClient of its own per call
    def exec(self, argv, *, input=None, timeout=60, env=None) -> ExecResult:
        from kubernetes import client
        from kubernetes.stream import stream

        argv = [self.python if a == "{python}" else a for a in argv]
        if env:
            argv = ["/usr/bin/env", *(f"{k}={v}" for k, v in env.items()), *argv]
        if input is not None:
            data = base64.b64encode(input.encode()).decode()
            argv = ["/bin/sh", "-c", 'echo "$0" | base64 -d | "$@"', data, *argv]
        own = client.CoreV1Api(api_client(self.conf))
        resp = stream(
            own.connect_get_namespaced_pod_exec, self.pod, self.namespace,
            command=list(argv), container=CONTAINER, stderr=True, stdin=False,
            stdout=True, tty=False, _preload_content=False,
        )  # fmt: skip
        out, err = [], []
        deadline = time.monotonic() + (timeout or 3600)
        while resp.is_open() and time.monotonic() < deadline:
            resp.update(timeout=1)
            if resp.peek_stdout():
                out.append(resp.read_stdout())
            if resp.peek_stderr():
                err.append(resp.read_stderr())
        timed_out = resp.is_open()
        resp.close()
        out.append(resp.read_stdout() if resp.peek_stdout() else "")  # what came with the end
        err.append(resp.read_stderr() if resp.peek_stderr() else "")
        if timed_out:
            return ExecResult(list(argv), 124, "".join(out), "".join(err) + "\ntimed out")
        code = resp.returncode
        return ExecResult(list(argv), 0 if code is None else code, "".join(out), "".join(err))

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        """A streaming command for callers that need a process (testinfra, shells):
        kubectl exec, the cluster's own client, with the lab's kubeconfig."""
        if shutil.which("kubectl") is None:
            raise ClusterError("streaming commands on cluster pods need kubectl on this machine")
        env = kwargs.pop("env", None) or {}
        kwargs.pop("cwd", None)
        argv = [self.python if a == "{python}" else a for a in argv]
        if env:
            argv = ["/usr/bin/env", *(f"{k}={v}" for k, v in env.items()), *argv]
        return subprocess.Popen([*self.command_prefix(interactive=False), *argv], **kwargs)

    def command_prefix(self, interactive: bool = True) -> list[str]:
        cmd = ["kubectl", "--kubeconfig", os.path.expanduser(self.conf["kubeconfig"])]
        if self.conf.get("context"):
            cmd += ["--context", self.conf["context"]]
        cmd += ["-n", self.namespace, "exec", "-i"]
        if interactive:
            cmd.append("-t")
        return [*cmd, self.pod, "-c", CONTAINER, "--"]

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """A one-file tar, sent base64 in chunks over exec and unpacked by the pod's tar."""
        p = PurePosixPath(path)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(p.name)
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        blob = base64.b64encode(buf.getvalue()).decode()
        staging = f"/tmp/racklab-put-{os.getpid()}-{time.monotonic_ns()}"
        for i in range(0, len(blob), CHUNK):
            self.exec(
                ["/bin/sh", "-c", 'printf %s "$1" >> "$0"', staging, blob[i : i + CHUNK]]
            ).check()
        self.exec(
            ["/bin/sh", "-c", 'mkdir -p "$1" && base64 -d "$0" | tar -x -m -C "$1"; r=$?; rm -f "$0"; exit $r',
             staging, str(p.parent)]
        ).check()  # fmt: skip

    def get_file(self, path: str) -> bytes:
        res = self.exec(["/usr/bin/base64", "-w0", path])
        if not res.ok:
            raise FileNotFoundError(f"{self.name}:{path}")
        return base64.b64decode(res.stdout)

    def logs(self) -> str:
        return self.exec(
            ["/bin/sh", "-c", f'for f in {NODE_DATA_DIR}/logs/*.log; do [ -f "$f" ] || continue; '
             'n=${f##*/}; sed "s/^/${n%.log} | /" "$f"; done; true']
        ).stdout  # fmt: skip

    # services: detached with setsid, found again by a pid file
    def start_service(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> dict:
        log = f"{NODE_DATA_DIR}/logs/{name}.log"
        argv = [self.python if a == "{python}" else a for a in argv]
        if env:
            argv = ["/usr/bin/env", *(f"{k}={v}" for k, v in env.items()), *argv]
        self.exec(["/usr/bin/setsid", "-f", "/bin/sh", "-c", _SERVICE, name, log, *argv]).check()
        return {"pidfile": f"{SERVICE_PID_DIR}/{name}.pid", "log": log}

    def _svc_pid(self, name: str, info: dict) -> str:
        return info.get("pidfile") or f"{SERVICE_PID_DIR}/{name}.pid"

    def service_running(self, name: str, info: dict) -> bool:
        check = 'p=$(cat "$0") && [ -d /proc/$p ] && ! grep -q "^State:.*Z" /proc/$p/status'
        return self.exec(["/bin/sh", "-c", check, self._svc_pid(name, info)]).ok

    def stop_service(self, name: str, info: dict, timeout: float = 10) -> None:
        script = (
            'p=$(cat "$0") || exit 0; kill -TERM $p 2>/dev/null; i=0; '
            'while [ -d /proc/$p ] && [ $i -lt "$1" ]; do sleep 0.1; i=$((i+1)); done; '
            "kill -KILL $p 2>/dev/null; true"
        )
        self.exec(["/bin/sh", "-c", script, self._svc_pid(name, info), str(int(timeout * 10))])

    def kill_service(self, name: str, info: dict) -> str:
        self.exec(["/bin/sh", "-c", KILL_SERVICE, self._svc_pid(name, info)])
        return "SIGKILL"

    # where other layers plug in
    def netns(self) -> str:
        raise ClusterError(
            f"node {self.name} is a pod of a cluster: its network namespace is on a "
            "cluster node, not on this machine"
        )

    def attach_network(self) -> None:
        """The node's segment to the lab's router pod (lab/backends/k8s_overlay.py)."""
        if not self.supernet:
            raise ClusterError(f"node {self.name}: the lab's rack network was not made")
        router = k8s_overlay.router_spec(self.spec)
        k8s_overlay.attach(ClusterNode(router, self.conf, self.namespace), self, self.supernet)

    def net_exec(self, argv: list[str], timeout: float = 30) -> ExecResult:
        """tc and iptables inside the pod's network namespace, by exec with the pod's
        NET_ADMIN, as Chaos Mesh does it (the namespace is on a cluster node)."""
        return self.exec(argv, timeout=timeout)

    def cgroup(self) -> str:
        return ""

    # packet faults: netem on the node's lab0, inside the pod
    def start_packet_fault(self, fault, seed: int, log_path: str | None = None) -> dict:
        return k8s_overlay.start_packet_fault(self, fault)

    def heal_packet_fault(self, info: dict) -> None:
        k8s_overlay.heal_packet_fault(self)

    def clear_packet_faults(self) -> bool:
        k8s_overlay.heal_packet_fault(self)
        return False  # no fault line: only netem, which holds nothing to find

    # the pod's cgroup is on a cluster node: pressure through limits is not built
    def set_limits(self, cpus: float | None = None, memory: int | None = None) -> None:
        raise ClusterError(
            f"node {self.name}: CPU and memory pressure on cluster pods is not built yet"
        )

    def restore_limits(self) -> None:
        return  # set_limits never changed them

    def memory_used(self) -> int | None:
        return self.stats().memory_bytes

    def stats(self) -> Stats:
        """Memory as the pod's own cgroup counts it (v2 or v1), read from inside."""
        res = self.exec(
            ["/bin/sh", "-c", "cat /sys/fs/cgroup/memory.current 2>/dev/null || "
             "cat /sys/fs/cgroup/memory/memory.usage_in_bytes"]
        )  # fmt: skip
        mem = int(res.stdout.strip()) if res.ok and res.stdout.strip().isdigit() else 0
        return Stats(memory_bytes=mem)

    def describe(self) -> dict:
        pod = self._read()
        return {
            **super().describe(),
            "engine": "cluster",
            "namespace": self.namespace,
            "pod": self.pod,
            "pod_ip": pod.status.pod_ip if pod else None,
            "k8s_node": pod.spec.node_name if pod else None,
            "status": pod.status.phase if pod else "missing",
            "running": bool(pod and pod.status.phase == "Running"),
            "supernet": self.supernet,
        }


class ClusterBackend(Backend):
    kind = "k8s"

    def __init__(self, conf: dict):
        self.conf = conf

    def prepare(self, specs: list[NodeSpec], progress=lambda msg: None) -> None:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        if not specs:
            return
        lab = specs[0].lab
        namespace = namespace_of(self.conf, lab)
        progress(f"namespace {namespace} on the cluster")
        core = _core(self.conf)
        body = client.V1Namespace(
            metadata=client.V1ObjectMeta(name=namespace, labels={LABEL_LAB: lab})
        )
        try:
            core.create_namespace(body)
        except ApiException as exc:
            if exc.status != 409:  # 409: it exists already
                raise ClusterError(f"cannot make namespace {namespace}: {exc.reason}") from exc
        except Exception as exc:  # no answer from the API server
            host = core.api_client.configuration.host
            found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
            why = found.group(1) if found else str(exc)[:200]
            raise ClusterError(
                f"the cluster at {host} (kubeconfig {self.conf['kubeconfig']}) "
                f"does not answer: {why}"
            ) from exc
        where = lab_dir(lab)
        where.mkdir(parents=True, exist_ok=True)
        (where / SETTINGS_FILE).write_text(json.dumps({**self.conf, "namespace": namespace}))

    supernet: str | None = None  # set by the overlay (k8s_overlay.Overlay.build)

    def rack_network(self, specs: list[NodeSpec]):
        return k8s_overlay.Overlay(self, specs)

    def create_router(self, spec: NodeSpec) -> ClusterNode:
        namespace = namespace_of(self.conf, spec.lab)
        self.make_pod(spec, namespace, privileged=True)
        return ClusterNode(spec, self.conf, namespace)

    relay_listen = "127.0.0.1"  # the port-forward connects inside the pod: only it

    def relay_route(self, router: ClusterNode, router_ip: str) -> list[str]:
        """The API server's port-forward to the router pod's relay: this machine need
        not reach the cluster's pod IPs."""
        how = ["--pod", f"{router.namespace}/{router.pod}", "--port", str(k8s_overlay.RELAY_PORT),
               "--kubeconfig", os.path.expanduser(self.conf["kubeconfig"])]  # fmt: skip
        return how + (["--context", self.conf["context"]] if self.conf.get("context") else [])

    def make_pod(self, spec: NodeSpec, namespace: str, privileged: bool = False) -> None:
        from kubernetes.client.rest import ApiException

        from lab.images import NODE_LATEST

        core = _core(self.conf)
        image = spec.image or self.conf.get("image") or NODE_LATEST
        body = pod_object(spec, image, privileged=privileged)
        try:
            core.create_namespaced_pod(namespace, body)
        except ApiException as exc:
            raise ClusterError(
                f"node {spec.name}: the cluster refused its pod: {exc.reason}"
            ) from exc
        wait_ready(core, namespace, body["metadata"]["name"])

    def create(self, spec: NodeSpec) -> ClusterNode:
        namespace = namespace_of(self.conf, spec.lab)
        self.make_pod(spec, namespace)
        return ClusterNode(spec, self.conf, namespace, self.supernet)

    def attach(self, spec: NodeSpec, saved: dict) -> ClusterNode:
        namespace = saved.get("namespace") or namespace_of(self.conf, spec.lab)
        return ClusterNode(spec, self.conf, namespace, saved.get("supernet"))


def delete_namespace(conf: dict, timeout: float = 300) -> str | None:
    """Delete the lab's namespace and wait until the cluster has removed it (and so
    every pod in it). Returns what was removed."""
    from kubernetes.client.rest import ApiException

    core = _core(conf)
    namespace = conf["namespace"]
    try:
        core.delete_namespace(namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise ClusterError(f"cannot delete namespace {namespace}: {exc.reason}") from exc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.read_namespace(namespace)
        except ApiException as exc:
            if exc.status == 404:
                return f"namespace {namespace}"
            raise
        time.sleep(1)
    raise ClusterError(f"namespace {namespace} still terminating after {timeout:.0f} s")


def cleanup_lab(lab: str) -> list[str]:
    """`lab down` / `lab clean`: the namespace of a lab that ran on a cluster, found
    through the settings file prepare() left in the lab's state dir."""
    path = lab_dir(lab) / SETTINGS_FILE
    if not path.is_file():
        return []
    removed = delete_namespace(json.loads(path.read_text()))
    path.unlink(missing_ok=True)
    return [removed] if removed else []
