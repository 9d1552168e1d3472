"""libvirt: the connection, and the accelerator (KVM or TCG) chosen by probing.

KVM when /dev/kvm is usable and is not the nested "PVM" kind (which only boots
specially built guest kernels and hangs a stock one), else QEMU's TCG emulation.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from lab.backends.base import NodeError

LIBVIRT_URI = "qemu:///system"


class VMError(NodeError):
    """A VM node cannot be made or reached; the message says why and what to do."""


def libvirt_uri() -> str:
    return os.environ.get("RACKLAB_LIBVIRT_URI", LIBVIRT_URI)


def connect():
    """A libvirt connection, or VMError saying the daemon does not answer."""
    try:
        import libvirt
    except ImportError:
        raise VMError(
            "libvirt-python is not installed; `make libvirt` installs libvirt and its bindings"
        ) from None
    # libvirt prints every error to stderr by default, even those we expect and
    # handle (a lookup of a domain that does not exist yet)
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    uri = libvirt_uri()
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise VMError(
            f"cannot reach the libvirt daemon at {uri} ({exc.get_error_message()}); "
            "`make libvirt` installs and starts libvirtd"
        ) from None


_accel: tuple[str, str] | None = None


_accel_lock = threading.Lock()


def _kvm_pvm_loaded() -> bool:
    if Path("/sys/module/kvm_pvm").exists():
        return True
    try:
        return any(line.split()[0] == "kvm_pvm" for line in open("/proc/modules"))
    except OSError:
        return False


def probe_accelerator(conn, kernel: Path | None = None) -> tuple[str, str]:
    """("kvm" | "tcg", why). RACKLAB_VM_ACCEL=kvm|tcg overrides the probe.

    Cheap checks first (the device, the PVM module, libvirt's capabilities); then, if
    KVM looks usable and a kernel is given, a short boot of that kernel under KVM
    (probe_kvm_boot), whose verdict is cached per host kernel and QEMU version."""
    forced = os.environ.get("RACKLAB_VM_ACCEL", "").lower()
    if forced in ("kvm", "tcg"):
        return forced, "set by RACKLAB_VM_ACCEL"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg", "no usable /dev/kvm"
    if _kvm_pvm_loaded():
        return "tcg", "/dev/kvm is nested PVM KVM (kvm_pvm), which hangs stock guest kernels"
    caps = conn.getCapabilities()
    if "<domain type='kvm'" not in caps:
        return "tcg", "libvirt offers no kvm domains on this host"
    if kernel is None:
        return "kvm", "/dev/kvm usable (not probed)"
    from lab.images.cache import cache_dir

    key = f"{os.uname().release} qemu {conn.getVersion()} {kernel.resolve()}"
    record = cache_dir() / "vm" / "kvm-probe.json"
    try:
        saved = json.loads(record.read_text())
        if saved.get("key") == key:
            return saved["accel"], saved["why"] + " (cached probe)"
    except (OSError, ValueError, KeyError):
        pass
    ok, detail = probe_kvm_boot(conn, kernel)
    verdict = ("kvm", f"a probe boot under KVM printed the kernel banner ({detail})") if ok else (
        "tcg", f"a probe boot under KVM hung ({detail})")  # fmt: skip
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"key": key, "accel": verdict[0], "why": verdict[1]}))
    return verdict


PROBE_BANNER = b"Linux version"


def probe_kvm_boot(conn, kernel: Path, timeout: float = 10.0) -> tuple[bool, str]:
    """Boot ``kernel`` under KVM with no disk and watch its serial console: a working
    KVM prints the kernel's banner within a second or two; a KVM that cannot run this
    kernel (nested PVM with a stock kernel) prints at most the decompressor's lines.
    Returns (banner seen, what happened). The probe domain is always destroyed."""
    import libvirt

    work = Path(tempfile.mkdtemp(prefix="racklab-kvmprobe-"))
    console = work / "console.log"
    name = f"racklab-kvmprobe-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    xml = f"""<domain type='kvm'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{escape(str(kernel))}</kernel>
    <cmdline>console=ttyS0 earlyprintk=serial,ttyS0 panic=-1</cmdline></os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <serial type='file'><source path={quoteattr(str(console))}/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>
</domain>"""
    dom = None
    started = time.monotonic()
    try:
        try:
            dom = conn.createXML(xml, 0)
        except libvirt.libvirtError as exc:
            return False, f"qemu refused to start: {exc.get_error_message()}"
        while time.monotonic() - started < timeout:
            try:
                if PROBE_BANNER in console.read_bytes():
                    return True, f"after {time.monotonic() - started:.1f}s"
            except OSError:
                pass
            time.sleep(0.1)
        return False, f"no kernel banner within {timeout:.0f}s"
    finally:
        if dom is not None:
            try:
                dom.destroy()
            except libvirt.libvirtError:
                pass  # already gone: the kernel panicked and the domain ended
        shutil.rmtree(work, ignore_errors=True)


def accelerator(conn, kernel: Path | None = None) -> tuple[str, str]:
    global _accel
    with _accel_lock:
        if _accel is None:
            verdict = probe_accelerator(conn, kernel)
            if kernel is None and verdict[0] == "kvm":
                return verdict  # unprobed (facts for a report): the first boot probes
            _accel = verdict
        return _accel
