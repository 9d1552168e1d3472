"""A testinfra backend that runs each command through a node's own ``popen``, so
any node kind gets a testinfra Host from the interface in base.py alone. Kinds with
a transport testinfra knows (Docker, paramiko) override ``Node.testinfra_host``."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING, Any

from testinfra.backend.base import BaseBackend, CommandResult
from testinfra.host import Host

if TYPE_CHECKING:
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


def host_over_popen(node: Node) -> Host:
    backend = NodeBackend(node)
    host = Host(backend)
    backend.set_host(host)
    return host
