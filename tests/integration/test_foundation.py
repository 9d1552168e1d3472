"""The quickstart lab on namespace nodes: names, reachability, the inter-rack delay,
limits, and nothing left behind by `lab down` or by `lab clean` after a kill -9."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from lab import cgroups
from lab.demos.quickstart import ping_matrix
from lab.net.addressing import host_networks

from .leftovers import leftovers

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

DELAY_MS = 2.0
LAB = f"""
name: itest-quick
defaults: {{kind: process, cpus: 0.5, memory: 128Mi, pids: 64}}
network:
  inter_rack: {{delay: {DELAY_MS}ms}}
racks:
  r1: {{nodes: [n1, n2, n3]}}
  r2: {{nodes: [n4, n5, n6]}}
"""


def lab_cli(*args, check=False, **kw):
    return subprocess.run(
        [sys.executable, "-m", "lab", *args], capture_output=True, text=True, check=check, **kw
    )


@pytest.fixture(scope="module")
def quick(module_lab):
    state, factory = module_lab
    return state, factory.nodes(state)


def test_every_node_pings_every_other_by_name(quick):
    state, _ = quick
    matrix = ping_matrix(state)
    assert len(matrix) == 30
    unreachable = [pair for pair, rtt in matrix.items() if rtt is None]
    assert unreachable == []


def test_round_trip_across_racks_carries_the_delay_and_within_a_rack_does_not(quick):
    state, _ = quick
    matrix = ping_matrix(state)
    racks = {"n1": 1, "n2": 1, "n3": 1, "n4": 2, "n5": 2, "n6": 2}
    inter = [v for (a, b), v in matrix.items() if racks[a] != racks[b]]
    intra = sorted(v for (a, b), v in matrix.items() if racks[a] == racks[b])
    # one way across racks is delayed by DELAY_MS, so a round trip takes at least twice it
    assert min(inter) >= 2 * DELAY_MS
    assert intra[len(intra) // 2] < DELAY_MS


def test_node_has_its_own_pid1_hostname_and_hosts(quick):
    _, nodes = quick
    n4 = nodes["n4"]
    assert n4.exec(["hostname"]).stdout.strip() == "n4"
    ps = n4.exec(["ps", "-o", "pid=,args=", "-p", "1"]).stdout
    assert "init.py" in ps
    hosts = n4.exec(["getent", "hosts", "n1"]).stdout.split()
    assert hosts[1:] == ["n1"]
    # the host's processes are invisible inside
    assert str(os.getpid()) not in n4.exec(["ps", "-e", "-o", "pid="]).stdout.split()


def test_memory_limit_ends_in_oom_kill_counted_by_the_kernel(quick):
    _, nodes = quick
    n2 = nodes["n2"]
    before = n2.stats().oom_kills or 0
    hog = n2.exec(
        [sys.executable, "-c", "b = bytearray(400 * 2**20); print('survived')"], timeout=60
    )
    assert "survived" not in hog.stdout
    assert hog.returncode in (-9, 137)
    assert (n2.stats().oom_kills or 0) > before


def test_pids_limit_makes_fork_fail(quick):
    _, nodes = quick
    n3 = nodes["n3"]
    res = n3.exec(["sh", "-c", "for i in $(seq 100); do sleep 3 & done; wait"], timeout=60)
    assert res.returncode != 0 or "fork" in res.stderr.lower()
    assert "fork" in res.stderr.lower() or "resource temporarily unavailable" in res.stderr.lower()
    assert n3.cg.limits()["pids"] == 64


def test_cpu_quota_is_what_the_kernel_holds(quick):
    _, nodes = quick
    assert nodes["n1"].cg.limits()["cpus"] == pytest.approx(0.5)
    assert nodes["n1"].cg.limits()["memory"] == 128 * 2**20


def test_status_json_and_exec_exit_code(quick):
    res = lab_cli("status", "--lab", "itest-quick", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert [n["name"] for n in data["nodes"]] == ["n1", "n2", "n3", "n4", "n5", "n6"]
    assert all(n["running"] for n in data["nodes"])
    assert lab_cli("exec", "n5", "--lab", "itest-quick", "--", "sh", "-c", "exit 7").returncode == 7
    assert lab_cli("exec", "n9", "--lab", "itest-quick", "--", "true").returncode == 2


NODES = {"n1", "n2", "n3", "n4", "n5", "n6"}


def test_status_fits_80_columns_and_names_one_node(quick):
    env = dict(os.environ, COLUMNS="80")
    res = lab_cli("status", "--lab", "itest-quick", env=env)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert sum(1 for line in lines if line.split()[0] in NODES) == 6  # one line per node
    one = lab_cli("status", "n4", "--lab", "itest-quick", env=env)
    assert [line.split()[0] for line in one.stdout.splitlines()[2:]] == ["n4"]
    missing = lab_cli("status", "n9", "--lab", "itest-quick")
    assert missing.returncode == 2 and "has no node n9" in missing.stderr


def test_down_leaves_nothing_behind(tmp_path):
    f = tmp_path / "lab.yaml"
    f.write_text(LAB.replace("itest-quick", "itest-down"))
    res = lab_cli("up", str(f), "--json")
    assert res.returncode == 0, res.stderr
    assert leftovers("itest-down") != []  # the check sees a live lab
    # a service-like process left running in a node must go too
    lab_cli("exec", "n1", "--lab", "itest-down", "--", "sh", "-c", "sleep 600 >/dev/null 2>&1 &")
    res = lab_cli("down", "itest-down")
    assert res.returncode == 0, res.stderr
    assert leftovers("itest-down") == []
    # says what went, the killed processes included, and that the lab is down
    assert re.search(r"removed cgroup \S+ \(\d+ processes killed\)", res.stdout), res.stdout
    assert res.stdout.rstrip().endswith("lab itest-down is down")


@pytest.mark.parametrize("after", [0.3, 1.0])
def test_clean_after_kill_9_of_lab_up_leaves_nothing(tmp_path, after):
    from lab.topology import load

    name = f"itest-kill{int(after * 10)}"
    big = tmp_path / "big.yaml"
    src = open(os.path.join(os.path.dirname(__file__), "../../examples/three-racks.yaml")).read()
    big.write_text(src.replace("name: three-racks", f"name: {name}"))
    load(big)
    proc = subprocess.Popen([sys.executable, "-m", "lab", "up", str(big), "--json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    res = lab_cli("clean", name)
    assert res.returncode == 0, res.stderr
    assert leftovers(name) == []


def test_supernet_overlapping_a_host_route_is_refused_and_nothing_made(tmp_path):
    # prefer a route of the host's own over another lab's (which may go away meanwhile)
    taken = sorted((n for n in host_networks() if n.prefixlen >= 16), key=lambda n: n.is_private)
    if not taken:
        pytest.skip("the host routes nothing narrower than /16")
    net = taken[0].supernet(new_prefix=16) if taken[0].prefixlen > 16 else taken[0]
    f = tmp_path / "lab.yaml"
    f.write_text(LAB.replace("itest-quick", "itest-overlap").replace(
        "network:\n", f"network:\n  supernet: {net}\n"))  # fmt: skip
    line = f.read_text().splitlines().index(f"  supernet: {net}") + 1
    res = lab_cli("up", str(f))
    assert res.returncode == 2
    assert f"{f}:{line}: network.supernet: {net} overlaps" in " ".join(res.stderr.split())
    assert "Traceback" not in res.stderr
    assert leftovers("itest-overlap") == []
    assert not cgroups.lab_cgroup("itest-overlap").exists()
