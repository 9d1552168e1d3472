"""The orchestrator's HDFS plan: XML site files with Hadoop keys, the rack table, roles."""

from __future__ import annotations

import pytest

from lab.orchestrator.services.hdfs import HdfsDeployer
from lab.services.hdfs.config import parse_rack_table, parse_site_xml

ADDR = {"n1": "10.1.1.2", "n2": "10.1.1.3", "n3": "10.1.2.2", "n4": "10.1.2.3"}
RACKS = {"n1": "r1", "n2": "r1", "n3": "r2", "n4": "r2"}


def test_plan_roles_files_and_settings():
    section = {
        "namenode": "n1",
        "datanodes": ["n2", "n3", "n4"],
        "secondarynamenode": "n4",
        "dfs.replication": 2,
        "dfs.blocksize": "32m",
        "dfs.permissions.enabled": False,
    }
    plan = HdfsDeployer().plan(section, ADDR, RACKS)
    assert [(p.role, p.node) for p in plan] == [
        ("namenode", "n1"),
        ("datanode", "n2"),
        ("datanode", "n3"),
        ("datanode", "n4"),
        ("secondarynamenode", "n4"),
    ]
    nn = plan[0]
    assert nn.argv[1:4] == ["-m", "lab.services.hdfs", "namenode"] and 9870 in nn.ports
    assert plan[1].ports == [9864, 9866] and plan[1].start_after == ["hdfs-namenode"]
    files = nn.files
    conf = next(k for k in files if k.endswith("/conf/hdfs-site.xml")).rsplit("/", 1)[0]
    core = parse_site_xml(files[f"{conf}/core-site.xml"])
    hdfs = parse_site_xml(files[f"{conf}/hdfs-site.xml"])
    assert core["fs.defaultFS"] == "hdfs://10.1.1.2:8020"
    assert hdfs["dfs.replication"] == "2" and hdfs["dfs.blocksize"] == "32m"
    assert hdfs["dfs.permissions.enabled"] == "false"
    assert hdfs["dfs.namenode.http-address"] == "10.1.1.2:9870"
    table = parse_rack_table(files[core["net.topology.table.file.name"]])
    assert table["10.1.2.3"] == "/r2" and table["n1"] == "/r1"


def test_unknown_node_is_refused():
    with pytest.raises(ValueError, match="n9"):
        HdfsDeployer().plan({"namenode": "n9", "datanodes": ["n2"]}, ADDR, RACKS)


def test_status_of_a_running_namenode(cluster, monkeypatch):
    from lab.orchestrator.services import hdfs as deployer_module
    from lab.orchestrator.services.base import ServiceProcess

    proc = ServiceProcess("hdfs", "namenode", "n1", [])
    monkeypatch.setattr(
        deployer_module, "NAMENODE_HTTP", cluster.nn_http
    )  # the test NameNode's port
    st = HdfsDeployer().status(proc, cluster.nn_ip)
    assert st["live_datanodes"] == 4 and st["safemode"] is False and st["dead_datanodes"] == 0
    assert "error" in HdfsDeployer().status(proc, "127.0.0.254")  # nothing there: no exception
