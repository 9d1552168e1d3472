"""A VM node's life after `lab up` (slow: each case boots the VM again): stop and
start (a new tap, put back on the rack bridge), kill and start, services that do not
survive a reboot, and a ZooKeeper server on the VM answering kazoo from the host."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.slow

TOPOLOGY = """
name: {name}
defaults: {{kind: process, cpus: 0.5, memory: 256Mi}}
racks:
  r1: {{nodes: [p1, v1]}}
nodes:
  v1: {{kind: vm, memory: 512Mi}}
services:
  zookeeper: {{nodes: [v1]}}
"""


@pytest.fixture(scope="module")
def vm_lab(libvirt_conn, vm_image):
    from lab.orchestrator import lab as orch
    from lab.topology import loads

    name = "t8" + uuid.uuid4().hex[:8]
    state = orch.up(loads(TOPOLOGY.format(name=name), "vm-life.yaml"))
    nodes = orch.attach_nodes(state)
    yield orch, state, nodes
    if orch.State.load(name) is not None:
        orch.teardown(name, orch.State.load(name))


def _ping(node, target: str) -> bool:
    return node.exec(["ping", "-c", "1", "-W", "5", target], timeout=30).returncode == 0


def test_zookeeper_on_the_vm_answers_kazoo(vm_lab):
    from kazoo.client import KazooClient

    _, state, nodes = vm_lab
    addr = state["network"]["nodes"]["v1"]
    zk = KazooClient(hosts=f"{addr}:2181", timeout=30)
    zk.start(timeout=60)
    try:
        zk.create("/on-a-vm", b"hello", makepath=True)
        assert zk.get("/on-a-vm")[0] == b"hello"
    finally:
        zk.stop()
        zk.close()


def test_stop_then_start_rewires_the_new_tap(vm_lab):
    _, state, nodes = vm_lab
    v1, p1 = nodes["v1"], nodes["p1"]
    svc = next(s for s in state["services"].values() if s["node"] == "v1")
    v1.stop()
    assert not v1.describe()["running"]
    assert not v1.service_running(svc["name"], svc)
    assert not _ping(p1, "v1")
    v1.start()
    v1.wait_ssh()
    assert v1.describe()["running"]
    assert _ping(p1, "v1") and _ping(v1, "p1")
    # a reboot ends the services: the pid file on the guest's tmpfs is gone with them
    assert not v1.service_running(svc["name"], svc)


def test_kill_then_start_keeps_the_disk(vm_lab):
    _, _, nodes = vm_lab
    v1 = nodes["v1"]
    v1.exec(["sh", "-c", "echo kept > /srv/node/marker; sync"]).check()
    v1.kill()
    assert not v1.describe()["running"]
    v1.start()
    v1.wait_ssh()
    assert v1.get_file("/srv/node/marker") == b"kept\n"


def test_service_start_and_stop(vm_lab):
    _, _, nodes = vm_lab
    v1 = nodes["v1"]
    info = v1.start_service("sleeper", ["sleep", "600"], {"WHO": "test"})
    assert v1.service_running("sleeper", info)
    environ = v1.exec(["sh", "-c", f"tr '\\0' '\\n' < /proc/{info['pid']}/environ"]).stdout
    assert "WHO=test" in environ.splitlines()
    v1.stop_service("sleeper", info)
    assert not v1.service_running("sleeper", info)


def test_teardown_without_state_finds_the_vm(vm_lab, libvirt_conn):
    """A lost state dir (a crash, a careless rm): the lab's VM is still found and
    removed by name, with its tap."""
    import shutil
    import subprocess

    from ..integration.leftovers import leftovers
    from .conftest import domains_of

    orch, state, nodes = vm_lab
    tap = nodes["v1"].tap
    shutil.rmtree(orch.lab_dir(state.name))
    removed = orch.teardown(state.name, None)
    assert f"domain racklab-{state.name}-v1" in removed
    assert domains_of(libvirt_conn, state.name) == []
    assert tap not in subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    assert leftovers(state.name) == []
