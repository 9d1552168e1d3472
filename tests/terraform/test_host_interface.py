"""The rendered hosts.tf and the host module's variables agree, checked by terraform
offline: every argument each `module "host_<name>"` call passes (the plan's racks and
nodes filtered to that host, its seeds, the image facts, pool, domain type, command
line) converts to the host module's declared variable types and passes its
validations.

The host module's resources need the provider, which cannot be had here; so this
applies the rendered root with the host module reduced to its own variables.tf (the
real file) and an outputs.tf echoing them back. It checks the interface, not the
resources (those are checked against the provider's schema in test_render.py)."""

from __future__ import annotations

import json
import re
import shutil

from .conftest import tf

ECHO = """\
output "domains" {
  value = { for k, n in var.nodes : k => { domain = n.domain, uuid = "" } }
}

output "received" {
  value     = { racks = var.racks, nodes = var.nodes, image = var.image, cmdline = var.cmdline }
  sensitive = false
}
"""


def without_providers(text: str) -> str:
    """hosts.tf without its provider blocks and `providers =` arguments."""
    text = re.sub(r'(?ms)^provider "libvirt" \{.*?^\}\n\n?', "", text)
    return "".join(line for line in text.splitlines(True)
                   if not re.match(r"\s+providers\s+=", line))  # fmt: skip


def test_every_host_module_call_fits_the_host_modules_variables(rendered, terraform, tmp_path):
    d = tmp_path / "tf"
    shutil.copytree(rendered.dir, d, ignore=shutil.ignore_patterns("versions.tf"))
    host = d / "modules/host"
    for p in host.iterdir():
        if p.name != "variables.tf":
            p.unlink()
    (host / "outputs.tf").write_text(ECHO)
    (d / "hosts.tf").write_text(without_providers((d / "hosts.tf").read_text()))
    (d / "echo.tf").write_text('output "host_local" {\n  value = module.host_local.received\n}\n')
    tf(d, "init", "-input=false")
    tf(d, "apply", "-auto-approve", "-input=false")
    out = json.loads(tf(d, "output", "-json").stdout)
    got = out["host_local"]["value"]
    plan = out["racklab"]["value"]
    assert set(got["nodes"]) == set(plan["nodes"]) and set(got["racks"]) == set(plan["racks"])
    for name, node in got["nodes"].items():
        for field in ("domain", "mac", "vcpus", "memory", "cpu_quota", "rack"):
            assert node[field] == plan["nodes"][name][field], (name, field)
    assert got["image"]["disk_bytes"] == 2467299328
    assert got["cmdline"].startswith("root=/dev/vda ") and "init=/usr/sbin/racklab-init" in (
        got["cmdline"])  # fmt: skip
    assert set(out["racklab_domains"]["value"]) == set(plan["nodes"])


def test_an_unbuilt_image_stops_apply_with_the_modules_own_message(topo, terraform, tmp_path):
    from lab.terraform.render import render

    from .conftest import IMAGE

    r = render(topo, tmp_path / "src", image=dict(IMAGE, disk_bytes=0))
    d = tmp_path / "tf"
    shutil.copytree(r.dir, d, ignore=shutil.ignore_patterns("versions.tf"))
    for p in (d / "modules/host").iterdir():
        if p.name != "variables.tf":
            p.unlink()
    (d / "modules/host/outputs.tf").write_text(ECHO)
    (d / "hosts.tf").write_text(without_providers((d / "hosts.tf").read_text()))
    tf(d, "init", "-input=false")
    import subprocess

    from .conftest import terraform_env

    proc = subprocess.run(["terraform", f"-chdir={d}", "plan", "-input=false", "-no-color"],
                          capture_output=True, text=True, env=terraform_env())  # fmt: skip
    assert proc.returncode != 0
    assert "racklab's VM image was not built when this module was rendered" in " ".join(
        proc.stderr.split())  # fmt: skip
