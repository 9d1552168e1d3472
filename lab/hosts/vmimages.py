"""racklab's VM image on a host, for the VM nodes there.

A host builds no image (it may reach no package mirror): this machine builds the VM
image as for a lab of its own (lab/images/vm.py) and sends its files over the host's
SSH connection, streamed into ``cat`` there:

    <cache>/vm-sent/<base tag>/           disk.qcow2, vmlinuz, initrd.img, manifest.json
                                          (the base, over a gigabyte, rarely rebuilt)
    <cache>/vm-sent/racklab-<hash>.img    racklab's own code (a few MiB, one per version)

each written under a temporary name and renamed once whole, so a file that is there is
complete and is never sent again. The base disk is the backing file of the host's VM
overlays, as on this machine. Which image the host's VM nodes boot is written into the
agent's own folder (``vm-image.json``, read by lab/hosts/agentd.py): the racklab disk
is the code of that very agent version.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from lab.hosts.agent import AGENT_ROOT
from lab.hosts.ssh import Host
from lab.images.cache import DEFAULT_CACHE

SENT_DIR = f"{DEFAULT_CACHE}/vm-sent"
RECORD = "vm-image.json"  # in the agent's folder: the image its VM nodes boot
CHUNK = 1 << 20


@dataclass
class SentVM:
    host: str
    image: str  # the base's tag
    reused: bool
    seconds: float
    sent_bytes: int = 0

    def as_dict(self) -> dict:
        return dict(vars(self))


def needed(specs) -> bool:
    """Whether any of these node specs is a VM node: each boots with racklab's disk,
    also one naming its own image directory on the host (lab/backends/vm/backend.py)."""
    from lab.backends import backend_class
    from lab.backends.base import VM_IMAGE

    return any(backend_class(s.kind).host_image == VM_IMAGE for s in specs)


def local_vm_image(progress=lambda msg: None):
    """The VM image on this machine, built when missing (lab.images.vm.VMImage)."""
    from lab.images.vm import build_vm_image

    progress("VM image for vm nodes (built once, then cached)")
    return build_vm_image(progress=False).image


def _send_file(host: Host, local: Path, remote: str) -> int:
    """``local`` to ``remote`` on the host unless it is there; the bytes sent."""
    if host.run(["test", "-f", remote]).code == 0:
        return 0
    sent = 0

    def chunks():
        nonlocal sent
        with open(local, "rb") as f:
            while chunk := f.read(CHUNK):
                sent += len(chunk)
                yield chunk

    q = shlex.quote
    part = f"{remote}.partial"
    host.check(f"mkdir -p {q(str(Path(remote).parent))} && cat > {q(part)} && mv {q(part)} {q(remote)}",
               f"sending {local.name}", input=chunks(), timeout=1800)  # fmt: skip
    return sent


def send(host: Host, image, agent_tag: str) -> SentVM:
    """Make ``image`` (a lab.images.vm.VMImage) the one the host's VM nodes boot with
    the agent ``agent_tag``: its files sent when the host lacks them."""
    from lab.images.vm import DISK, INITRD, KERNEL, MANIFEST

    started = time.monotonic()
    base = f"{SENT_DIR}/{image.tag}"
    sent = 0
    # the disk last: its presence says the base is whole
    for name in (MANIFEST, KERNEL, INITRD, DISK):
        sent += _send_file(host, image.dir / name, f"{base}/{name}")
    layer = f"{SENT_DIR}/{image.racklab_disk.name}"
    sent += _send_file(host, image.racklab_disk, layer)
    # older versions an hour old go, as on this machine (lab/images/vm.py): a VM of
    # another lab may still boot from a newer one
    q = shlex.quote
    host.run(f"find {q(SENT_DIR)} -mindepth 1 -maxdepth 1 -mmin +60 ! -name {q(image.tag)} "
             f"! -name {q(image.racklab_disk.name)} -exec rm -rf {{}} +")  # fmt: skip
    record = json.dumps({"dir": base, "racklab_disk": layer, "tag": image.tag})
    host.check(f"cat > {shlex.quote(f'{AGENT_ROOT}/{agent_tag}/{RECORD}')}",
               "recording the VM image", input=record)  # fmt: skip
    return SentVM(host.name, image.tag, sent == 0, time.monotonic() - started, sent)


def sent_image(agent_home: Path):
    """On a host: the VM image the controller sent for this agent, or None (a host that
    never had VM nodes)."""
    from lab.images.vm import VMImage

    try:
        d = json.loads((agent_home / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return VMImage(Path(d["dir"]), Path(d["racklab_disk"]))


def remove(host: Host) -> bool:
    """The VM images sent to the host (`lab hosts purge`); whether there were any. A
    base still backing a running VM's overlay stays usable by it until it stops."""
    had = host.run(["test", "-e", SENT_DIR]).code == 0
    if had:
        host.check(["rm", "-rf", SENT_DIR], "removing the VM images")
    return had
