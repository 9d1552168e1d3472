"""The accelerator is probed, not assumed: KVM only where it really boots the VM's
stock Debian kernel. On this project's machines /dev/kvm is nested "PVM" KVM, which
hangs such a kernel, so the probe must see the hang and choose TCG."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.backends import vm


def test_probe_boot_tells_whether_kvm_runs_a_stock_kernel(libvirt_conn, vm_image):
    if not Path("/dev/kvm").exists():
        pytest.skip("no /dev/kvm on this host: nothing to probe")
    ok, detail = vm.probe_kvm_boot(libvirt_conn, vm_image.kernel, timeout=10)
    if vm._kvm_pvm_loaded():
        assert not ok, f"nested PVM KVM printed the stock kernel's banner: {detail}"
        assert "no kernel banner" in detail or "refused" in detail
    else:
        assert ok, detail
    left = [d.name() for d in libvirt_conn.listAllDomains(0) if "kvmprobe" in d.name()]
    assert left == []


def test_cheap_checks_come_first(monkeypatch, libvirt_conn):
    monkeypatch.setenv("RACKLAB_VM_ACCEL", "tcg")
    assert vm.probe_accelerator(libvirt_conn) == ("tcg", "set by RACKLAB_VM_ACCEL")
    monkeypatch.delenv("RACKLAB_VM_ACCEL")
    monkeypatch.setattr(vm.os, "access", lambda path, mode: False)
    assert vm.probe_accelerator(libvirt_conn) == ("tcg", "no usable /dev/kvm")
    monkeypatch.setattr(vm.os, "access", lambda path, mode: True)
    monkeypatch.setattr(vm, "_kvm_pvm_loaded", lambda: True)
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
