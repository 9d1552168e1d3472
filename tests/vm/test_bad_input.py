"""What a user gets wrong with VM nodes, and a host that cannot run them: one clear
sentence from `lab up` (exit code 2, no traceback), and nothing of the lab left
behind (no domain, no disk, no tap, no namespace, no state). None of these boots a VM.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ..integration.leftovers import leftovers
from .conftest import domains_of

TOPOLOGY = """
name: {name}
defaults: {{kind: process, cpus: 0.5, memory: 128Mi}}
racks:
  r1: {{nodes: [p1, v1]}}
nodes:
  v1: {{kind: vm, {vm}}}
"""


def lab_up(tmp_path, name: str, vm: str, env: dict | None = None) -> subprocess.CompletedProcess:
    path = tmp_path / "lab.yaml"
    path.write_text(TOPOLOGY.format(name=name, vm=vm))
    return subprocess.run(
        [sys.executable, "-m", "lab", "up", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def assert_refused(proc: subprocess.CompletedProcess, *phrases: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for phrase in phrases:
        assert phrase in proc.stderr, proc.stderr


def assert_nothing_left(conn, name: str) -> None:
    from lab.orchestrator.state import lab_dir

    assert domains_of(conn, name) == []
    assert leftovers(name) == []
    assert not lab_dir(name).exists()


def test_more_memory_than_the_host_has(tmp_path, libvirt_conn, lab_name):
    total_kib = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal"))
                    .split()[1])  # fmt: skip
    too_much = total_kib // (1 << 20) + 8  # GiB
    proc = lab_up(tmp_path, lab_name, f"memory: {too_much}Gi")
    assert_refused(proc, f"node v1: memory {too_much}.0 GiB is more than this host has")
    assert_nothing_left(libvirt_conn, lab_name)


def test_missing_kernel(tmp_path, libvirt_conn, vm_image, lab_name):
    # an image directory with its disk and initrd but no kernel
    broken = tmp_path / "image"
    broken.mkdir()
    (broken / "disk.qcow2").symlink_to(vm_image.disk)
    (broken / "initrd.img").symlink_to(vm_image.initrd)
    proc = lab_up(tmp_path, lab_name, f"image: {broken}")
    assert_refused(proc, "node v1: the VM image lacks its kernel", str(broken / "vmlinuz"))
    assert_nothing_left(libvirt_conn, lab_name)


def test_libvirt_daemon_down(tmp_path, libvirt_conn, lab_name):
    # a daemon socket nobody listens on: what a host with libvirtd stopped looks like
    uri = f"qemu+unix:///system?socket={tmp_path}/no-libvirtd-sock"
    proc = lab_up(tmp_path, lab_name, "memory: 256Mi", env={"RACKLAB_LIBVIRT_URI": uri})
    assert_refused(proc, f"cannot reach the libvirt daemon at {uri}", "make libvirt")
    assert_nothing_left(libvirt_conn, lab_name)


def test_lab_down_with_the_daemon_down_does_not_fail(monkeypatch, tmp_path):
    """`lab down`/`clean` of a lab must finish even if libvirtd is gone meanwhile."""
    from lab.backends.vm import VMBackend

    monkeypatch.setenv("RACKLAB_LIBVIRT_URI", f"qemu+unix:///system?socket={tmp_path}/none")
    assert VMBackend().cleanup("t8nosuchlab", "ffff") == []


@pytest.mark.parametrize(
    "memory, why", [("64Mi", "too little for a VM"), (None, None)], ids=["tiny", "default"]
)
def test_checks_before_anything_is_made(tmp_path, memory, why):
    from lab.backends.base import NodeSpec
    from lab.backends.vm import DEFAULT_MEMORY, VMBackend, VMError
    from lab.topology.units import parse_size

    spec = NodeSpec(name="v1", lab="t8x", labid="ffff", kind="vm", rack="r1",
                    memory=parse_size(memory) if memory else None,
                    state_dir=tmp_path / "nodes" / "v1")  # fmt: skip
    backend = VMBackend(conn=object())  # no daemon is asked: the checks come first
    if why:
        with pytest.raises(VMError, match=why):
            backend.check(spec)
    else:
        assert backend.check(spec) == (1, DEFAULT_MEMORY)
    assert not (tmp_path / "nodes").exists()


@pytest.mark.slow
def test_one_vm_refused_undoes_the_one_that_booted(tmp_path, libvirt_conn, vm_image, lab_name):
    """v1 boots, v2 is refused: the lab's undo must find v1's domain even though no node
    was recorded in the lab's state yet."""
    broken = tmp_path / "image"
    broken.mkdir()
    (broken / "disk.qcow2").symlink_to(vm_image.disk)
    (broken / "initrd.img").symlink_to(vm_image.initrd)
    path = tmp_path / "lab.yaml"
    path.write_text(
        f"name: {lab_name}\nracks:\n  r1: {{nodes: [v1, v2]}}\n"
        f"nodes:\n  v1: {{kind: vm, memory: 256Mi}}\n  v2: {{kind: vm, image: {broken}}}\n"
    )
    proc = subprocess.run([sys.executable, "-m", "lab", "up", str(path)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert_refused(proc, "node v2: the VM image lacks its kernel")
    assert_nothing_left(libvirt_conn, lab_name)
