"""A chaos run on a lab mixing a namespace node, a container and a pod: the same
nemeses through the same Node interface (kill and restart a pod's service, freeze,
partition, packet faults), every fault healed at the end."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from lab.chaos.labctx import LabContext
from lab.net import faults as netfaults


def _engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("racklab labs need root")
    if not _engine_answers():
        pytest.skip("no Docker engine answers; `make docker` starts one")
    from lab.testing.plugin import LabFactory

    name = "cx" + uuid.uuid4().hex[:8]
    factory = LabFactory()
    try:
        yield factory(f"""
name: {name}
defaults: {{kind: process, cpus: 0.5, memory: 512Mi, pids: 1024}}
network: {{supernet: auto}}
racks:
  r1: {{nodes: [n1, n2]}}
  r2: {{nodes: [n4, n5]}}
nodes:
  n4: {{kind: container}}
  n5: {{kind: pod}}
services:
  zookeeper: {{nodes: [n1, n4, n5], tickTime: 500}}
""")
    finally:
        factory.teardown()


def test_zk_register_across_kinds_under_kills_and_pauses(lab, chaos_run):
    # (partitions and packet faults act on a node's netns and its port in the router,
    # the same for every kind: their run tests on namespace nodes cover them)
    result = chaos_run(lab, "zk-register", "kill,pause", time_s=22, rate=15, seed=1, interval=4)
    assert result.valid is True, result.anomalies
    history = (result.run_dir / "history.jsonl").read_text()
    assert "killed zookeeper on n5 (stopped)" in history  # the pod's service, seed 1
    assert "paused zookeeper on" in history
    assert result.verdict["nemesis_errors"] == []
    ctx = LabContext.attach(lab.name)
    assert all(netfaults.blocked(ctx.netns(n)) == [] for n in ctx.nodes)
    assert all(ctx.service_running(s) for s in ctx.services())
