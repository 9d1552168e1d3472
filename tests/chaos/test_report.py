"""Run folders without a lab: listing, finding by name, and the report made from a
crafted history (fault periods shaded, anomalies listed)."""

from __future__ import annotations

import json

import pytest

from lab.chaos import runner
from lab.chaos.checkers import linearizable
from lab.chaos.checkers.base import merge
from lab.chaos.history import History, fault_periods, load
from lab.chaos.labctx import ChaosError


def make_run(root, name, stale: bool):
    d = root / name
    d.mkdir(parents=True)
    meta = {"lab": "demo", "workload": "zk-register", "nemesis": ["kill"], "time_s": 10,
            "rate": 5, "seed": 1, "interval": 2, "schedule_mode": "fixed", "schedule": [],
            "concurrency": 2, "started": "2026-01-01T00:00:00+00:00"}  # fmt: skip
    (d / "run.json").write_text(json.dumps(meta))
    h = History(d / "history.jsonl")
    w = h.invoke(0, "write", 1)
    h.complete(w, "ok", 1)
    h.add("info", "nemesis", "start", "kill", id="f0", description="killed zookeeper on n1")
    r = h.invoke(1, "read")
    h.complete(r, "ok", 0 if stale else 1)
    h.add("info", "nemesis", "stop", "kill", id="f0")
    h.close()
    verdict = merge([linearizable.check(load(d / "history.jsonl"), linearizable.CASRegister(0))])
    (d / "verdict.json").write_text(json.dumps(verdict))
    return d


def test_runs_are_listed_found_and_reported(tmp_path):
    good = make_run(tmp_path, "20260101T000000-demo-zk-register-kill-s1", stale=False)
    bad = make_run(tmp_path, "20260101T000100-demo-zk-register-kill-s2", stale=True)
    runs = runner.list_runs(tmp_path)
    assert [r["dir"] for r in runs] == [str(bad), str(good)]  # newest first
    assert [r["valid"] for r in runs] == [False, True]
    assert runner.find_run(None, tmp_path) == bad
    assert runner.find_run("20260101T000000", tmp_path) == good
    with pytest.raises(ChaosError, match="names 2 runs"):
        runner.find_run("2026", tmp_path)
    with pytest.raises(ChaosError, match="no chaos run named nope"):
        runner.find_run("nope", tmp_path)
    html = runner.report(bad.name, tmp_path).read_text()
    assert "INVALID" in html and "cannot be linearized" in html
    assert "killed zookeeper on n1" in html
    assert (bad / "latency.png").stat().st_size > 1000
    s = runner.summary(bad.name, tmp_path)
    assert s["valid"] is False and any("read of 0" in line for line in s["lines"])


def test_no_runs_yet(tmp_path):
    assert runner.list_runs(tmp_path / "none") == []
    with pytest.raises(ChaosError, match="no chaos runs yet"):
        runner.find_run(None, tmp_path / "none")


def test_fault_periods_pair_starts_and_stops(tmp_path):
    h = History()
    h.add("info", "nemesis", "start", "kill", id="a")
    h.add("info", "nemesis", "start", "pause", id="b")
    h.add("info", "nemesis", "stop", "kill", id="a")
    periods = fault_periods(h)
    assert [(p["fault"], p["end"] is None) for p in periods] == [("kill", False), ("pause", True)]
