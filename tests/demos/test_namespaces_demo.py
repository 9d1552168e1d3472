"""`lab demo namespaces`: isolation is computed from what the host and a node see."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import cgroups
from lab.demos import namespaces

from .helpers import assert_nothing_left, demo_cgroups_of_this_process, process_gone

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="makes namespaces and cgroups: needs root"),
]

ISOLATED = {"pid", "uts", "net", "mnt", "ipc", "cgroup"}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data():
    return namespaces.run()


def rows(data) -> dict[str, dict]:
    return {r["ns"]: r for r in data["namespaces"]}


def test_every_namespace_type_is_reported(data):
    assert set(rows(data)) == set(namespaces.NS_TYPES)
    for r in data["namespaces"]:
        assert isinstance(r["isolated"], bool)
        assert r["evidence"]
    assert set(data["isolated"]) | set(data["not_isolated"]) == set(namespaces.NS_TYPES)


def test_process_node_namespaces_are_isolated(data):
    by = rows(data)
    for ns in ISOLATED:
        assert by[ns]["isolated"], f"{ns}: {by[ns]['evidence']}"
        assert by[ns]["host"]["ns_id"] != by[ns]["node"]["ns_id"]


def test_pid_view(data):
    pid = rows(data)["pid"]
    assert pid["host"]["node init is PID"] == data["node"]["host_pid"] != 1
    assert pid["node"]["process list"][0].startswith("1 ")  # the init is PID 1 inside
    assert pid["node"]["processes"] < pid["host"]["processes"]


def test_net_and_uts_views(data):
    by = rows(data)
    assert by["uts"]["node"]["hostname"] == data["node"]["name"]
    # a demo node is not wired to any rack: it has loopback only and no routes
    assert [i.split()[0] for i in by["net"]["node"]["interfaces"]] == ["lo"]
    assert by["net"]["node"]["routes"] == []


def test_ipc_objects_made_inside_are_invisible_outside(data):
    ipc = rows(data)["ipc"]
    (key,) = [k for k in ipc["node"] if k.startswith("key ")]
    assert ipc["node"][key] is True
    assert ipc["host"][key] is False
    assert ipc["node"]["SysV msg objects"] >= 1 and ipc["node"]["SysV shm objects"] >= 1


def test_cgroup_root_is_the_node_cgroup(data):
    cg = rows(data)["cgroup"]
    (label,) = [k for k in cg["node"] if k.endswith("of the node's init")]
    assert cg["node"][label] == "/init"
    assert cg["host"][label] == f"/{data['node']['cgroup']}/init"


def test_user_namespace_is_reported_shared(data):
    """Process nodes keep the host's user namespace, and the demo says so."""
    user = rows(data)["user"]
    assert user["isolated"] is False
    assert user["host"]["ns_id"] == user["node"]["ns_id"]
    assert user["host"]["uid_map"] == user["node"]["uid_map"]


def test_time_namespace_verdict_follows_the_ids(data):
    t = rows(data)["time"]
    if not Path("/proc/self/ns/time").exists():
        assert t["isolated"] is False
    else:
        assert t["isolated"] == (t["host"]["ns_id"] != t["node"]["ns_id"])


def test_the_same_view_twice_is_not_isolation():
    """compare() judges from the views: the host against itself isolates nothing."""
    argv = [sys.executable, "-E", "-s", "-S", namespaces.__file__, "probe", str(os.getpid())]
    host = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    verdicts = namespaces.compare(host, host, 0x524C0001)
    assert [r["isolated"] for r in verdicts] == [False] * len(namespaces.NS_TYPES)


def test_nothing_left_behind(data):
    assert_nothing_left(data)
    assert demo_cgroups_of_this_process() == []


def test_cli_json():
    res = subprocess.run(
        [sys.executable, "-m", "lab", "demo", "namespaces", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out) >= {"node", "kernel", "cgroup_version", "namespaces", "isolated"}
    for r in out["namespaces"]:
        assert set(r) == {"ns", "host", "node", "isolated", "evidence"}
        assert isinstance(r["host"], dict) and isinstance(r["node"], dict)
    assert ISOLATED <= set(out["isolated"])
    assert "user" in out["not_isolated"]
    assert_nothing_left(out)


def test_a_killed_demo_is_cleaned_up_by_the_next():
    """kill -9 skips every finally: the next demo run removes what the dead one left."""
    code = (
        "from lab.demos.demonode import demo_node\n"
        "import sys, time\n"
        "with demo_node('demo-ns', 'victim') as n:\n"
        "    print(n.pid, n.cgroup(), flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        init_pid, rel = proc.stdout.readline().split()
        lab_cg = cgroups.Cgroup(rel.rpartition("/")[0])
        assert lab_cg.exists()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert lab_cg.exists()  # left behind by the kill
    from lab.demos.demonode import remove_stale, scratch_dir

    assert lab_cg.rel.rpartition("/")[2] in remove_stale("demo-ns")
    assert not lab_cg.exists()
    deadline = time.monotonic() + 5
    while not process_gone(int(init_pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process_gone(int(init_pid))
    assert not list(scratch_dir().glob(f"racklab-{lab_cg.rel.rpartition('/')[2]}-*"))
