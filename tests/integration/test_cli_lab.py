"""The command line with a lab up (one small lab shared by the module): help still
answers everywhere, the service commands check their arguments and take --json after
the subcommand, a lab is named the same way everywhere, Ctrl-C of a chaos run exits 3.

Every check runs the real `lab` command and reads what it prints."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from .clirun import command_tree, json_of, lab, one_error

LAB = """
name: cli-t
defaults: {kind: process, cpus: 0.5, memory: 384Mi}
racks:
  r1: {nodes: [n1, n2]}
services:
  zookeeper: {nodes: [n1]}
  kafka: {nodes: [n1]}
  hdfs: {namenode: n1, datanodes: [n2], dfs.replication: 1}
"""


@pytest.fixture(scope="module")
def up(module_lab):
    state, _ = module_lab
    return state


def test_help_answers_everywhere_with_a_lab_up(up):
    paths = [p for p, _ in command_tree()]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda p: lab(*p, "--help"), paths))
    for path, r in zip(paths, results, strict=True):
        where = " ".join(["lab", *path])
        assert r.returncode == 0 and r.stdout.startswith(f"Usage: {where} "), (where, r.stderr)


def test_kafka_partition_out_of_range_is_one_sentence(up):
    r = lab("kafka", "topics", "create", "cli-p", "--partitions", "2", "--replication-factor", "1")
    assert r.returncode == 0, r.stderr
    r = lab("kafka", "produce", "cli-p", "x", "--partition", "9")
    assert r.returncode == 2
    assert one_error(r) == (
        "error: Partition 9 of topic cli-p with partition count 2 is not present in metadata"
    )
    r = lab("kafka", "produce", "cli-p", "x", "--partition", "1", "--lab", up.name)
    assert r.returncode == 0 and r.stdout.startswith("cli-p-1@"), r.stderr


def test_json_after_the_service_subcommand(up):
    r = lab("kafka", "topics", "describe", "cli-p", "--json")
    assert r.returncode == 0, r.stderr
    assert [p["partition"] for p in json_of(r)[0]["partitions"]] == [0, 1]
    r = lab("kafka", "topics", "describe", "cli-p", "--json", "--partition-typo")
    assert r.returncode == 2 and "unrecognized arguments" in json_of(r)["error"]


def test_zk_answers_like_zkcli(up):
    r = lab("zk", "ls", "/", "--lab", up.name)
    assert r.returncode == 0 and r.stdout.startswith("["), r.stderr
    r = lab("zk", "srvr")
    assert r.returncode == 127 and "Command not found srvr" in one_error(r)


def test_the_lab_named_by_option_or_argument(up):
    r = lab("--json", "status", "--lab", up.name)  # --json before the command works too
    assert r.returncode == 0 and json_of(r)["name"] == up.name, r.stderr
    r = lab("status", "n9", "--lab", up.name, "--json")
    assert r.returncode == 2 and json_of(r)["error"] == f"lab {up.name} has no node n9"
    healed = [lab("chaos", "heal", up.name), lab("chaos", "heal", "--lab", up.name)]
    assert [r.returncode for r in healed] == [0, 0], [r.stderr for r in healed]
    assert healed[0].stdout == healed[1].stdout


def test_validate_refuses_the_supernet_of_the_running_lab(up, tmp_path):
    supernet = up["network"]["supernet"]
    f = tmp_path / "lab.yaml"
    f.write_text(f"name: cli-v\nnetwork: {{supernet: {supernet}}}\nracks:\n  r1: {{nodes: [n1]}}\n")
    r = lab("validate", str(f))
    assert r.returncode == 2
    assert one_error(r).startswith(f"error: {f}:2: network.supernet: {supernet} overlaps")


def test_ctrl_c_of_a_chaos_run_exits_3_and_leaves_an_unknown_verdict(up, tmp_path):
    import os

    env = {**os.environ, "RACKLAB_RUNS": str(tmp_path), "COLUMNS": "80"}
    argv = ["chaos", "run", "--workload", "zk-register", "--nemesis", "none", "--time", "60"]
    # SIGINT as a terminal sends it; restored to the default in the child in case this
    # test runs from a shell that ignores it (a background job)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", *argv], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not any(tmp_path.glob("*/history.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # the clients are running
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 3, stderr
    last = [line for line in stderr.splitlines() if line.strip()][-1]
    assert last.startswith("error: interrupted: every fault was healed; the verdict is unknown")
    r = lab("chaos", "runs", env={"RACKLAB_RUNS": str(tmp_path)})
    assert r.stdout.splitlines()[1].split()[0] == "unknown", r.stdout
