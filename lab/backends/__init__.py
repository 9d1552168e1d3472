"""Node backends, one module per node kind, all behind lab.backends.base."""

from __future__ import annotations

import importlib

from .base import Backend, ExecResult, Node, NodeSpec, Stats

# kind -> (module, class); imported only when a lab uses that kind
_BACKENDS = {
    "process": ("lab.backends.process", "ProcessBackend"),
    "container": ("lab.backends.container", "ContainerBackend"),
    "pod": ("lab.backends.pod", "PodBackend"),
    "vm": ("lab.backends.vm", "VMBackend"),
    "k8s": ("lab.backends.k8s", "K8sBackend"),
    # nodes on another host of the lab, reached through its agent (lab/hosts)
    "remote": ("lab.backends.remote", "RemoteBackend"),
    # vm nodes that terraform made (a file with `terraform: DIR`): found, not made
    "vm-terraform": ("lab.backends.vm.terraform", "TerraformVMBackend"),
}


class BackendUnavailable(RuntimeError):
    pass


def get_backend(kind: str, **options) -> Backend:
    """The backend of ``kind``; ``options`` go to its constructor (e.g. ``image=`` for
    container and pod nodes, the host and agent for remote ones)."""
    module, cls = _BACKENDS[kind]
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            raise BackendUnavailable(
                f"node kind {kind!r} is not available in this racklab yet"
            ) from None
        raise
    return getattr(mod, cls)(**options)


def backend_class(kind: str) -> type[Backend]:
    """The class of ``kind``'s backend, for what it declares (host_image, host_packages)
    without making one."""
    module, cls = _BACKENDS[kind]
    return getattr(importlib.import_module(module), cls)


def kinds() -> list[str]:
    return list(_BACKENDS)


__all__ = [
    "Backend",
    "BackendUnavailable",
    "ExecResult",
    "Node",
    "NodeSpec",
    "Stats",
    "get_backend",
    "kinds",
]
