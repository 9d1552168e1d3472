"""The command line with a lab up (one small lab shared by the module): help still
answers everywhere, the service commands check their arguments and take --json after
the subcommand, a lab is named the same way everywhere, Ctrl-C of a chaos run exits 3.

Every check runs the real `lab` command and reads what it prints."""

from __future__ import annotations

import json
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
    # test_cli_surface walks every command with no lab; a lab up can only change what
    # the commands that read their own words do (the service shells, lab exec)
    paths = [p for p, _ in command_tree(own_words_only=True)] + [["status"], ["chaos", "run"]]
    assert {"kafka", "hdfs", "yarn", "zk", "exec"} <= {p[0] for p in paths}
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


def _until_interrupted(args: list[str], seconds: float):
    """Run `lab ARGS`, Ctrl-C it after `seconds`; returns (exit code, stdout)."""
    import os

    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", *args], env={**os.environ, "COLUMNS": "80"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    time.sleep(seconds)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    return proc.returncode, stdout


def test_logs_of_a_node_its_tail_and_follow(up):
    r = lab("logs", "n1")
    assert r.returncode == 0, r.stderr
    headers = [line for line in r.stdout.splitlines() if line.startswith("==> ")]
    assert headers == ["==> hdfs-namenode <==", "==> kafka-broker <==", "==> zookeeper-server <=="]
    r = lab("logs", "n1", "zookeeper", "--tail", "1")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 1, r.stdout
    r = lab("logs", "n1", "yarn")
    assert r.returncode == 2 and "runs no service yarn (it runs: " in one_error(r)

    # what a service writes while `lab logs -f` runs is printed as it comes
    import os
    import queue
    import threading

    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "logs", "n1", "kafka", "-f", "--tail", "1"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "80"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        lines.get(timeout=60)  # the last line already there: it is following now
        assert lab("kafka", "topics", "create", "cli-follow").returncode == 0
        deadline = time.monotonic() + 60
        while "created topic cli-follow" not in lines.get(timeout=60):
            assert time.monotonic() < deadline
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 0  # Ctrl-C is the way out of -f, as with tail -f


def test_service_stop_start_restart_by_hand(up):
    def kafka_word():
        line = [n for n in lab("status").stdout.splitlines() if n.startswith("n1 ")][0]
        return [w for w in line.split() if w.startswith("kafka")][0]

    r = lab("service", "stop", "n1", "kafka", "--json")
    assert r.returncode == 0 and json_of(r) == {"done": ["stopped kafka-broker on n1"]}
    assert kafka_word() == "kafka:down"
    r = lab("service", "restart", "n1", "kafka-broker")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "kafka-broker on n1 was not running",
        "started kafka-broker on n1",
    ]
    assert kafka_word() == "kafka"
    r = lab("service", "start", "n2", "kafka")
    assert (
        r.returncode == 2
        and one_error(r) == "error: node n2 runs no service kafka (it runs: hdfs-datanode)"
    )


def test_status_watch_refreshes_until_ctrl_c(up):
    code, stdout = _until_interrupted(["status", "--watch", "1", "--json"], 4)
    assert code == 0
    docs = [json.loads(line) for line in stdout.splitlines()]  # one JSON line per refresh
    assert len(docs) >= 2 and {d["name"] for d in docs} == {up.name}


def test_clean_without_a_name_keeps_a_running_lab(up):
    # only --dry-run here: a real `lab clean` without a name would take other labs'
    # leftovers on this machine too, which are not this test's to remove
    r = lab("clean", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert f"would keep lab {up.name}: it may be in use (name it, or --all)" in r.stdout
    assert f"would remove lab {up.name} " not in r.stdout
    r = lab("clean", up.name, "--dry-run", "--json")
    assert json_of(r) == {"labs": [up.name], "kernel": {}, "running": []}


def test_hdfs_dfs_takes_globs_as_hadoop_does(up):
    assert lab("hdfs", "dfs", "-mkdir", "-p", "/g").returncode == 0
    r = lab("hdfs", "dfs", "-touchz", "/g/a.txt", "/g/b.txt", "/g/c.log")
    assert r.returncode == 0, r.stderr

    def names(res):
        return [line.split()[-1] for line in res.stdout.splitlines() if line.startswith("-")]

    assert names(lab("hdfs", "dfs", "-ls", "/g/*.txt")) == ["/g/a.txt", "/g/b.txt"]
    assert names(lab("hdfs", "dfs", "-ls", "/g/{a,c}.*")) == ["/g/a.txt", "/g/c.log"]
    r = lab("hdfs", "dfs", "-ls", "/g/*.nope")
    assert r.returncode == 1 and r.stderr == "ls: `/g/*.nope': No such file or directory\n"
    r = lab("hdfs", "dfs", "-rm", "/g/[^c]*")
    assert r.returncode == 0 and r.stdout.splitlines() == ["Deleted /g/a.txt", "Deleted /g/b.txt"]
    assert names(lab("hdfs", "dfs", "-ls", "/g")) == ["/g/c.log"]


def test_racklab_options_after_the_double_dash_belong_to_the_command(up):
    r = lab("exec", "n1", "--", "echo", "--debug", "--json", "--lab", "x")
    assert r.returncode == 0 and r.stdout == "--debug --json --lab x\n", r.stderr
