"""The VM image: built once from the shared debootstrap rootfs and wheels, then found
in the cache; editing racklab's source rebuilds only the small racklab disk."""

from __future__ import annotations

import json
import subprocess

from lab.images import vm as vmimage


def test_second_build_is_cached_and_holds_what_a_boot_needs(vm_image):
    result = vmimage.build_vm_image(progress=False)
    # (racklab's wheel and disk may be rebuilt meanwhile: the tree is shared with people
    # editing it; the base disk must not be)
    assert {s.name: s.status for s in result.steps}["build VM disk"] == "cached"
    image = result.image
    assert image.dir.resolve() == vm_image.dir.resolve()
    assert image.missing() == []
    manifest = image.manifest()
    assert manifest["kernel_version"].endswith("-amd64")
    assert "openssh-server" in manifest["packages"]
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(image.disk)],
                                     capture_output=True, text=True, check=True).stdout)  # fmt: skip
    assert info["format"] == "qcow2"
    # racklab's own code is on its own disk, as a plain directory tree
    listing = subprocess.run(["debugfs", "-R", "ls -p /lab", str(image.racklab_disk)],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "/__init__.py/" in listing and "/backends/" in listing


def test_source_change_rebuilds_only_the_racklab_disk(vm_image, monkeypatch):
    monkeypatch.setattr(vmimage, "source_digest", lambda: "testsource01")
    layer = vmimage.racklab_disk_path()
    assert layer.name == "racklab-testsource01.img" and not layer.exists()
    try:
        result = vmimage.build_vm_image(progress=False)
        status = {s.name: s.status for s in result.steps}
        assert status["build VM disk"] == "cached"
        assert status["build racklab disk"] == "built"
        assert result.image.racklab_disk == layer and layer.is_file()
    finally:
        layer.unlink(missing_ok=True)
