"""The example labs with VM nodes, as a new user runs them (slow: they boot VMs, which
QEMU emulates where KVM cannot boot a stock kernel): examples/vms.yaml and the full
examples/mixed.yaml brought up with `lab up`, all four services used from the host
with the unmodified clients (the quickstart trial: kazoo across servers, kafka-python
acks=all and a group, the `hdfs` package, a YARN wordcount equal to a local count),
every NodeManager with YARN containers in cgroups, and `lab down` leaving nothing: no domain, container, cgroup, interface or process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from lab.demos import trial
from lab.orchestrator.state import State
from tests.integration.leftovers import leftovers

from .conftest import domains_of

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.slow


def lab_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab", *args], capture_output=True, text=True, timeout=1800
    )


@pytest.mark.timeout(2400)  # emulated VMs on a busy 2-core machine: many minutes
@pytest.mark.parametrize("example", ["vms", "mixed"])
def test_example_lab_with_vms_runs_every_service(example, libvirt_conn, vm_image):
    up = lab_cli("up", str(EXAMPLES / f"{example}.yaml"))
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        state = State.load(example)
        assert "vm" in {n["kind"] for n in state["nodes"].values()}
        results = trial.run(state)
        assert [r["service"] for r in results] == ["zookeeper", "kafka", "hdfs", "yarn"]
        failed = [r for r in results if not r["ok"]]
        assert not failed, failed
        # every NodeManager, the VM's too (cgroup v2 in its guest), runs its YARN
        # containers in cgroups of their own, not in the session fallback
        addresses = state["network"]["nodes"]
        for svc in state["services"].values():
            if svc["role"] == "nodemanager":
                url = f"http://{addresses[svc['node']]}:8042/ws/v1/node/info"
                info = requests.get(url, timeout=30).json()["nodeInfo"]
                assert info["cgroupVersion"] in ("v1", "v2"), (svc["node"], info)
    finally:
        down = lab_cli("down", example)
    assert down.returncode == 0, down.stderr
    assert leftovers(example) == []
    assert domains_of(libvirt_conn, example) == []
    docker = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=racklab.lab={example}"],
                            capture_output=True, text=True)  # fmt: skip
    assert docker.stdout.strip() == ""
