"""The accelerator is probed, not assumed: KVM only where it really boots the VM's
stock Debian kernel. On this project's machines /dev/kvm is nested "PVM" KVM, which
hangs such a kernel, so the probe must see the hang and choose TCG."""

from __future__ import annotations

import os

import pytest

from lab.backends import vm
from lab.backends.vm import libvirt as vm_libvirt


def test_probe_boot_decides_and_its_verdict_is_cached(libvirt_conn, vm_image, monkeypatch,
                                                      tmp_path):  # fmt: skip
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.skip("no usable /dev/kvm on this host: nothing to probe")
    if "<domain type='kvm'" not in libvirt_conn.getCapabilities():
        pytest.skip("libvirt offers no kvm domains here")
    pvm = vm_libvirt._kvm_pvm_loaded()
    monkeypatch.setenv("RACKLAB_CACHE", str(tmp_path))
    monkeypatch.delenv("RACKLAB_VM_ACCEL", raising=False)
    # hide the PVM module so that the probe boot itself has to tell
    monkeypatch.setattr(vm_libvirt, "_kvm_pvm_loaded", lambda: False)
    accel, why = vm.probe_accelerator(libvirt_conn, vm_image.kernel)
    # nested PVM KVM hangs the stock kernel: the probe must see that and choose TCG
    assert accel == ("tcg" if pvm else "kvm"), why
    assert "probe boot under KVM" in why
    assert vm.probe_accelerator(libvirt_conn, vm_image.kernel) == (accel, why + " (cached probe)")
    left = [d.name() for d in libvirt_conn.listAllDomains(0) if "kvmprobe" in d.name()]
    assert left == []


def test_cheap_checks_come_first(monkeypatch, libvirt_conn):
    monkeypatch.setenv("RACKLAB_VM_ACCEL", "tcg")
    assert vm.probe_accelerator(libvirt_conn) == ("tcg", "set by RACKLAB_VM_ACCEL")
    monkeypatch.delenv("RACKLAB_VM_ACCEL")
    monkeypatch.setattr(vm_libvirt.os, "access", lambda path, mode: False)
    assert vm.probe_accelerator(libvirt_conn) == ("tcg", "no usable /dev/kvm")
    monkeypatch.setattr(vm_libvirt.os, "access", lambda path, mode: True)
    monkeypatch.setattr(vm_libvirt, "_kvm_pvm_loaded", lambda: True)
    accel, why = vm.probe_accelerator(libvirt_conn)
    assert accel == "tcg" and "PVM" in why


def test_names_fit_the_kernel_and_address_goes_on_the_command_line(tmp_path):
    from lab.backends.base import NodeSpec

    tap = vm.tap_name("ffff", "a-very-long-node-name")
    assert len(tap) <= 15 and tap.startswith("rlffffv")
    assert tap != vm.tap_name("ffff", "another")
    spec = NodeSpec(name="v1", lab="l", labid="ffff", kind="vm", rack="r1",
                    address="10.61.1.11/24", gateway="10.61.1.1")  # fmt: skip
    assert vm.kernel_ip_arg(spec) == "ip=10.61.1.11::10.61.1.1:255.255.255.0:v1:eth0:off"
