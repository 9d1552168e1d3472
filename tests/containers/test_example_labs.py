"""The example labs of other kinds, as a new user runs them: examples/containers.yaml,
examples/pods.yaml and examples/mixed.yaml without its VM (the full mixed.yaml and
vms.yaml boot VMs: tests/vm/test_example_vm_labs.py, slow) brought up with `lab up`, all four services used from the host
with the unmodified clients (kazoo across servers, kafka-python acks=all and a group,
the `hdfs` package, a YARN wordcount equal to a local count), YARN containers in
cgroups of their own under the node's cgroup with a container over its memory killed
with YARN's diagnostic, and `lab down` leaving nothing behind."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest
import requests
import yaml

from lab import cgroups
from lab.demos import trial
from lab.orchestrator.state import State
from lab.services.yarn import cli_support
from tests.integration.leftovers import leftovers
from tests.yarn.test_nodemanager import GROW

# prints the container's cgroup (as /proc/self/cgroup names it) and the memory limit
# the kernel holds for it, read through the node's own view of its cgroups
SHOW_CGROUP = r"""{{PYTHON}} -c '
import glob, os
cid = os.environ["CONTAINER_ID"]
lines = open("/proc/self/cgroup").read().splitlines()
print(next(line.split(":", 2)[2] for line in lines if line.split(":")[1] in ("memory", "")))
for name in ("memory.limit_in_bytes", "memory.max"):
    for f in glob.glob(f"/sys/fs/cgroup/**/{cid}/{name}", recursive=True):
        print(open(f).read().strip())
'"""

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def lab_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab", *args], capture_output=True, text=True, timeout=600
    )


def run_app(rm: str, command: str, memory: int) -> tuple[dict, str, dict]:
    """Submit ``command`` as an application master through the RM's REST API; wait
    for it to end. Returns the app, its container's stdout and the NM's record of it."""
    new = requests.post(rm + "/ws/v1/cluster/apps/new-application", timeout=10).json()
    aid = new["application-id"]
    body = {"application-id": aid, "application-name": "cgroup-check", "queue": "default",
            "am-container-spec": {"commands": {"command": command}}, "max-app-attempts": 1,
            "resource": {"memory": memory, "vCores": 1}, "application-type": "YARN"}  # fmt: skip
    assert requests.post(rm + "/ws/v1/cluster/apps", json=body, timeout=10).status_code == 202
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        app = requests.get(f"{rm}/ws/v1/cluster/apps/{aid}", timeout=10).json()["app"]
        if app["state"] in ("FINISHED", "FAILED", "KILLED"):
            break
        time.sleep(0.5)
    base = f"http://{app['amHostHttpAddress']}/ws/v1/node"
    cid = requests.get(f"{base}/apps/{aid}", timeout=10).json()["app"]["containerids"][0]
    out = requests.get(f"{base}/containerlogs/{cid}/stdout", timeout=10).text
    return app, out, requests.get(f"{base}/containers/{cid}", timeout=10).json()["container"]


def check_yarn_cgroups(state: State) -> None:
    rm, _ = cli_support.endpoints(state.data)
    addresses = dict(state["network"]["nodes"])  # node -> IPv4
    by_address = {a: n for n, a in addresses.items()}
    nests = docker.from_env().info().get("CgroupDriver") == "cgroupfs"
    nms = [s["node"] for s in state["services"].values() if s["role"] == "nodemanager"]
    for node in nms:  # cgroups where racklab delegates the node's own, else sessions
        info = requests.get(f"http://{addresses[node]}:8042/ws/v1/node/info", timeout=10)
        version = info.json()["nodeInfo"]["cgroupVersion"]
        assert version == (f"v{cgroups.version()}" if nests else "none"), node

    app, out, container = run_app(rm, SHOW_CGROUP, 192)
    node = by_address[app["amHostHttpAddress"].split(":")[0]]
    if nests:  # one cgroup per YARN container, under the node's own, with its grant
        path, limit = out.split()
        own = cgroups.node_cgroup(state.name, node).rel
        assert path == f"/{own}/hadoop-yarn-{node}/{container['id']}", out
        assert int(limit) == container["totalMemoryNeededMB"] << 20

    app, out, container = run_app(rm, GROW, 128)
    assert app["state"] == "FAILED"
    assert "beyond the 'PHYSICAL' memory limit" in app["diagnostics"], app["diagnostics"]
    assert "exitCode: -104" in app["diagnostics"]  # ContainerExitStatus.KILLED_EXCEEDED_PMEM
    assert "survived" not in out and container["exitCode"] == -104


@pytest.mark.parametrize("example", ["containers", "pods"])
def test_example_lab_runs_every_service(example):
    up = lab_cli("up", str(EXAMPLES / f"{example}.yaml"))
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        results = trial.run(State.load(example))
        assert [r["service"] for r in results] == ["zookeeper", "kafka", "hdfs", "yarn"]
        failed = [r for r in results if not r["ok"]]
        assert not failed, failed
        check_yarn_cgroups(State.load(example))
    finally:
        down = lab_cli("down", example)
    assert down.returncode == 0, down.stderr
    assert leftovers(example) == []
    client = docker.from_env()
    assert client.containers.list(all=True, filters={"label": f"racklab.lab={example}"}) == []


def without_vms(text: str) -> tuple[str, list[str]]:
    """The lab file with its VM nodes dropped from racks, nodes and the services' node
    lists (mixed.yaml gives its VM only roles that several nodes share)."""
    topo = yaml.safe_load(text)
    defaults = topo.get("defaults", {}).get("kind", "process")
    vms = [n for n, s in topo.get("nodes", {}).items() if s.get("kind", defaults) == "vm"]
    for rack in topo["racks"].values():
        rack["nodes"] = [n for n in rack["nodes"] if n not in vms]
    for n in vms:
        del topo["nodes"][n]
    for section in topo["services"].values():
        for key, value in section.items():
            if isinstance(value, list):
                section[key] = [n for n in value if n not in vms]
            assert value not in vms, f"{key} is a VM's alone"
    return yaml.safe_dump(topo, sort_keys=False), vms


def test_mixed_lab_without_its_vm_runs_every_service(tmp_path):
    text, vms = without_vms((EXAMPLES / "mixed.yaml").read_text())
    assert vms == ["v1"]
    f = tmp_path / "mixed.yaml"
    f.write_text(text)
    up = lab_cli("up", str(f))
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        state = State.load("mixed")
        kinds = {n["kind"] for n in state["nodes"].values()}
        assert kinds == {"process", "container", "pod"}
        results = trial.run(state)
        assert [r["service"] for r in results] == ["zookeeper", "kafka", "hdfs", "yarn"]
        failed = [r for r in results if not r["ok"]]
        assert not failed, failed
    finally:
        down = lab_cli("down", "mixed")
    assert down.returncode == 0, down.stderr
    assert leftovers("mixed") == []
    client = docker.from_env()
    assert client.containers.list(all=True, filters={"label": "racklab.lab=mixed"}) == []
