"""racklab's VM image reads the NoCloud seed the module writes (lab/images/nocloud.py,
run by images/vm/racklab-init at boot): the seeds here are the module's own, computed
by terraform offline."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.backends.vm.domain import hosts_file
from lab.net import addressing

from .conftest import terraform_env

READER = Path(__file__).resolve().parents[2] / "lab/images/nocloud.py"


@pytest.fixture(scope="module")
def seeds(applied) -> dict:
    proc = subprocess.run(["terraform", f"-chdir={applied}", "console", "-no-color"],
                          input="nonsensitive(jsonencode(module.plan.seeds))\n",
                          capture_output=True, text=True, env=terraform_env(), timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(json.loads(proc.stdout.strip()))


@pytest.mark.parametrize("names", ["plain", "iso-version"])
def test_the_image_turns_each_seed_into_its_config(topo, rendered, seeds, tmp_path, names):
    plan = addressing.plan(ipaddress.IPv4Network(topo.supernet), topo.racks)
    for node, seed in seeds.items():
        d = tmp_path / names / node / "seed"
        d.mkdir(parents=True)
        for key, fname in (("meta_data", "meta-data"), ("user_data", "user-data"),
                           ("network_config", "network-config")):  # fmt: skip
            # an ISO 9660 without Rock Ridge, as the provider writes, may show its
            # names with their version (user-data;1) depending on the mount options
            (d / (fname + (";1" if names == "iso-version" else ""))).write_text(seed[key])
        out = d.parent / "config"
        # run by path, as racklab-init runs it: no racklab package on the path
        r = subprocess.run([sys.executable, "-I", str(READER), str(d), str(out)],
                           capture_output=True, text=True)  # fmt: skip
        assert r.returncode == 0 and r.stderr == "", r.stderr
        assert (out / "hostname").read_text() == f"{node}\n"
        assert (out / "hosts").read_text() == hosts_file(plan.nodes, node)
        lab_key = (rendered.dir / "keys/id_ed25519.pub").read_text().strip()
        assert (out / "authorized_keys").read_text() == lab_key + "\n"
        assert (out / "ssh_host_ed25519_key").read_text() == (
            rendered.dir / f"keys/hosts/{node}").read_text()  # fmt: skip
        rack = topo.nodes[node].rack
        iface = ipaddress.IPv4Interface(plan.cidr(node, rack))
        # the kernel's ip= syntax, as racklab puts on its own VMs' command line
        assert (out / "cmdline").read_text() == (
            f"ip={iface.ip}::{plan.gateways[rack]}:{iface.netmask}:{node}:eth0:off\n")  # fmt: skip


def test_a_seed_without_keys_or_address_is_reported(tmp_path):
    d = tmp_path / "seed"
    d.mkdir()
    (d / "meta-data").write_text("instance-id: x\nlocal-hostname: n9\n")
    (d / "user-data").write_text("#cloud-config\n{}\n")
    r = subprocess.run([sys.executable, "-I", str(READER), str(d), str(tmp_path / "out")],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0
    assert r.stderr.splitlines() == [
        "racklab-init: the NoCloud seed lacks ssh_authorized_keys",
        "racklab-init: the NoCloud seed lacks an ed25519 host key (ssh_keys)",
        "racklab-init: the NoCloud seed lacks an IPv4 address (network-config)",
    ]
    assert (tmp_path / "out/hostname").read_text() == "n9\n"
