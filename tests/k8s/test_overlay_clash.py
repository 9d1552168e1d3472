"""A lab whose addresses overlap what the pods' own network uses is refused before
anything is wired (lab/backends/k8s_overlay.py): its routes in the pods would carry
their cluster traffic (DNS through a Service address, other pods) into the lab. The
text is what the router pod prints (routes, addresses, resolv.conf), as a kind
cluster's pod and podman's show them."""

from __future__ import annotations

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
