"""A lab mixing namespace nodes, containers and a pod: one rack network for all
kinds (addresses, names, routes through the router), testinfra on every node, and
`lab down` leaving nothing of any kind behind."""

from __future__ import annotations

import os
import subprocess

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
