"""Talking to the agents: requests to ``python -m lab.hosts.agentd`` on each host over
the host's one SSH connection (lab/hosts/ssh.py), a JSON line each way.

Each agent process answers one request at a time; calls from several threads at once
(nodes deployed side by side) each take an idle channel or open one more, all over the
same connection. Connections and channels last for the command: ``close_all`` at exit.
"""

from __future__ import annotations

import atexit
import json
import shlex
import threading

import paramiko

from lab.backends.base import NodeError
from lab.hosts.agentd import decode, encode
from lab.hosts.ssh import Host, HostError, connect
from lab.topology.hosts import HostDef


class AgentError(NodeError):
    """What an agent answered when an operation failed on its host."""


class _Channel:
    def __init__(self, host: Host, python: str):
        cmd = shlex.join([python, "-m", "lab.hosts.agentd"])
        if not host.is_root:
            cmd = "sudo -n -- " + cmd
        transport = host.client.get_transport()
        if transport is None or not transport.is_active():
            raise HostError(host.spec, "the SSH connection was lost")
        self.chan = transport.open_session()
        self.chan.exec_command(cmd)
        self.rfile = self.chan.makefile("r")
        self.wfile = self.chan.makefile_stdin("w")

    def call(self, request: dict) -> dict:
        self.wfile.write(json.dumps(request) + "\n")
        self.wfile.flush()
        line = self.rfile.readline()
        if not line:
            err = self.chan.recv_stderr(4000).decode(errors="replace").strip().splitlines()
            raise RuntimeError(err[-1] if err else "the agent closed its channel")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.chan.close()
        except (OSError, paramiko.SSHException):
            pass


class Agent:
    """The agent on one host."""

    def __init__(self, spec: HostDef, python: str, host: Host | None = None):
        self.spec = spec
        self.python = python
        self.host = host or connect(spec)
        self._idle: list[_Channel] = []
        self._all: list[_Channel] = []
        self._lock = threading.Lock()

    def call(self, op: str, **args):
        with self._lock:
            chan = self._idle.pop() if self._idle else None
        if chan is None:
            chan = _Channel(self.host, self.python)
            with self._lock:
                self._all.append(chan)
        try:
            reply = chan.call({"op": op, **encode(args)})
        except (OSError, paramiko.SSHException, RuntimeError, ValueError) as e:
            chan.close()
            raise HostError(self.spec, f"the racklab agent did not answer: {e}") from None
        with self._lock:
            self._idle.append(chan)
        if not reply.get("ok"):
            raise AgentError(f"on host {self.spec.name}: {reply.get('error')}")
        return decode(reply["result"])

    def close(self) -> None:
        for c in self._all:
            c.close()
        self.host.close()


_agents: dict[str, Agent] = {}
_agents_lock = threading.Lock()


def agent(spec: HostDef | dict, python: str, host: Host | None = None) -> Agent:
    """The agent of this host for this command: connected once, on first use, or over
    ``host``, a connection the command has already made (lab up's preflight)."""
    if isinstance(spec, dict):
        spec = HostDef(**spec)
    with _agents_lock:
        a = _agents.get(spec.name)
        if a is None or a.python != python:
            a = _agents[spec.name] = Agent(spec, python, host)
        return a


def close_all() -> None:
    with _agents_lock:
        for a in _agents.values():
            a.close()
        _agents.clear()


atexit.register(close_all)
