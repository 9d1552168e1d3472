"""`lab up` / `lab down` of a lab whose VM nodes terraform made (`terraform: DIR` in
the file, DIR rendered by `lab terraform render` and applied).

Up: read `terraform output -json` in DIR, check it describes this file, take its
address plan as the lab's, find each node's domain at its host's libvirt URI and reach
it over SSH, then deploy the services as for any lab. There is no router namespace or
rack bridge here: the racks are terraform's libvirt networks on the hosts. Down: stop
racklab's services and remove their data in every VM; the VMs stay for `terraform
destroy`.
"""

from __future__ import annotations

import time
from pathlib import Path

from lab.backends import get_backend
from lab.terraform import outputs
from lab.topology import Topology

from . import state as state_mod
from .state import State

BACKEND = "vm-terraform"


def declared(topo: Topology) -> Path | None:
    """DIR of the file's `terraform:` entry, relative to the file's folder; None when
    the file has none (racklab makes its nodes itself)."""
    data = topo.source.data if topo.source is not None else {}
    value = data.get("terraform") if isinstance(data, dict) else None
    if not value:
        return None
    p = Path(str(value)).expanduser()
    if not p.is_absolute():
        base = Path(topo.file).parent if not topo.file.startswith("<") else Path.cwd()
        p = base / p
    return p.resolve()


def check(topo: Topology) -> None:
    """What a lab of terraform's VMs cannot have, refused before anything is touched."""
    from lab.terraform.render import check_vm_only

    check_vm_only(topo)
    if topo.inter_rack_delay or topo.inter_rack_jitter or topo.inter_rack_loss:
        raise topo.error(
            ("network", "inter_rack"),
            "racklab puts the inter-rack delay on its own router, and a lab of VMs "
            "terraform made has none (its racks are libvirt networks): remove it",
        )


def up(topo: Topology, progress) -> State:
    from . import deploy
    from .lab import LabError, node_specs, teardown

    if State.load(topo.name) is not None:
        raise LabError(f"lab {topo.name} is already up (or was left half-made): run "
                       f"`lab down {topo.name}` first")  # fmt: skip
    check(topo)
    tdir = declared(topo)
    progress(f"reading what terraform made in {tdir}")
    try:
        tlab = outputs.read(tdir)
        outputs.check_against(tlab, topo)
    except outputs.TerraformError as e:
        raise topo.error(("terraform",), str(e)) from None
    plan = tlab.plan()
    specs = node_specs(topo, plan)
    for name, spec in specs.items():
        n = tlab.nodes[name]
        spec.extra["terraform"] = {
            "dir": str(tdir),
            "uri": n.uri,
            "host": n.host,
            "domain": n.domain,
            "key": str(tlab.keys / "id_ed25519"),
            "host_key": str(tlab.keys / "hosts" / name),
        }
    state = state_mod.begin(topo, plan, terraform=str(tdir))
    t0 = time.monotonic()
    try:
        backend = get_backend(BACKEND)
        progress(f"reaching {len(specs)} VMs terraform made, over SSH")
        nodes = {n.name: n for n in backend.create_many(list(specs.values()))}
        for name, node in nodes.items():
            state["nodes"][name] = node.describe()
        state["wired_in"] = round(time.monotonic() - t0, 3)
        state.save()
        deploy.finish_up(topo, state, nodes, plan, progress, t0)
    except BaseException:
        progress("failed: undoing what racklab did in the VMs (they stay: terraform's)")
        teardown(topo.name, state, progress)
        raise
    progress(f"lab {topo.name} is up ({state['up_in']:.2f} s)")
    return state


def release(state: State, progress) -> list[str]:
    """`lab down` of a terraform lab: racklab's services and data leave every VM it
    reached; the VMs stay, and the message says who removes them."""
    from .lab import attach_nodes

    done: list[str] = []
    try:
        nodes = attach_nodes(state)
    except Exception as e:  # noqa: BLE001 - a broken state must not stop the rest of down
        progress(f"could not find the VMs of {state.name} again: {e}")
        nodes = {}
    for name, node in nodes.items():
        try:
            node.destroy()
            done.append(f"racklab's services and data in VM {name}")
        except Exception as e:  # noqa: BLE001 - one VM failing must not stop the others
            progress(f"could not clear VM {name}: {e}")
    progress(f"the VMs stay: terraform made them; `terraform -chdir={state['terraform']} "
             "destroy` removes them")  # fmt: skip
    return done
