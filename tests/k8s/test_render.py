"""`lab k8s render FILE -o DIR` as a user runs it: the files it writes build with
kubectl kustomize and pass kubernetes-validate's strict check for 1.28 to 1.35; racks
become zone-pinned StatefulSets, node limits requests and limits, settings ConfigMaps."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.k8s.test_manifests import ROOT, kustomize, strict_errors

QUICKSTART = ROOT / "examples" / "quickstart.yaml"


def lab(*args):
    return subprocess.run(
        [sys.executable, "-m", "lab", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    out = tmp_path_factory.mktemp("render") / "quickstart"
    proc = lab("k8s", "render", str(QUICKSTART), "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    files = json.loads(proc.stdout)["files"]
    assert {p.rsplit("/", 1)[-1] for p in files} >= {
        "zookeeper.yaml",
        "kafka.yaml",
        "hdfs.yaml",
        "yarn.yaml",
        "kustomization.yaml",
    }
    return kustomize(out)


def _get(objs, kind, name):
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def test_rendered_files_pass_strict_validation(quickstart):
    assert strict_errors(quickstart) == []
    # everything namespaced lands in the lab's own namespace
    assert {o["metadata"].get("namespace") for o in quickstart if o["kind"] == "StatefulSet"} == {
        "quickstart"
    }


def test_racks_become_zone_pinned_statefulsets(quickstart):
    sets = {o["metadata"]["name"]: o for o in quickstart if o["kind"] == "StatefulSet"}
    # quickstart: zookeeper on n1 (r1), n4 n5 (r2); kafka n1 n2 (r1), n4 (r2)
    assert {
        n: s["spec"]["replicas"] for n, s in sets.items() if n.startswith(("zoo", "kafka"))
    } == {
        "zookeeper-r1": 1,
        "zookeeper-r2": 2,
        "kafka-r1": 2,
        "kafka-r2": 1,
    }
    spec = sets["kafka-r2"]["spec"]["template"]["spec"]
    term = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    expr = term["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert expr == {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["r2"]}
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env["RACKLAB_RACK"] == "r2"  # broker.rack
    # one ensemble across both racks' StatefulSets: myid from the place in this list
    zk_env = {
        e["name"]: e.get("value")
        for e in sets["zookeeper-r2"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert zk_env["RACKLAB_PEERS"] == "zookeeper-r1-0,zookeeper-r2-0,zookeeper-r2-1"
    table = _get(quickstart, "ConfigMap", "hdfs-namenode-config")["data"]["topology.table"]
    assert "hdfs-datanode-r1-0 /r1" in table and "hdfs-datanode-r2-1 /r2" in table
    # NodeManagers register by their DNS name (their NodeId's host), and the RM's
    # table names them so: a table of pod names or pod IPs would match none of them
    nm_sts = [n for n in sets if n.startswith("yarn-nodemanager")]
    assert nm_sts
    nm_site = _get(quickstart, "ConfigMap", "yarn-nodemanager-config")["data"]["yarn-site.xml"]
    assert "${POD_NAME}.yarn-nodemanager.${POD_NAMESPACE}.svc" in nm_site
    rm_table = _get(quickstart, "ConfigMap", "yarn-resourcemanager-config")["data"]
    rows = rm_table["topology.table"].split("\n")
    for name in nm_sts:
        rack = name.rsplit("-", 1)[-1]
        assert f"{name}-0.yarn-nodemanager.${{POD_NAMESPACE}}.svc /{rack}" in rows


def test_node_limits_become_requests_and_limits(quickstart):
    # n1 and n2 (cpus 0.5, 512Mi) each hold three services: each pod may use the whole
    # node and the scheduler reserves a third of it
    sts = _get(quickstart, "StatefulSet", "kafka-r1")
    res = sts["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res == {
        "limits": {"cpu": "500m", "memory": "512Mi"},
        "requests": {"cpu": "167m", "memory": "171Mi"},
    }


def test_settings_become_configmaps(quickstart):
    props = _get(quickstart, "ConfigMap", "kafka-config")["data"]["server.properties"]
    assert "min.insync.replicas=2" in props and "default.replication.factor=3" in props
    site = _get(quickstart, "ConfigMap", "hdfs-namenode-config")["data"]["hdfs-site.xml"]
    assert "<name>dfs.blocksize</name>" in site and "<value>1m</value>" in site
    assert "tickTime=2000" in _get(quickstart, "ConfigMap", "zookeeper-config")["data"]["zoo.cfg"]


def test_rack_label_and_zone_names(tmp_path):
    out = tmp_path / "labelled"
    proc = lab(
        "k8s", "render", str(QUICKSTART), "-o", str(out),
        "--rack-label", "racklab.io/rack", "--zone", "r1=eu-1a", "--namespace", "demo",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    objs = kustomize(out)
    spec = _get(objs, "StatefulSet", "zookeeper-r1")["spec"]["template"]["spec"]
    term = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchExpressions"][0] == {
        "key": "racklab.io/rack",
        "operator": "In",
        "values": ["eu-1a"],
    }
    assert _get(objs, "StatefulSet", "zookeeper-r1")["metadata"]["namespace"] == "demo"


def test_mistakes_are_one_sentence(tmp_path):
    proc = lab("k8s", "render", str(QUICKSTART), "-o", str(tmp_path / "x"), "--zone", "r9=z")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: --zone names rack r9, which is not in {QUICKSTART}"
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nracks:\n  r1: {nodes: [n1]}\nnodes:\n  n1: {memory: lots}\n")
    proc = lab("k8s", "render", str(bad), "-o", str(tmp_path / "y"))
    assert proc.returncode == 2
    assert "bad.yaml:5: nodes.n1.memory" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "y").exists()
