"""k8s/: kustomize builds every overlay, every object passes kubernetes-validate's
strict check for Kubernetes 1.28 to 1.35 (the schemas ship with the package, offline),
and k8s/ holds exactly what racklab's builder writes."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lab.k8s.base import write_all

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ["base", "overlays/one-node", "overlays/three-zones"]
VERSIONS = [f"1.{m}" for m in range(28, 36)]


def kustomize(path: Path) -> list[dict]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (its `kubectl kustomize` builds the overlays)")
    proc = subprocess.run(
        ["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def strict_errors(objs: list[dict]) -> list[str]:
    import kubernetes_validate

    errors = []
    for version in VERSIONS:
        for obj in objs:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                name = f"{obj['kind']}/{obj['metadata']['name']}"
                errors.append(f"{version} {name}: {str(e).splitlines()[0]}")
    return errors


@pytest.fixture(scope="module")
def built() -> dict[str, list[dict]]:
    return {o: kustomize(K8S / o) for o in OVERLAYS}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_passes_strict_validation(built, overlay):
    objs = built[overlay]
    assert len(objs) >= 30
    assert strict_errors(objs) == []


def test_strict_validation_catches_a_wrong_field(built):
    # the check above can fail: a misspelt field in a StatefulSet is reported
    sts = next(o for o in built["base"] if o["kind"] == "StatefulSet")
    bad = yaml.safe_load(yaml.safe_dump(sts))
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    assert any("readinesProbe" in e for e in strict_errors([bad]))


def test_k8s_folder_is_what_the_builder_writes(tmp_path):
    written = write_all(tmp_path)
    for path in written:
        rel = path.relative_to(tmp_path)
        assert (K8S / rel).is_file(), f"k8s/{rel} missing: run python -m lab.k8s.base k8s"
        assert filecmp.cmp(path, K8S / rel, shallow=False), (
            f"k8s/{rel} is out of date: run python -m lab.k8s.base k8s"
        )


def _by(objs, kind, name):
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def test_zookeeper_as_in_the_statefulset_tutorial(built):
    objs = built["base"]
    sts = _by(objs, "StatefulSet", "zookeeper")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["serviceName"] == "zookeeper-hs"
    hs = _by(objs, "Service", "zookeeper-hs")["spec"]
    assert hs["clusterIP"] == "None" and hs["publishNotReadyAddresses"] is True
    assert {p["port"] for p in hs["ports"]} == {2181, 2888, 3888}
    assert _by(objs, "PodDisruptionBudget", "zookeeper")["spec"]["maxUnavailable"] == 1
    env = {e["name"]: e for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["RACKLAB_PEERS"]["value"] == "zookeeper-0,zookeeper-1,zookeeper-2"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    anti = sts["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    zoo = _by(objs, "ConfigMap", "zookeeper-config")["data"]["zoo.cfg"]
    assert "tickTime=2000" in zoo and "dataDir=/srv/node/zookeeper" in zoo


def test_overlays_change_what_they_say(built):
    one = built["overlays/one-node"]
    assert {
        o["metadata"]["name"]: o["spec"]["replicas"] for o in one if o["kind"] == "StatefulSet"
    } == {
        n: 1
        for n in (
            "zookeeper",
            "kafka",
            "hdfs-namenode",
            "hdfs-datanode",
            "yarn-resourcemanager",
            "yarn-nodemanager",
        )
    }
    three = built["overlays/three-zones"]
    dns = [o for o in three if o["kind"] == "StatefulSet" and "datanode" in o["metadata"]["name"]]
    assert sorted(o["metadata"]["name"] for o in dns) == [
        "hdfs-datanode-a",
        "hdfs-datanode-b",
        "hdfs-datanode-c",
    ]
    table = _by(three, "ConfigMap", "hdfs-namenode-config")["data"]["topology.table"]
    assert table.split("\n")[:3] == [
        "hdfs-datanode-a-0 /zone-a",
        "hdfs-datanode-b-0 /zone-b",
        "hdfs-datanode-c-0 /zone-c",
    ]
    zk = _by(three, "StatefulSet", "zookeeper")["spec"]["template"]["spec"]
    zone = [c for c in zk["topologySpreadConstraints"] if "zone" in c["topologyKey"]]
    assert zone[0]["whenUnsatisfiable"] == "DoNotSchedule"


def test_unpinned_nodemanagers_get_their_zone_from_the_resourcemanager(built):
    """The base's NodeManagers are pinned to no rack: the RM's start.py writes their
    zones, by the DNS names they register with (their NodeId's host)."""
    base = built["base"]
    rm = _by(base, "StatefulSet", "yarn-resourcemanager")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in rm["containers"][0]["env"]}
    assert env["RACKLAB_RACK_SETS"] == "yarn-nodemanager"
    assert env["RACKLAB_RACK_SERVICE"] == "yarn-nodemanager"
    nm = _by(base, "StatefulSet", "yarn-nodemanager")["spec"]["template"]["spec"]
    nm_env = {e["name"] for e in nm["containers"][0]["env"]}
    assert "RACKLAB_RACK_SETS" not in nm_env
    site = _by(base, "ConfigMap", "yarn-nodemanager-config")["data"]["yarn-site.xml"]
    assert "${POD_NAME}.yarn-nodemanager.${POD_NAMESPACE}.svc" in site
