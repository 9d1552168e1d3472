"""Services on process nodes: `lab up` forks them from one pre-imported parent (the
zygote, lab/backends/process_zygote.py); a service started later takes the ordinary
path (nsenter behind the cgroup join prefix). A user, ps, chaos and `lab down` must not
be able to tell the two apart."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lab import cgroups
from lab.backends import get_backend
from lab.orchestrator import deploy
from lab.orchestrator import lab as orch
from lab.services.ports import port_answers

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

LAB = """
name: itest-fork
defaults: {kind: process, cpus: 0.5, memory: 256Mi}
racks:
  r1: {nodes: [n1, n2]}
services:
  zookeeper: {nodes: [n1]}
  hdfs: {namenode: n1, datanodes: [n2], dfs.replication: 1}
"""

NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "uts")


@pytest.fixture(scope="module")
def fork_lab(module_lab):
    state, factory = module_lab
    return state, factory.nodes(state)


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def service_pid(node, name: str) -> int:
    """The service's own process: the one in its cgroup inside the node's PID namespace
    (the ordinary path's nsenter waits beside it, outside)."""
    pids = [p for p in node.service_cgroup(name).pids() if len(_status(p)["NSpid"].split()) == 2]
    assert len(pids) == 1, pids
    return pids[0]


def facts(pid: int, init: int) -> dict:
    """What a user, ps or a tool can see of a service process, with what names the
    node (namespaces, PIDs) put relative to the node's init."""
    status = _status(pid)
    env = dict(
        e.split("=", 1) for e in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0") if e
    )
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode().rstrip("\0").split("\0")
    return {
        "same namespaces as the node's init": [
            n
            for n in NAMESPACES
            if os.readlink(f"/proc/{pid}/ns/{n}") == os.readlink(f"/proc/{init}/ns/{n}")
        ],  # fmt: skip
        "PID namespace levels": len(status["NSpid"].split()),
        "cgroup": sorted(Path(f"/proc/{pid}/cgroup").read_text().split()),
        "cwd": os.readlink(f"/proc/{pid}/cwd"),
        "root": os.readlink(f"/proc/{pid}/root"),
        "cmdline": cmdline,
        "stdio": [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in (0, 1, 2)],
        "session leader": os.getsid(pid) == pid,
        "signals ignored, blocked": (status["SigIgn"], status["SigBlk"]),
        "HOSTNAME": env.get("HOSTNAME"),
        "PATH": env.get("PATH"),
        "uid": status["Uid"],
    }


def test_a_forked_service_cannot_be_told_from_one_started_the_ordinary_way(fork_lab):
    state, nodes = fork_lab
    n1 = nodes["n1"]
    svc = state["services"]["zookeeper-server-n1"]
    # forked by the zygote: the service alone in its cgroup, no nsenter waiting beside it
    assert n1.service_cgroup(svc["name"]).pids() == [service_pid(n1, svc["name"])]
    forked = facts(service_pid(n1, svc["name"]), n1.pid)
    assert forked["same namespaces as the node's init"] == list(NAMESPACES)
    assert forked["PID namespace levels"] == 2
    assert forked["cmdline"] == svc["argv"]  # ps shows the service, not the zygote
    assert forked["stdio"][0] == "/dev/null"
    assert (
        forked["stdio"][1]
        == forked["stdio"][2]
        == str(Path(n1.spec.state_dir) / "data" / "logs" / "zookeeper-server.log")
    )

    # the same service stopped and started again: after `lab up` there is no zygote
    n1.stop_service(svc["name"], svc)
    assert not n1.service_running(svc["name"], svc)
    info = n1.start_service(svc["name"], svc["argv"])
    assert info["cgroup"] == svc["cgroup"] and info["log"] == svc["log"]
    assert n1.service_running(svc["name"], info)
    addr = state["network"]["nodes"]["n1"]
    deadline = time.monotonic() + 60
    while not port_answers(addr, 2181, 0.5):
        assert time.monotonic() < deadline, "zookeeper did not answer after its restart"
        time.sleep(0.1)
    ordinary = facts(service_pid(n1, svc["name"]), n1.pid)
    assert ordinary == forked
    assert len(n1.service_cgroup(svc["name"]).pids()) == 2  # nsenter, and the service


def test_the_zygote_is_gone_once_up_returns_and_said_nothing(fork_lab):
    state, _ = fork_lab
    zygote_cg = cgroups.lab_cgroup(state.name).child("zygote")
    assert zygote_cg.exists() and zygote_cg.pids() == []
    assert (orch.lab_dir(state.name) / "zygote.log").read_text() == ""


def test_a_service_that_fails_says_why_in_its_log_as_it_would_otherwise(fork_lab):
    """A module that does not exist and a config that does not: the errors a user reads
    in the service's log are Python's and the server's own, whichever path started it."""
    state, nodes = fork_lab
    n2 = nodes["n2"]
    backend = get_backend("process")
    backend.preload([n2.spec], ["lab.services.zookeeper"])
    try:
        node = backend.attach(n2.spec, state["nodes"]["n2"])
        cases = {
            "t-nomodule": ([node.python, "-m", "lab.services.no_such"], "No module named"),
            "t-badconf": (
                [node.python, "-m", "lab.services.zookeeper", "/nonexistent/zoo.cfg"],
                "zookeeper: /nonexistent/zoo.cfg: ",
            ),
        }
        for name, (argv, _) in cases.items():
            node.start_service(name, argv)
    finally:
        backend.preload_done()
    for name, (_, words) in cases.items():
        deadline = time.monotonic() + 60
        while node.service_running(name, {}):
            assert time.monotonic() < deadline, f"{name} still runs"
            time.sleep(0.05)
        log = node.get_file(f"/srv/node/logs/{name}.log").decode()
        assert words in log, log
        node.stop_service(name, {})


def test_the_modules_loaded_ahead_are_each_kinds_own_those_needing_nothing_first():
    from lab.topology import loads

    topo = loads(
        """
name: itest-mods
defaults: {kind: process}
racks:
  r1: {nodes: [n1, n2, n3]}
nodes:
  n3: {kind: container}
services:
  zookeeper: {nodes: [n1]}
  kafka: {nodes: [n1]}
  hdfs: {namenode: n2, datanodes: [n2, n3]}
  yarn: {resourcemanager: n3, nodemanagers: [n3]}
""",
        "<test>",
    )
    modules = deploy.python_modules(topo, orch.plan_addresses(topo))
    assert modules == {
        "process": ["lab.services.zookeeper", "lab.services.hdfs", "lab.services.kafka"],
        "container": ["lab.services.hdfs", "lab.services.yarn"],
    }


def test_a_zookeeper_ensemble_starts_its_highest_myid_first():
    """The server the others will elect is up before them: they hear it from their
    first round rather than agree on a lower id it then overrides."""
    dep = deploy.deployer_for("zookeeper")
    addresses = {"n1": "10.9.1.10/24", "n2": "10.9.1.11/24", "n3": "10.9.2.10/24"}
    procs = dep.plan({"nodes": ["n1", "n2", "n3"]}, addresses, {})
    myids = [int(next(v for k, v in p.files.items() if k.endswith("/myid"))) for p in procs]
    assert myids == [1, 2, 3]
    assert [p.node for p in dep.start_order(procs)] == ["n3", "n2", "n1"]
