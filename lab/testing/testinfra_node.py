"""A testinfra host for every lab node, so a lab is checked with host.socket(...),
host.process, host.file as any machine would be.

Each node kind says how (``Node.testinfra_host`` in lab/backends/base.py): container
and pod nodes use testinfra's own Docker backend (pods: the infra container, whose
PID and network namespaces every service shares), VMs testinfra's paramiko backend
on the node's verified connection, other kinds ``NodeBackend``, which runs each
command through the node's own ``popen``.
"""

from __future__ import annotations

from testinfra.host import Host

from lab.backends.base import Node
from lab.backends.testinfra_backend import COMMAND_TIMEOUT, NodeBackend

__all__ = ["COMMAND_TIMEOUT", "NodeBackend", "host_for"]


def host_for(node: Node) -> Host:
    """The testinfra host of ``node``."""
    return node.testinfra_host()
