"""racklab's side of a terraform lab on real VMs, on a machine without the provider.

Everything here is real except who defines the libvirt objects: the rendered module's
provider-free part is applied with terraform (its real `terraform output -json` is what
`lab up` reads), and each node's NoCloud seed is the one the module computed, written
as an ISO laid out as the provider's cloud-init disk is (iso9660.py); but the rack
networks and the domains are defined by this test with libvirt-python, from the same
names, addresses, MACs, sizes, disks and kernel command line the host module declares
— a stand-in for terraform-provider-libvirt, so this proves racklab's half (the image
reads the seed; `lab up` finds the domains, reaches them over SSH with the lab's key
and the nodes' host keys, deploys ZooKeeper; a trial with kazoo; a ping across racks
through the host's routing; `lab down` leaves the VMs), not the provider's. The
provider's half runs in test_provider.py where the provider is available.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import terraform_env, tf

pytestmark = pytest.mark.slow

TOPOLOGY = """\
name: tfvm
defaults: {{kind: vm, memory: 512Mi, cpus: 1}}
network: {{supernet: {supernet}}}
racks:
  r1: {{nodes: [t1]}}
  r2: {{nodes: [t2]}}
services:
  zookeeper: {{nodes: [t1]}}
terraform: tf-applied
"""


def _network_xml(rack: dict) -> str:
    prefix = rack["cidr"].split("/")[1]
    return (f"<network><name>{rack['network']}</name><forward mode='route'/>"
            f"<bridge name='{rack['bridge']}' stp='on'/><dns enable='no'/>"
            f"<ip address='{rack['gateway']}' prefix='{prefix}'/></network>")  # fmt: skip


def _domain_xml(node: dict, dtype: str, image: dict, disk: Path, seed: Path, net: str,
                console: Path, cmdline: str) -> str:  # fmt: skip
    def d(path, dev, fmt, ro):
        return (f"<disk type='file' device='disk'><driver name='qemu' type='{fmt}'/>"
                f"<source file='{path}'/><target dev='{dev}' bus='virtio'/>"
                f"{'<readonly/>' if ro else ''}</disk>")  # fmt: skip

    return f"""<domain type='{dtype}'><name>{node["domain"]}</name>
  <metadata><racklab:node xmlns:racklab="https://racklab.dev/vm/1" lab="tfvm"
    node="{node["name"]}" terraform="1"/></metadata>
  <memory unit='KiB'>{node["memory"] // 1024}</memory><vcpu>{node["vcpus"]}</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{image["kernel"]}</kernel>
    <initrd>{image["initrd"]}</initrd><cmdline>{cmdline}</cmdline></os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
  <devices>{d(disk, "vda", "qcow2", False)}{d(seed, "vdb", "raw", True)}
    {d(image["racklab_disk"], "vdc", "raw", True)}
    <interface type='network'><source network='{net}'/><mac address='{node["mac"]}'/>
      <model type='virtio'/></interface>
    <serial type='file'><source path='{console}'/><target port='0'/></serial>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <memballoon model='none'/></devices>
  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>
</domain>"""


def test_lab_up_on_vms_declared_as_the_module_declares_them(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("lab up needs root")
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not installed")
    from lab.topology.schema import TopologyFile

    if "terraform" not in TopologyFile.model_fields:
        pytest.skip("this racklab's topology schema has no terraform field")
    import libvirt

    from lab.backends.vm import VMError, accelerator, connect
    from lab.images import vm as vmimage
    from lab.images.vm import BOOT_CMDLINE
    from lab.net import addressing
    from lab.terraform.render import image_facts, render
    from lab.topology import labid_of, load

    from . import iso9660

    try:
        conn = connect()
    except VMError as e:
        pytest.skip(str(e))
    vmimage.build_vm_image(progress=False)
    image, missing = image_facts()
    assert not missing, missing
    dtype = "kvm" if accelerator(conn, Path(image["kernel"]))[0] == "kvm" else "qemu"
    supernet = addressing.choose_supernet(labid_of("tfvm"), addressing.host_networks())
    (tmp_path / "lab.yaml").write_text(TOPOLOGY.format(supernet=supernet))
    topo = load(tmp_path / "lab.yaml")
    render(topo, tmp_path / "tf", domain_type=dtype, image=image)
    applied = tmp_path / "tf-applied"
    shutil.copytree(tmp_path / "tf", applied,
                    ignore=shutil.ignore_patterns("hosts.tf", "versions.tf"))  # fmt: skip
    tf(applied, "init", "-input=false")
    tf(applied, "apply", "-auto-approve", "-input=false")
    out = json.loads(tf(applied, "output", "-json").stdout)["racklab"]["value"]
    proc = subprocess.run(["terraform", f"-chdir={applied}", "console", "-no-color"],
                          input="nonsensitive(jsonencode(module.plan.seeds))\n",
                          capture_output=True, text=True, env=terraform_env(), timeout=120)  # fmt: skip
    seeds = json.loads(json.loads(proc.stdout.strip()))

    nets, doms = [], []
    lab = [sys.executable, "-m", "lab"]
    try:
        for rack in out["racks"].values():
            nets.append(conn.networkCreateXML(_network_xml(rack)))
        for name, node in out["nodes"].items():
            disk, seed = tmp_path / f"{name}.qcow2", tmp_path / f"{name}-seed.iso"
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                            image["disk"], str(disk)], check=True)  # fmt: skip
            s = seeds[name]
            iso9660.write(seed, "cidata", {"meta-data": s["meta_data"].encode(),
                                           "user-data": s["user_data"].encode(),
                                           "network-config": s["network_config"].encode()})  # fmt: skip
            net = out["racks"][node["rack"]]["network"]
            xml = _domain_xml(node, dtype, image, disk, seed, net, tmp_path / f"{name}.log",
                              BOOT_CMDLINE)  # fmt: skip
            # persistent, as the provider defines them: a kill (libvirt's destroy)
            # stops the domain and keeps it, for chaos to boot it again
            dom = conn.defineXML(xml)
            doms.append(dom)
            dom.create()

        up = subprocess.run([*lab, "up", str(tmp_path / "lab.yaml"), "--json"],
                            capture_output=True, text=True, timeout=1500)  # fmt: skip
        consoles = {n: (tmp_path / f"{n}.log").read_text(errors="replace")[-1500:]
                    for n in out["nodes"]}  # fmt: skip
        assert up.returncode == 0, f"{up.stderr[-3000:]}\nconsoles: {consoles}"
        # the image read its seed: its own address, from network-config
        assert "racklab-init: address " + out["nodes"]["t2"]["address"] in consoles["t2"]

        from kazoo.client import KazooClient

        zk = KazooClient(hosts=f"{out['nodes']['t1']['address']}:2181", timeout=30)
        zk.start(timeout=120)
        try:
            zk.create("/tf-trial", b"declared as terraform declares")
            assert zk.get("/tf-trial")[0] == b"declared as terraform declares"
        finally:
            zk.stop()
        ping = subprocess.run([*lab, "exec", "--lab", "tfvm", "t2", "--", "ping", "-c", "1",
                               "-W", "10", "t1"], capture_output=True, text=True, timeout=300)  # fmt: skip
        assert ping.returncode == 0, ping.stdout + ping.stderr  # across racks, by name
        host = subprocess.run([*lab, "exec", "--lab", "tfvm", "t1", "--", "hostname"],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert host.stdout.strip() == "t1"

        status = subprocess.run([*lab, "status", "--lab", "tfvm", "--json"],
                                capture_output=True, text=True, timeout=300)  # fmt: skip
        assert status.returncode == 0, status.stderr
        shown = {n["name"]: n for n in json.loads(status.stdout)["nodes"]}
        assert {n: (v["kind"], v["backend"], v["address"], v["running"])
                for n, v in shown.items()} == {
            n: ("vm", "vm-terraform", node["address"], True) for n, node in out["nodes"].items()
        }  # fmt: skip

        # chaos on them: the whole VM killed through libvirt and booted again
        chaos = subprocess.run([*lab, "chaos", "run", "--lab", "tfvm", "--workload",
                                "zk-register", "--nemesis", "kill-node", "--time", "30",
                                "--interval", "10", "--rate", "5", "--seed", "1"],
                               capture_output=True, text=True, timeout=1200)  # fmt: skip
        assert chaos.returncode == 0, chaos.stdout[-3000:] + chaos.stderr[-3000:]
        assert "verdict: valid" in chaos.stdout
        run_dir = Path(chaos.stdout.split("report: ")[1].split()[0]).parent
        history = [json.loads(line) for line in (run_dir / "history.jsonl").open()]
        assert any(h.get("process") == "nemesis" and h.get("f") == "start"
                   and (h.get("extra") or {}).get("description") == "killed node t1"
                   for h in history)  # fmt: skip

        down = subprocess.run([*lab, "down", "tfvm"], capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert down.returncode == 0, down.stderr
        assert "the VMs stay: terraform made them" in " ".join(down.stderr.split())
        assert all(d.isActive() for d in doms)  # left to terraform
        # ... without racklab's services or their data in them
        from lab.backends.base import NodeSpec
        from lab.backends.vm.terraform import TerraformVMNode

        t1 = out["nodes"]["t1"]
        probe = TerraformVMNode(
            NodeSpec(name="t1", lab="tfvm", labid=topo.labid, kind="vm", rack="r1",
                     address=f"{t1['address']}/24", state_dir=tmp_path / "probe"),
            saved={"terraform": {"uri": t1["uri"], "domain": t1["domain"], "dir": str(applied),
                                 "key": str(applied / "keys/id_ed25519"),
                                 "host_key": str(applied / "keys/hosts/t1")}},
        )  # fmt: skip
        left = probe.exec(
            ["sh", "-c", "ls -A /srv/node /run/racklab/svc; pgrep -f '[l]ab[.]services'"]
        )
        assert left.stdout.split() == ["/run/racklab/svc:", "/srv/node:"], left.stdout
    finally:
        subprocess.run([*lab, "down", "tfvm"], capture_output=True, timeout=600)
        for d in doms:
            for step in (d.destroy, d.undefine):
                try:
                    step()
                except libvirt.libvirtError:
                    pass
        for n in nets:
            try:
                n.destroy()
            except libvirt.libvirtError:
                pass
