"""testinfra hosts for lab nodes of every kind: the checks a user writes against a lab."""

from __future__ import annotations

import os
import time

import pytest

from lab.testing.testinfra_node import NodeBackend, host_for

SERVER = ["{python}", "-m", "http.server", "--bind", "0.0.0.0", "8080"]


def _wait_listening(host, spec: str, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if host.socket(spec).is_listening:
            return True
        time.sleep(0.2)
    return False


def _check_node(node, python: str):
    """The same checks on any kind of node: files, processes, sockets, commands."""
    host = host_for(node)
    hosts = host.file("/etc/hosts")
    assert hosts.exists and hosts.contains("10.99.3.10")
    assert host.check_output("hostname") == node.name
    assert host.run("exit 7").rc == 7
    # a server started the way the orchestrator starts services; port 8080 is the
    # node's own (its network namespace is private), never the host's
    info = node.start_service("web", [python if a == "{python}" else a for a in SERVER])
    try:
        assert _wait_listening(host, "tcp://0.0.0.0:8080")
        procs = host.process.filter(comm="python3") or host.process.filter(comm="python")
        assert any("http.server" in p.args for p in procs)
        assert host.file("/srv/node/logs/web.log").exists
    finally:
        node.stop_service("web", info)
    assert not host.socket("tcp://0.0.0.0:8080").is_listening


def test_container_node(container_backend, lab_name, make_spec):
    node = container_backend.create(make_spec(lab_name, "c1", hosts={"c1": "10.99.3.10/24"}))
    assert host_for(node).backend.NAME == "docker"  # testinfra's own Docker backend
    _check_node(node, "{python}")


def test_pod_node(pod_backend, lab_name, make_spec):
    node = pod_backend.create(make_spec(lab_name, "p1", kind="pod", hosts={"p1": "10.99.3.10/24"}))
    _check_node(node, "{python}")


@pytest.fixture
def process_node(lab_name, make_spec, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("namespace nodes need root")
    from lab.backends.process import ProcessBackend

    backend = ProcessBackend()
    spec = make_spec(
        lab_name, "n1", kind="process", hosts={"n1": "10.99.3.10/24"}, state_dir=tmp_path / "n1"
    )
    node = backend.create(spec)
    yield node
    node.destroy()
    backend.cleanup(lab_name, lab_name[-6:])


def test_namespace_node(process_node):
    assert isinstance(host_for(process_node).backend, NodeBackend)
    _check_node(process_node, process_node.python)
