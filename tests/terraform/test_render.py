"""`lab terraform render`: the module and every rendered file are formatted, match the
pinned provider's schema, and declare the VMs racklab's own backend would define."""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lab.backends.vm import VMBackend, VMNode
from lab.backends.vm.domain import domain_xml
from lab.images.vm import BOOT_CMDLINE, VMImage
from lab.net import addressing
from lab.orchestrator.lab import node_specs
from lab.terraform.render import PROVIDER_VERSION, RenderError, render

from . import providerschema
from .conftest import IMAGE, terraform_env

MODULES = Path(__file__).resolve().parents[2] / "terraform"


def fmt_check(path: Path) -> None:
    import subprocess

    proc = subprocess.run(["terraform", "fmt", "-check", "-diff", "-recursive", str(path)],
                          capture_output=True, text=True, env=terraform_env())  # fmt: skip
    assert proc.returncode == 0, f"terraform fmt would change:\n{proc.stdout}{proc.stderr}"


def test_module_sources_are_terraform_formatted(terraform):
    fmt_check(MODULES)


def test_rendered_root_module_is_terraform_formatted(terraform, rendered):
    names = sorted(p.name for p in rendered.dir.glob("*.tf"))
    assert names == ["hosts.tf", "plan.tf", "versions.tf"]
    fmt_check(rendered.dir)


def test_provider_is_pinned_to_one_exact_version(rendered):
    for path in (rendered.dir / "versions.tf", rendered.dir / "modules/host/versions.tf"):
        req = providerschema.load(path)["terraform"][0]["required_providers"][0]["libvirt"]
        assert req == {"source": "dmacvicar/libvirt", "version": PROVIDER_VERSION}


def test_every_libvirt_resource_matches_the_pinned_schema(rendered):
    schema = providerschema.schema()
    assert schema["version"] == PROVIDER_VERSION
    seen = set()
    for path in sorted(rendered.dir.rglob("*.tf")):
        for rtype, name, body in providerschema.resources(providerschema.load(path)):
            assert rtype in schema["resources"], f"{path.name}: {rtype} is not transcribed"
            found = providerschema.problems(rtype, body, schema["resources"][rtype])
            assert found == [], f"{path.name}: {rtype}.{name}: {found}"
            seen.add(rtype)
    # what the issue asks of the module: networks, volumes, cloud-init disks, domains
    assert seen == {"libvirt_network", "libvirt_volume", "libvirt_cloudinit_disk",
                    "libvirt_domain"}  # fmt: skip


def test_the_schema_check_catches_unknown_and_missing_arguments():
    schema = providerschema.schema()["resources"]["libvirt_domain"]
    body = {"name": "x", "vcpus_typo": 2, "devices": {"disks": [{"target": {"bus": "virtio",
            "device_name": "vda"}}]}}  # fmt: skip
    found = providerschema.problems("libvirt_domain", body, schema)
    assert "libvirt_domain: required argument type missing" in found
    assert "libvirt_domain: unknown argument vcpus_typo" in found
    assert "libvirt_domain.devices.disks.target: unknown argument device_name" in found


def test_one_provider_alias_and_one_host_module_per_libvirt_host(topo, tmp_path):
    hosts = {"spare1": "qemu+ssh://root@spare1/system", "spare2": "qemu+ssh://root@spare2/system"}
    r = render(topo, tmp_path / "tf", hosts=hosts, racks={"r1": "spare1", "r2": "spare2"},
               image=dict(IMAGE))  # fmt: skip
    parsed = providerschema.load(r.dir / "hosts.tf")
    providers = {p["libvirt"]["alias"]: p["libvirt"]["uri"] for p in parsed["provider"]}
    assert providers == hosts
    calls = {name: body for m in parsed["module"] for name, body in m.items()}
    assert set(calls) == {"host_spare1", "host_spare2"}
    assert calls["host_spare2"]["providers"] == {"libvirt": "${libvirt.spare2}"}
    plan = providerschema.load(r.dir / "plan.tf")["module"][0]["plan"]
    assert [(rk["name"], rk["host"]) for rk in plan["racks"]] == [("r1", "spare1"),
                                                                  ("r2", "spare2")]  # fmt: skip


def test_bad_placement_is_one_sentence(topo, tmp_path):
    with pytest.raises(RenderError, match="rack r2 is on no host"):
        render(topo, tmp_path / "a", hosts={"a": "qemu:///system", "b": "qemu:///system"},
               racks={"r1": "a"}, image=dict(IMAGE))  # fmt: skip
    with pytest.raises(RenderError, match="rack r1 is placed on c, which is not a host"):
        render(topo, tmp_path / "b", hosts={"a": "qemu:///system"}, racks={"r1": "c"},
               image=dict(IMAGE))  # fmt: skip


def test_rendering_again_keeps_the_keys(topo, rendered):
    before = {p.name: p.read_bytes() for p in (rendered.dir / "keys").rglob("*") if p.is_file()}
    render(topo, rendered.dir, domain_type="qemu", image=dict(IMAGE))
    after = {p.name: p.read_bytes() for p in (rendered.dir / "keys").rglob("*") if p.is_file()}
    assert before == after and len(after) == 2 + 2 * len(topo.nodes)


def _racklab_domain(topo, name: str) -> ET.Element:
    """The domain racklab's own VM backend defines for this node, parsed."""
    plan = addressing.plan(ipaddress.IPv4Network(topo.supernet), topo.racks)
    spec = node_specs(topo, plan)[name]
    vcpus, memory = VMBackend().check(spec)
    image = VMImage(Path(IMAGE["disk"]).parent, racklab_disk=Path(IMAGE["racklab_disk"]))
    return ET.fromstring(domain_xml(VMNode(spec), image, vcpus, memory, "tcg", BOOT_CMDLINE))


def test_domains_have_racklab_vm_backends_memory_vcpus_disks_and_mac(topo, rendered, applied):
    from lab.terraform import outputs

    tlab = outputs.read(applied)
    host = providerschema.load(rendered.dir / "modules/host/main.tf")
    dom = next(b for t, n, b in providerschema.resources(host) if t == "libvirt_domain")
    assert dom["memory_unit"] == "KiB" and dom["memory"] == "${floor(each.value.memory / 1024)}"
    assert dom["vcpu"] == "${each.value.vcpus}"
    assert dom["os"]["kernel"] == "${libvirt_volume.kernel.path}"
    for name in topo.nodes:
        ours = _racklab_domain(topo, name)
        node = tlab.nodes[name]
        assert node.memory // 1024 == int(ours.findtext("memory")), name
        assert node.vcpus == int(ours.findtext("vcpu")), name
        quota = ours.findtext("cputune/quota")
        raw = applied_node(applied, name)
        assert raw["cpu_quota"] == (int(quota) if quota else None), name
        assert node.mac == ours.find("devices/interface/mac").get("address"), name
        want = [(d.find("target").get("dev"), d.find("target").get("bus"),
                 d.find("driver").get("type"), d.find("readonly") is not None)
                for d in ours.findall("devices/disk")]  # fmt: skip
        got = [(d["target"]["dev"], d["target"]["bus"], d["driver"]["type"],
                bool(d.get("read_only", False))) for d in dom["devices"]["disks"]]  # fmt: skip
        assert got == want
        assert dom["devices"]["interfaces"][0]["model"]["type"] == (
            ours.find("devices/interface/model").get("type"))  # fmt: skip
    # the disks' contents: the overlay over racklab's base, the seed, racklab's code
    sources = [d["source"]["volume"]["volume"] for d in dom["devices"]["disks"]]
    assert sources == ["${libvirt_volume.disk[each.key].name}",
                       "${libvirt_volume.seed[each.key].name}",
                       "${libvirt_volume.racklab.name}"]  # fmt: skip


def applied_node(applied: Path, name: str) -> dict:
    import json

    from .conftest import tf

    return json.loads(tf(applied, "output", "-json").stdout)["racklab"]["value"]["nodes"][name]


def test_a_hosts_section_becomes_one_qemu_ssh_provider_per_host(tmp_path):
    """The spare-machines `hosts:` section: each host a libvirt URI over SSH with its
    user, port, key and known_hosts; each rack on its host."""
    from lab.topology import Topology, loads

    if "hosts" not in Topology.__dataclass_fields__:
        pytest.skip("this racklab's topology files have no hosts section yet")
    text = (
        "name: tfhosts\ndefaults: {kind: vm}\n"
        "hosts:\n"
        "  h1: {address: 192.0.2.10, user: lab, key: id_test, known_hosts: kh}\n"
        "  h2: {address: spare2.example.net, port: 2222}\n"
        "racks:\n  r1: {host: h1, nodes: [a1]}\n  r2: {host: h2, nodes: [a2]}\n"
    )
    topo = loads(text, str(tmp_path / "lab.yaml"))
    r = render(topo, tmp_path / "tf", image=dict(IMAGE))
    assert r.placement == {"r1": "h1", "r2": "h2"}
    known = Path("~/.ssh/known_hosts").expanduser()
    assert r.hosts == {
        "h1": f"qemu+ssh://lab@192.0.2.10/system?keyfile={tmp_path}/id_test"
        f"&knownhosts={tmp_path}/kh",
        "h2": f"qemu+ssh://root@spare2.example.net:2222/system?knownhosts={known}",
    }
    providers = providerschema.load(r.dir / "hosts.tf")["provider"]
    assert {p["libvirt"]["alias"]: p["libvirt"]["uri"] for p in providers} == r.hosts
