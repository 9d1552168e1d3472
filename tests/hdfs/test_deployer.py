"""The orchestrator's HDFS plan: XML site files with Hadoop keys, the rack table, roles."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

import pytest

from lab.backends.base import NODE_DATA_DIR
from lab.orchestrator.deployers.hdfs import HdfsDeployer
from lab.services.hadoop.conf import parse_rack_table, parse_site_xml
from lab.services.hadoop.webclient import WebHdfsClient
from lab.services.ports import free_port

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
    from lab.orchestrator.deployers import hdfs as deployer_module
    from lab.orchestrator.deployers.base import ServiceProcess

    proc = ServiceProcess("hdfs", "namenode", "n1", [])
    monkeypatch.setattr(
        deployer_module, "NAMENODE_HTTP", cluster.nn_http
    )  # the test NameNode's port
    st = HdfsDeployer().status(proc, cluster.nn_ip)
    assert st["live_datanodes"] == 4 and st["safemode"] is False and st["dead_datanodes"] == 0
    assert "error" in HdfsDeployer().status(proc, "127.0.0.254")  # nothing there: no exception


def test_rendered_files_run_real_daemons(tmp_path):
    """The deployer's XML and rack table, moved under a temp dir and onto free loopback
    ports (a test may not take 9870 or 8020), start a NameNode and DataNodes that find
    their racks through the table file."""
    net = f"127.{random.randint(20, 250)}.{random.randint(1, 250)}"
    addr = {"n1": f"{net}.1", "n2": f"{net}.2", "n3": f"{net}.3"}
    racks = {"n1": "r1", "n2": "r1", "n3": "r2"}
    plan = HdfsDeployer().plan(
        {
            "namenode": "n1",
            "datanodes": ["n2", "n3"],
            "dfs.replication": 2,
            "dfs.heartbeat.interval": "1s",
        },
        addr,
        racks,
    )
    http, rpc = free_port(addr["n1"]), free_port(addr["n1"])
    procs = []
    try:
        for p in plan:
            root = tmp_path / p.node
            for path, text in p.files.items():
                text = text.replace(NODE_DATA_DIR, str(root))
                text = text.replace(":9870", f":{http}").replace(":8020", f":{rpc}")
                text = text.replace("0.0.0.0:9864", f"{addr[p.node]}:0").replace(
                    "0.0.0.0:9866", f"{addr[p.node]}:0"
                )
                target = root / path.removeprefix(NODE_DATA_DIR + "/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            conf_dir = root / p.argv[-1].removeprefix(NODE_DATA_DIR + "/")
            proc = subprocess.Popen(
                [sys.executable, *p.argv[1:-1], str(conf_dir)],
                stdout=subprocess.PIPE,
                stderr=open(tmp_path / f"{p.role}-{p.node}.log", "wb"),
            )
            procs.append(proc)
            line = proc.stdout.readline()
            assert line.startswith(b"READY "), (tmp_path / f"{p.role}-{p.node}.log").read_text()
            ready = json.loads(line[6:])
        client = WebHdfsClient(f"{addr['n1']}:{http}", user="root")
        end = time.monotonic() + 30
        while time.monotonic() < end and client.jmx("FSNamesystem")["NumLiveDataNodes"] < 2:
            time.sleep(0.2)
        live = json.loads(client.jmx("NameNodeInfo")["LiveNodes"])
        assert sorted(n["location"] for n in live.values()) == ["/r1", "/r2"]
        while time.monotonic() < end and client.jmx("NameNodeInfo")["Safemode"]:
            time.sleep(0.2)
        client.write("/deployed", b"from the rendered configuration")
        assert b"".join(client.read("/deployed")) == b"from the rendered configuration"
        assert ready["role"] == "datanode"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
            proc.stdout.close()
