"""What the container and pod backends share about the Docker engine: the client,
racklab's labels and names, a node's limits as docker SDK arguments, waiting for a
container to run, and removing everything of a lab."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lab.backends.base import NodeError, NodeSpec
from lab.images import engine

if TYPE_CHECKING:
    from lab.backends.container import ContainerNode

LABEL_LAB = "racklab.lab"
LABEL_LABID = "racklab.labid"
LABEL_NODE = "racklab.node"
LABEL_ROLE = "racklab.role"  # node | infra | service
# the node's own cgroup, made by racklab, that a node's containers sit in (first made
# for pods, hence the name, which stays so that older labs are still cleaned up)
LABEL_NODE_CGROUP = "racklab.pod-cgroup"
IMAGE_PYTHON = "/usr/bin/python3"


class ContainerError(NodeError):
    pass


def docker_client():
    try:
        return engine.connect(timeout=120)
    except engine.EngineUnreachable as e:
        raise ContainerError(str(e)) from e.__cause__


def docker_errors():
    import docker.errors

    return docker.errors


def container_name(lab: str, node: str) -> str:
    return f"racklab-{lab}-{node}"


def resolve_python(argv: list[str]) -> list[str]:
    """Replace the orchestrator's "{python}" placeholder with the image's interpreter."""
    return [IMAGE_PYTHON if a == "{python}" else a for a in argv]


def _block_device(path: Path) -> str | None:
    """The whole-disk device node holding ``path`` (Docker's io limits act on disks)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    sys_dir = Path(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}")
    if not sys_dir.exists():
        return None  # overlay, tmpfs...: no block device to throttle
    real = sys_dir.resolve()
    if (real / "partition").exists():
        real = real.parent
    dev = Path("/dev") / real.name
    return str(dev) if dev.exists() else None


def limit_kwargs(
    cpus: float | None,
    memory: int | None,
    pids: int | None,
    io_bps: int | None = None,
    io_path: Path | None = None,
) -> dict:
    """docker SDK keyword arguments for a node's or a service's limits."""
    kw: dict = {}
    if cpus:
        kw["nano_cpus"] = int(cpus * 1e9)
    if memory:
        kw["mem_limit"] = int(memory)
        kw["memswap_limit"] = int(memory)  # no swap: the limit is the limit
    if pids:
        kw["pids_limit"] = int(pids)
    if io_bps:
        dev = _block_device(io_path or Path("/var/lib/docker"))
        if dev:
            rate = [{"Path": dev, "Rate": int(io_bps)}]
            kw["device_read_bps"] = rate
            kw["device_write_bps"] = rate
    return kw


def delegated_cgroup_kwargs(rel: str) -> dict:
    """docker SDK arguments (volumes, cgroupns) giving a container a writable view of
    the node's own cgroup ``rel`` where programs look for cgroups, so that a service
    in the node (YARN's NodeManager) can make child cgroups of its own, counted and
    limited with the node. Docker mounts cgroupfs read-only; the node's cgroup is
    made host-side (it holds the node's limits), then bound over that view:

    - cgroup v1: the node's directory in the memory and cpu hierarchies, over the
      container's /sys/fs/cgroup/<hierarchy> (what Hadoop's CGroupsHandler uses);
    - cgroup v2: the node's directory over /sys/fs/cgroup, with the host's cgroup
      namespace: in a private one, moving a process into a cgroup outside the
      container's own (the node's YARN cgroups are its siblings) is refused.
    """
    from lab.cgroups import Cgroup, mounts

    cg = Cgroup(rel)
    if cg.version == 2:
        return {
            "volumes": {str(cg.dirs()[0]): {"bind": "/sys/fs/cgroup", "mode": "rw"}},
            "cgroupns": "host",
        }
    volumes = {}
    for controller in ("memory", "cpu"):
        mount = mounts().get(controller)
        if mount is not None and (mount / cg.rel).is_dir():
            volumes[str(mount / cg.rel)] = {"bind": f"/sys/fs/cgroup/{mount.name}", "mode": "rw"}
    return {"volumes": volumes}


def node_labels(spec: NodeSpec, role: str) -> dict[str, str]:
    return {
        LABEL_LAB: spec.lab,
        LABEL_LABID: spec.labid,
        LABEL_NODE: spec.name,
        LABEL_ROLE: role,
        "racklab.kind": spec.kind,
    }


def wait_running(node: ContainerNode, ident: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = node.client.api.inspect_container(ident)["State"]
        if state.get("Running") and state.get("Pid"):
            return
        if state.get("Status") in ("exited", "dead"):
            logs = node.client.api.logs(ident, tail=5).decode(errors="replace").strip()
            raise ContainerError(
                f"node {node.name}: container exited at start (code {state.get('ExitCode')}): {logs}"
            )
        time.sleep(0.05)
    raise ContainerError(f"node {node.name}: container not running after {timeout}s")


def cleanup_lab(client, lab: str) -> list[str]:
    """Remove every container, volume and network labelled with ``lab``.

    Service containers go before the containers whose namespaces they join."""
    import docker.errors

    removed = []
    selector = {"label": f"{LABEL_LAB}={lab}"}
    containers = client.containers.list(all=True, filters=selector)
    order = {"service": 0, "node": 1, "infra": 2}
    containers.sort(key=lambda c: order.get(c.labels.get(LABEL_ROLE, "node"), 1))
    for c in containers:
        try:
            c.remove(force=True, v=True)
            removed.append(f"container {c.name}")
        except docker.errors.NotFound:
            pass
    for v in client.volumes.list(filters=selector):
        try:
            v.remove(force=True)
            removed.append(f"volume {v.name}")
        except docker.errors.NotFound:
            pass
    for n in client.networks.list(filters=selector):
        try:
            n.remove()
            removed.append(f"network {n.name}")
        except docker.errors.NotFound:
            pass
    return removed
