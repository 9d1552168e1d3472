"""What terraform made, read back with `terraform output -json` in a rendered DIR.

The root module's `racklab` output (plan.tf) names the lab, its hosts (libvirt URIs),
racks and nodes with their addresses, domains and MACs; `lab up` of a file that says
`terraform: DIR` builds its nodes from it and checks it against the file.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lab.net import addressing
from lab.topology import Topology


class TerraformError(RuntimeError):
    """terraform is missing, failed, or made something other than the file describes."""


@dataclass
class TerraformNode:
    name: str
    rack: str
    host: str
    uri: str  # the libvirt URI of the node's host
    domain: str
    address: str
    prefix: int
    gateway: str
    mac: str
    vcpus: int
    memory: int  # bytes

    @property
    def cidr(self) -> str:
        return f"{self.address}/{self.prefix}"


@dataclass
class TerraformLab:
    dir: Path
    name: str
    labid: str
    supernet: str
    hosts: dict[str, str]
    racks: dict[str, dict]  # rack -> {cidr, gateway, host, network, bridge, index}
    nodes: dict[str, TerraformNode]

    @property
    def keys(self) -> Path:
        return self.dir / "keys"

    def plan(self) -> addressing.Plan:
        """The address plan in racklab's own shape (what a lab's state records)."""
        supernet = ipaddress.IPv4Network(self.supernet)
        link = next(supernet.subnets(new_prefix=24))
        racks = sorted(self.racks.items(), key=lambda kv: kv[1]["index"])
        return addressing.Plan(
            supernet=supernet,
            host_link=link,
            router_host_ip="",  # no router: the racks are libvirt networks on the hosts
            host_ip="",
            racks={r: ipaddress.IPv4Network(v["cidr"]) for r, v in racks},
            gateways={r: v["gateway"] for r, v in racks},
            nodes={n.name: n.address for n in self.nodes.values()},
        )


def terraform_binary() -> str:
    found = shutil.which("terraform")
    if not found:
        raise TerraformError("terraform is not installed (it is needed to read what it made)")
    return found


def run(dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """terraform -chdir=DIR ARGS, without prompts or colour."""
    env = dict(os.environ, TF_IN_AUTOMATION="1", TF_INPUT="0")
    return subprocess.run(
        [terraform_binary(), f"-chdir={dir}", *args, "-no-color"],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def output_json(dir: Path) -> dict:
    """`terraform output -json` in ``dir``: {name: {"value": ..., "sensitive": ...}}."""
    dir = Path(dir)
    if not dir.is_dir():
        raise TerraformError(f"{dir} is not a directory (render one with `lab terraform render`)")
    proc = run(dir, "output", "-json")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1].strip("│ ")
        raise TerraformError(f"`terraform output -json` in {dir} failed: {last}")
    try:
        return json.loads(proc.stdout or "{}")
    except ValueError:
        raise TerraformError(f"`terraform output -json` in {dir} printed no JSON") from None


def parse(dir: Path, outputs: dict) -> TerraformLab:
    if "racklab" not in outputs:
        raise TerraformError(
            f"{dir} has no `racklab` output: run `terraform -chdir={dir} apply` first "
            "(in a module rendered by `lab terraform render`)"
        )
    v = outputs["racklab"]["value"]
    nodes = {
        name: TerraformNode(
            name=name,
            rack=n["rack"],
            host=n["host"],
            uri=n["uri"],
            domain=n["domain"],
            address=n["address"],
            prefix=int(n["prefix"]),
            gateway=n["gateway"],
            mac=n["mac"],
            vcpus=int(n["vcpus"]),
            memory=int(n["memory"]),
        )
        for name, n in v["nodes"].items()
    }
    lab = v["lab"]
    return TerraformLab(Path(dir), lab["name"], lab["labid"], lab["supernet"], dict(v["hosts"]),
                        dict(v["racks"]), nodes)  # fmt: skip


def read(dir: Path) -> TerraformLab:
    return parse(Path(dir), output_json(Path(dir)))


def check_against(tlab: TerraformLab, topo: Topology) -> None:
    """Refuse a DIR made from another file (or from this one before an edit): the
    lab's name, its racks and each node's rack must be the same."""
    again = f"render it again (`lab terraform render {topo.file} -o {tlab.dir}`) and apply"
    if tlab.name != topo.name:
        raise TerraformError(f"{tlab.dir} holds lab {tlab.name}, not {topo.name}: {again}")
    if list(sorted(tlab.racks, key=lambda r: tlab.racks[r]["index"])) != list(topo.racks):
        raise TerraformError(f"{tlab.dir} has racks {', '.join(tlab.racks)}, the file "
                             f"{', '.join(topo.racks)}: {again}")  # fmt: skip
    for name, nd in topo.nodes.items():
        got = tlab.nodes.get(name)
        if got is None:
            raise TerraformError(f"{tlab.dir} has no node {name}: {again}")
        if got.rack != nd.rack:
            raise TerraformError(f"node {name} is in rack {got.rack} in {tlab.dir} and in "
                                 f"{nd.rack} in the file: {again}")  # fmt: skip
    extra = sorted(set(tlab.nodes) - set(topo.nodes))
    if extra:
        raise TerraformError(f"{tlab.dir} has nodes the file lacks ({', '.join(extra)}): {again}")
    if topo.supernet != "auto" and topo.supernet != tlab.supernet:
        raise TerraformError(f"{tlab.dir} uses supernet {tlab.supernet}, the file "
                             f"{topo.supernet}: {again}")  # fmt: skip
