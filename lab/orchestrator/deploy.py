"""Deploying the topology's services onto running nodes.

Each service has a deployer module in lab/orchestrator/services/ that renders its
config files and command lines; this module writes the files into the nodes, starts
the processes in dependency order and waits until their ports answer.
"""

from __future__ import annotations

import importlib
import inspect
import socket
import time

from lab.orchestrator.services.base import PYTHON, ServiceDeployer, ServiceProcess


class DeployError(RuntimeError):
    pass


def deployer_for(service: str) -> ServiceDeployer:
    try:
        mod = importlib.import_module(f"lab.orchestrator.services.{service}")
    except ModuleNotFoundError as e:
        raise DeployError(f"service {service} cannot be deployed by this racklab yet") from e
    for _, obj in inspect.getmembers(mod, inspect.isclass):
        if issubclass(obj, ServiceDeployer) and obj is not ServiceDeployer:
            return obj()
    raise DeployError(f"lab.orchestrator.services.{service} has no ServiceDeployer")


def _order(services: dict) -> list[str]:
    done: list[str] = []

    def visit(s: str, seen: tuple = ()) -> None:
        if s in done or s not in services:
            return
        if s in seen:
            raise DeployError(f"services depend on each other in a circle: {seen}")
        for dep in {"kafka": ["zookeeper"], "yarn": ["hdfs"]}.get(s, []):
            visit(dep, seen + (s,))
        done.append(s)

    for s in services:
        visit(s)
    return done


def wait_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def deploy_all(topo, state, nodes: dict, plan, progress, timeout: float = 90) -> None:
    racks = {n: nd.rack for n, nd in topo.nodes.items()}
    for service in _order(topo.services):
        dep = deployer_for(service)
        procs: list[ServiceProcess] = dep.plan_for_lab(topo.services, dict(plan.nodes), racks)
        progress(f"starting {service} ({len(procs)} processes)")
        for p in procs:
            node = nodes[p.node]
            for path, content in p.files.items():
                node.put_file(path, content.encode())
            argv = [node.python if a == PYTHON else a for a in p.argv]
            name = f"{p.service}-{p.role}"
            info = node.start_service(name, argv, p.env)
            state["services"][p.id] = {
                "service": p.service,
                "role": p.role,
                "node": p.node,
                "name": name,
                "argv": argv,
                "ports": p.ports,
                **info,
            }
            state.save()
        deadline = time.monotonic() + timeout
        for p in procs:
            addr = plan.nodes[p.node]
            for port in p.ports:
                if not wait_port(addr, port, deadline - time.monotonic()):
                    raise DeployError(
                        f"{p.service} {p.role} on {p.node} did not answer on {addr}:{port} "
                        f"within {timeout:.0f}s; see its log: "
                        f"lab exec {p.node} -- cat {state['services'][p.id]['log']}"
                    )
        why = dep.unready(procs, dict(plan.nodes))
        while why is not None and time.monotonic() < deadline:
            time.sleep(0.2)
            why = dep.unready(procs, dict(plan.nodes))
        if why is not None:
            raise DeployError(f"{service} did not become ready within {timeout:.0f}s: {why}")


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
