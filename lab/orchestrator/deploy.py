"""Deploying the topology's services onto running nodes.

Each service has a deployer module in lab/orchestrator/deployers/ that renders its
config files and command lines; this module writes the files into the nodes, starts
the processes in dependency order and waits until their ports answer.
"""

from __future__ import annotations

import importlib
import inspect
import time

from lab.orchestrator.deployers.base import PYTHON, ServiceDeployer, ServiceProcess
from lab.services.ports import port_answers
from lab.topology.services import REQUIRES, start_order


class DeployError(RuntimeError):
    pass


def deployer_for(service: str) -> ServiceDeployer:
    try:
        mod = importlib.import_module(f"lab.orchestrator.deployers.{service}")
    except ModuleNotFoundError as e:
        raise DeployError(f"service {service} cannot be deployed by this racklab yet") from e
    for _, obj in inspect.getmembers(mod, inspect.isclass):
        if issubclass(obj, ServiceDeployer) and obj is not ServiceDeployer:
            return obj()
    raise DeployError(f"lab.orchestrator.deployers.{service} has no ServiceDeployer")


def _needs(service: str, services: dict) -> list[str]:
    need = REQUIRES.get(service)
    return [need] if need and need in services else []


def _chain(service: str) -> list[str]:
    """What ``service`` waits for before it starts, transitively."""
    need = REQUIRES.get(service)
    return [need, *_chain(need)] if need else []


EXIT_CHECK = 0.5  # seconds between looks at whether a starting process still runs


class _Rollout:
    """One service being brought up: its processes started, then watched until every
    port answers and its deployer calls it ready, or its time runs out."""

    def __init__(self, service: str, dep: ServiceDeployer, procs: list, timeout: float, nodes):
        self.service, self.dep, self.procs = service, dep, procs
        self.nodes = nodes
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.ports_ok = False
        self.why: str | None = "not checked yet"
        self.checked: dict[str, float] = {}  # process id -> when it was last seen alive

    def _exited(self, p, state) -> None:
        """A process that is gone will not answer: say so now, with its log, rather
        than after the whole timeout. Asked at most every EXIT_CHECK seconds per
        process: the port is polled far more often, and a crash is not a race."""
        now = time.monotonic()
        if now - self.checked.get(p.id, 0.0) < EXIT_CHECK:
            return
        self.checked[p.id] = now
        svc = state["services"][p.id]
        node = self.nodes[p.node]
        if not service_running(node, svc):
            # The lab is undone after this, log and all: its last line goes with the error.
            try:
                lines = node.get_file(svc["log"]).decode(errors="replace").strip().splitlines()
                last = lines[-1].strip() if lines else "its log is empty"
            except OSError:
                last = "its log could not be read"
            raise DeployError(f"{p.service} {p.role} on {p.node} exited while starting: {last}")

    def ready(self, plan, state) -> bool:
        if not self.ports_ok:
            for p in self.procs:
                addr = plan.nodes[p.node]
                for port in p.ports:
                    if not port_answers(addr, port, 0.5):
                        self._exited(p, state)
                        if time.monotonic() > self.deadline:
                            raise DeployError(
                                f"{p.service} {p.role} on {p.node} did not answer on {addr}:{port} "
                                f"within {self.timeout:.0f}s; see its log: "
                                f"lab exec {p.node} -- cat {state['services'][p.id]['log']}"
                            )
                        return False
            self.ports_ok = True
        self.why = self.dep.unready(self.procs, dict(plan.nodes))
        if self.why is not None and time.monotonic() > self.deadline:
            raise DeployError(
                f"{self.service} did not become ready within {self.timeout:.0f}s: {self.why}"
            )
        return self.why is None


def _start_service(service: str, topo, state, nodes: dict, plan, racks, progress, timeout):
    dep = deployer_for(service)
    procs: list[ServiceProcess] = dep.plan_for_lab(topo.services, dict(plan.nodes), racks)
    progress(f"starting {service} ({len(procs)} processes)")
    started = {}
    for p in dep.start_order(procs):
        node = nodes[p.node]
        for path, content in p.files.items():
            node.put_file(path, content.encode())
        argv = [node.python if a == PYTHON else a for a in p.argv]
        name = f"{p.service}-{p.role}"
        info = node.start_service(name, argv, p.env)
        started[p.id] = {
            "service": p.service,
            "role": p.role,
            "node": p.node,
            "name": name,
            "argv": argv,
            "ports": p.ports,
            **info,
        }
    # recorded in the plan's order, whatever order they started in; saved once per
    # service, not per process: a crash in between loses nothing `lab clean` needs (it
    # finds every process in the lab's cgroups or the kind's engine)
    state["services"].update((p.id, started[p.id]) for p in procs)
    state.save()
    return _Rollout(service, dep, procs, timeout, nodes)


def deploy_all(topo, state, nodes: dict, plan, progress, timeout: float = 90,
               t0: float | None = None) -> None:  # fmt: skip
    """Start every service as soon as what it needs is ready (ZooKeeper and HDFS at once,
    then Kafka and YARN as each of theirs is up), and wait for all of them together:
    independent services come up side by side instead of one after the other. When
    each was ready, in seconds since ``t0`` (the start of `lab up`), goes in the
    state's ``ready_in``: what a slow up waited for."""
    t0 = time.monotonic() if t0 is None else t0
    state["ready_in"] = {}
    racks = {n: nd.rack for n, nd in topo.nodes.items()}
    order = start_order(topo.services)
    rollouts: dict[str, _Rollout] = {}
    ready: set[str] = set()
    while len(ready) < len(order):
        for service in order:
            if service not in rollouts and all(d in ready for d in _needs(service, topo.services)):
                rollouts[service] = _start_service(
                    service, topo, state, nodes, plan, racks, progress, timeout
                )
        before = len(ready)
        for service, rollout in rollouts.items():
            if service not in ready and rollout.ready(plan, state):
                ready.add(service)
                state["ready_in"][service] = round(time.monotonic() - t0, 3)
        if len(ready) == before:
            time.sleep(0.05)


def python_modules(topo, plan) -> dict[str, list[str]]:
    """For each node kind, the Python modules (``python -m MODULE``) the lab's services
    will run on nodes of that kind, in the order they start (those that need nothing
    first): what its backend may load ahead."""
    racks = {n: nd.rack for n, nd in topo.nodes.items()}
    out: dict[str, list[str]] = {}
    for service in sorted(start_order(topo.services), key=lambda s: len(_chain(s))):
        for p in deployer_for(service).plan_for_lab(topo.services, dict(plan.nodes), racks):
            if len(p.argv) > 2 and p.argv[:2] == [PYTHON, "-m"]:
                modules = out.setdefault(topo.nodes[p.node].kind, [])
                if p.argv[2] not in modules:
                    modules.append(p.argv[2])
    return out


def service_running(node, svc: dict) -> bool:
    try:
        return node.service_running(svc["name"], svc)
    except (NotImplementedError, OSError):
        return False


def service_status(node, svc: dict, address: str) -> dict:
    """What `lab status` shows of one service process: running, plus the deployer's
    facts (a ZooKeeper server's mode and zxid, a NameNode's live DataNodes, ...)."""
    out = {"service": svc["service"], "role": svc["role"], "running": service_running(node, svc)}
    if out["running"]:
        try:
            proc = ServiceProcess(svc["service"], svc["role"], svc["node"], svc["argv"],
                                  ports=svc.get("ports", []))  # fmt: skip
            facts = deployer_for(svc["service"]).status(proc, address)
        except DeployError:
            facts = {}
        out.update({k: v for k, v in facts.items() if k != "role"})
    return out


def finish_up(topo, state, nodes: dict, plan, progress, t0: float) -> None:
    """The last step of every `lab up`: the services deployed on the nodes made and
    wired, and the lab marked up with the time it took."""
    if topo.services:
        deploy_all(topo, state, nodes, plan, progress, t0=t0)
    state["phase"] = "up"
    state["up_in"] = round(time.monotonic() - t0, 3)
    state.save()
