"""`lab k8s render FILE -o DIR`: a topology file as Kubernetes manifests.

- Racks become zones: each role of each service gets one StatefulSet per rack, pinned
  by node affinity to the nodes whose rack label (topology.kubernetes.io/zone by
  default, or a label of the user's own such as racklab.io/rack) has the rack's
  value (or the zone given for it), and spread over the hosts inside it. So
  broker.rack and HDFS's and YARN's rack tables name the topology's racks, and
  the placement of the file holds.
- Node limits become requests and limits: every service pod of a topology node
  may use the whole node (its limit), and requests the node's share (the node's
  size over the number of services on it), so what the scheduler reserves for a
  topology node is that node's size.
- Service settings become the ConfigMaps, in the real systems' formats and keys.
"""

from __future__ import annotations

from pathlib import Path

from lab.k8s.files import write_dir
from lab.k8s.manifests import IMAGE, ZONE_LABEL, Group, Layout, objects
from lab.topology import Topology

# role in the topology -> (Layout field, StatefulSet name prefix)
ROLES = {
    ("zookeeper", "nodes"): ("zookeeper", "zookeeper"),
    ("kafka", "nodes"): ("kafka", "kafka"),
    ("hdfs", "namenode"): ("namenode", "hdfs-namenode"),
    ("hdfs", "datanodes"): ("datanode", "hdfs-datanode"),
    ("yarn", "resourcemanager"): ("resourcemanager", "yarn-resourcemanager"),
    ("yarn", "nodemanagers"): ("nodemanager", "yarn-nodemanager"),
}


class RenderError(ValueError):
    """A topology that cannot be rendered as asked (one sentence)."""


def _share(topo: Topology) -> dict[str, int]:
    """node -> how many service pods it becomes (at least 1)."""
    return {n: max(1, len(s)) for n, s in topo.service_nodes().items()}


def layout_of(
    topo: Topology,
    rack_label: str = ZONE_LABEL,
    zones: dict[str, str] | None = None,
    namespace: str | None = None,
    image: str = IMAGE,
) -> Layout:
    zones = zones or {}
    unknown = sorted(set(zones) - set(topo.racks))
    if unknown:
        raise RenderError(f"--zone names rack {unknown[0]}, which is not in {topo.file}")
    layout = Layout(
        rack_label=rack_label,
        namespace=namespace or topo.name,
        image=image,
        settings={k: dict(v) for k, v in topo.services.items()},
    )
    share = _share(topo)
    for (service, role), (attr, prefix) in ROLES.items():
        section = topo.services.get(service)
        if not section or role not in section:
            continue
        members = section[role]
        members = [members] if isinstance(members, str) else list(members)
        groups = getattr(layout, attr)
        for rack, rack_nodes in topo.racks.items():
            here = [n for n in members if n in rack_nodes]
            if not here:
                continue
            defs = [topo.nodes[n] for n in here]
            cpus = max((d.cpus or 0 for d in defs), default=0) or None
            memory = max((d.memory or 0 for d in defs), default=0) or None
            groups.append(
                Group(
                    name=f"{prefix}-{rack}",
                    replicas=len(here),
                    rack=rack,
                    zone=zones.get(rack),
                    cpus=cpus,
                    memory=memory,
                    request_cpus=max((d.cpus or 0) / share[d.name] for d in defs) or None,
                    request_memory=int(max((d.memory or 0) / share[d.name] for d in defs)) or None,
                )
            )
    if layout.kafka and not layout.zookeeper:
        raise RenderError("services.kafka needs the lab's zookeeper service on Kubernetes too")
    return layout


def render(topo: Topology, out: Path, **kw) -> list[Path]:
    """Write the lab's manifests into ``out`` (one file per service and a
    kustomization.yaml); returns the files written."""
    layout = layout_of(topo, **kw)
    if not (layout.zookeeper or layout.kafka or layout.namenode or layout.resourcemanager):
        raise RenderError(f"{topo.file} has no services to render")
    how = f"lab k8s render {Path(topo.file).name}"
    return write_dir(objects(layout), out, how, layout.namespace)
