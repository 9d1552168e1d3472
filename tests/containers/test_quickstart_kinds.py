"""The quickstart lab with every node a container, and again with every node a pod:
the same checks as for namespace nodes (tests/integration/test_foundation.py) —
names, reachability, the inter-rack delay, limits, status and exec through the
CLI — and `lab down` leaving nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from lab.demos.quickstart import ping_matrix

DELAY_MS = 2.0
LAB = """
name: {name}
defaults: {{kind: {kind}, cpus: 0.5, memory: 128Mi, pids: 64}}
network:
  inter_rack: {{delay: {delay}ms}}
racks:
  r1: {{nodes: [n1, n2, n3]}}
  r2: {{nodes: [n4, n5, n6]}}
"""
RACKS = {"n1": 1, "n2": 1, "n3": 1, "n4": 2, "n5": 2, "n6": 2}


def lab_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "lab", *args], capture_output=True, text=True, timeout=300
    )


def leftovers(client, name: str, labid: str, cgroup_dirs: list[str] = ()) -> list[str]:
    from lab import cgroups
    from lab.orchestrator.state import lab_dir

    found = [f"cgroup {d}" for d in cgroup_dirs if os.path.isdir(d)]
    found += [f"cgroup {d}" for d in cgroups.lab_cgroup(name).dirs() if d.exists()]

    found += [
        f"container {c.name}"
        for c in client.containers.list(all=True, filters={"label": f"racklab.lab={name}"})
    ]
    found += [
        f"volume {v.name}" for v in client.volumes.list(filters={"label": f"racklab.lab={name}"})
    ]
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    found += [
        f"interface {line.split()[0]}"
        for line in links.splitlines()
        if line.startswith(f"rl{labid}")
    ]
    if lab_dir(name).exists():
        found.append(f"state dir {lab_dir(name)}")
    return found


@pytest.fixture(scope="module", params=["container", "pod"])
def quick(request, docker_engine, node_image):
    import uuid

    from lab.backends import container
    from lab.orchestrator import lab as orch
    from lab.topology import loads

    kind = request.param
    name = f"t7q{kind[:3]}{uuid.uuid4().hex[:6]}"
    saved, container._ensured_image = container._ensured_image, node_image
    cgroup_dirs: list[str] = []
    state = None
    try:
        state = orch.up(loads(LAB.format(name=name, kind=kind, delay=DELAY_MS), f"{name}.yaml"))
        nodes = orch.attach_nodes(state)
        # every container's own cgroup, as the kernel names it, must go with the lab
        cgroup_dirs = [
            f"/sys/fs/cgroup/memory/{n.cgroup()}"
            if os.path.isdir("/sys/fs/cgroup/memory")
            else f"/sys/fs/cgroup/{n.cgroup()}"
            for n in nodes.values()
        ]
        assert all(os.path.isdir(d) for d in cgroup_dirs)
        yield kind, state, nodes
    finally:
        container._ensured_image = saved
        orch.clean(name)
        if state is not None:
            assert leftovers(docker_engine, name, state["labid"], cgroup_dirs) == []


def test_every_node_pings_every_other_by_name_with_the_rack_delay(quick):
    _, state, _ = quick
    matrix = ping_matrix(state)
    assert len(matrix) == 30
    assert [pair for pair, rtt in matrix.items() if rtt is None] == []
    inter = [v for (a, b), v in matrix.items() if RACKS[a] != RACKS[b]]
    # one way across racks is delayed by DELAY_MS, so a round trip takes at least twice it
    assert min(inter) >= 2 * DELAY_MS


def test_node_has_its_own_pid1_hostname_and_hosts(quick, docker_engine):
    kind, _, nodes = quick
    n4 = nodes["n4"]
    assert n4.exec(["hostname"]).check().stdout.strip() == "n4"
    assert "tini" in n4.exec(["ps", "-o", "args=", "-p", "1"]).check().stdout
    assert n4.exec(["getent", "hosts", "n1"]).check().stdout.split()[1:] == ["n1"]
    assert n4.describe()["kind"] == kind


def test_limits_are_enforced(quick, docker_engine):
    kind, _, nodes = quick
    n2 = nodes["n2"]
    if kind == "pod":
        # the node's limits hold the pod as a whole: a service with none of its own
        # that outgrows the pod is OOM-killed
        n2.start_service("hog", ["python3", "-c", "b = bytearray(400 * 2**20)"], restart="no")
        deadline = time.monotonic() + 60
        while n2.services()["hog"].status == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        hog = n2.services()["hog"]
        assert hog.oom_killed and hog.exit_code == 137
        assert (n2.stats().oom_kills or 0) >= 1
        if n2.pod_cgroup:
            from lab import cgroups

            limits = cgroups.Cgroup(n2.pod_cgroup).limits()
            assert limits == {"cpus": 0.5, "memory": 128 * 2**20, "pids": 64}
        return
    before = n2.stats().oom_kills or 0
    hog = n2.exec(["python3", "-c", "b = bytearray(400 * 2**20); print('survived')"], timeout=60)
    assert "survived" not in hog.stdout and hog.returncode == 137
    assert (n2.stats().oom_kills or 0) > before
    res = nodes["n3"].exec(["sh", "-c", "for i in $(seq 100); do sleep 3 & done; wait"], timeout=60)
    assert "fork" in res.stderr.lower() or "resource temporarily unavailable" in res.stderr.lower()
    assert nodes["n1"].stats().memory_max == 128 * 2**20


def test_status_json_and_exec_exit_code(quick):
    _, state, _ = quick
    res = lab_cli("status", "--lab", state.name, "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert [n["name"] for n in data["nodes"]] == ["n1", "n2", "n3", "n4", "n5", "n6"]
    assert all(n["running"] for n in data["nodes"])
    assert lab_cli("exec", "n5", "--lab", state.name, "--", "sh", "-c", "exit 7").returncode == 7
