"""The orchestrator's YARN deployer: config files in Hadoop's format and keys."""

import os
import subprocess
import sys

import pytest

from lab.orchestrator.deployers.yarn import YarnDeployer
from lab.services.hadoop.conf import read_site_xml
from lab.services.yarn.conf import Configuration
from lab.services.yarn.rm import build_scheduler

ADDR = {"n1": "10.61.1.10", "n2": "10.61.1.11", "n3": "10.61.2.10"}
RACKS = {"n1": "r1", "n2": "r1", "n3": "r2"}  # as topology files name them


def _conf(proc, tmp_path) -> Configuration:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for path, content in proc.files.items():
        (tmp_path / path.rsplit("/", 1)[1]).write_text(content)
    return Configuration.load(tmp_path)


def test_plan_renders_yarn_site_capacity_and_racks(tmp_path):
    section = {
        "resourcemanager": "n1",
        "nodemanagers": ["n2", "n3"],
        "yarn.nodemanager.resource.memory-mb": 2048,
        "yarn.scheduler.capacity.root.queues": "a,b",
        "yarn.scheduler.capacity.root.a.capacity": 70,
        "yarn.scheduler.capacity.root.b.capacity": 30,
        "mapreduce.map.memory.mb": 256,
    }
    plan = YarnDeployer().plan(section, ADDR, RACKS)
    assert [(p.role, p.node) for p in plan] == [
        ("resourcemanager", "n1"),
        ("nodemanager", "n2"),
        ("nodemanager", "n3"),
    ]
    rm, nm2 = plan[0], plan[1]
    assert rm.start_after == ["hdfs"] and 8088 in rm.ports
    assert rm.argv[1:4] == ["-m", "lab.services.yarn", "resourcemanager"]
    conf = _conf(nm2, tmp_path / "nm")
    assert conf.get("yarn.nodemanager.hostname") == "10.61.1.11"
    assert conf.get_int("yarn.nodemanager.resource.memory-mb") == 2048
    assert conf.get("yarn.resourcemanager.resource-tracker.address") == "10.61.1.10:8031"
    rmconf = _conf(rm, tmp_path / "rm")
    sched = build_scheduler(rmconf)
    assert {q.name: q.capacity for q in sched.queues.values()} == {"a": 70.0, "b": 30.0}
    table = next(v for k, v in rm.files.items() if k.endswith("topology.table"))
    assert "10.61.2.10 /r2" in table.splitlines()
    mapred = next(v for k, v in rm.files.items() if k.endswith("mapred-site.xml"))
    assert "mapreduce.map.memory.mb" in mapred
    site = read_site_xml(tmp_path / "rm" / "yarn-site.xml")
    assert "yarn.scheduler.capacity.root.queues" not in site


def test_plan_refuses_unknown_nodes():
    with pytest.raises(ValueError, match="not in the lab"):
        YarnDeployer().plan({"resourcemanager": "n9", "nodemanagers": ["n2"]}, ADDR, RACKS)


def test_bad_capacities_are_refused(tmp_path):
    conf = Configuration(
        {
            "yarn.scheduler.capacity.root.queues": "a,b",
            "yarn.scheduler.capacity.root.a.capacity": "70",
            "yarn.scheduler.capacity.root.b.capacity": "20",
        }
    )
    with pytest.raises(ValueError, match="add up to 90"):
        build_scheduler(conf)


def test_plan_names_the_hosts_clients_connect_to_and_binds_every_address(tmp_path):
    plan = YarnDeployer().plan({"resourcemanager": "n1", "nodemanagers": ["n2"]}, ADDR, RACKS)
    rm, nm = (_conf(p, tmp_path / p.role) for p in plan)
    for conf in (rm, nm):
        assert conf.get("yarn.resourcemanager.webapp.address") == "10.61.1.10:8088"
        assert conf.get("yarn.resourcemanager.address") == "10.61.1.10:8032"
    assert rm.get_bind_address(
        "yarn.resourcemanager.webapp.address", "yarn.resourcemanager.bind-host"
    ) == ("0.0.0.0", 8088)
    assert nm.get("yarn.nodemanager.webapp.address") == "10.61.1.11:8042"
    assert nm.get_bind_address("yarn.nodemanager.address", "yarn.nodemanager.bind-host") == (
        "0.0.0.0",
        8041,
    )


LAB = """
name: yarnconf
defaults: {kind: process, cpus: 0.5, memory: 512Mi}
racks:
  r1: {nodes: [n1, n2]}
services:
  hdfs: {namenode: n1, datanodes: [n2], dfs.replication: 1}
  yarn: {resourcemanager: n1, nodemanagers: [n2]}
"""

CLIENT = """
from yarn_api_client.resource_manager import ResourceManager
rm = ResourceManager(timeout=10)
print("SEEN", rm.service_uri.to_url(), rm.cluster_metrics().data["clusterMetrics"]["activeNodes"])
"""


def _active_nodes_seen_with_conf(conf_dir, run) -> tuple[str, str]:
    """yarn-api-client's ResourceManager() configured from HADOOP_CONF_DIR only."""
    env = {"PATH": os.environ["PATH"], "HADOOP_CONF_DIR": str(conf_dir)}
    r = run([sys.executable, "-c", CLIENT], env)
    assert r.returncode == 0, r.stderr
    [seen] = [line.split()[1:] for line in r.stdout.splitlines() if line.startswith("SEEN ")]
    return tuple(seen)


def test_a_client_configured_from_the_labs_yarn_site_reaches_the_rm(lab_up, tmp_path):
    """From the host and from another node (the NodeManager's), with nothing but the
    lab's own yarn-site.xml; and on the RM's node at its loopback address too."""
    from lab.backends.base import NODE_DATA_DIR

    state = lab_up(LAB)
    nodes = lab_up.nodes(state)
    rm_ip = state["network"]["nodes"]["n1"].split("/")[0]
    site = nodes["n1"].get_file(f"{NODE_DATA_DIR}/yarn/conf/yarn-site.xml")
    (tmp_path / "yarn-site.xml").write_bytes(site)

    def on_host(argv, env):
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

    assert _active_nodes_seen_with_conf(tmp_path, on_host) == (f"http://{rm_ip}:8088", "1")

    def on_nm_node(argv, env):
        return nodes["n2"].exec(argv, env=env)

    nm_conf = f"{NODE_DATA_DIR}/yarn/conf"
    assert _active_nodes_seen_with_conf(nm_conf, on_nm_node) == (f"http://{rm_ip}:8088", "1")
    # The bind-hosts: on the RM's node (the NameNode's too) its loopback address answers,
    # for the RM's web services and the NameNode's (dfs.namenode.http-bind-host)
    for url in ("http://127.0.0.1:8088/ws/v1/cluster/info", "http://127.0.0.1:9870/jmx"):
        code = f"import urllib.request as u; print(u.urlopen({url!r}, timeout=10).status)"
        local = nodes["n1"].exec([sys.executable, "-c", code])
        assert local.stdout.strip() == "200", (url, local.stderr)
