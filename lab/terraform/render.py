"""`lab terraform render FILE -o DIR`: a topology file with VM nodes -> a root module.

DIR holds everything terraform needs and nothing of this machine but the paths of
racklab's VM image:

    versions.tf   the provider, pinned (PROVIDER_VERSION)
    plan.tf       the module "plan" call with the lab's racks and nodes, and the output
                  `racklab` that `lab up` reads: provider-free, applies offline
    hosts.tf      one provider alias per libvirt host and one module "host_<name>" each
    modules/      copies of terraform/modules (plan, host), so DIR stands alone
    .gitignore    keys/ and terraform's state, which hold private keys
    keys/         the lab's SSH key pair and each node's SSH host key pair, made once
                  and kept when DIR is rendered again (running VMs hold them)

The addresses are planned by the module from the same supernet, in the same order,
as lab/net/addressing.py plans them, so a lab made by terraform and one made by
racklab agree (the tests apply the plan offline and compare).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from lab.net import addressing
from lab.topology import Topology

from . import hcl
from .hcl import Block, Raw

PROVIDER_SOURCE = "dmacvicar/libvirt"
PROVIDER_VERSION = "0.9.7"
LOCAL_HOST, LOCAL_URI = "local", "qemu:///system"
HEADER = "# Rendered by `lab terraform render` from {file}; render again after editing it.\n"


class RenderError(ValueError):
    """The file cannot become a terraform lab; the message says why (one sentence)."""


@dataclass
class Rendered:
    dir: Path
    lab: str
    supernet: str
    hosts: dict[str, str]  # host -> libvirt URI
    placement: dict[str, str]  # rack -> host
    files: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # image parts to build before apply

    def as_dict(self) -> dict:
        return {
            "dir": str(self.dir),
            "lab": self.lab,
            "supernet": self.supernet,
            "hosts": self.hosts,
            "racks": self.placement,
            "files": [str(p) for p in self.files],
            "missing": self.missing,
        }


def modules_source() -> Path:
    """terraform/modules of racklab's source tree (copied into every rendered DIR)."""
    from lab.images.cache import project_root

    return project_root() / "terraform" / "modules"


def libvirt_uri(host) -> str:
    """A spare-machines host (lab.topology.hosts.HostDef) as a libvirt URI over SSH."""
    port = f":{host.port}" if getattr(host, "port", 22) not in (None, 22) else ""
    query = []
    if getattr(host, "key", None):
        query.append("keyfile=" + quote(str(host.key), safe="/~"))
    if getattr(host, "known_hosts", None):
        query.append("knownhosts=" + quote(str(Path(host.known_hosts).expanduser()), safe="/"))
    q = ("?" + "&".join(query)) if query else ""
    return f"qemu+ssh://{host.user}@{host.address}{port}/system{q}"


def placement_of(topo: Topology, hosts: dict[str, str] | None,
                 racks: dict[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:  # fmt: skip
    """(host -> URI, rack -> host): what the caller gave, else the file's `hosts`
    section (spare machines), else every rack on this machine's qemu:///system."""
    file_hosts = getattr(topo, "hosts", None) or {}
    file_racks = getattr(topo, "rack_host", None) or {}
    if hosts is None:
        hosts = {n: libvirt_uri(h) for n, h in file_hosts.items()} or {LOCAL_HOST: LOCAL_URI}
    if not hosts:
        raise RenderError("no libvirt host: give one with --host NAME=URI")
    placed = dict(file_racks)
    placed.update(racks or {})
    only = next(iter(hosts)) if len(hosts) == 1 else None
    for rack in topo.racks:
        if rack not in placed:
            if only is None:
                raise RenderError(f"rack {rack} is on no host: place it with --rack {rack}=HOST "
                                  f"(hosts: {', '.join(hosts)})")  # fmt: skip
            placed[rack] = only
        if placed[rack] not in hosts:
            raise RenderError(f"rack {rack} is placed on {placed[rack]}, which is not a host "
                              f"(hosts: {', '.join(hosts)})")  # fmt: skip
    for rack in placed:
        if rack not in topo.racks:
            raise RenderError(f"--rack {rack}=...: the file has no rack {rack} "
                              f"(racks: {', '.join(topo.racks)})")  # fmt: skip
    return hosts, {r: placed[r] for r in topo.racks}


def check_vm_only(topo: Topology) -> None:
    """terraform declares VM nodes: a node of another kind is a mistake in the file."""
    for name, nd in topo.nodes.items():
        if nd.kind != "vm":
            own = topo.source is not None and ("nodes", name, "kind") in topo.source.lines
            raise topo.error(
                ("nodes", name, "kind") if own else ("defaults", "kind"),
                f"node {name} is a {nd.kind} node; terraform makes VM nodes only "
                "(give the file `defaults: {kind: vm}`)",
            )


def supernet_of(topo: Topology) -> str:
    if topo.supernet != "auto":
        return topo.supernet
    # the lab's usual /16, skipping what this machine routes; pinned in plan.tf from
    # here on, so a later render on another machine plans the same addresses only if
    # the file names it: real hosts should set network.supernet
    return str(addressing.choose_supernet(topo.labid, addressing.host_networks()))


def image_facts() -> tuple[dict, list[str]]:
    """racklab's VM image on this machine: the paths the module uploads, the base
    disk's virtual size, and what is not built yet (one phrase each)."""
    from lab.images import vm as vmimage

    image = vmimage.latest()
    layer = vmimage.racklab_disk_path()  # racklab's code as it is now
    if image is not None and not image.missing():
        base = image.dir.resolve()
        facts = {
            "kernel": str(base / vmimage.KERNEL),
            "initrd": str(base / vmimage.INITRD),
            "disk": str(base / vmimage.DISK),
            "disk_bytes": int(image.manifest().get("disk_bytes") or 0),
            "racklab_disk": str(layer),
        }
        missing = [] if facts["disk_bytes"] else ["the base disk's size (its manifest.json)"]
        if not layer.is_file():  # nothing is built here: rendering stays quick
            missing.append(f"racklab's code disk {layer.name} (`lab images build --vm`)")
        return facts, missing
    root = vmimage.images_root() / vmimage.LATEST
    facts = {
        "kernel": str(root / vmimage.KERNEL),
        "initrd": str(root / vmimage.INITRD),
        "disk": str(root / vmimage.DISK),
        "disk_bytes": 0,
        "racklab_disk": str(layer),
    }
    return facts, ["racklab's VM image (`lab images build --vm`, then render again)"]


def ensure_keys(keys: Path, lab: str, nodes: list[str]) -> None:
    """The lab's key pair and a host key pair per node, made once: rendering again keeps
    them, since the VMs terraform already made hold them."""
    from lab.sshkeys import write_ed25519

    (keys / "hosts").mkdir(parents=True, exist_ok=True)
    keys.chmod(0o700)
    if not (keys / "id_ed25519").is_file():
        write_ed25519(keys / "id_ed25519", f"racklab-{lab}")
    for n in nodes:
        if not (keys / "hosts" / n).is_file():
            write_ed25519(keys / "hosts" / n, n)


def render(
    topo: Topology,
    out: Path,
    *,
    hosts: dict[str, str] | None = None,
    racks: dict[str, str] | None = None,
    domain_type: str = "kvm",
    pool: str = "default",
    image: dict | None = None,
) -> Rendered:
    """Write the root module for ``topo`` into ``out``. ``hosts`` (name -> URI) and
    ``racks`` (rack -> host) override the file's hosts section; ``image`` the facts
    of racklab's VM image (default: this machine's build)."""
    from lab.images.vm import BOOT_CMDLINE

    check_vm_only(topo)
    if domain_type not in ("kvm", "qemu"):
        raise RenderError(f"domain type {domain_type!r}: use kvm, or qemu (emulation)")
    hosts, placement = placement_of(topo, hosts, racks)
    hosts = {h: uri for h, uri in hosts.items() if h in placement.values()}  # hosts in use
    supernet = supernet_of(topo)
    missing: list[str] = []
    if image is None:
        image, missing = image_facts()

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ensure_keys(out / "keys", topo.name, list(topo.nodes))
    dest = out / "modules"
    for name in ("plan", "host"):
        shutil.rmtree(dest / name, ignore_errors=True)
        shutil.copytree(modules_source() / name, dest / name)

    header = HEADER.format(file=Path(topo.file).name)
    files = {
        "versions.tf": hcl.document(_versions(), header=header),
        "plan.tf": hcl.document(*_plan(topo, supernet, hosts, placement), header=header),
        "hosts.tf": hcl.document(
            *_hosts(topo, hosts, image, pool, domain_type, BOOT_CMDLINE), header=header
        ),
    }
    # keys and terraform's state hold private keys (the seeds carry the host keys)
    files[".gitignore"] = "keys/\n*.tfstate\n*.tfstate.*\n.terraform/\n"
    written = []
    for name, text in files.items():
        (out / name).write_text(text)
        written.append(out / name)
    return Rendered(out, topo.name, supernet, hosts, placement, written, missing)


def _versions() -> Block:
    tf = Block("terraform", required_version=">= 1.5")
    tf.add(Block("required_providers", libvirt={"source": PROVIDER_SOURCE,
                                                "version": PROVIDER_VERSION}))  # fmt: skip
    return tf


def _plan(topo: Topology, supernet: str, hosts: dict, placement: dict) -> list[Block]:
    racks = [
        {
            "name": rack,
            "host": placement[rack],
            "nodes": [
                {"name": n, "cpus": topo.nodes[n].cpus, "memory": topo.nodes[n].memory}
                for n in members
            ],
        }
        for rack, members in topo.racks.items()
    ]
    keys = {
        n: {
            "private": Raw(f'file("${{path.module}}/keys/hosts/{n}")'),
            "public": Raw(f'file("${{path.module}}/keys/hosts/{n}.pub")'),
        }
        for n in topo.nodes
    }
    plan = Block(
        "module",
        "plan",
        source="./modules/plan",
        lab=topo.name,
        labid=topo.labid,
        supernet=supernet,
        hosts=hosts,
        racks=racks,
        ssh_authorized_key=Raw('file("${path.module}/keys/id_ed25519.pub")'),
        host_keys=keys,
    )
    output = Block(
        "output",
        "racklab",
        description="What `lab up` reads: the lab, its hosts, racks and nodes.",
        value={
            "lab": Raw("module.plan.lab"),
            "hosts": Raw("module.plan.hosts"),
            "racks": Raw("module.plan.racks"),
            "nodes": Raw("module.plan.nodes"),
        },
    )
    return [plan, output]


def _ident(host: str) -> str:
    return host.replace("-", "_")


def _hosts(topo: Topology, hosts: dict, image: dict, pool: str, domain_type: str,
           cmdline: str) -> list[Block]:  # fmt: skip
    blocks = []
    for h, uri in hosts.items():
        blocks.append(Block("provider", "libvirt", alias=_ident(h), uri=uri))
    calls = []
    for h in hosts:
        calls.append(
            Block(
                "module",
                f"host_{_ident(h)}",
                source="./modules/host",
                providers={"libvirt": Raw(f"libvirt.{_ident(h)}")},
                lab=topo.name,
                host=h,
                racks=Raw(f'{{ for k, r in module.plan.racks : k => r if r.host == "{h}" }}'),
                nodes=Raw(f'{{ for k, n in module.plan.nodes : k => n if n.host == "{h}" }}'),
                seeds=Raw("module.plan.seeds"),
                image=dict(image),
                pool=pool,
                domain_type=domain_type,
                cmdline=cmdline,
            )
        )
    blocks += calls
    merged = ", ".join(f"module.host_{_ident(h)}.domains" for h in hosts)
    blocks.append(
        Block(
            "output",
            "racklab_domains",
            description="node => the domain terraform made for it (name, UUID).",
            value=Raw(f"merge({merged})"),
        )
    )
    return blocks
