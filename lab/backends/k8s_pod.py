"""The Pod object of one `k8s` node: the same object for a real cluster and for
`podman kube play`, so what runs locally is what a cluster gets.

One container, racklab's node image idling under tini (the image's own entry point),
services started in it as on every kind. NET_ADMIN, so chaos can act inside the
pod's network namespace with tc and iptables, as Chaos Mesh does. restartPolicy
Never: a killed node stays down until racklab (chaos, `lab chaos heal`) boots it,
as with every other kind.
"""

from __future__ import annotations

from lab.backends.base import NODE_DATA_DIR, NodeSpec

CONTAINER = "node"
# racklab's imported base image sets no PATH
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LABEL_LAB = "racklab.lab"
LABEL_NODE = "racklab.node"
LABEL_RACK = "racklab.rack"


# chaos's crash of one service in a pod (both engines): SIGKILL by its pid file, from
# inside the pod; nothing restarts it until racklab starts it again
KILL_SERVICE = 'p=$(cat "$0") && kill -KILL "$p"'


def pod_name(spec: NodeSpec) -> str:
    """Unique on a machine (podman's pods share one namespace) and a DNS label."""
    return f"racklab-{spec.lab}-{spec.name}"


def volume_name(spec: NodeSpec) -> str:
    """The data volume's name: unique per node, since podman 4.3 makes an emptyDir a
    named volume of that name, which pods naming the same one would share."""
    return f"{pod_name(spec)}-data"


def _cpu(cpus: float) -> str:
    return f"{round(cpus * 1000)}m"


def _mem(memory: int) -> str:
    return f"{-(-memory // 2**20)}Mi"


def pod_object(
    spec: NodeSpec, image: str, host_aliases: bool = True, privileged: bool = False
) -> dict:
    """``privileged``: the lab's router pod when the pods carry the rack network
    (lab/backends/k8s_overlay.py): IP forwarding and /dev/net/tun."""
    limits = {}
    if spec.cpus:
        limits["cpu"] = _cpu(spec.cpus)
    if spec.memory:
        limits["memory"] = _mem(spec.memory)
    container: dict = {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/usr/bin/tini", "--"],
        "args": ["/bin/sleep", "infinity"],
        "workingDir": NODE_DATA_DIR,
        "env": [{"name": "PATH", "value": PATH}, {"name": "PYTHONUNBUFFERED", "value": "1"}],
        "securityContext": (
            {"privileged": True}
            if privileged
            else {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}}
        ),
        "volumeMounts": [{"name": volume_name(spec), "mountPath": NODE_DATA_DIR}],
    }
    if limits:
        container["resources"] = {"limits": limits, "requests": dict(limits)}
    pod_spec: dict = {
        "hostname": spec.name,
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 10,
        "containers": [container],
        "volumes": [{"name": volume_name(spec), "emptyDir": {}}],
    }
    if host_aliases and spec.hosts:
        # every node by name, as /etc/hosts lists them on the other kinds
        by_ip: dict[str, list[str]] = {}
        for name, addr in sorted(spec.hosts.items()):
            if addr:
                by_ip.setdefault(addr.split("/")[0], []).append(name)
        pod_spec["hostAliases"] = [{"ip": ip, "hostnames": names} for ip, names in by_ip.items()]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(spec),
            "labels": {
                LABEL_LAB: spec.lab,
                LABEL_NODE: spec.name,
                LABEL_RACK: spec.rack,
                "app.kubernetes.io/part-of": "racklab",
            },
        },
        "spec": pod_spec,
    }


def hosts_file(spec: NodeSpec) -> str:
    """/etc/hosts for engines that ignore hostAliases (podman 4.3)."""
    lines = ["127.0.0.1\tlocalhost"]
    lines += [f"{addr.split('/')[0]}\t{name}" for name, addr in sorted(spec.hosts.items()) if addr]
    return "\n".join(lines) + "\n"
