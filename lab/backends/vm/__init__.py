"""The `vm` node: a libvirt domain booted from racklab's VM image, driven over SSH.

One domain per node (``racklab-<lab>-<node>``), booted straight into the image's
kernel with the node's address on the kernel command line (domain.py), under KVM
where it really works and TCG emulation elsewhere (libvirt.py, which also holds the
connection). Commands and files go over SSH with paramiko, with a key pair per lab
and a host key per node made by racklab (ssh.py). The node (node.py) and the backend
that makes, finds and cleans up nodes (backend.py) are built on these.

Networking: libvirt makes the tap on the host (``rl<labid>v<hash>``); the node's
``attach_network`` moves it into the router namespace onto the rack bridge
(fabric.attach_tap), where it is renamed after the node like the router-side end of
a namespace node's veth. A VM has no network namespace on the host, so ``netns()``
refuses.
"""

from __future__ import annotations

from .backend import DEFAULT_MEMORY, DEFAULT_VCPUS, VMBackend, labs_with_domains
from .domain import domain_name, kernel_ip_arg, mac_address, tap_name
from .libvirt import VMError, accelerator, connect, probe_accelerator, probe_kvm_boot
from .node import GUEST_PYTHON, VMNode
from .ssh import SSHProcess, ensure_lab_key

__all__ = [
    "DEFAULT_MEMORY",
    "DEFAULT_VCPUS",
    "GUEST_PYTHON",
    "SSHProcess",
    "VMBackend",
    "VMError",
    "VMNode",
    "accelerator",
    "connect",
    "domain_name",
    "ensure_lab_key",
    "kernel_ip_arg",
    "labs_with_domains",
    "mac_address",
    "probe_accelerator",
    "probe_kvm_boot",
    "tap_name",
]
