"""up / down / status / clean: plan -> provision nodes -> wire network -> deploy services.

Every step records what it made in the lab's state before moving on, and a failure
half-way undoes everything the lab made (the same code path as `lab down`).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from lab import cgroups
from lab.backends import BackendUnavailable, NodeSpec, get_backend
from lab.backends import kinds as backend_kinds
from lab.net import addressing, fabric
from lab.topology import Topology, labid_of
from lab.topology import loads as load_topology_text

from . import deploy
from . import state as state_mod
from .state import State, known_labs, lab_dir

Progress = Callable[[str], None]


class LabError(RuntimeError):
    """A problem the user can act on (shown as one sentence, exit code 2)."""


def _quiet(msg: str) -> None:
    pass


# planning


def plan_addresses(topo: Topology) -> addressing.Plan:
    taken = addressing.host_networks()
    if topo.supernet == "auto":
        try:
            net = addressing.choose_supernet(topo.labid, taken)
        except addressing.AddressError as e:
            raise topo.error(("network", "supernet"), str(e)) from None
    else:
        net = ipaddress.IPv4Network(topo.supernet)
        clash = addressing.overlapping(net, taken)
        if clash is not None:
            raise topo.error(
                ("network", "supernet"),
                f"{net} overlaps {clash}, which this host already routes; pick another range",
            )
    return addressing.plan(net, topo.racks)


def node_specs(topo: Topology, plan: addressing.Plan) -> dict[str, NodeSpec]:
    hosts = dict(plan.nodes)
    specs = {}
    for name, nd in topo.nodes.items():
        specs[name] = NodeSpec(
            name=name,
            lab=topo.name,
            labid=topo.labid,
            kind=nd.kind,
            rack=nd.rack,
            cpus=nd.cpus,
            memory=nd.memory,
            pids=nd.pids,
            io_bps=nd.io,
            address=plan.cidr(name, nd.rack),
            gateway=plan.gateways[nd.rack],
            hosts=hosts,
            state_dir=lab_dir(topo.name) / "nodes" / name,
            image=nd.image,
            # the file's settings of a kind's engine (its k8s section): every node
            # carries them, the backend that has such an engine reads them
            extra={"k8s": dict(topo.k8s)} if topo.k8s else {},
        )
    return specs


def check_backends(topo: Topology) -> dict:
    backends = {}
    for name, nd in topo.nodes.items():
        if nd.kind in backends:
            continue
        try:
            backends[nd.kind] = get_backend(nd.kind)
        except BackendUnavailable as e:
            raise topo.error(("nodes", name, "kind"), str(e)) from None
    return backends


# up


def up(topo: Topology, progress: Progress = _quiet) -> State:
    from . import terraform

    if terraform.declared(topo):  # its VM nodes exist already: terraform made them
        return terraform.up(topo, progress)
    if topo.hosts:  # racks on other machines: lab/orchestrator/multihost.py
        from . import multihost

        return multihost.up(topo, progress)
    existing = State.load(topo.name)
    if existing is not None:
        raise LabError(
            f"lab {topo.name} is already up (or was left half-made): run `lab down {topo.name}` first"
        )
    if os.path.exists(fabric.router_path(topo.labid)):
        # The kernel objects are named after the lab, not its state directory: they
        # belong to a lab of this name that another RACKLAB_HOME holds (or a crash
        # left), and undoing a failed up here would remove that lab's network.
        raise LabError(
            f"network namespace {fabric.router_ns(topo.labid)} exists already: a lab "
            f"named {topo.name} is up under another RACKLAB_HOME, or a crash left it "
            f"(`lab clean {topo.name}` removes it); name this lab differently"
        )
    backends = check_backends(topo)
    progress("planning addresses")
    plan = plan_addresses(topo)
    specs = node_specs(topo, plan)
    state = state_mod.begin(topo, plan)
    try:
        _build(topo, state, plan, specs, backends, progress)
    except BaseException:
        progress("failed: undoing what was made")
        teardown(topo.name, state)
        raise
    return state


def _build(topo, state, plan, specs, backends, progress) -> None:
    t0 = time.monotonic()
    lab_cg = cgroups.lab_cgroup(topo.name).create()
    overlay = _overlay(specs, backends)
    impairing = None
    if overlay is None:
        progress(f"router and {len(topo.racks)} rack bridges")
        fabric.create_router(topo.labid, plan, _impairment(topo))
        router_cg = lab_cg.child(cgroups.ROUTER_CGROUP).create()
        # the delay line starts beside the nodes; it is waited for before wiring
        impairing = fabric.start_impairment(
            topo.labid, plan, _impairment(topo), router_cg,
            str(lab_dir(topo.name) / "delayline.log"),
        )  # fmt: skip

    for kind, backend in backends.items():
        backend.prepare([s for s in specs.values() if s.kind == kind], progress)
    if overlay is not None:
        progress(f"router pod and {len(topo.racks)} rack bridges, carried by the pods")
        state["impairment"] = overlay.build(
            plan, _impairment(topo), lab_cg.child(cgroups.ROUTER_CGROUP).create(),
            str(lab_dir(topo.name) / "relay.log"),
        )  # fmt: skip
        state.save()
    # the services' modules are loaded while the nodes are made (Backend.preload)
    modules = deploy.python_modules(topo, plan) if topo.services else {}
    for kind, backend in backends.items():
        backend.preload([s for s in specs.values() if s.kind == kind], modules.get(kind, []))
    try:
        _nodes_and_services(topo, state, plan, specs, backends, impairing, progress, t0)
    finally:
        for backend in backends.values():
            backend.preload_done()


def _nodes_and_services(topo, state, plan, specs, backends, impairing, progress, t0) -> None:
    progress(f"starting {len(specs)} nodes")
    nodes = _create_nodes(specs, backends)
    for name, node in nodes.items():
        state["nodes"][name] = node.describe()
    state.save()

    if impairing is not None:
        state["impairment"] = impairing.result()
        state.save()
    progress("wiring nodes into their racks")
    for node in nodes.values():
        node.attach_network()
    state["wired_in"] = round(time.monotonic() - t0, 3)
    state.save()

    deploy.finish_up(topo, state, nodes, plan, progress, t0)
    progress(f"lab {topo.name} is up ({state['up_in']:.2f} s)")


def _overlay(specs: dict[str, NodeSpec], backends: dict):
    """The rack network of a kind whose nodes must carry it themselves (k8s pods on a
    cluster: racklab's bridges cannot reach them), else None (racklab's router here)."""
    for kind, backend in backends.items():
        overlay = backend.rack_network([s for s in specs.values() if s.kind == kind])
        if overlay is not None:
            if len(backends) > 1:
                raise LabError(
                    f"{kind} nodes that carry their own rack network (on a cluster, or with "
                    "network: overlay) cannot share a lab with "
                    f"{', '.join(sorted(set(backends) - {kind}))} nodes"
                )
            return overlay
    return None


def _create_nodes(specs: dict[str, NodeSpec], backends: dict) -> dict:
    """Each kind makes its nodes its own way (create_many), the kinds side by side."""
    by_kind: dict[str, list[NodeSpec]] = {}
    for spec in specs.values():
        by_kind.setdefault(spec.kind, []).append(spec)
    nodes = {}
    with ThreadPoolExecutor(max_workers=len(by_kind) or 1) as pool:
        made = pool.map(lambda kind: backends[kind].create_many(by_kind[kind]), by_kind)
        for node in (n for group in made for n in group):
            nodes[node.name] = node
    return {n: nodes[n] for n in specs}


def _impairment(topo: Topology) -> fabric.Impairment:
    return fabric.Impairment(topo.inter_rack_delay, topo.inter_rack_jitter, topo.inter_rack_loss)


# finding a running lab again


def topology_of(state: State) -> Topology:
    return load_topology_text(state["topology"], state["file"])


def attach_nodes(state: State) -> dict:
    topo = topology_of(state)
    plan_json = state["network"]
    plan = addressing.Plan(
        supernet=ipaddress.IPv4Network(plan_json["supernet"]),
        host_link=ipaddress.IPv4Network(plan_json["host_link"]),
        router_host_ip="",
        host_ip="",
        racks={r: ipaddress.IPv4Network(n) for r, n in plan_json["racks"].items()},
        gateways=plan_json["gateways"],
        nodes=plan_json["nodes"],
    )
    specs = node_specs(topo, plan)
    out = {}
    for name, saved in state["nodes"].items():
        # "backend": nodes of a kind made another way (vm nodes terraform made)
        out[name] = get_backend(saved.get("backend", saved["kind"])).attach(specs[name], saved)
    return out


def resolve_lab(name: str | None) -> State:
    if name:
        st = State.load(name)
        if st is None:
            raise LabError(f"no lab named {name} is up (labs: {', '.join(known_labs()) or 'none'})")
        return st
    labs = known_labs()
    if not labs:
        raise LabError("no lab is up: start one with `lab up FILE`")
    if len(labs) > 1:
        raise LabError(f"several labs are up ({', '.join(labs)}): name one with --lab")
    return State.load(labs[0])


def get_node(state: State, node: str):
    nodes = attach_nodes(state)
    if node not in nodes:
        raise LabError(f"lab {state.name} has no node {node} (nodes: {', '.join(nodes)})")
    return nodes[node]


def service_addresses(state: State, service: str, role: str | None = None) -> list[str]:
    """Addresses of the nodes running ``service`` (in ``role``), in deployment order."""
    addrs = state["network"]["nodes"]
    found = [
        addrs[svc["node"]]
        for svc in state.get("services", {}).values()
        if svc["service"] == service and (role is None or svc["role"] == role)
    ]
    if not found:
        what = f"{service} {role}" if role else service
        raise LabError(f"lab {state.name} runs no {what}")
    return found


# status


def status(state: State) -> dict:
    nodes = attach_nodes(state)
    out_nodes = []
    for name, node in nodes.items():
        d = node.describe()
        d["address"] = state["network"]["nodes"].get(name)
        try:
            s = node.stats()
            d["memory_bytes"] = s.memory_bytes
            d["memory_max"] = s.memory_max
            d["cpu_usec"] = s.cpu_usec
            d["pids"] = s.pids
            d["oom_kills"] = s.oom_kills
        except OSError:
            pass
        d["services"] = [
            deploy.service_status(node, svc, d["address"])
            for svc in state.get("services", {}).values()
            if svc["node"] == name
        ]
        out_nodes.append(d)
    data = {
        "name": state.name,
        "labid": state["labid"],
        "phase": state["phase"],
        "file": state["file"],
        "up_in": state.get("up_in"),
        "ready_in": state.get("ready_in", {}),  # each service, seconds into the up
        "network": state["network"],
        "inter_rack": state.get("impairment", {}),
        "cgroup_version": cgroups.version(),
        "nodes": out_nodes,
    }
    if state.get("hosts"):  # racks on other machines: where, and the round trips between
        from . import multihost

        data["hosts"] = multihost.status_hosts(state)
    return data


# down and clean


def down(name: str | None, progress: Progress = _quiet) -> list[str]:
    state = resolve_lab(name)
    return teardown(state.name, state, progress)


def teardown(name: str, state: State | None, progress: Progress = _quiet) -> list[str]:
    """Remove every kernel object, process, container and file the lab made."""
    labid = state.get("labid") if state else labid_of(name)
    removed: list[str] = []
    if state and state.get("hosts"):  # every host's part first, through its agent
        from . import multihost

        removed += multihost.teardown_hosts(name, state, progress)
    if state and state.get("terraform"):
        from . import terraform

        removed += terraform.release(state, progress)
    # Without state (a crash before it was written, or a lost state dir) any kind may
    # have been started: ask every backend; each finds its own by the lab's name.
    kinds = {"process"} if state else set(backend_kinds())
    if state:
        kinds |= {n.get("kind", "process") for n in state.get("nodes", {}).values()}
        # nodes are recorded once all are made: a failure while making them (one VM up,
        # another refused) leaves kinds only the topology names
        try:
            kinds |= {nd.kind for nd in topology_of(state).nodes.values()}
        except Exception:
            pass  # no or broken topology text: the recorded kinds are all we know
    for kind in sorted(kinds):
        try:
            backend = get_backend(kind)
        except BackendUnavailable:
            continue
        progress(f"removing {kind} nodes")
        try:
            removed += backend.cleanup(name, labid)
        except Exception as e:  # noqa: BLE001 - one kind failing must not stop the rest
            progress(f"could not clean {kind} nodes of {name}: {e}")
    progress("removing the rack network")
    removed += fabric.destroy(labid)
    cg = cgroups.lab_cgroup(name)
    if cg.exists():
        cg.remove()
        removed.append(f"cgroup {cg.rel}")
    d = lab_dir(name)
    if d.exists():
        shutil.rmtree(d, ignore_errors=True)
        removed.append(f"state {d}")
    return removed


def _process_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def is_running(name: str, has_nodes_elsewhere: bool = False) -> bool:
    """Whether a lab may be in use: its state says up and a node of it is alive, or the
    `lab up` making it is still running. Without state here it may be a lab of another
    RACKLAB_HOME, whose state this one cannot see: in use if processes live in its
    cgroup, or if Docker or libvirt still hold nodes of it (``has_nodes_elsewhere``)."""
    st = State.load(name)
    if st is None:
        return has_nodes_elsewhere or cgroups.lab_cgroup(name).populated()
    if st.get("phase") == "creating":
        return _process_alive(st.get("up_pid"))
    try:
        return any(n.alive() for n in attach_nodes(st).values())
    except Exception:  # noqa: BLE001 - a state that cannot be attached is a leftover
        return False


def clean_plan(name: str | None = None, everything: bool = False) -> dict:
    """What `lab clean` would remove: {"labs": [...], "kernel": {labid: [what]},
    "running": [...] kept}. A named lab is removed whatever its state; with no name only
    the leftovers of labs that are not running; `everything` takes running labs too."""
    names, by_backend = set(), set()
    if name:
        names.add(name)
    else:
        names |= set(known_labs())
        root = cgroups.Cgroup(cgroups.LAB_PARENT)
        for d in root.dirs():
            if d.is_dir():
                names |= {p.name for p in d.iterdir() if p.is_dir()}
        home = lab_dir("x").parent
        if home.is_dir():
            names |= {p.name for p in home.iterdir() if p.is_dir()}
        for kind in backend_kinds():  # VMs outlive a lost state dir: libvirt remembers them
            try:
                by_backend |= get_backend(kind).labs()
            except BackendUnavailable:
                pass
        names |= by_backend
    running = (
        [] if name or everything else sorted(n for n in names if is_running(n, n in by_backend))
    )
    labs = sorted(names - set(running))
    kernel = {}
    if not name:
        # kernel objects of labs nothing else remembers (their state dir is gone too),
        # except those of a lab in use
        keep = {labid_of(n) for n in running}
        kernel = {k: v for k, v in fabric.leftovers().items() if k not in keep}
    return {"labs": labs, "kernel": kernel, "running": running}


def clean(
    name: str | None = None, everything: bool = False, progress: Progress = _quiet
) -> list[str]:
    """Like down, but also for labs whose state is gone or broken (after a crash)."""
    plan = clean_plan(name, everything)
    names = plan["labs"]
    removed: list[str] = []
    for n in sorted(names):
        removed += teardown(n, State.load(n), progress)
    for labid in plan["kernel"]:
        if labid not in {labid_of(n) for n in names}:  # torn down with its lab above
            removed += fabric.destroy(labid)
    return removed
