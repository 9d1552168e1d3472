"""`k8s` nodes on a real cluster, through the official client: run only where
RACKLAB_KUBECONFIG names a cluster (and RACKLAB_K8S_IMAGE racklab's node image in a
registry that cluster pulls from). No stand-in API server is used: none would show
that the cluster path works. What is checked offline everywhere: the Pod object
these nodes get passes kubernetes-validate's strict check for 1.28 to 1.35."""

from __future__ import annotations

import os
import uuid

import pytest

from lab.backends.base import NodeSpec
from lab.backends.k8s_pod import pod_object
from tests.k8s.test_manifests import strict_errors

KUBECONFIG = os.environ.get("RACKLAB_KUBECONFIG")
IMAGE = os.environ.get("RACKLAB_K8S_IMAGE")


def _spec(lab: str, name: str = "n1") -> NodeSpec:
    return NodeSpec(
        name=name, lab=lab, labid="t", kind="k8s", rack="r1", cpus=0.25, memory=256 * 2**20,
        hosts={"n1": "10.70.1.10/24", "n2": "10.70.1.11/24"}, image=IMAGE,
    )  # fmt: skip


def test_the_node_pod_object_passes_strict_validation():
    pod = pod_object(_spec("k8sval"), "racklab/node:latest")
    assert strict_errors([pod]) == []
    spec = pod["spec"]
    assert spec["containers"][0]["securityContext"]["capabilities"]["add"] == [
        "NET_ADMIN",
        "NET_RAW",
    ]
    assert spec["containers"][0]["resources"]["limits"] == {"cpu": "250m", "memory": "256Mi"}
    assert spec["hostAliases"] == [
        {"ip": "10.70.1.10", "hostnames": ["n1"]},
        {"ip": "10.70.1.11", "hostnames": ["n2"]},
    ]


@pytest.fixture
def cluster_node():
    if not KUBECONFIG:
        pytest.skip(
            "no cluster: set RACKLAB_KUBECONFIG to a kubeconfig (and RACKLAB_K8S_IMAGE to "
            "racklab's node image in a registry the cluster pulls from) to run this"
        )
    if not IMAGE:
        pytest.skip("RACKLAB_K8S_IMAGE is not set: the cluster cannot see this machine's images")
    from lab.backends.k8s_cluster import ClusterBackend, cleanup_lab

    conf = {"kubeconfig": KUBECONFIG, "context": os.environ.get("RACKLAB_KUBECONTEXT")}
    lab = "k8sc" + uuid.uuid4().hex[:6]
    spec = _spec(lab)
    backend = ClusterBackend(conf)
    try:
        backend.prepare([spec])
        yield backend.create(spec)
    finally:
        removed = cleanup_lab(lab)
        assert removed == [f"namespace racklab-{lab}"]


def test_cluster_pod_is_a_node(cluster_node):
    node = cluster_node
    assert node.alive()
    assert node.exec(["hostname"]).stdout.strip() == "n1"
    assert node.exec(["/bin/sh", "-c", "cat; exit 3"], input="in\n").returncode == 3
    blob = os.urandom(150_000)  # several exec chunks
    node.put_file("/srv/node/blob.bin", blob, mode=0o600)
    assert node.get_file("/srv/node/blob.bin") == blob
    info = node.start_service("web", ["{python}", "-m", "http.server", "8000"])
    assert node.service_running("web", info)
    node.stop_service("web", info)
    assert not node.service_running("web", info)
    node.kill()
    assert not node.alive()
    node.start()
    assert node.alive() and node.exec(["true"]).ok
