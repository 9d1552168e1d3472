"""The `k8s` node kind: one Kubernetes Pod per node.

With a kubeconfig (the topology's `k8s: {kubeconfig: ...}`, or RACKLAB_KUBECONFIG),
the pods go to that cluster through the official `kubernetes` client
(lab/backends/k8s_cluster.py); without one, the same Pod objects run on this machine
through `podman kube play` (lab/backends/k8s_local.py). lab/backends/k8s_pod.py
builds the one Pod object both get.
"""

from __future__ import annotations

import os

from lab.backends.base import Backend, Node, NodeSpec


def settings(spec: NodeSpec) -> dict:
    """The lab's k8s settings (kubeconfig, context, namespace); RACKLAB_KUBECONFIG
    stands in for a kubeconfig the file does not name."""
    given = dict(spec.extra.get("k8s") or {})
    if not given.get("kubeconfig") and os.environ.get("RACKLAB_KUBECONFIG"):
        given["kubeconfig"] = os.environ["RACKLAB_KUBECONFIG"]
    return given


class K8sBackend(Backend):
    """Sends each node to the engine its settings name: a cluster, or podman."""

    kind = "k8s"

    def __init__(self):
        self._engines: dict[str, Backend] = {}

    def _engine(self, spec: NodeSpec) -> Backend:
        conf = settings(spec)
        key = "cluster" if conf.get("kubeconfig") else conf.get("network") or "host"
        if key not in self._engines:
            if key == "cluster":
                from lab.backends.k8s_cluster import ClusterBackend

                self._engines[key] = ClusterBackend(conf)
            else:
                from lab.backends.k8s_local import PodmanBackend

                self._engines[key] = PodmanBackend(network=key)
        return self._engines[key]

    def rack_network(self, specs: list[NodeSpec]):
        """The rack network as an overlay the pods carry (k8s_overlay.Overlay), where
        racklab's bridges cannot reach them (a cluster) or the file asks for it; None:
        the pods are plugged into racklab's router on this machine like every kind."""
        engines = {id(self._engine(s)): self._engine(s) for s in specs}
        if len(engines) != 1:
            return None
        engine = next(iter(engines.values()))
        return getattr(engine, "rack_network", lambda specs: None)(specs)

    def prepare(self, specs: list[NodeSpec], progress=lambda msg: None) -> None:
        for engine in {id(self._engine(s)): self._engine(s) for s in specs}.values():
            engine.prepare([s for s in specs if self._engine(s) is engine], progress)

    def create(self, spec: NodeSpec) -> Node:
        return self._engine(spec).create(spec)

    def attach(self, spec: NodeSpec, saved: dict) -> Node:
        return self._engine(spec).attach(spec, saved)

    def cleanup(self, lab: str, labid: str) -> list[str]:
        # podman's leftovers are found by the lab's label; a cluster's namespace through
        # the settings its backend left in the lab's state dir (the kubeconfig's path)
        from lab.backends.k8s_cluster import cleanup_lab
        from lab.backends.k8s_local import PodmanBackend

        return PodmanBackend().cleanup(lab, labid) + cleanup_lab(lab)

    def labs(self) -> set[str]:
        """Labs with pods in podman (they outlive a lost state dir), for `lab clean --all`."""
        from lab.backends import k8s_podman

        if k8s_podman.available():
            return set()
        return k8s_podman.pod_labels(k8s_podman.LABEL_LAB)
