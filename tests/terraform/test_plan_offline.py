"""The provider-free part of a rendered module, applied offline with the real
terraform: its `terraform output -json` is what racklab plans for the same file, and
is what `lab up` reads back."""

from __future__ import annotations

import ipaddress
import json

import pytest
import yaml

from lab.backends.vm import mac_address
from lab.backends.vm.domain import hosts_file
from lab.net import addressing
from lab.terraform import outputs
from lab.topology import loads

from .conftest import TOPOLOGY, tf


def test_offline_output_is_racklabs_own_address_plan(topo, applied):
    raw = json.loads(tf(applied, "output", "-json").stdout)
    assert set(raw) == {"racklab"}  # the seeds stay inside, marked sensitive
    plan = addressing.plan(ipaddress.IPv4Network(topo.supernet), topo.racks)
    tlab = outputs.read(applied)
    assert (tlab.name, tlab.labid, tlab.supernet) == (topo.name, topo.labid, topo.supernet)
    got = tlab.plan()
    assert got.racks == plan.racks
    assert got.gateways == plan.gateways
    assert got.nodes == plan.nodes  # same addresses, same order (racks, then nodes)
    for name, nd in topo.nodes.items():
        node = tlab.nodes[name]
        assert node.cidr == plan.cidr(name, nd.rack)
        assert node.gateway == plan.gateways[nd.rack]
        assert node.mac == mac_address(topo.labid, name)
        assert (node.rack, node.host, node.uri) == (nd.rack, "local", "qemu:///system")
        assert node.domain == f"{topo.name}-{name}"


def test_each_seed_carries_hostname_address_and_keys(topo, rendered, applied, tmp_path):
    """The NoCloud seed each VM boots with, as the plan module computes it."""
    # `terraform console` evaluates the module's sensitive output offline, as apply does
    import subprocess

    from .conftest import terraform_env

    proc = subprocess.run(["terraform", f"-chdir={applied}", "console", "-no-color"],
                          input="nonsensitive(jsonencode(module.plan.seeds))\n",
                          capture_output=True, text=True, env=terraform_env(), timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    all_seeds = json.loads(json.loads(proc.stdout.strip()))
    plan = addressing.plan(ipaddress.IPv4Network(topo.supernet), topo.racks)
    lab_key = (rendered.dir / "keys/id_ed25519.pub").read_text().strip()
    for name, nd in topo.nodes.items():
        seed = all_seeds[name]
        meta = yaml.safe_load(seed["meta_data"])
        assert meta == {"instance-id": f"{topo.name}-{name}", "local-hostname": name}
        assert seed["user_data"].startswith("#cloud-config\n")
        user = yaml.safe_load(seed["user_data"])
        assert user["hostname"] == name
        assert user["ssh_authorized_keys"] == [lab_key]
        host_pub = (rendered.dir / f"keys/hosts/{name}.pub").read_text().strip()
        assert user["ssh_keys"]["ed25519_public"] == host_pub
        assert user["ssh_keys"]["ed25519_private"] == (
            rendered.dir / f"keys/hosts/{name}").read_text()  # fmt: skip
        etc_hosts = next(f for f in user["write_files"] if f["path"] == "/etc/hosts")
        assert etc_hosts["content"] == hosts_file(plan.nodes, name)
        net = yaml.safe_load(seed["network_config"])
        eth0 = net["ethernets"]["eth0"]
        assert net["version"] == 2
        assert eth0["addresses"] == [plan.cidr(name, nd.rack)]
        assert eth0["routes"] == [{"to": "0.0.0.0/0", "via": plan.gateways[nd.rack]}]
        assert eth0["match"] == {"macaddress": mac_address(topo.labid, name)}


def test_lab_up_refuses_a_dir_made_from_another_file(topo, applied):
    tlab = outputs.read(applied)
    outputs.check_against(tlab, topo)  # the file it was made from: accepted
    moved = loads(TOPOLOGY.replace("r1: {nodes: [n1, n2]}", "r1: {nodes: [n2, n1]}")
                  .replace("r2: {nodes: [n3, n4]}", "r2: {nodes: [n3]}\n  r3: {nodes: [n4]}"),
                  topo.file)  # fmt: skip
    with pytest.raises(outputs.TerraformError, match="has racks r1, r2, the file r1, r2, r3"):
        outputs.check_against(tlab, moved)
    renamed = loads(TOPOLOGY.replace("name: tfunit", "name: tfother"), topo.file)
    with pytest.raises(outputs.TerraformError, match="holds lab tfunit, not tfother"):
        outputs.check_against(tlab, renamed)


def test_a_dir_without_apply_has_no_racklab_output(rendered, terraform, tmp_path):
    with pytest.raises(outputs.TerraformError, match="no `racklab` output: run `terraform"):
        outputs.read(tmp_path)
