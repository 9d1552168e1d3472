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


def test_the_router_pod_object_passes_strict_validation():
    """The lab's router pod (lab/backends/k8s_overlay.py) is privileged, with no
    limits: forwarding, /dev/net/tun, the delay line."""
    from lab.backends.k8s_overlay import router_spec

    pod = pod_object(router_spec(_spec("k8sval")), "racklab/node:latest", privileged=True)
    assert strict_errors([pod]) == []
    assert pod["metadata"]["name"] == "racklab-k8sval-router"
    container = pod["spec"]["containers"][0]
    assert container["securityContext"] == {"privileged": True}
    assert "resources" not in container and "hostAliases" not in pod["spec"]


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


KUBECONFIG_NOWHERE = """\
apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {{server: "https://127.0.0.1:{port}"}}
contexts:
- name: nowhere
  context: {{cluster: nowhere, user: nobody}}
current-context: nowhere
users:
- name: nobody
  user: {{token: "none"}}
"""


@pytest.mark.parametrize("given", ["file", "env"])
def test_a_cluster_that_does_not_answer_is_one_sentence(tmp_path, given):
    """A kubeconfig (in the file's k8s section, or RACKLAB_KUBECONFIG) naming a port
    nothing listens on (loopback, refused at once): `lab up` says so in one sentence,
    exit 2, and leaves nothing behind."""
    import socket
    import subprocess
    import sys

    from lab.orchestrator.state import lab_dir
    from lab.topology import labid_of

    if os.geteuid() != 0:
        pytest.skip("lab up needs root")
    with socket.socket() as s:  # a free port: bound here, closed before the lab tries it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "kubeconfig"
    conf.write_text(KUBECONFIG_NOWHERE.format(port=port))
    name = "k8sn" + uuid.uuid4().hex[:6]
    lab_file = tmp_path / "lab.yaml"
    text = f"name: {name}\ndefaults: {{kind: k8s}}\nracks:\n  r1: {{nodes: [n1]}}\n"
    env = {k: v for k, v in os.environ.items() if k != "RACKLAB_KUBECONFIG"}
    if given == "file":
        text += f"k8s: {{kubeconfig: {conf}, namespace: {name}-ns}}\n"
    else:
        env["RACKLAB_KUBECONFIG"] = str(conf)
    lab_file.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "lab", "up", str(lab_file)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: the cluster at https://127.0.0.1:{port} (kubeconfig {conf}) does not answer: "
        "Connection refused"
    )
    assert not lab_dir(name).exists()
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    assert f"rl{labid_of(name)}" not in links


def test_the_k8s_section_is_checked(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "lab.yaml"
    bad.write_text("name: k8sbad\nracks:\n  r1: {nodes: [n1]}\nk8s: {kubeconfg: x}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "lab", "validate", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert f"{bad}:4: k8s.kubeconfg: unknown field" in proc.stderr
