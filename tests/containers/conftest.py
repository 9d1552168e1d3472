"""Fixtures for the container and pod tests.

The node image is built once per session (and cached across sessions under
RACKLAB_CACHE / in Docker by content tag), never per test. Every test lab gets a
unique name so concurrent runs do not meet, and its cleanup runs even when the
test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from lab.backends.base import NodeSpec


def _engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.fixture(scope="session")
def docker_engine():
    if os.geteuid() != 0:
        pytest.skip("container tests need root (Docker socket, cgroups)")
    if not _engine_answers():
        pytest.skip("no Docker engine answers; `make docker` starts one")
    from lab.backends.container import docker_client

    return docker_client()


@pytest.fixture(scope="session")
def node_image(docker_engine):
    """The node image, pinned under a session tag: a rebuild meanwhile (racklab's
    source edited, so a new content tag) prunes the old tag but not the pin."""
    from lab.images import build_images

    tag = build_images(progress=False).node_tag
    pin = f"racklab/test:{uuid.uuid4().hex[:12]}"
    docker_engine.images.get(tag).tag(pin)
    yield pin
    try:
        docker_engine.images.remove(pin)
    except Exception:
        pass  # still used by a container another fixture is removing: untagged later by prune


@pytest.fixture
def lab_name():
    return "t7" + uuid.uuid4().hex[:8]


def _make_spec(lab: str, name: str, kind: str = "container", **kw) -> NodeSpec:
    return NodeSpec(name=name, lab=lab, labid=lab[-6:], kind=kind, rack="r1", **kw)


def _labelled(client, lab: str) -> dict[str, list[str]]:
    selector = {"label": f"racklab.lab={lab}"}
    return {
        "containers": [c.name for c in client.containers.list(all=True, filters=selector)],
        "volumes": [v.name for v in client.volumes.list(filters=selector)],
        "networks": [n.name for n in client.networks.list(filters=selector)],
    }


@pytest.fixture
def make_spec():
    """make_spec(lab, name, kind="container", **NodeSpec fields) -> NodeSpec"""
    return _make_spec


@pytest.fixture
def labelled():
    """labelled(client, lab) -> what Docker still holds with the lab's label"""
    return _labelled


@pytest.fixture
def container_backend(docker_engine, node_image, lab_name):
    from lab.backends.container import ContainerBackend

    backend = ContainerBackend(client=docker_engine, image=node_image)
    yield backend
    backend.cleanup(lab_name, lab_name[-6:])


@pytest.fixture
def pod_backend(docker_engine, node_image, lab_name):
    from lab.backends.pod import PodBackend

    backend = PodBackend(client=docker_engine, image=node_image)
    yield backend
    backend.cleanup(lab_name, lab_name[-6:])
