"""What the chaos layer knows of a running lab, and the few acts it performs on it:
kill and restart a service, freeze and thaw it, kill and restart a whole node, and
heal everything the nemeses can break (also for a run that died half-way).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from lab.cgroups import Cgroup
from lab.net import faults as netfaults
from lab.orchestrator import deploy
from lab.orchestrator import lab as orch
from lab.orchestrator.state import State
from lab.topology.services import SERVICES, start_order

# services are restarted in dependency order after a node comes back
START_ORDER = start_order(SERVICES)


class ChaosError(orch.LabError):
    """A user mistake (unknown workload, impossible schedule, lab not up): one sentence,
    exit code 2 (a LabError, so the CLI treats it like every other user error)."""


@dataclass
class LabContext:
    state: State
    nodes: dict  # name -> Node
    addresses: dict[str, str]  # name -> IPv4
    racks: dict[str, str]  # name -> rack
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def attach(cls, lab: State | str | None, require_running: bool = True) -> LabContext:
        try:
            state = lab if isinstance(lab, State) else orch.resolve_lab(lab)
        except orch.LabError as e:
            raise ChaosError(str(e)) from None
        if state.get("phase") != "up":
            raise ChaosError(f"lab {state.name} is not up (phase: {state.get('phase')})")
        nodes = orch.attach_nodes(state)
        down = [n for n, node in nodes.items() if not node.alive()]
        if down and require_running:
            raise ChaosError(
                f"lab {state.name} has nodes that are not running: {', '.join(down)} "
                f"(after a crashed chaos run, `lab chaos heal {state.name}` boots them again)"
            )
        racks = {n: node.spec.rack for n, node in nodes.items()}
        return cls(state, nodes, dict(state["network"]["nodes"]), racks)

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def labid(self) -> str:
        return self.state["labid"]

    def netns(self, node: str) -> str:
        return self.nodes[node].netns()

    # services
    def services(self, service: str | None = None, role: str | None = None) -> dict[str, dict]:
        return {
            sid: svc
            for sid, svc in self.state.get("services", {}).items()
            if (service is None or svc["service"] == service)
            and (role is None or svc["role"] == role)
        }

    def service_nodes(self, service: str, role: str | None = None) -> list[str]:
        return sorted({s["node"] for s in self.services(service, role).values()})

    def _svc(self, sid: str) -> tuple:
        svc = self.state["services"][sid]
        return self.nodes[svc["node"]], svc

    def service_running(self, sid: str) -> bool:
        node, svc = self._svc(sid)
        return deploy.service_running(node, svc)

    def kill_service(self, sid: str) -> str:
        """Kill the service at once; returns how (for the history)."""
        node, svc = self._svc(sid)
        return node.kill_service(svc["name"], svc)

    def start_service(self, sid: str) -> None:
        node, svc = self._svc(sid)
        if self.service_running(sid):
            return
        # a pod keeps a stopped service's container under its name: make room
        try:
            node.remove_service(svc["name"])
        except Exception:  # noqa: BLE001 - nothing to remove
            pass
        info = node.start_service(svc["name"], svc["argv"], svc.get("env"))
        with self._lock:
            svc.update(info)
            self.state.save()

    def _svc_cgroup(self, sid: str) -> Cgroup | None:
        node, svc = self._svc(sid)
        return node.service_cgroup(svc["name"])

    def pause_service(self, sid: str) -> str:
        """Freeze the service (its own cgroup where the node kind has one, else the node)."""
        cg = self._svc_cgroup(sid)
        if cg is not None:
            cg.freeze(True)
            return "freezer"
        self._svc(sid)[0].pause()
        return "node"

    def resume_service(self, sid: str) -> None:
        cg = self._svc_cgroup(sid)
        if cg is not None:
            if cg.exists():
                cg.freeze(False)
        else:
            self._svc(sid)[0].resume()

    # whole nodes
    def kill_node(self, name: str) -> None:
        node = self.nodes[name]
        node.resume()
        node.kill()

    def start_node(self, name: str) -> None:
        """Boot a killed node again: new init, its eth0 back in the rack, its services."""
        node = self.nodes[name]
        if node.alive():
            return
        node.start()
        node.attach_network()
        with self._lock:
            self.state["nodes"][name] = node.describe()
            self.state.save()
        mine = {sid: s for sid, s in self.services().items() if s["node"] == name}
        for service in START_ORDER:
            for sid, s in mine.items():
                if s["service"] == service:
                    self.start_service(sid)

    # the node's network stack (a netns from the host, a VM's guest), and its limits
    def net(self, node: str):
        """What lab.net.faults runs its tools with on ``node`` (see Node.net_exec)."""
        return self.nodes[node].net_exec

    def node_cgroup(self, name: str) -> Cgroup:
        return Cgroup(self.nodes[name].cgroup())

    def restore_limits(self, name: str) -> None:
        self.nodes[name].restore_limits()

    # healing
    def heal_everything(self) -> list[str]:
        """Undo every fault a nemesis can leave: partitions, fault lines, frozen
        services, squeezed limits, killed services and nodes. Idempotent."""
        done = []
        for name, node in self.nodes.items():
            if not node.alive():
                self.start_node(name)
                done.append(f"restarted node {name}")
            node.resume()
            net = node.net_exec
            if netfaults.blocked(net):
                done.append(f"partition rules removed on {name}")
            netfaults.unblock(net)
            if node.clear_packet_faults():
                done.append(f"packet faults removed from {name}")
            self.restore_limits(name)
        for sid in self.services():
            self.resume_service(sid)
            if not self.service_running(sid):
                self.start_service(sid)
                done.append(f"restarted {sid}")
        return done
