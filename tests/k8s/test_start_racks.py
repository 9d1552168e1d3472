"""start.py's racks for DataNodes pinned to no rack (the k8s/ base): the NameNode's
table gets, for each pod of the named StatefulSets, the zone of the node it landed
on. The API answers here are a dict standing in for the API server's JSON, so this
checks start.py's own logic (which objects it reads, how it waits, what it writes),
not a cluster: that runs only on one (docs/KUBERNETES.md)."""

from __future__ import annotations

import pytest

from lab.k8s import start
from lab.services.hadoop.conf import parse_rack_table


@pytest.fixture
def api(monkeypatch):
    """A cluster of three nodes in two zones; hdfs-datanode-2 is scheduled only on the
    second look, hdfs-datanode-3 never exists (replicas 3: it is not asked for)."""
    looks: dict[str, int] = {}
    objects = {
        "/apis/apps/v1/namespaces/lab/statefulsets/hdfs-datanode": {"spec": {"replicas": 3}},
        "/api/v1/namespaces/lab/pods/hdfs-datanode-0": {"spec": {"nodeName": "w1"}},
        "/api/v1/namespaces/lab/pods/hdfs-datanode-1": {"spec": {"nodeName": "w2"}},
        "/api/v1/nodes/w1": {"metadata": {"labels": {start.ZONE_LABEL: "eu-1a"}}},
        "/api/v1/nodes/w2": {"metadata": {"labels": {start.ZONE_LABEL: "eu-1b"}}},
        "/api/v1/nodes/w3": {"metadata": {"labels": {}}},
    }

    def api_get(path: str):
        looks[path] = looks.get(path, 0) + 1
        if path.endswith("/pods/hdfs-datanode-2"):
            return {"spec": {"nodeName": "w1"}} if looks[path] > 1 else {"spec": {}}
        return objects.get(path)

    monkeypatch.setattr(start, "api_get", api_get)
    monkeypatch.setattr(start.time, "sleep", lambda s: None)
    return looks


def test_each_datanode_gets_its_nodes_zone(api):
    racks = start.zone_racks(["hdfs-datanode", "gone"], "lab", start.ZONE_LABEL, wait=30)
    assert racks == {"hdfs-datanode-0": "eu-1a", "hdfs-datanode-1": "eu-1b",
                     "hdfs-datanode-2": "eu-1a"}  # fmt: skip
    assert api["/api/v1/namespaces/lab/pods/hdfs-datanode-2"] == 2  # waited for it
    assert "/api/v1/namespaces/lab/pods/hdfs-datanode-3" not in api


def test_a_pod_never_scheduled_stays_in_the_default_rack(monkeypatch, capsys):
    sts = {"spec": {"replicas": 1}}
    monkeypatch.setattr(start, "api_get", lambda p: sts if "statefulsets" in p else None)
    assert start.zone_racks(["hdfs-datanode"], "lab", start.ZONE_LABEL, wait=0) == {}
    assert "hdfs-datanode-0 not scheduled within 0 s: default rack" in capsys.readouterr().err


def test_the_namenodes_table_names_the_zones(api, tmp_path, monkeypatch):
    templates = tmp_path / "etc" / "hdfs"
    templates.mkdir(parents=True)
    (templates / "topology.table").write_text("hdfs-datanode-a-0 /zone-a\n")  # a pinned one
    monkeypatch.setattr(start, "TEMPLATES", tmp_path / "etc")
    monkeypatch.setattr(start, "DATA", tmp_path / "data")
    monkeypatch.setenv("RACKLAB_RACK_SETS", "hdfs-datanode")
    values = {"POD_NAME": "hdfs-namenode-0", "POD_IP": "10.0.0.5", "POD_NAMESPACE": "lab",
              "ID": "1", "RACK": "", "PEERS": ""}  # fmt: skip
    conf = start.write_config("hdfs", values)
    assert parse_rack_table((conf / "topology.table").read_text()) == {
        "hdfs-datanode-a-0": "/zone-a",
        "hdfs-datanode-0": "/eu-1a",
        "hdfs-datanode-1": "/eu-1b",
        "hdfs-datanode-2": "/eu-1a",
    }


def test_without_an_api_server_nothing_is_asked(monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert start.api_get("/api/v1/nodes/w1") is None
    assert start.zone_racks(["hdfs-datanode"], "lab", start.ZONE_LABEL, wait=30) == {}


def test_the_resourcemanagers_table_names_nodemanagers_by_their_dns_names(
    api, tmp_path, monkeypatch
):
    # NodeManagers register as <pod>.<headless Service>.<namespace>.svc (their
    # yarn.nodemanager.hostname): the table must name them the same way
    templates = tmp_path / "etc" / "yarn"
    templates.mkdir(parents=True)
    (templates / "topology.table").write_text("")
    monkeypatch.setattr(start, "TEMPLATES", tmp_path / "etc")
    monkeypatch.setattr(start, "DATA", tmp_path / "data")
    monkeypatch.setenv("RACKLAB_RACK_SETS", "hdfs-datanode")  # the fixture's StatefulSet
    monkeypatch.setenv("RACKLAB_RACK_SERVICE", "nms")
    values = {"POD_NAME": "yarn-resourcemanager-0", "POD_IP": "10.0.0.6",
              "POD_NAMESPACE": "lab", "ID": "1", "RACK": "", "PEERS": ""}  # fmt: skip
    conf = start.write_config("yarn", values)
    assert parse_rack_table((conf / "topology.table").read_text()) == {
        "hdfs-datanode-0.nms.lab.svc": "/eu-1a",
        "hdfs-datanode-1.nms.lab.svc": "/eu-1b",
        "hdfs-datanode-2.nms.lab.svc": "/eu-1a",
    }
