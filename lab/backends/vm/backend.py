"""The VM backend: checks a node's request against the host, makes its files and
domain and boots it, finds it again, and removes everything of a lab after a crash."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from lab.backends.base import VM_IMAGE, Backend, NodeSpec
from lab.images.vm import BOOT_CMDLINE
from lab.sshkeys import write_ed25519

from .domain import (
    domain_metadata,
    domain_name,
    domain_xml,
    hosts_file,
    kernel_ip_arg,
    mkfs_dir,
)
from .libvirt import VMError, accelerator, connect
from .node import VMNode
from .ssh import ensure_lab_key

DEFAULT_MEMORY = 512 << 20
DEFAULT_VCPUS = 1


def host_memory() -> int:
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise VMError("cannot read MemTotal from /proc/meminfo")


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


class VMBackend(Backend):
    kind = "vm"
    # python3-libvirt: the binding the agent's venv sees (libvirt-python builds only
    # against the host's own libvirt)
    host_packages = ("libvirt-daemon-system", "qemu-system-x86", "qemu-utils", "python3-libvirt")
    host_daemons = (
        ("virtlogd", "virtlogd", "virtlogd -d"),
        ("libvirtd", "libvirtd", "libvirtd -d"),
    )
    host_image = VM_IMAGE
    reserves_memory = True
    graph_shape = "component"

    @classmethod
    def with_sent_image(cls, sent=None) -> Backend:
        # sent: the VM image the controller sent for this host's agent, if any
        return cls(image=sent) if sent is not None else cls()

    def __init__(self, conn=None, image=None):
        """image: a lab.images.vm.VMImage to boot (default: the current build, made
        when missing)."""
        self._conn = conn
        self._image = image

    @property
    def conn(self):
        if self._conn is None:
            self._conn = connect()
        return self._conn

    def facts(self) -> dict:
        accel, why = accelerator(self.conn)
        return {"accelerator": accel, "accelerator_reason": why}

    def _resolve_image(self, spec: NodeSpec):
        from lab.images import vm as vmimage

        if self._image is not None and spec.image is None:
            image = self._image  # the image the controller sent to this host
        elif self._image is not None:
            # a node's own image directory on this host, with the racklab disk sent
            # here (a host has no racklab source to build one from)
            image = vmimage.VMImage(Path(spec.image), self._image.racklab_disk)
        else:
            image = vmimage.ensure_vm_image(spec.image)
        missing = image.missing()
        if missing:
            raise VMError(
                f"node {spec.name}: the VM image lacks its {', '.join(missing)} "
                "(`python -m lab.images.vm` builds racklab's VM image)"
            )
        return image

    def check(self, spec: NodeSpec) -> tuple[int, int]:
        """Refuse what cannot work before anything is made: (vcpus, memory)."""
        memory = int(spec.memory or DEFAULT_MEMORY)
        have = host_memory()
        if memory > have:
            raise VMError(
                f"node {spec.name}: memory {_gib(memory)} is more than this host has ({_gib(have)})"
            )
        if memory < 128 << 20:
            raise VMError(f"node {spec.name}: memory {_gib(memory)} is too little for a VM "
                          "(at least 128 MiB)")  # fmt: skip
        vcpus = max(DEFAULT_VCPUS, int(-(-(spec.cpus or DEFAULT_VCPUS) // 1)))
        if vcpus > (os.cpu_count() or 1):
            raise VMError(f"node {spec.name}: {vcpus} vCPUs is more than this host's "
                          f"{os.cpu_count()} CPUs")  # fmt: skip
        if str(spec.state_dir) in ("", "."):
            raise VMError(f"node {spec.name}: a VM node needs a state directory for its disk")
        return vcpus, memory

    def create(self, spec: NodeSpec) -> VMNode:
        import libvirt

        vcpus, memory = self.check(spec)
        conn = self.conn  # a daemon that is down is refused here, before anything is made
        image = self._resolve_image(spec)
        accel, why = accelerator(conn, image.kernel)
        node = VMNode(spec, conn)
        node.image, node.accel, node.accel_reason = str(image.dir), accel, why
        try:
            conn.lookupByName(node.domain_name)
            raise VMError(f"node {spec.name}: libvirt already has a domain {node.domain_name} "
                          f"(left by a crash? `lab clean {spec.lab}` removes it)")  # fmt: skip
        except libvirt.libvirtError:
            pass
        made_dir = not node.dir.exists()
        try:
            self._make_files(node, image)
            cmdline = " ".join(filter(None, [BOOT_CMDLINE, kernel_ip_arg(spec)]))
            xml = domain_xml(node, image, vcpus, memory, accel, cmdline)
            (node.dir / "domain.xml").write_text(xml)
            try:
                conn.defineXML(xml)
            except libvirt.libvirtError as exc:
                raise VMError(f"node {spec.name}: libvirt refused the domain: "
                              f"{exc.get_error_message()}") from None  # fmt: skip
            node.boot()
        except BaseException:
            node.destroy()
            if made_dir:
                shutil.rmtree(node.dir, ignore_errors=True)
            raise
        return node

    def _make_files(self, node: VMNode, image) -> None:
        spec = node.spec
        node.dir.mkdir(parents=True, exist_ok=True)
        key = ensure_lab_key(spec)
        node.key_path = key
        if not node.host_key.exists():
            write_ed25519(node.host_key, f"{spec.name}")
        host_pub = node.host_key.with_name(node.host_key.name + ".pub").read_text().split()
        (node.dir / "known_hosts").write_text(f"{node.address} {host_pub[0]} {host_pub[1]}\n")
        proc = subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
             "-b", str(image.disk), str(node.overlay)],
            capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode != 0:
            raise VMError(f"node {spec.name}: qemu-img could not make the overlay: "
                          f"{proc.stderr.strip()}")  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="racklab-vmcfg-") as tmp:
            cfg = Path(tmp)
            (cfg / "hostname").write_text(spec.name + "\n")
            (cfg / "hosts").write_text(hosts_file(spec.hosts, spec.name))
            shutil.copy2(key.with_name(key.name + ".pub"), cfg / "authorized_keys")
            shutil.copy2(node.host_key, cfg / "ssh_host_ed25519_key")
            shutil.copy2(node.host_key.with_name(node.host_key.name + ".pub"),
                         cfg / "ssh_host_ed25519_key.pub")  # fmt: skip
            mkfs_dir(cfg, node.config_disk, "racklab-cfg")

    def attach(self, spec: NodeSpec, saved: dict) -> VMNode:
        return VMNode(spec, self._conn, saved)

    def labs(self) -> set[str]:
        return labs_with_domains()

    def cleanup(self, lab: str, labid: str) -> list[str]:
        """Every domain of ``lab`` (found by name, even without the lab's state), its
        overlay and config disk, its tap, and the lab's SSH key pair."""
        import libvirt

        removed: list[str] = []
        key_dirs: set[Path] = set()
        try:
            conn = self.conn
        except VMError:
            conn = None  # the daemon is down: nothing of the lab can be running in it
        prefix = domain_name(lab, "")
        for dom in conn.listAllDomains(0) if conn is not None else []:
            if not dom.name().startswith(prefix):
                continue
            meta = domain_metadata(dom)
            if meta.get("lab") not in (None, lab):
                continue  # another lab whose name merely starts like this one's
            try:
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
                removed.append(f"domain {dom.name()}")
            except libvirt.libvirtError as exc:
                removed.append(f"domain {dom.name()} NOT removed: {exc.get_error_message()}")
            if meta.get("dir"):
                for name in ("disk.qcow2", "config.img"):
                    p = Path(meta["dir"]) / name
                    if p.exists():
                        p.unlink()
                        removed.append(
                            f"{'disk overlay' if name == 'disk.qcow2' else 'config disk'} {p}"
                        )  # noqa: E501
            if meta.get("key"):
                key_dirs.add(Path(meta["key"]))
        removed += _remove_host_taps(labid)
        for d in key_dirs:
            if d.is_dir():
                shutil.rmtree(d, ignore_errors=True)
                removed.append(f"ssh key {d / 'id_ed25519'}")
        return removed


def _remove_host_taps(labid: str) -> list[str]:
    """Taps libvirt made that never reached the lab (a crash between boot and wiring)."""
    from pyroute2 import IPRoute

    removed = []
    with IPRoute() as ipr:
        for link in ipr.get_links():
            name = link.get_attr("IFLA_IFNAME")
            if name.startswith(f"rl{labid}v"):
                ipr.link("del", index=link["index"])
                removed.append(f"interface {name}")
    return removed


def labs_with_domains() -> set[str]:
    """Names of the labs that have racklab domains in libvirt (from each domain's
    metadata): for `lab clean --all` after a crash that lost a lab's state."""
    try:
        conn = connect()
    except VMError:
        return set()
    labs = set()
    for dom in conn.listAllDomains(0):
        if dom.name().startswith("racklab-"):
            lab = domain_metadata(dom).get("lab")
            if lab:
                labs.add(lab)
    return labs
