"""`lab images push REGISTRY`: racklab's node image into a registry the user names, for
Kubernetes clusters that cannot see this machine's Docker engine."""

from __future__ import annotations

import re

from lab.images.build import NODE_LATEST, NODE_REPO, BuildError, docker_client

REGISTRY = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9._/-]+)?$")


def push_node_image(registry: str, log=lambda line: None) -> dict:
    """Tag the node image as REGISTRY/racklab/node:<content tag> and :latest and push
    both. Returns {"image": ..., "latest": ...}: what a cluster pulls."""
    registry = registry.strip().rstrip("/")
    if not REGISTRY.match(registry):
        raise ValueError(f"{registry!r} is not a registry: give host, host:port or host:port/path")
    import docker.errors

    client = docker_client()
    try:
        image = client.images.get(NODE_LATEST)
    except docker.errors.ImageNotFound:
        raise BuildError("push", f"no {NODE_LATEST}: `lab images build` makes it") from None
    content = next(
        (
            t.split(":", 1)[1]
            for t in image.tags
            if t.startswith(NODE_REPO + ":") and t != NODE_LATEST
        ),
        "latest",
    )
    target = f"{registry}/{NODE_REPO}"
    pushed = {}
    for tag, key in ((content, "image"), ("latest", "latest")):
        image.tag(target, tag=tag)
        for chunk in client.api.push(target, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                raise BuildError("push", f"{target}:{tag}: {chunk['error'].strip()}")
            if chunk.get("status"):
                log(f"{chunk['status']} {chunk.get('progress', '')}")
        pushed[key] = f"{target}:{tag}"
    return pushed
