"""`lab service stop|start|restart NODE SERVICE`: one service of a running lab, by hand,
through the node contract (any kind of node), with the lab's state kept up to date."""

from __future__ import annotations

import time

from . import deploy
from .lab import LabError, get_node
from .state import State


def _find(state: State, node: str, service: str) -> tuple[str, dict]:
    on_node = {sid: s for sid, s in state.get("services", {}).items() if s["node"] == node}
    hits = [(sid, s) for sid, s in on_node.items() if service in (s["name"], s["service"])]
    if len(hits) != 1:
        names = ", ".join(s["name"] for s in on_node.values()) or "none"
        raise LabError(f"node {node} runs no service {service} (it runs: {names})")
    return hits[0]


def stop(state: State, node: str, service: str) -> str:
    n = get_node(state, node)
    sid, svc = _find(state, node, service)
    if not deploy.service_running(n, svc):
        return f"{svc['name']} on {node} was not running"
    n.stop_service(svc["name"], svc)
    return f"stopped {svc['name']} on {node}"


def start(state: State, node: str, service: str, timeout: float = 30) -> str:
    n = get_node(state, node)
    sid, svc = _find(state, node, service)
    if deploy.service_running(n, svc):
        return f"{svc['name']} on {node} is already running"
    try:
        n.remove_service(svc["name"])  # a pod keeps a stopped service's container
    except Exception:  # noqa: BLE001 - nothing to remove
        pass
    svc.update(n.start_service(svc["name"], svc["argv"], svc.get("env")))
    state.save()
    deadline = time.monotonic() + timeout
    while not deploy.service_running(n, svc):
        if time.monotonic() > deadline:
            raise LabError(
                f"{svc['name']} on {node} did not start: see `lab logs {node} {svc['name']}`"
            )
        time.sleep(0.1)
    return f"started {svc['name']} on {node}"


def restart(state: State, node: str, service: str) -> list[str]:
    return [stop(state, node, service), start(state, node, service)]
