"""A new node image reaches a host as only the layers its engine lacks (lab/hosts/layers.py):
racklab's node image sent whole to a simulated host's own Docker engine, then an image
made from it with one small layer more (what a new racklab version is: the same base
and dependencies, a new top), which crosses SSH as that layer and the image's metadata,
and runs there. Slow: the first send is the whole image (about 650 MB)."""

from __future__ import annotations

import os

import pytest

from lab.bench.hostimages import derived_image

from .conftest import RUN

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1200),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]


def test_a_new_image_sends_only_the_layers_the_host_lacks(sim):
    from lab.hosts import images
    from lab.hosts.ssh import connect
    from lab.images import NODE_LATEST
    from lab.images.build import docker_client
    from lab.topology.hosts import HostDef

    name, h = list(sim["hosts"].items())[2]
    spec = HostDef(name=name, address=h["address"], user="root", key=sim["key"],
                   known_hosts=sim["known_hosts"])  # fmt: skip
    tag, image_id = images.local_node_image()
    newer_tag = f"racklab/layers-test:{RUN}"  # not racklab/node: builds prune its tags
    marker = f"racklab layers test {RUN}\n".encode()
    newer = derived_image(tag, newer_tag, marker)
    host = connect(spec)
    try:
        first = images.send(host, tag, image_id)
        assert first.left_out == 0 or first.reused  # a host without it gets all of it
        second = images.send(host, newer_tag, newer.id)
        layers = len(newer.attrs["RootFS"]["Layers"])
        # every layer but the new one was there already: the new one and the metadata
        assert second.left_out == layers - 1, second
        assert 0 < second.sent_bytes < 1 << 20, second
        there = host.run(["docker", "image", "inspect", "--format", "{{.Id}}", newer_tag])
        assert there.out.strip() == newer.id
        ran = host.run(["docker", "run", "--rm", "--network", "none", newer_tag,
                        "/bin/cat", "/racklab-marker"])  # fmt: skip
        assert (ran.code, ran.out.encode()) == (0, marker), ran.err
        # sent again: nothing crosses
        again = images.send(host, newer_tag, newer.id)
        assert again.reused and again.sent_bytes == 0
    finally:
        # the host's node image is racklab's again, and the test's image gone on both sides
        host.run(["docker", "tag", tag, NODE_LATEST])
        host.run(["docker", "image", "rm", newer_tag])
        host.close()
        docker_client().images.remove(newer_tag)
