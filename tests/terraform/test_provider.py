"""The whole path on a libvirt host with the provider: `lab terraform render`,
`terraform init` and `apply` against qemu:///system, `lab up` of the file with
`terraform: DIR`, a trial with a real client, `lab down` (the VMs stay), and
`terraform destroy`.

The provider cannot be downloaded on racklab's development machines, so this runs
only where it is in a plugin cache: TF_PLUGIN_CACHE_DIR holding
registry.terraform.io/dmacvicar/libvirt/<version>/linux_amd64/ (`terraform init`
with TF_PLUGIN_CACHE_DIR set on a connected machine fills it). Otherwise it is
skipped, with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.terraform.render import PROVIDER_VERSION

pytestmark = pytest.mark.slow

PROVIDER = f"registry.terraform.io/dmacvicar/libvirt/{PROVIDER_VERSION}/linux_amd64"

TOPOLOGY = """\
name: tfprov
defaults: {kind: vm, memory: 512Mi, cpus: 1}
racks:
  r1: {nodes: [v1]}
  r2: {nodes: [v2]}
services:
  zookeeper: {nodes: [v1]}
terraform: tf
"""


def plugin_dir() -> Path:
    cache = os.environ.get("TF_PLUGIN_CACHE_DIR")
    if not cache:
        pytest.skip("TF_PLUGIN_CACHE_DIR is not set: the libvirt provider "
                    f"{PROVIDER_VERSION} cannot be downloaded here")  # fmt: skip
    found = list((Path(cache) / PROVIDER).glob("terraform-provider-libvirt*"))
    if not found:
        pytest.skip(f"no {PROVIDER} in TF_PLUGIN_CACHE_DIR ({cache})")
    return Path(cache)


def run(*argv: str, cwd: Path | None = None, timeout: float = 1800) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, cwd=cwd, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(argv)}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return proc.stdout + proc.stderr


def test_render_apply_up_trial_down_destroy(tmp_path):
    cache = plugin_dir()
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not installed")
    if os.geteuid() != 0:
        pytest.skip("lab up needs root")
    from lab.topology.schema import TopologyFile

    if "terraform" not in TopologyFile.model_fields:
        pytest.skip("this racklab's topology schema has no terraform field")
    from lab.backends.vm import VMError, accelerator, connect
    from lab.images import vm as vmimage
    from lab.orchestrator import lab as orch
    from lab.terraform.render import render
    from lab.topology import load

    try:
        conn = connect()
    except VMError as e:
        pytest.skip(str(e))
    image = vmimage.build_vm_image(progress=False).image
    accel, _why = accelerator(conn, image.kernel)
    (tmp_path / "lab.yaml").write_text(TOPOLOGY)
    topo = load(tmp_path / "lab.yaml")
    tf = tmp_path / "tf"
    # a storage pool of the test's own for the lab's volumes (a fresh libvirt has none)
    (tmp_path / "pool").mkdir()
    pool = conn.storagePoolCreateXML(
        f"<pool type='dir'><name>tfprov-pool</name><target><path>{tmp_path / 'pool'}</path>"
        "</target></pool>", 0)  # fmt: skip
    render(topo, tf, domain_type="kvm" if accel == "kvm" else "qemu", pool="tfprov-pool")
    run("terraform", f"-chdir={tf}", "init", "-input=false", f"-plugin-dir={cache}")
    try:
        run("terraform", f"-chdir={tf}", "validate")
        run("terraform", f"-chdir={tf}", "apply", "-auto-approve", "-input=false")
        # what was made reads back as declared: a second plan has nothing to do
        again = subprocess.run(["terraform", f"-chdir={tf}", "plan", "-detailed-exitcode",
                                "-input=false", "-no-color"], capture_output=True, text=True)  # fmt: skip
        assert again.returncode == 0, f"drift after apply:\n{again.stdout[-3000:]}"
        state = orch.up(topo)
        try:
            from kazoo.client import KazooClient

            zk = KazooClient(hosts=f"{state['network']['nodes']['v1']}:2181", timeout=30)
            zk.start(timeout=60)
            try:
                zk.create("/tf-trial", b"made by terraform")
                assert zk.get("/tf-trial")[0] == b"made by terraform"
            finally:
                zk.stop()
            v2 = orch.get_node(state, "v2")
            ping = v2.exec(["ping", "-c", "1", "-W", "5", "v1"], timeout=60)
            assert ping.ok, ping.stderr  # across racks, through the host's routing
        finally:
            said: list[str] = []
            orch.down("tfprov", progress=said.append)
        assert any("`terraform -chdir=" in s and "destroy` removes them" in s for s in said)
        for name in ("tfprov-v1", "tfprov-v2"):
            assert conn.lookupByName(name).isActive()  # lab down left them to terraform
    finally:
        try:
            run("terraform", f"-chdir={tf}", "destroy", "-auto-approve", "-input=false")
        finally:
            pool.destroy()
    import libvirt

    for name in ("tfprov-v1", "tfprov-v2"):
        with pytest.raises(libvirt.libvirtError):
            conn.lookupByName(name)
