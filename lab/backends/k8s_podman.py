"""Podman as a local engine for Kubernetes objects: `podman kube play` of the very Pod
objects a cluster would get, where no cluster is configured.

racklab keeps its own containers.conf (pointed to by CONTAINERS_CONF for every podman
it runs, never the host's): `default_ulimits` inside the hard limits of sandboxes
such as CI containers (podman's defaults ask for more and the runtime refuses), and
runc, since crun refuses hosts with a hybrid cgroup v1/v2 layout. Images come from
the Docker engine, where racklab builds them (`docker save | podman load`): nothing
can be pulled.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from lab.backends.base import NodeError

CONTAINERS_CONF = """\
# racklab's own podman settings (CONTAINERS_CONF); the host's are left alone.
[containers]
# inside the hard limits of a sandboxed host (podman's defaults ask for more)
default_ulimits = ["nofile=16384:16384", "nproc=4096:4096"]

[engine]
# crun refuses hosts with a hybrid cgroup v1/v2 layout; runc runs there and elsewhere
runtime = "runc"
"""
LABEL_LAB = "racklab.lab"


class PodmanError(NodeError):
    pass


def conf_path() -> Path:
    from lab.images.cache import cache_dir

    path = cache_dir() / "podman" / "containers.conf"
    if not path.is_file() or path.read_text() != CONTAINERS_CONF:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(CONTAINERS_CONF)
        tmp.replace(path)
    return path


def env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(conf_path())}


def available() -> str | None:
    """None when podman can run pods here, else why not (one sentence)."""
    if shutil.which("podman") is None:
        return "podman is not installed (`make setup` installs podman and catatonit)"
    if shutil.which("runc") is None:
        return "runc is not installed (`make setup` installs it with podman)"
    return None


def podman(*args: str, input: bytes | str | None = None, timeout: float = 120, check=True):
    cmd = ["podman", *args]
    proc = subprocess.run(
        cmd,
        input=input,
        capture_output=True,
        env=env(),
        timeout=timeout,
        text=not isinstance(input, bytes),
    )
    if check and proc.returncode != 0:
        err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
        last = (err.strip().splitlines() or ["(no output)"])[-1]
        raise PodmanError(f"podman {args[0]} {args[1] if len(args) > 1 else ''}: {last}".strip())
    return proc


def ensure_image(tag: str) -> str:
    """Make the Docker engine's ``tag`` available to podman under the same name (loaded
    only when podman lacks that image id); returns the name podman knows it by."""
    docker = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", tag], capture_output=True, text=True
    )
    if docker.returncode != 0:
        raise PodmanError(
            f"image {tag} is not in the Docker engine (`lab images build` makes racklab's)"
        )
    want = docker.stdout.strip().removeprefix("sha256:")
    have = podman("image", "inspect", "--format", "{{.Id}}", tag, check=False)
    if have.returncode == 0 and have.stdout.strip() == want:
        return tag
    save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
    try:
        load = subprocess.run(
            ["podman", "load"], stdin=save.stdout, capture_output=True, env=env(), timeout=600
        )
    finally:
        save.stdout.close()
        save.wait()
    if load.returncode != 0 or save.returncode != 0:
        raise PodmanError(f"could not load {tag} into podman: {load.stderr.decode()[-300:]}")
    _prune(tag, want)
    return tag


def _prune(tag: str, keep_id: str) -> None:
    """Remove podman's older images of the same repository: each racklab source change
    makes a new node image, and podman keeps a full copy of every one it loaded.
    An image a pod still uses stays (podman refuses)."""
    repo = tag.rsplit(":", 1)[0]
    listed = podman("images", "--format", "{{.ID}} {{.Repository}}", check=False).stdout
    for line in listed.splitlines():
        image_id, _, name = line.partition(" ")
        if name.endswith(repo) and not keep_id.startswith(image_id):
            podman("rmi", image_id, check=False)


def play(yaml_text: str, network: str = "none") -> None:
    """`podman kube play` of Kubernetes YAML from stdin. network "none": the pod gets
    only loopback, and racklab's rack network plugs it in."""
    podman("kube", "play", f"--network={network}", "-", input=yaml_text, timeout=300)


def make_network(name: str, lab_addresses: list[str]) -> None:
    """A podman network of the lab's own (podman picks its subnet), refused when that
    subnet holds one of the lab's addresses."""
    import ipaddress
    import json

    if podman("network", "exists", name, check=False).returncode != 0:
        podman("network", "create", "--label", "racklab=1", name)
    info = json.loads(podman("network", "inspect", name).stdout)[0]
    for sub in info.get("subnets") or []:
        net = ipaddress.ip_network(sub["subnet"])
        for addr in lab_addresses:
            if addr and ipaddress.ip_address(addr.split("/")[0]) in net:
                remove_network(name)
                raise PodmanError(
                    f"podman gave the lab's network {net}, which holds the lab's address "
                    f"{addr}; set network.supernet to another range"
                )


def remove_network(name: str) -> bool:
    return podman("network", "rm", "--force", name, check=False).returncode == 0


def remove_pod(name: str) -> None:
    podman("pod", "rm", "--force", "--ignore", "--time", "5", name, check=False)


def remove_volume(name: str) -> bool:
    """Remove a volume (a pod's emptyDir); True when there was one."""
    return podman("volume", "rm", "--force", name, check=False).returncode == 0


def pods(label: str) -> list[str]:
    """Names of the pods carrying ``label`` (key=value)."""
    proc = podman("pod", "ps", "--filter", f"label={label}", "--format", "{{.Name}}", check=False)
    return [line for line in proc.stdout.split() if line]


def pod_labels(key: str) -> set[str]:
    """The values of label ``key`` over every pod that has it."""
    import json

    proc = podman("pod", "ps", "--filter", f"label={key}", "--format", "json", check=False)
    try:
        listed = json.loads(proc.stdout or "[]") or []
    except ValueError:
        return set()
    return {(p.get("Labels") or {}).get(key) for p in listed} - {None}


def volumes(label: str) -> list[str]:
    proc = podman("volume", "ls", "--filter", f"label={label}", "--format", "{{.Name}}")
    return [line for line in proc.stdout.split() if line]


def inspect(name: str) -> dict | None:
    import json

    for _ in range(5):  # podman's own locks can fail a call under load; "no such" is final
        proc = podman("container", "inspect", name, check=False)
        if proc.returncode == 0 or "no such" in proc.stderr.lower():
            break
        time.sleep(0.2)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)
    return data[0] if data else None
