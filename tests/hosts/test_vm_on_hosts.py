"""A VM node on another host (examples/multihost-vm.yaml on two of the simulated
hosts, each running its own libvirtd and QEMU): racklab's VM image sent from this
machine to the host once, the VM booted there by the host's libvirt, reached by name
from a node on the other host and from this machine, `lab exec` in it, and nothing of
the lab left on the host after `lab down`. Slow: a VM boot under emulation, twice."""

from __future__ import annotations

import os

import pytest

from lab.topology import labid_of

from .conftest import RUN, example_lab, lab_cli, lab_state
from .test_multihost import ssh

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

LAB = f"mhvmon{RUN}"


@pytest.fixture(scope="module")
def vm_lab(sim, tmp_path_factory):
    with example_lab(sim, "multihost-vm", LAB, tmp_path_factory) as (f, status):
        yield {"file": f, "status": status, "sent": state()["vm_images"]}


def state() -> dict:
    return lab_state(LAB)


def on_host_1(sim) -> list[str]:
    """What of the lab is on host 1: libvirt domains, QEMU processes, the lab's
    interfaces, namespaces and node folders (checked over SSH)."""
    labid = labid_of(LAB)
    look = (
        f"virsh -c qemu:///system list --all --name | grep racklab-{LAB}-; "
        f"ps -eo args | grep '[q]emu-system' | grep -o 'guest=racklab-{LAB}-[a-z0-9]*'; "
        f"ip -o link | grep -o 'rl{labid}[a-z0-9-]*'; ip netns list | grep -o 'rl{labid}-[a-z]*'; "
        f"ls -d /var/lib/racklab/{LAB} 2>/dev/null"
    )
    return ssh(sim, 1, look).split()


def test_the_vm_boots_in_the_hosts_own_libvirt(vm_lab, sim):
    nodes = {n["name"]: n for n in vm_lab["status"]["nodes"]}
    assert nodes["v1"]["kind"] == "vm" and nodes["n2"]["kind"] == "process"
    assert f"racklab-{LAB}-v1" in on_host_1(sim)
    assert "running" in ssh(sim, 1, f"virsh -c qemu:///system domstate racklab-{LAB}-v1")
    # the image went to host 1 only, whose agent reported its accelerator
    assert set(vm_lab["sent"]) == {"h1"}
    assert state()["host_facts"]["h1"]["kinds"]["vm"]["accelerator"] in ("kvm", "tcg")
    assert ssh(sim, 2, "ls /var/cache/racklab/vm-sent 2>/dev/null").strip() == ""


def test_the_vm_is_reached_by_name_and_lab_exec_runs_in_it(vm_lab):
    proc = lab_cli("exec", "v1", "--lab", LAB, "--", "hostname")
    assert (proc.returncode, proc.stdout) == (0, "v1\n"), proc.stderr
    # from a node on the other host, across the backbone, by name
    proc = lab_cli("exec", "n2", "--lab", LAB, "--", "ping", "-c", "2", "-W", "5", "v1")
    assert proc.returncode == 0 and "2 received" in proc.stdout, proc.stdout + proc.stderr
    # and back, from inside the guest
    proc = lab_cli("exec", "v1", "--lab", LAB, "--", "ping", "-c", "2", "-W", "5", "n2")
    assert proc.returncode == 0 and "2 received" in proc.stdout, proc.stdout + proc.stderr


def test_down_leaves_nothing_on_the_host_and_the_image_is_sent_once(vm_lab, sim):
    assert lab_cli("down", LAB).returncode == 0
    assert on_host_1(sim) == []
    proc = lab_cli("up", str(vm_lab["file"]), timeout=1500)
    assert proc.returncode == 0, proc.stderr
    # the base disk (over a gigabyte) is not sent again; racklab's own small disk is,
    # when racklab's source changed in between (a checkout others are editing)
    again = state()["vm_images"]["h1"]
    first = vm_lab["sent"]["h1"]
    assert again["image"] == first["image"] and again["sent_bytes"] < 64 << 20
    assert lab_cli("down", LAB).returncode == 0
    assert on_host_1(sim) == []
