"""The example labs of other kinds, as a new user runs them: examples/containers.yaml
and examples/pods.yaml brought up with `lab up`, all four services used from the host
with the unmodified clients (kazoo across servers, kafka-python acks=all and a group,
the `hdfs` package, a YARN wordcount equal to a local count), and `lab down` leaving
nothing behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import docker
import pytest

from lab.demos import trial
from lab.orchestrator.state import State
from tests.integration.leftovers import leftovers

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def lab_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab", *args], capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("example", ["containers", "pods"])
def test_example_lab_runs_every_service(example):
    up = lab_cli("up", str(EXAMPLES / f"{example}.yaml"))
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        results = trial.run(State.load(example))
        assert [r["service"] for r in results] == ["zookeeper", "kafka", "hdfs", "yarn"]
        failed = [r for r in results if not r["ok"]]
        assert not failed, failed
    finally:
        down = lab_cli("down", example)
    assert down.returncode == 0, down.stderr
    assert leftovers(example) == []
    client = docker.from_env()
    assert client.containers.list(all=True, filters={"label": f"racklab.lab={example}"}) == []
