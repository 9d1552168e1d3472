"""`lab up` of a file with ``hosts:``: the lab's racks on several machines.

The order, each step recorded in the lab's state before it acts, so that `lab down`
and `lab clean` (also after a kill -9 half-way) find every host and what it made:

1. plan addresses as for one machine, plus the backbone (the supernet's last /24:
   .1 this machine's router, .2, .3, ... the hosts' routers, in file order);
2. record the hosts, then connect to every one (one SSH connection each) and check
   them all (lab/hosts/preflight.py): nothing is made anywhere if one fails;
3. install the agent where its version is missing (lab/hosts/agent.py);
4. this machine's router (the link into the lab, as on one machine, without racks)
   and each host's router with its racks' bridges, all joined by VXLAN
   (lab/net/backbone.py), the inter-rack impairment on each host's router;
5. every host makes its nodes with its own backends, side by side;
6. the services, deployed through the node contract as on one machine.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from lab.backends import Node, get_backend
from lab.net import addressing, backbone, fabric
from lab.topology import Topology

from . import deploy
from . import state as state_mod
from .state import State


def backbone_plan(topo: Topology, plan: addressing.Plan) -> dict:
    subnets = list(plan.supernet.subnets(new_prefix=24))
    net = subnets[-1]
    if len(subnets) < len(topo.racks) + 2:
        raise topo.error(
            ("network", "supernet"),
            f"{plan.supernet} is too small for {len(topo.racks)} racks on hosts "
            "(a /24 each, one for the router and one for the backbone between hosts)",
        )
    ips = {"controller": str(net.network_address + 1)}
    for i, host in enumerate(topo.hosts, start=2):
        ips[host] = str(net.network_address + i)
    return {"net": str(net), "ips": ips}


def up(topo: Topology, progress) -> State:
    from lab.hosts import preflight

    from .lab import LabError, node_specs, plan_addresses, teardown

    if State.load(topo.name) is not None:
        raise LabError(
            f"lab {topo.name} is already up (or was left half-made): run `lab down {topo.name}` first"
        )
    progress("planning addresses")
    plan = plan_addresses(topo)
    bb = backbone_plan(topo, plan)
    specs = node_specs(topo, plan)
    port = preflight.vxlan_port(topo.labid)
    state = state_mod.begin(
        topo,
        plan,
        # before any host is touched: down and clean reach every one from here
        hosts={n: h.as_dict() for n, h in topo.hosts.items()},
        rack_host=topo.rack_host,
        backbone={**bb, "port": port, "vni": backbone.vni(topo.labid)},
        agents={},
    )
    try:
        _build(topo, state, plan, bb, specs, port, progress)
    except BaseException:
        progress("failed: undoing what was made")
        teardown(topo.name, state, progress)
        raise
    return state


def _build(topo, state, plan, bb, specs, port, progress) -> None:
    from lab.hosts import agent as agentmod
    from lab.hosts import images, machinery, preflight
    from lab.hosts.client import agent as agent_of
    from lab.hosts.client import close_all as close_agents
    from lab.hosts.ssh import HostError, Hosts, each

    from .lab import LabError, _impairment

    t0 = time.monotonic()
    progress(f"checking {len(topo.hosts)} hosts")
    # One connection per host for the whole command: made here for the checks, then
    # handed to the hosts' agents (lab/hosts/client.py closes them at exit).
    try:
        hosts = Hosts(topo.hosts.values()).__enter__()
    except HostError as e:
        raise LabError(str(e)) from None
    try:
        facts = preflight.check(list(hosts), topo.labid)
        progress("racklab agent on every host")
        wheels = agentmod.plan({n: f.target() for n, f in facts.items()})
        installed = each(hosts, lambda h: agentmod.install(h, *wheels[h.name]))
        agents = {n: agent_of(topo.hosts[n], installed[n].python, hosts[n]) for n in topo.hosts}
        # what each host's node kinds need there, as its agent finds it (lab/hosts/machinery.py)
        kinds = machinery.kinds_on(topo)
        found = each(hosts, lambda h: machinery.check(h, agents[h.name], kinds[h.name]))
        # the images those nodes boot or run, sent where missing (lab/hosts/images.py)
        sent = images.send_all(hosts, {h.name: _on(topo, specs, h.name) for h in hosts},
                               {n: i.tag for n, i in installed.items()}, progress)  # fmt: skip
        for what, per_host in sent.items():
            state[what] = per_host
        # this machine's address as each host sees it: where its VXLAN sends to us
        seen = each(hosts, lambda h: h.run("echo $SSH_CONNECTION", root=False).out.split())
    except BaseException as e:
        close_agents()  # the undo connects again: no agent may keep a closed connection
        hosts.close()
        if isinstance(e, HostError):
            raise LabError(str(e)) from None
        raise
    state["agents"] = {n: i.as_dict() for n, i in installed.items()}
    state["host_facts"] = {n: {**f.as_dict(), "kinds": found[n]} for n, f in facts.items()}
    # before any node is made: a kill -9 while a host makes them, and `lab clean` still
    # asks that host's agent to remove nodes of every kind it was to have
    state["host_kinds"] = {n: sorted(k) for n, k in kinds.items()}
    state.save()
    underlay = {n: _resolve(h.address) for n, h in topo.hosts.items()}
    controller_at = {n: words[0] for n, words in seen.items()}

    imp = _impairment(topo)
    prefix = ipaddress.IPv4Network(bb["net"]).prefixlen
    rack_routes = {str(plan.racks[r]): bb["ips"][h] for r, h in topo.rack_host.items()}
    progress("this machine's router and the backbone")
    fabric.create_router(topo.labid, dataclasses.replace(plan, racks={}, gateways={}), imp)
    backbone.join(topo.labid, fabric.router_ns(topo.labid), port, None,
                  f"{bb['ips']['controller']}/{prefix}", list(underlay.values()),
                  rack_routes)  # fmt: skip

    def router(host: str) -> dict:
        mine = [r for r, h in topo.rack_host.items() if h == host]
        peers = [controller_at[host]] + [a for n, a in underlay.items() if n != host]
        routes = {net: via for net, via in rack_routes.items() if via != bb["ips"][host]}
        routes[str(plan.host_link)] = bb["ips"]["controller"]
        return agents[host].call(
            "router",
            lab=topo.name,
            labid=topo.labid,
            racks={r: (plan.gateways[r], plan.racks[r].prefixlen) for r in mine},
            backbone={
                "port": port,
                "cidr": f"{bb['ips'][host]}/{prefix}",
                "peers": peers,
                "routes": routes,
                "supernet": str(plan.supernet),
                "host_link": str(plan.host_link),
            },  # fmt: skip
            impairment=dataclasses.asdict(imp),
        )

    progress(f"routers on {len(topo.hosts)} hosts, joined by VXLAN (UDP {port})")
    with ThreadPoolExecutor(max_workers=len(topo.hosts)) as pool:
        per_host = dict(zip(topo.hosts, pool.map(router, topo.hosts), strict=True))
    # status shows one method: the hosts' ("netem" only if every host has it)
    methods = {d.get("method") for d in per_host.values()}
    method = methods.pop() if len(methods) == 1 else "mixed"
    state["impairment"] = {"method": method, "hosts": per_host}
    state.save()

    def rtt(host: str) -> dict:
        peers = {n: ip for n, ip in bb["ips"].items() if n != host}
        return agents[host].call("rtt", labid=topo.labid, peers=peers)

    with ThreadPoolExecutor(max_workers=len(topo.hosts)) as pool:
        state["host_rtt"] = dict(zip(topo.hosts, pool.map(rtt, topo.hosts), strict=True))
    state.save()

    def create(host: str) -> list[Node]:
        mine = [s for s in specs.values() if topo.rack_host[s.rack] == host]
        backend = get_backend(
            "remote", host=topo.hosts[host].as_dict(), agent_python=installed[host].python
        )
        return backend.create_many(mine)

    progress(f"starting {len(specs)} nodes on {len(topo.hosts)} hosts")
    with ThreadPoolExecutor(max_workers=len(topo.hosts)) as pool:
        made = [n for ns in pool.map(create, topo.hosts) for n in ns]
    nodes = {n.name: n for n in made}
    nodes = {n: nodes[n] for n in specs}
    for name, node in nodes.items():
        state["nodes"][name] = node.describe()
    state["wired_in"] = round(time.monotonic() - t0, 3)
    state.save()

    deploy.finish_up(topo, state, nodes, plan, progress, t0)
    progress(f"lab {topo.name} is up on {len(topo.hosts)} hosts ({state['up_in']:.2f} s)")


def _on(topo: Topology, specs: dict, host: str) -> list:
    """The specs of the nodes that run on ``host``."""
    return [s for s in specs.values() if topo.rack_host[s.rack] == host]


def status_hosts(state: State) -> dict:
    """For `lab status`: each host's address, racks and round trips over the backbone
    (measured at `lab up`, from its router to the others' and to this machine's)."""
    rtt = state.get("host_rtt", {})
    return {
        name: {
            "address": h["address"],
            "racks": [r for r, on in state.get("rack_host", {}).items() if on == name],
            "rtt_ms": rtt.get(name, {}),
        }
        for name, h in state.get("hosts", {}).items()
    }


def _resolve(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return socket.gethostbyname(address)


def teardown_hosts(name: str, state: State, progress) -> list[str]:
    """Every host's part of the lab, through its agent; a host that cannot be reached
    is named, and the rest go on (`lab clean` later finishes it)."""
    from lab.hosts.client import agent as agent_of
    from lab.hosts.ssh import HostError
    from lab.topology.hosts import HostDef

    from .lab import LabError, labid_of

    labid = state.get("labid") or labid_of(name)
    hosts = {n: HostDef(**h) for n, h in state.get("hosts", {}).items()}
    agents = state.get("agents", {})
    kinds_on = {}
    for nd in state.get("nodes", {}).values():
        host = nd.get("host", {}).get("name")
        kinds_on.setdefault(host, set()).add(nd.get("kind", "process"))

    def one(host: str) -> list[str]:
        spec = hosts[host]
        python = agents.get(host, {}).get("python")
        if python is None:
            python = _find_agent(spec)
        if python is None:
            return []  # no agent there: nothing of the lab's either
        planned = set(state.get("host_kinds", {}).get(host, []))
        kinds = sorted(kinds_on.get(host, set()) | planned | {"process"})
        try:
            done = agent_of(spec, python).call("down", lab=name, labid=labid, kinds=kinds)
        except HostError as e:
            unreached.append(e)
            return []
        return [f"host {host}: {what}" for what in done]

    removed: list[str] = []
    unreached: list[HostError] = []
    if hosts:
        progress(f"removing the lab from {len(hosts)} hosts")
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            for part in pool.map(one, hosts):
                removed += part
    if unreached:
        # The lab's state stays (and this machine's part with it): the next `lab clean`
        # reaches the host again, and nothing the lab made anywhere is lost track of.
        raise LabError(
            f"{unreached[0]}; the lab's part there stays until `lab clean {name}` reaches it"
        )
    return removed


def _find_agent(spec) -> str | None:
    """An agent on the host when the state does not say which (a kill -9 during the
    install): any complete one runs `down` as well as the lab's own would."""
    from lab.hosts.agent import AGENT_ROOT, agent_python
    from lab.hosts.ssh import HostError, connect

    try:
        h = connect(spec)
    except HostError:
        return None
    try:
        r = h.run(f"cat {AGENT_ROOT}/*/ready 2>/dev/null; rm -rf /tmp/racklab-agent.*")
        tags = r.out.split()
        return agent_python(tags[0]) if tags else None
    finally:
        h.close()
