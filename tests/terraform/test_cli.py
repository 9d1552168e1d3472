"""`lab terraform render` and `lab up` of a file with `terraform: DIR`, through the
command line as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import TOPOLOGY

LAB = [sys.executable, "-m", "lab"]


def lab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*LAB, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_render_writes_a_root_module_and_says_what_next(tmp_path):
    f = tmp_path / "lab.yaml"
    f.write_text(TOPOLOGY)
    r = lab("terraform", "render", str(f), "-o", str(tmp_path / "tf"), "--json",
            "--host", "a=qemu+ssh://root@spare1/system", "--host", "b=qemu:///system",
            "--rack", "r1=a", "--rack", "r2=b", "--domain-type", "qemu")  # fmt: skip
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["racks"] == {"r1": "a", "r2": "b"}
    assert info["supernet"] == "10.93.0.0/16"
    names = sorted(Path(p).name for p in info["files"])
    assert names == [".gitignore", "hosts.tf", "plan.tf", "versions.tf"]
    # the private keys and terraform's state (the seeds hold host keys) stay out of git
    assert {"keys/", "*.tfstate"} <= set((tmp_path / "tf/.gitignore").read_text().split())
    assert (tmp_path / "tf/modules/plan/main.tf").is_file()
    assert (tmp_path / "tf/modules/host/main.tf").is_file()


def test_render_of_a_non_vm_node_is_one_sentence_with_its_line(tmp_path):
    f = tmp_path / "lab.yaml"
    f.write_text(TOPOLOGY.replace("n4: {cpus: 1.5}", "n4: {cpus: 1.5, kind: process}"))
    r = lab("terraform", "render", str(f), "-o", str(tmp_path / "tf"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "lab.yaml:9: nodes.n4.kind: node n4 is a process node; terraform makes VM nodes only" \
        in " ".join(r.stderr.split())  # fmt: skip
    assert not (tmp_path / "tf").exists()


def test_render_with_a_bad_rack_placement_is_one_sentence(tmp_path):
    f = tmp_path / "lab.yaml"
    f.write_text(TOPOLOGY)
    r = lab("terraform", "render", str(f), "-o", str(tmp_path / "tf"), "--rack", "r7=local")
    assert r.returncode == 2
    assert "--rack r7=...: the file has no rack r7" in " ".join(r.stderr.split())


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="lab up needs root")


def _schema_has_terraform() -> bool:
    from lab.topology.schema import TopologyFile

    return "terraform" in TopologyFile.model_fields


# the topology schema's one-line `terraform:` field waits in a shared file other work
# holds uncommitted; until it is in, a file with `terraform: DIR` is refused
needs_terraform_field = pytest.mark.skipif(
    not _schema_has_terraform(), reason="this racklab's topology schema has no terraform field"
)


@needs_root
@needs_terraform_field
def test_lab_up_refuses_an_inter_rack_delay_it_cannot_apply(applied, tmp_path):
    f = tmp_path / "lab.yaml"
    f.write_text(TOPOLOGY.replace("network: {supernet: 10.93.0.0/16}",
                                  "network: {supernet: 10.93.0.0/16, inter_rack: {delay: 2ms}}")
                 + f"terraform: {applied}\n")  # fmt: skip
    r = lab("up", str(f))
    assert r.returncode == 2
    assert "network.inter_rack: racklab puts the inter-rack delay on its own router" in \
        " ".join(r.stderr.split())  # fmt: skip


@needs_root
@needs_terraform_field
def test_lab_up_reads_terraform_output_and_says_when_the_vms_are_missing(applied, tmp_path):
    """The real `terraform output -json` of the applied plan, read by `lab up`: the
    addresses are taken, then the first domain is looked for at qemu:///system, where
    nothing made it (no provider here): one sentence naming the command to run, and
    nothing of the lab is left."""
    if (
        shutil.which("virsh") is None
        or subprocess.run(
            ["virsh", "-c", "qemu:///system", "version"], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("no libvirt daemon answers at qemu:///system (`make libvirt` starts one)")
    f = tmp_path / "lab.yaml"
    f.write_text(TOPOLOGY + f"terraform: {os.path.relpath(applied, tmp_path)}\n")
    r = lab("up", str(f))
    assert r.returncode == 2, r.stderr
    text = " ".join(r.stderr.split())
    assert "libvirt at qemu:///system has no domain tfunit-n" in text
    assert f"run `terraform -chdir={applied} apply` first" in text
    assert "the VMs stay: terraform made them" in text
    assert lab("status", "--lab", "tfunit").returncode != 0  # no state left behind


@needs_terraform_field
def test_the_example_validates_and_renders_formatted(terraform, tmp_path):
    example = Path(__file__).resolve().parents[2] / "examples/terraform.yaml"
    assert lab("validate", str(example)).returncode == 0
    r = lab("terraform", "render", str(example), "-o", str(tmp_path / "tf"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["racks"] == {"r1": "local", "r2": "local"}
    fmt = subprocess.run(["terraform", "fmt", "-check", "-recursive", str(tmp_path / "tf")],
                         capture_output=True, text=True)  # fmt: skip
    assert fmt.returncode == 0, fmt.stdout
