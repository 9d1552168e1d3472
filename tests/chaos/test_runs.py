"""Whole chaos runs on a quickstart-sized lab: each workload under a nemesis, bounded
to well under a minute, leaving a run folder with history, verdict and report; and the
bad inputs a user can give, each refused in one sentence before anything is touched."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.chaos import runner
from lab.chaos.history import load, pairs
from lab.chaos.labctx import ChaosError
from lab.net import faults as netfaults

LAB = """
name: chaosrun
defaults: {kind: process, cpus: 0.5, memory: 512Mi, pids: 1024}
network: {supernet: auto, inter_rack: {delay: 2ms, jitter: 0.2ms}}
racks:
  r1: {nodes: [n1, n2, n3]}
  r2: {nodes: [n4, n5, n6]}
services:
  zookeeper: {nodes: [n1, n2, n4], tickTime: 500}
  hdfs: {namenode: n3, datanodes: [n2, n5, n6], dfs.replication: 2}
  yarn: {resourcemanager: n1, nodemanagers: [n5, n6]}
nodes:
  n5: {memory: 1Gi}
  n6: {memory: 1Gi}
"""


@pytest.fixture(scope="module")
def lab(module_lab):
    return module_lab[0]


def chaos(lab, tmp_path, workload, nemesis, **kw):
    args = {"time_s": 20, "rate": 15, "seed": 11, "interval": 4, "recover_s": 20}
    args.update(kw)
    return runner.run(lab, workload, nemesis, runs_dir=tmp_path, **args)


def assert_healed(lab):
    from lab.chaos.labctx import LabContext

    ctx = LabContext.attach(lab.name)
    assert all(netfaults.blocked(ctx.netns(n)) == [] for n in ctx.nodes)
    assert all(ctx.service_running(s) for s in ctx.services())


def test_zk_register_under_majority_partitions(lab, tmp_path):
    d = chaos(lab, tmp_path, "zk-register", "partition-majority")
    verdict = json.loads((d / "verdict.json").read_text())
    assert verdict["valid"] is True, verdict
    [c] = verdict["checkers"]
    assert c["checker"] == "linearizable-cas-register"
    assert c["stats"]["ok"] > 50
    h = load(d / "history.jsonl")
    starts = [op for op in h.nemesis_ops() if op.f == "start"]
    stops = [op for op in h.nemesis_ops() if op.f == "stop"]
    planned = json.loads((d / "run.json").read_text())["schedule"]
    assert [(e["start"], e["end"]) for e in planned] == [(4, 8), (12, 16)]
    assert len(starts) == 2 and len(stops) == 2
    assert {p.f for p in pairs(h)} >= {"read", "write", "cas"}
    html = (d / "report.html").read_text()
    assert "linearizable-cas-register" in html and "latency.png" in html
    assert (d / "latency.png").stat().st_size > 1000 and (d / "throughput.png").exists()
    assert_healed(lab)
    listed = runner.list_runs(tmp_path)
    assert listed[0]["dir"] == str(d) and listed[0]["valid"] is True
    assert runner.report(d.name, tmp_path) == d / "report.html"


def test_zk_lock_under_kills(lab, chaos_run):
    result = chaos_run(lab, "zk-lock", "kill", rate=8, time_s=15, seed=11, interval=4)
    [c] = result.verdict["checkers"]
    assert c["checker"] == "lock-mutual-exclusion"
    assert c["stats"]["holds"] > 5
    assert result.valid is True, result.anomalies
    assert result.report.exists()
    assert_healed(lab)


@pytest.mark.slow
def test_plain_zookeeper_reads_are_caught_stale(lab, chaos_run):
    # Without sync() a read is served by whichever server the client talks to, which may
    # lag the leader: not linearizable, and the checker must be able to say so.
    # A stale read needs a read to hit a lagging server in the right millisecond, so the
    # plain client gets up to three seeded runs to show one (it usually takes one).
    args = dict(time_s=30, rate=40, interval=5, concurrency=6)
    for seed in (3, 4, 5):
        plain = chaos_run(lab, "zk-register", "pause", options={"sync": False}, seed=seed, **args)
        if plain.valid is False:
            break
    assert plain.valid is False, "no stale read in three runs of plain reads"
    [a] = plain.anomalies
    assert a["type"] == "not-linearizable" and a["op"]["f"] == "read"
    synced = chaos_run(lab, "zk-register", "pause", seed=seed, **args)
    assert synced.valid is True, synced.anomalies


def test_hdfs_files_under_kills(lab, tmp_path):
    d = chaos(lab, tmp_path, "hdfs-files", "kill", rate=10, time_s=16, interval=4, seed=4)
    verdict = json.loads((d / "verdict.json").read_text())
    [c] = verdict["checkers"]
    assert c["checker"] == "hdfs-files"
    assert c["stats"]["written"] > 10 and c["stats"]["final_reads"] == c["stats"]["written"]
    assert verdict["valid"] is True, c["anomalies"][:5]
    assert_healed(lab)


def test_an_interrupted_run_heals_its_faults(lab, tmp_path):
    code = (
        "import sys; from lab.chaos import runner\n"
        "try:\n"
        f"    runner.run({lab.name!r}, 'zk-register', 'partition-one', time_s=60, rate=5,\n"
        f"               seed=2, interval=2, runs_dir={str(tmp_path)!r})\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(130)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 40
        started = False
        while time.monotonic() < deadline and not started:
            time.sleep(0.2)
            hist = list(tmp_path.glob("*/history.jsonl"))
            started = bool(hist) and '"f": "start"' in hist[0].read_text()
        assert started, "the partition never started"
        from lab.chaos.labctx import LabContext

        ctx = LabContext.attach(lab.name)
        assert any(netfaults.blocked(ctx.netns(n)) for n in ctx.nodes)  # a fault is on
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_healed(lab)
    [run] = runner.list_runs(tmp_path)
    assert run["valid"] == "unknown"
    verdict = json.loads((Path(run["dir"]) / "verdict.json").read_text())
    assert "interrupted" in verdict["reason"]


def test_yarn_jobs_under_a_nodemanager_kill(lab, tmp_path):
    # seed 1 makes the one kill of this schedule land on a NodeManager (n6); a kill of
    # the ResourceManager loses the applications it had accepted, since the lab's RM
    # keeps no state store, and the checker says so (unknown-outcome)
    d = chaos(lab, tmp_path, "yarn-jobs", "kill", rate=0.4, time_s=20, interval=5, seed=1,
              recover_s=60)  # fmt: skip
    h = load(d / "history.jsonl")
    [killed] = [op.extra["targets"] for op in h.nemesis_ops() if op.f == "start"]
    assert killed == ["n6"]
    verdict = json.loads((d / "verdict.json").read_text())
    [c] = verdict["checkers"]
    assert c["checker"] == "yarn-jobs" and c["stats"]["accepted"] >= 2
    assert verdict["valid"] is True, [a["message"] for a in c["anomalies"]]
    assert c["stats"]["succeeded"] + c["stats"]["failed"] == c["stats"]["accepted"]
    assert_healed(lab)


def test_faults_left_by_a_killed_runner_are_healed_by_heal(lab, tmp_path):
    code = (
        "from lab.chaos import runner\n"
        f"runner.run({lab.name!r}, 'zk-register', 'delay', time_s=60, rate=5, seed=2,\n"
        f"           interval=2, runs_dir={str(tmp_path)!r})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 40
        started = False
        while time.monotonic() < deadline and not started:
            time.sleep(0.2)
            hist = list(tmp_path.glob("*/history.jsonl"))
            started = bool(hist) and '"f": "start"' in hist[0].read_text()
        assert started, "the packet fault never started"
    finally:
        proc.kill()  # SIGKILL: no finally runs, the fault lines stay
        proc.wait()
    active = json.loads((Path(lab.path).parent / "chaos-active.json").read_text())
    assert active["pids"]
    repaired = runner.heal(lab.name)
    assert sum(r.startswith("stopped fault line") for r in repaired) == 3, repaired
    router = f"rl{lab['labid']}-router"
    links = subprocess.run(["ip", "-n", router, "-br", "link"], capture_output=True, text=True)
    assert "fx-" not in links.stdout
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in active["pids"]):
        time.sleep(0.1)
    assert not any(Path(f"/proc/{p}/cmdline").exists() for p in active["pids"])
    assert_healed(lab)


@pytest.mark.parametrize(
    "workload,nemesis,kw,message",
    [
        ("zk-queue", "kill", {}, r"unknown workload 'zk-queue' \(known: .*zk-register"),
        ("zk-register", "melt", {}, r"unknown nemesis 'melt'"),
        ("zk-register", "kill", {"time_s": 10}, r"cannot fit one fault"),
        ("kafka-queue", "kill", {}, r"needs kafka, and lab chaosrun runs none"),
        ("zk-register", "partition-majorities-ring", {}, r"needs at least 4 nodes and zookeeper"),
        ("zk-register", "kill", {"options": {"synk": False}}, r"has no option synk"),
        ("zk-register", "kill", {"options": {"sync": "maybe"}}, r"must be true or false"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(lab, tmp_path, workload, nemesis, kw, message):
    with pytest.raises(ChaosError, match=message):
        chaos(lab, tmp_path, workload, nemesis, **kw)
    assert runner.list_runs(tmp_path) == []


def test_a_lab_that_is_not_up_is_refused(tmp_path):
    with pytest.raises(ChaosError, match="no lab named nosuchlab is up"):
        runner.run("nosuchlab", "zk-register", "kill", runs_dir=tmp_path)
