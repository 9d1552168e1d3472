"""The orchestrator's YARN deployer: config files in Hadoop's format and keys."""

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
