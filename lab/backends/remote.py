"""Nodes on another host: the node contract carried to the racklab agent over SSH.

A node of any kind on a lab's host is made there by that host's own backend (the
agent, lab/hosts/agentd.py); here it is a RemoteNode, whose every call goes to the
agent as one request and comes back as the host's node answered it. Callers see the
same contract as for a local node: racks, services and chaos are one code path.

What a node saves (``describe``) is the host's own description of it, plus where it
is: the host (as in the topology file) and the agent's Python there.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import signal as _signal
import subprocess
import sys

from lab.backends.base import Backend, ExecResult, Node, NodeError, NodeSpec, Stats


def spec_json(spec: NodeSpec) -> dict:
    d = dataclasses.asdict(spec)
    d["state_dir"] = str(spec.state_dir)
    return d


class RemoteNode(Node):
    def __init__(self, spec: NodeSpec, saved: dict):
        super().__init__(spec)
        self.saved = dict(saved)
        self.remote = self.saved["remote"]  # the host's own description of the node
        self.kind = self.remote.get("kind", spec.kind)

    def _agent(self):
        from lab.hosts.client import agent

        return agent(self.saved["host"], self.saved["agent_python"])

    def _call(self, method: str, *args, **kwargs):
        return self._agent().call(
            "node",
            spec=spec_json(self.spec),
            saved=self.remote,
            method=method,
            args=list(args),
            kwargs=kwargs,
        )

    @property
    def host(self) -> str:
        return self.saved["host"]["name"]

    # lifecycle
    def start(self) -> None:
        self._call("start")

    def stop(self) -> None:
        self._call("stop")

    def kill(self, sig: int = _signal.SIGKILL) -> None:
        self._call("kill", int(sig))

    def pause(self) -> None:
        self._call("pause")

    def resume(self) -> None:
        self._call("resume")

    def destroy(self) -> None:
        self._call("destroy")

    def alive(self) -> bool:
        return bool(self._call("alive"))

    # commands and files
    def _relay(self) -> list[str]:
        """A local command that runs what follows it inside this node (lab/hosts/relay.py)."""
        blob = {"host": self.saved["host"], "python": self.saved["agent_python"],
                "spec": spec_json(self.spec), "saved": self.remote}  # fmt: skip
        encoded = base64.b64encode(json.dumps(blob).encode()).decode()
        return [sys.executable, "-m", "lab.hosts.relay", encoded, "--"]

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        kwargs.pop("cgroup_leaf", None)  # the host's node puts it in its own shell leaf
        return subprocess.Popen([*self._relay(), *argv], **kwargs)

    def exec(
        self,
        argv: list[str],
        *,
        input: str | None = None,
        timeout: float | None = 60,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        r = self._call("exec", list(argv), input=input, timeout=timeout, env=env)
        return ExecResult(**r["fields"])

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self._call("put_file", path, data, mode)

    def get_file(self, path: str) -> bytes:
        try:
            return self._call("get_file", path)
        except NodeError as e:
            if "FileNotFoundError" in str(e) or "No such file" in str(e):
                raise FileNotFoundError(path) from None
            raise

    def logs(self) -> str:
        return self._call("logs")

    def command_prefix(self) -> list[str]:
        # the relay carries the terminal too (a pty on the host when this is a terminal)
        return self._relay()

    # services
    def start_service(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> dict:
        return self._call("start_service", name, argv, env)

    def stop_service(self, name: str, info: dict) -> None:
        self._call("stop_service", name, info)

    def service_running(self, name: str, info: dict) -> bool:
        return bool(self._call("service_running", name, info))

    def remove_service(self, name: str) -> None:
        self._call("remove_service", name)

    def kill_service(self, name: str, info: dict) -> str:
        return self._call("kill_service", name, info)

    def service_cgroup(self, name: str) -> _HostCgroup | None:
        # a handle on the host's cgroup of the service, where the host's node has one
        if self._call("service_cgroup", name, "exists") is None:
            return None
        return _HostCgroup(self, name)

    @property
    def python(self) -> str:
        cached = self.saved.get("python")
        if cached is None:
            cached = self.saved["python"] = self._call("python")
        return cached

    # where other layers plug in: on the host, through the agent
    def netns(self) -> str:
        return self._call("netns")

    def attach_network(self) -> None:
        self._call("attach_network")

    def net_exec(self, argv: list[str], timeout: float = 30) -> ExecResult:
        r = self._call("net_exec", list(argv), timeout)
        return ExecResult(**r["fields"])

    # the fault line runs on the node's host, beside its rack's router (netem there
    # where the host's kernel has it), and keeps its log there
    def start_packet_fault(self, fault, seed: int, log_path: str | None = None) -> dict:
        fields = fault if isinstance(fault, dict) else dataclasses.asdict(fault)
        info = self._call("start_packet_fault", fields, seed)
        # the host's process id only under "remote": a crashed run's cleanup here
        # must not take it for one of this machine's fault lines
        return {"method": info["method"], "remote": info}

    def heal_packet_fault(self, info: dict) -> None:
        self._call("heal_packet_fault", info["remote"])

    def clear_packet_faults(self) -> bool:
        return bool(self._call("clear_packet_faults"))

    def cgroup(self) -> str:
        return self._call("cgroup")

    def memory_used(self) -> int | None:
        return self._call("memory_used")

    def set_limits(self, cpus: float | None = None, memory: int | None = None) -> None:
        self._call("set_limits", cpus, memory)

    def restore_limits(self) -> None:
        self._call("restore_limits")

    def stats(self) -> Stats:
        r = self._call("stats")
        return Stats(**r["fields"])

    def describe(self) -> dict:
        return {**self.remote, "backend": "remote", "host": self.saved["host"],
                "agent_python": self.saved["agent_python"], "remote": self.remote}  # fmt: skip


class _HostCgroup:
    """A service's cgroup on the node's host, as chaos uses one (freeze and thaw it):
    each call goes to the host's agent (lab/hosts/agentd.py)."""

    def __init__(self, node: RemoteNode, service: str):
        self.node = node
        self.service = service

    def _do(self, op: str, *args):
        return self.node._call("service_cgroup", self.service, op, *args)

    def exists(self) -> bool:
        return bool(self._do("exists"))

    def freeze(self, frozen: bool = True, timeout: float = 5.0) -> bool:
        return bool(self._do("freeze", frozen, timeout))

    def frozen(self) -> bool:
        return bool(self._do("frozen"))


class RemoteBackend(Backend):
    """Makes nodes on one other host through its agent, all of a host's nodes in one
    request (the host's own backend starts them in parallel there), and finds nodes on
    other hosts again from saved state.

    ``host`` is the host's entry of the topology (as a dict) and ``agent_python`` the
    agent's Python there; both are needed only to make nodes (attach reads them from
    what each node saved)."""

    def __init__(self, host: dict | None = None, agent_python: str | None = None):
        self.host = host
        self.agent_python = agent_python

    def create(self, spec: NodeSpec) -> Node:
        return self.create_many([spec])[0]

    def create_many(self, specs: list[NodeSpec]) -> list[Node]:
        if self.host is None or self.agent_python is None:
            raise NodeError("nodes on other hosts are made through a host's agent")
        if not specs:
            return []
        from lab.hosts.client import agent

        made = agent(self.host, self.agent_python).call(
            "create", specs=[spec_json(s) for s in specs]
        )
        by_name = {s.name: s for s in specs}
        nodes = {
            r["name"]: RemoteNode(
                by_name[r["name"]],
                {"host": self.host, "remote": r, "agent_python": self.agent_python},
            )
            for r in made
        }
        return [nodes[s.name] for s in specs]

    def attach(self, spec: NodeSpec, saved: dict) -> RemoteNode:
        return RemoteNode(spec, saved)

    def cleanup(self, lab: str, labid: str) -> list[str]:
        return []  # each host's agent removes its own (lab/orchestrator/multihost.py)
