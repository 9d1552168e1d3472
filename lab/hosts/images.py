"""racklab's node image in a host's Docker engine, for container and pod nodes there.

A host builds no image and pulls none (it may reach no registry or package mirror):
this machine builds the node image as for a lab of its own (lab/images) and sends it
over the host's SSH connection, ``docker save`` here streamed into ``docker load``
there, then tags it as the node image the host's backends use when a node names none
(the agent never builds: lab/hosts/agentd.py). A host whose engine has that very
image already gets nothing. A node that names its own ``image`` must find it in the
host's engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from lab.hosts.ssh import Host, HostError

# the node kinds that run racklab's image in the host's Docker engine
IMAGE_KINDS = {"container", "pod"}
CHUNK = 1 << 20


@dataclass
class Sent:
    host: str
    image: str
    reused: bool
    seconds: float
    sent_bytes: int = 0

    def as_dict(self) -> dict:
        return dict(vars(self))


def needed(specs) -> bool:
    """Whether any of these node specs runs racklab's own image."""
    return any(s.kind in IMAGE_KINDS and s.image is None for s in specs)


def local_node_image(progress=lambda msg: None) -> tuple[str, str]:
    """The node image on this machine, built when missing: (tag, image id)."""
    from lab.images import ensure_node_image
    from lab.images.build import docker_client

    progress("node image for container and pod nodes (built once, then cached)")
    tag = ensure_node_image(progress=False)
    return tag, docker_client().images.get(tag).id


def engine_version(host: Host) -> str:
    """The host's Docker engine's version; HostError when it has none that answers."""
    r = host.run(["docker", "version", "--format", "{{.Server.Version}}"])
    if r.code != 0:
        raise HostError(
            host.spec,
            "its container and pod nodes need Docker's engine running there "
            f"(`docker version` said: {r.last_error})",
        )
    return r.out.strip()


def send(host: Host, tag: str, image_id: str) -> Sent:
    """Make ``tag`` (with this machine's ``image_id``) the host's node image."""
    from lab.images import NODE_LATEST
    from lab.images.build import docker_client

    started = time.monotonic()
    engine_version(host)
    there = host.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag])
    sent = 0
    if there.code != 0 or there.out.strip() != image_id:

        def chunks():
            nonlocal sent
            for chunk in docker_client().api.get_image(tag, chunk_size=CHUNK):
                sent += len(chunk)
                yield chunk

        host.check(["docker", "load", "--quiet"], f"loading the node image {tag}",
                   input=chunks(), timeout=1800)  # fmt: skip
    host.check(["docker", "tag", tag, NODE_LATEST], "tagging the node image")
    return Sent(host.name, tag, sent == 0, time.monotonic() - started, sent)


def remove(host: Host) -> list[str]:
    """racklab's node images in the host's engine (`lab hosts purge`); none when the
    host has no engine. An image a container still uses stays, as `docker rmi` says."""
    from lab.images.build import NODE_REPO

    r = host.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", NODE_REPO])
    tags = r.out.split() if r.code == 0 else []
    if tags:
        host.run(["docker", "image", "rm", *tags])
    return tags
