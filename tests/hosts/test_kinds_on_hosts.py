"""Container and pod nodes on other hosts (examples/multihost-kinds.yaml on two of the
simulated hosts, each running its own Docker engine): racklab's node image sent from
this machine into each host's engine, the nodes made there by the host's agent, used
from here with kazoo and the hdfs client, broken by a chaos run, and nothing of the
lab left in either engine after `lab down`. Slow: the image (about 650 MB) crosses
SSH once per host, and again whenever racklab's source changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import RUN, example_lab, lab_cli, lab_state, zk_round_trip
from .test_multihost import ssh

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

LAB = f"mhkinds{RUN}"


@pytest.fixture(scope="module")
def kinds_lab(sim, tmp_path_factory):
    with example_lab(sim, "multihost-kinds", LAB, tmp_path_factory) as (f, status):
        yield {"file": f, "status": status, "images": state()["images"]}


def state() -> dict:
    return lab_state(LAB)


def engine_names(sim, i: int) -> list[str]:
    """The containers of the lab in host i's Docker engine."""
    out = ssh(sim, i, f"docker ps -a --filter label=racklab.lab={LAB} --format '{{{{.Names}}}}'")
    return sorted(out.split())


def test_the_nodes_run_in_each_hosts_own_engine(kinds_lab, sim):
    kinds = {n["name"]: n["kind"] for n in kinds_lab["status"]["nodes"]}
    assert kinds == {"c1": "container", "n1": "process", "p1": "pod", "n2": "process"}
    sent = state()["images"]
    assert set(sent) == {"h1", "h2"} and len({s["image"] for s in sent.values()}) == 1
    assert engine_names(sim, 1) == [f"racklab-{LAB}-c1"]
    # a pod: its infra container and one container per service, joined to it
    assert f"racklab-{LAB}-p1" in engine_names(sim, 2) and len(engine_names(sim, 2)) == 3
    import docker

    here = docker.from_env().containers.list(all=True, filters={"label": f"racklab.lab={LAB}"})
    assert here == []  # nothing of the lab in this machine's engine


def test_services_on_container_and_pod_nodes_from_this_machine(kinds_lab):
    from hdfs import InsecureClient

    addr = kinds_lab["status"]["network"]["nodes"]
    zk_round_trip([addr[n] for n in ("c1", "p1", "n2")], "/kinds", b"container and pod")
    fs = InsecureClient(f"http://{addr['n1']}:9870", user="root")
    data = os.urandom(2 << 20)  # two blocks, each on two of the three DataNodes
    fs.write("/kinds.bin", data=data, overwrite=True)
    with fs.read("/kinds.bin") as r:
        assert r.read() == data
    for node in ("c1", "p1"):
        proc = lab_cli("exec", node, "--lab", LAB, "--", "hostname")
        assert (proc.returncode, proc.stdout) == (0, f"{node}\n")
        logs = lab_cli("logs", node, "zookeeper-server", "--lab", LAB, "-n", "2")
        assert logs.returncode == 0 and "zookeeper" in logs.stdout


def test_chaos_on_container_and_pod_nodes_of_other_hosts(kinds_lab):
    proc = lab_cli("chaos", "run", "--lab", LAB, "--workload", "zk-register", "--nemesis",
                   "kill,pause,delay,partition-rack", "--time", "50", "--interval", "5",
                   "--seed", "3", "--json")  # fmt: skip
    summary = json.loads(proc.stdout)
    assert proc.returncode == 0 and summary["valid"] is True, summary.get("lines", summary)
    assert summary["verdict"]["nemesis_errors"] == []
    events = [json.loads(line) for line in open(Path(summary["run_dir"]) / "history.jsonl")]
    started = {e["value"] for e in events if e["process"] == "nemesis" and e["f"] == "start"}
    assert started == {"kill", "pause", "delay", "partition-rack"}


def test_down_leaves_nothing_in_the_engines_and_the_image_is_sent_once(kinds_lab, sim):
    assert lab_cli("down", LAB).returncode == 0
    assert engine_names(sim, 1) == engine_names(sim, 2) == []
    proc = lab_cli("up", str(kinds_lab["file"]), timeout=1500)
    assert proc.returncode == 0, proc.stderr
    # the hosts' engines had the image: nothing sent (unless racklab's source changed
    # in between, in a checkout others are editing: the image's tag hashes it)
    for host, s in state()["images"].items():
        same = s["image"] == kinds_lab["images"][host]["image"]
        assert s["reused"] is same and (s["sent_bytes"] == 0) is same
    assert lab_cli("down", LAB).returncode == 0
    assert engine_names(sim, 1) == engine_names(sim, 2) == []
