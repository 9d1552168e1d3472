"""Fixtures for the terraform tests: a topology with VM nodes rendered into a root
module, and its provider-free part applied offline with the real terraform."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.topology import loads

TOPOLOGY = """\
name: tfunit
defaults: {kind: vm, memory: 768Mi, cpus: 0.5}
network: {supernet: 10.93.0.0/16}
racks:
  r1: {nodes: [n1, n2]}
  r2: {nodes: [n3, n4]}
nodes:
  n3: {cpus: 2, memory: 1Gi}
  n4: {cpus: 1.5}
services:
  zookeeper: {nodes: [n1, n2, n3]}
"""

# the image facts hosts.tf carries (paths on the machine that runs terraform apply)
IMAGE = {
    "kernel": "/srv/racklab-image/vmlinuz",
    "initrd": "/srv/racklab-image/initrd.img",
    "disk": "/srv/racklab-image/disk.qcow2",
    "disk_bytes": 2467299328,
    "racklab_disk": "/srv/racklab-image/racklab.img",
}


def terraform_env() -> dict:
    # no user CLI configuration: these runs need no provider and must not find one
    return dict(os.environ, TF_CLI_CONFIG_FILE=os.devnull, TF_IN_AUTOMATION="1")


def tf(dir: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(["terraform", f"-chdir={dir}", *args, "-no-color"],
                          capture_output=True, text=True, env=terraform_env(), timeout=120)  # fmt: skip
    assert proc.returncode == 0, f"terraform {' '.join(args)}: {proc.stderr}"
    return proc


@pytest.fixture(scope="session")
def terraform():
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not installed on this machine")
    return shutil.which("terraform")


@pytest.fixture(scope="session")
def topo(tmp_path_factory):
    d = tmp_path_factory.mktemp("topo")
    (d / "lab.yaml").write_text(TOPOLOGY)
    return loads(TOPOLOGY, str(d / "lab.yaml"))


@pytest.fixture(scope="session")
def rendered(topo, tmp_path_factory):
    from lab.terraform.render import render

    return render(topo, tmp_path_factory.mktemp("tfroot") / "tf", domain_type="qemu",
                  image=dict(IMAGE))  # fmt: skip


@pytest.fixture(scope="session")
def applied(rendered, terraform, tmp_path_factory):
    """The rendered DIR's provider-free part (plan.tf, modules/plan, keys) applied with
    terraform, offline: a copy without hosts.tf and versions.tf, which need the
    provider."""
    d = tmp_path_factory.mktemp("tfplan") / "tf"
    shutil.copytree(rendered.dir, d, ignore=shutil.ignore_patterns("hosts.tf", "versions.tf"))
    tf(d, "init", "-input=false")
    tf(d, "apply", "-auto-approve", "-input=false")
    return d
