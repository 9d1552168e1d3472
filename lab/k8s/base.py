"""`python -m lab.k8s.base [K8S_DIR]`: write k8s/base, and the generated part of the
three-zone overlay, from the same builder as `lab k8s render`, so the committed
manifests and rendered labs cannot drift apart (a test checks that k8s/ holds
exactly what this writes)."""

from __future__ import annotations

import sys
from pathlib import Path

from lab.k8s.files import HEADER, dump_all, write_dir
from lab.k8s.manifests import Group, base_layout, hdfs_config, objects, rack_map, statefulset

HOW = "python -m lab.k8s.base k8s"
# The three-zone overlay's zones: rename them to your cluster's (kubectl get nodes
# -L topology.kubernetes.io/zone), or render your own topology with `lab k8s render`.
ZONES = ("zone-a", "zone-b", "zone-c")


def three_zone_datanodes() -> list[dict]:
    """One DataNode StatefulSet pinned to each zone, and the NameNode's rack table
    naming their pods: HDFS places replicas by rack, and its racks are these zones."""
    layout = base_layout()
    base_dn = layout.datanode[0]
    groups = [
        Group(f"hdfs-datanode-{z.rsplit('-', 1)[-1]}", 1, z, base_dn.cpus, base_dn.memory)
        for z in ZONES
    ]
    pods = [f"{g.name}-0" for g in groups]
    sets = [
        statefulset("hdfs", "datanode", g, pods, layout, "hdfs-datanode-config") for g in groups
    ]
    nn = hdfs_config(layout.settings["hdfs"], "namenode", "hdfs-namenode-0", rack_map(groups))
    table = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "hdfs-namenode-config"},
        "data": {"topology.table": nn["topology.table"]},
    }
    return [*sets, table]  # the table goes in as a patch of the base's ConfigMap


def write_all(k8s: Path) -> list[Path]:
    layout = base_layout()
    written = write_dir(objects(layout), k8s / "base", HOW, layout.namespace)
    overlay = k8s / "overlays" / "three-zones"
    overlay.mkdir(parents=True, exist_ok=True)
    *sets, table = three_zone_datanodes()
    (overlay / "datanodes.yaml").write_text(HEADER.format(how=HOW) + dump_all(sets))
    (overlay / "namenode-racks.yaml").write_text(HEADER.format(how=HOW) + dump_all([table]))
    return [*written, overlay / "datanodes.yaml", overlay / "namenode-racks.yaml"]


if __name__ == "__main__":
    for p in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "k8s")):
        print(p)
