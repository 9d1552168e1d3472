"""What a lab whose pods carry the rack network (lab/backends/k8s_overlay.py) cannot
be, refused in one sentence before anything is wired: a supernet overlapping what the
pods' own network uses (their routes would carry their cluster traffic, DNS through a
Service address, other pods, into the lab; the text is what the router pod prints,
as a kind cluster's pod and podman's show it), a mix with other kinds, a node named
like the router pod."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from lab.backends.k8s_overlay import clash

KIND_POD = """\
default via 10.244.1.1 dev eth0
10.244.1.0/24 via 10.244.1.1 dev eth0 src 10.244.1.7
10.244.1.1 dev eth0 scope link src 10.244.1.7
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
3: eth0    inet 10.244.1.7/24 brd 10.244.1.255 scope global eth0\\       valid_lft forever
nameserver 10.96.0.10
"""
PODMAN_POD = """\
default via 10.89.0.1 dev eth0 proto static metric 100
10.89.0.0/24 dev eth0 proto kernel scope link src 10.89.0.4
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: eth0    inet 10.89.0.4/24 brd 10.89.0.255 scope global eth0\\       valid_lft forever
nameserver 192.0.2.53
"""


def test_the_pod_network_and_the_service_range_are_refused():
    assert clash("10.244.0.0/16", KIND_POD) == "10.244.1.1/32"  # the pod gateway
    assert clash("10.96.0.0/16", KIND_POD) == "10.96.0.10/32"  # the DNS Service
    assert clash("10.89.0.0/16", PODMAN_POD) == "10.89.0.1/32"


def test_a_free_range_passes():
    assert clash("10.57.0.0/16", KIND_POD) is None
    assert clash("10.57.0.0/16", PODMAN_POD) is None
    assert clash("10.100.0.0/16", PODMAN_POD) is None  # "metric 100" is no address


def _lab_up(tmp_path, text: str):
    import sys

    f = tmp_path / "lab.yaml"
    f.write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "RACKLAB_KUBECONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "lab", "up", str(f)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    "nodes, sentence",
    [
        (
            "nodes: {n2: {kind: process}}",
            "k8s nodes that carry their own rack network (on a cluster, or with network: "
            "overlay) cannot share a lab with process nodes",
        ),
        ("", "node name 'router' is taken by the lab's router pod on this engine; rename"),
    ],
    ids=["mixed-kinds", "a-node-named-router"],
)
def test_what_an_overlay_lab_cannot_be_is_one_sentence(tmp_path, nodes, sentence):
    """Refused before any pod, image or interface is made: exit 2, one sentence."""
    from lab.orchestrator.state import lab_dir
    from lab.topology import labid_of

    if os.geteuid() != 0:
        pytest.skip("lab up needs root")
    name = "kovr" + uuid.uuid4().hex[:6]
    second = "n2" if nodes else "router"
    proc = _lab_up(
        tmp_path,
        f"name: {name}\ndefaults: {{kind: k8s}}\nk8s: {{network: overlay}}\n"
        f"racks:\n  r1: {{nodes: [n1, {second}]}}\n{nodes}\n",
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {sentence}")
    assert "Traceback" not in proc.stderr
    assert not lab_dir(name).exists()
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    assert f"rl{labid_of(name)}" not in links
