"""racklab's images on a host: the node image in its Docker engine, for container and
pod nodes there (this module), and the VM image for its VM nodes (vmimages.py);
``send_all`` sends each host what its nodes need.

A host builds no image and pulls none (it may reach no registry or package mirror):
this machine builds the node image as for a lab of its own (lab/images) and sends it
over the host's SSH connection, ``docker save`` here streamed into ``docker load``
there, then tags it as the node image the host's backends use when a node names none
(the agent never builds: lab/hosts/agentd.py). A host whose engine has that very
image already gets nothing. A node that names its own ``image`` must find it in the
host's engine.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lab.hosts.ssh import Host, HostError

CHUNK = 1 << 20


@dataclass
class Sent:
    host: str
    image: str
    reused: bool
    seconds: float
    sent_bytes: int = 0
    left_out: int = 0  # layers the host's engine had already: not sent

    def as_dict(self) -> dict:
        return dict(vars(self))


def needed(specs) -> bool:
    """Whether any of these node specs runs racklab's own image."""
    from lab.backends import backend_class
    from lab.backends.base import NODE_IMAGE

    return any(s.image is None and backend_class(s.kind).host_image == NODE_IMAGE for s in specs)


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
    """Make ``tag`` (with this machine's ``image_id``) the host's node image: sent when
    the host's engine lacks it, without the layers the engine has (lab/hosts/layers.py),
    or whole when a load of only those was refused."""
    from lab.images import NODE_LATEST

    started = time.monotonic()
    engine_version(host)
    there = host.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag])
    sent = left_out = 0
    if there.code != 0 or there.out.strip() != image_id:
        left_out, files = _left_out(host, tag, image_id)
        try:
            sent = _load(host, tag, files)
        except HostError:
            if not files:
                raise
            left_out, sent = 0, _load(host, tag, set())
    host.check(["docker", "tag", tag, NODE_LATEST], "tagging the node image")
    return Sent(host.name, tag, sent == 0, time.monotonic() - started, sent, left_out)


def _load(host: Host, tag: str, leave_out: set[str]) -> int:
    """``docker save`` here into ``docker load`` there, without the files ``leave_out``
    names; the bytes sent."""
    from lab.hosts.layers import walk
    from lab.images.build import docker_client

    sent = 0

    def chunks():
        nonlocal sent
        saved = docker_client().api.get_image(tag, chunk_size=CHUNK)
        for chunk in walk(saved, drop=leave_out.__contains__):
            sent += len(chunk)
            yield chunk

    host.check(["docker", "load", "--quiet"], f"loading the node image {tag}",
               input=chunks(), timeout=1800)  # fmt: skip
    return sent


_layers_lock = threading.Lock()


def _left_out(host: Host, tag: str, image_id: str) -> tuple[int, set[str]]:
    """How many of the image's layers the host's engine has already, and the files of
    ``docker save``'s archive that hold them."""
    from lab.hosts import layers
    from lab.images.build import docker_client

    r = host.run(layers.inspect_script())
    prefixes = layers.host_prefixes(layers.parse_layer_lists(r.out if r.code == 0 else ""))
    mine = docker_client().images.get(tag).attrs["RootFS"]["Layers"]
    have = layers.droppable(mine, prefixes)
    if not have:
        return 0, set()
    with _layers_lock:  # hosts are sent to side by side: one hashing pass for all
        files = _layer_files(tag, image_id)
    return sum(1 for d in mine if d in have), {f for f, d in files.items() if d in have}


KEEP_LAYER_RECORDS = 8


def _layer_files(tag: str, image_id: str) -> dict[str, str]:
    """Which file of ``docker save``'s archive holds which layer, for this image: found
    by one pass over the archive, then kept in the cache."""
    from lab.hosts.layers import layer_files
    from lab.images.build import docker_client
    from lab.images.cache import cache_dir

    record = cache_dir() / "node-image-layers" / f"{image_id.split(':')[-1]}.json"
    try:
        return json.loads(record.read_text())
    except (OSError, ValueError):
        pass
    found = layer_files(docker_client().api.get_image(tag, chunk_size=CHUNK))
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(found))
    tmp.replace(record)
    # one record per racklab version built here: the newest few are all a send can use
    _prune(record.parent, KEEP_LAYER_RECORDS)
    return found


def _prune(folder: Path, keep: int) -> None:
    """All but the ``keep`` newest records of ``folder`` removed."""
    aged = []
    for p in folder.glob("*.json"):
        try:
            aged.append((p.stat().st_mtime, p))
        except OSError:
            pass  # removed meanwhile by another `lab`
    for _, p in sorted(aged)[:-keep]:
        p.unlink(missing_ok=True)


def remove(host: Host) -> list[str]:
    """racklab's node images in the host's engine (`lab hosts purge`); none when the
    host has no engine. An image a container still uses stays, as `docker rmi` says."""
    from lab.images.build import NODE_REPO

    r = host.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", NODE_REPO])
    tags = r.out.split() if r.code == 0 else []
    if tags:
        host.run(["docker", "image", "rm", *tags])
    return tags


def send_all(hosts, specs_on: dict[str, list], agent_tags: dict[str, str], progress) -> dict:
    """Each host what its nodes (``specs_on[host]``) boot or run, sent where the host
    lacks it: {"images": node image per host, "vm_images": VM image per host}, for the
    lab's state."""
    from lab.hosts import vmimages
    from lab.hosts.ssh import each

    out: dict[str, dict] = {"images": {}, "vm_images": {}}
    imaged = [h for h in hosts if needed(specs_on[h.name])]
    if imaged:
        tag, image_id = local_node_image(progress)
        progress(f"node image to {', '.join(h.name for h in imaged)}")
        sent = each(imaged, lambda h: send(h, tag, image_id))
        out["images"] = {n: i.as_dict() for n, i in sent.items()}
    booting = [h for h in hosts if vmimages.needed(specs_on[h.name])]
    if booting:
        image = vmimages.local_vm_image(progress)
        progress(f"VM image to {', '.join(h.name for h in booting)}")
        sent = each(booting, lambda h: vmimages.send(h, image, agent_tags[h.name]))
        out["vm_images"] = {n: i.as_dict() for n, i in sent.items()}
    return out
