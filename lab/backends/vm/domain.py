"""A VM node's libvirt domain: its names, its config disk, and its XML.

Direct kernel boot of the image's Debian kernel and initrd, a qcow2 copy-on-write
overlay over the image's base disk, a small read-only config disk (/etc/hosts, host
name, the lab's SSH public key, the node's own SSH host key), the racklab disk
(racklab's code, see lab/images/vm.py), a virtio NIC on a tap, and the serial
console written to a file. The address is on the kernel command line (``ip=``).
"""

from __future__ import annotations

import hashlib
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from lab.backends.base import NodeSpec

from .libvirt import VMError

if TYPE_CHECKING:
    from .node import VMNode

METADATA_NS = "https://racklab.dev/vm/1"


def domain_name(lab: str, node: str) -> str:
    return f"racklab-{lab}-{node}"


def tap_name(labid: str, node: str) -> str:
    """The tap's name on the host: unique per lab and node, within 15 characters."""
    return f"rl{labid}v{hashlib.sha1(node.encode()).hexdigest()[:6]}"


def mac_address(labid: str, node: str) -> str:
    h = hashlib.sha1(f"{labid}/{node}".encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in h[:3])


def mkfs_dir(src: Path, image: Path, label: str) -> None:
    """A small ext4 image holding ``src``'s files (no loop device, no mount)."""
    size_k = max(4096, 2 * sum(p.stat().st_size for p in src.rglob("*") if p.is_file()) // 1024)
    proc = subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-L", label, "-O", "^has_journal", "-d", str(src),
         str(image), f"{size_k}k"],
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise VMError(f"mkfs.ext4 for {image} failed: {proc.stderr.strip()}")


def hosts_file(hosts: dict[str, str], own: str) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{addr.split('/')[0]}\t{name}" for name, addr in hosts.items() if addr]
    if own not in hosts:
        lines.append(f"127.0.1.1\t{own}")
    return "\n".join(lines) + "\n"


def kernel_ip_arg(spec: NodeSpec) -> str:
    """ip=<client>::<gateway>:<netmask>:<hostname>:eth0:off (the kernel's nfsroot syntax)."""
    if not spec.address:
        return ""
    import ipaddress

    iface = ipaddress.IPv4Interface(spec.address)
    return f"ip={iface.ip}::{spec.gateway}:{iface.netmask}:{spec.name}:eth0:off"


def domain_xml(node: VMNode, image, vcpus: int, memory: int, accel: str, cmdline: str) -> str:
    spec = node.spec
    meta = (
        f"<racklab:node xmlns:racklab={quoteattr(METADATA_NS)} lab={quoteattr(spec.lab)} "
        f"labid={quoteattr(spec.labid)} node={quoteattr(spec.name)} "
        f"dir={quoteattr(str(node.dir))} key={quoteattr(str(node.key_path.parent))}/>"
    )
    cputune = ""
    if spec.cpus and spec.cpus < vcpus:  # a fraction of a CPU: CFS quota on the vCPUs
        cputune = (f"<cputune><period>100000</period>"
                   f"<quota>{int(spec.cpus / vcpus * 100000)}</quota></cputune>")  # fmt: skip
    cpu = ""  # QEMU's default model: host-passthrough fails outright under nested KVM

    def f(p) -> str:
        return quoteattr(str(p))

    return f"""<domain type='{"kvm" if accel == "kvm" else "qemu"}'>
  <name>{escape(node.domain_name)}</name>
  <metadata>{meta}</metadata>
  <memory unit='KiB'>{memory // 1024}</memory>
  <vcpu>{vcpus}</vcpu>{cputune}
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{escape(str(image.kernel))}</kernel>
    <initrd>{escape(str(image.initrd))}</initrd>
    <cmdline>{escape(cmdline)}</cmdline>
  </os>
  <features><acpi/><apic/></features>{cpu}
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='writeback' discard='unmap'/>
      <source file={f(node.overlay)}/><target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/><source file={f(node.config_disk)}/>
      <target dev='vdb' bus='virtio'/><readonly/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/><source file={f(image.racklab_disk)}/>
      <target dev='vdc' bus='virtio'/><readonly/>
    </disk>
    <interface type='ethernet'>
      <target dev={f(node.tap)}/><mac address={f(mac_address(spec.labid, spec.name))}/>
      <model type='virtio'/>
    </interface>
    <serial type='file'><source path={f(node.console_log)} append='on'/><target port='0'/></serial>
    <memballoon model='none'/>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
  </devices>
  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>
</domain>
"""


def domain_metadata(dom) -> dict:
    """racklab's attributes on a domain (lab, labid, node, dir, key), {} for others."""
    import libvirt

    try:
        text = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS)
    except libvirt.libvirtError:
        return {}
    try:
        return dict(ET.fromstring(text).attrib)
    except ET.ParseError:
        return {}
