"""A lab mixing namespace nodes, containers and a pod: one rack network for all
kinds (addresses, names, routes through the router), testinfra on every node, and
`lab down` leaving nothing of any kind behind."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from lab.testing.testinfra_node import host_for

TOPOLOGY = """
name: {name}
defaults: {{kind: container, cpus: 0.5, memory: 256Mi, pids: 512}}
network:
  supernet: auto
  inter_rack: {{delay: 1ms}}
racks:
  r1: {{nodes: [n1, n2]}}
  r2: {{nodes: [n3, n4]}}
nodes:
  n1: {{kind: process}}
  n4: {{kind: pod}}
"""


@pytest.fixture
def mixed_lab(docker_engine, node_image, lab_name, monkeypatch):
    from lab.backends import container
    from lab.orchestrator import lab as orch
    from lab.topology import loads

    # use the session's image instead of building one for the lab
    monkeypatch.setattr(container, "_ensured_image", node_image)
    topo = loads(TOPOLOGY.format(name=lab_name), "mixed.yaml")
    state = orch.up(topo)
    yield orch, state
    if orch.State.load(lab_name) is not None:
        orch.teardown(lab_name, orch.State.load(lab_name))


def test_every_kind_on_one_rack_network(mixed_lab, labelled, docker_engine, lab_name):
    orch, state = mixed_lab
    nodes = orch.attach_nodes(state)
    kinds = {name: node.kind for name, node in nodes.items()}
    assert kinds == {"n1": "process", "n2": "container", "n3": "container", "n4": "pod"}
    addresses = state["network"]["nodes"]
    for name, node in nodes.items():
        host = host_for(node)
        assert addresses[name] in host.interface("eth0").addresses
        for other in nodes:
            assert host.file("/etc/hosts").contains(addresses[other]), (name, other)
            r = node.exec(["ping", "-c", "1", "-W", "3", other], timeout=20)
            assert r.returncode == 0, f"{name} -> {other}: {r.stdout} {r.stderr}"
    # limits reach containers through Docker
    assert nodes["n2"].stats().memory_max == 256 << 20

    labid = state["labid"]
    removed = orch.down(lab_name)
    assert any("racklab-" + lab_name + "-n4" in r for r in removed)
    assert labelled(docker_engine, lab_name) == {"containers": [], "volumes": [], "networks": []}
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"rl{labid}" not in links
    assert not os.path.exists(orch.lab_dir(lab_name))


ZK_TOPOLOGY = """
name: {name}
defaults: {{kind: container, cpus: 0.5, memory: 256Mi, pids: 512}}
network:
  supernet: auto
  inter_rack: {{delay: 1ms}}
racks:
  r1: {{nodes: [z1, z2]}}
  r2: {{nodes: [z3]}}
nodes:
  z1: {{kind: process}}
  z3: {{kind: pod}}
services:
  zookeeper: {{nodes: [z1, z2, z3]}}
"""


@pytest.fixture
def zk_lab(docker_engine, node_image, lab_name, monkeypatch):
    from lab.backends import container
    from lab.orchestrator import lab as orch
    from lab.topology import loads

    monkeypatch.setattr(container, "_ensured_image", node_image)
    state = orch.up(loads(ZK_TOPOLOGY.format(name=lab_name), "zk.yaml"))
    yield orch, state
    orch.clean(lab_name)


def _kazoo(address: str, timeout: float = 90):
    """A started kazoo client; retried, since a server accepts TCP before its
    ensemble has a quorum and refuses sessions until then."""
    from kazoo.client import KazooClient

    deadline = time.monotonic() + timeout
    while True:
        zk = KazooClient(hosts=f"{address}:2181", timeout=10)
        try:
            zk.start(timeout=15)
            return zk
        except Exception:
            zk.stop()
            zk.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _create_once(zk, path: str, value: bytes) -> None:
    """create, where a retry after a lost reply finds the node already made"""
    from kazoo.exceptions import NodeExistsError

    try:
        zk.create(path, value)
    except NodeExistsError:
        pass


def test_zookeeper_ensemble_across_kinds_and_a_pod_restart(zk_lab):
    """One ensemble over a namespace node, a container and a pod; kazoo writes through
    one kind and reads through another; the pod's server crashes, Docker restarts that
    container alone, and it serves the data again from its data dir."""
    orch, state = zk_lab
    addresses = state["network"]["nodes"]
    nodes = orch.attach_nodes(state)
    writer = _kazoo(addresses["z1"])
    try:
        writer.create("/racks/r1", b"namespace node", makepath=True)
        reader = _kazoo(addresses["z2"])
        try:
            reader.sync("/racks/r1")
            assert reader.get("/racks/r1")[0] == b"namespace node"
        finally:
            reader.stop()

        pod = nodes["z3"]
        (name,) = pod.services()
        before = pod.services()[name]
        pod.crash_service(name)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            svc = pod.services()[name]
            if svc.restart_count >= 1 and svc.status == "running":
                break
            time.sleep(0.2)
        assert svc.restart_count >= 1 and svc.pid != before.pid
        writer.retry(_create_once, writer, "/racks/r2", b"after the restart")
        zk = _kazoo(addresses["z3"])  # the restarted server, once it has rejoined
        try:
            zk.sync("/racks/r2")
            assert zk.get("/racks/r1")[0] == b"namespace node"
            assert zk.get("/racks/r2")[0] == b"after the restart"
        finally:
            zk.stop()
    finally:
        writer.stop()
