"""Which image a VM node boots on another host: the image the controller sent, or the
node's own image directory on that host with the racklab disk sent there. No VM is
booted: the choice is made before libvirt is asked."""

from __future__ import annotations

from lab.backends.base import NodeSpec
from lab.backends.vm.backend import VMBackend
from lab.hosts import vmimages
from lab.images.vm import DISK, INITRD, KERNEL, VMImage


def _image_dir(path):
    path.mkdir()
    for name in (DISK, KERNEL, INITRD):
        (path / name).write_bytes(b"x")
    return path


def test_a_node_naming_its_own_image_boots_it_with_the_sent_racklab_disk(tmp_path):
    sent_disk = tmp_path / "racklab-abc.img"
    sent_disk.write_bytes(b"r")
    sent = VMImage(_image_dir(tmp_path / "sent"), sent_disk)
    own = _image_dir(tmp_path / "own")
    backend = VMBackend.with_sent_image(sent)

    plain = backend._resolve_image(NodeSpec(name="v1", lab="t", labid="t1", rack="r1", kind="vm"))
    assert plain.dir == sent.dir and plain.racklab_disk == sent_disk

    named = backend._resolve_image(
        NodeSpec(name="v2", lab="t", labid="t1", rack="r1", kind="vm", image=str(own))
    )
    assert named.dir == own and named.racklab_disk == sent_disk


def test_a_host_whose_vm_nodes_name_their_own_images_still_gets_racklab_disk():
    assert vmimages.needed(
        [NodeSpec(name="v", lab="t", labid="t1", rack="r1", kind="vm", image="/srv/images/mine")]
    )
    assert not vmimages.needed(
        [NodeSpec(name="c", lab="t", labid="t1", rack="r1", kind="container", image="busybox")]
    )
