"""A testinfra host for every lab node, so a lab is checked with host.socket(...),
host.process, host.file as any machine would be.

Container and pod nodes use testinfra's own Docker backend (pods: the infra
container, whose PID and network namespaces every service shares). Other kinds
(namespace nodes, later VMs) get ``NodeBackend``, which runs each command through
the node's own ``popen`` and so only needs the interface in lab/backends/base.py.
"""

from __future__ import annotations

import subprocess
from typing import Any

import testinfra
from testinfra.backend.base import BaseBackend, CommandResult
from testinfra.host import Host

from lab.backends.base import Node

COMMAND_TIMEOUT = 120  # seconds; a check that hangs must fail, not stall the suite


class NodeBackend(BaseBackend):
    """testinfra backend that runs commands inside a racklab node via Node.popen."""

    NAME = "racklab"

    def __init__(self, node: Node, *args: Any, **kwargs: Any):
        self.node = node
        super().__init__(node.name, *args, **kwargs)

    def run(self, command: str, *args: str, **kwargs: Any) -> CommandResult:
        cmd = self.get_command(command, *args)
        proc = self.node.popen(
            ["/bin/sh", "-c", cmd],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out, err = proc.communicate(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += f"\ntimed out after {COMMAND_TIMEOUT}s".encode()
            return self.result(124, self.encode(cmd), out, err)
        return self.result(proc.returncode, self.encode(cmd), out, err)


def host_for(node: Node) -> Host:
    """The testinfra host of ``node``."""
    if node.kind in ("container", "pod"):
        target = node._exec_target()  # type: ignore[attr-defined]
        return testinfra.get_host(f"docker://{target}")
    if node.kind == "vm":  # testinfra's own paramiko backend, on the node's verified connection
        return node.testinfra_host()  # type: ignore[attr-defined]
    backend = NodeBackend(node)
    host = Host(backend)
    backend.set_host(host)
    return host
