"""Failures reach the user as one sentence naming what failed, exit code 2, no
traceback, and nothing left behind; --debug shows the traceback for a bug report."""

from __future__ import annotations

import subprocess
import sys

from .leftovers import leftovers

BAD_SERVICE = """
name: badsvc
racks:
  r1: {nodes: [n1, n2]}
services:
  hdfs: {namenode: n1, datanodes: [n2], dfs.replication: 1, dfs.heartbeat.interval: soon}
"""


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab", *args], capture_output=True, text=True, timeout=300
    )


def test_a_service_that_exits_while_starting_is_one_sentence_and_undone(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(BAD_SERVICE)
    r = lab("up", str(f), "--json")
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0] == (
        "error: hdfs namenode on n1 exited while starting: /srv/node/hdfs/conf: "
        "dfs.heartbeat.interval: cannot read 'soon' as a duration"
    )
    assert leftovers("badsvc") == []


def test_debug_shows_the_traceback(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(BAD_SERVICE)
    r = lab("up", str(f), "--json", "--debug")
    assert r.returncode != 0
    assert "Traceback" in r.stderr and "DeployError" in r.stderr
    assert leftovers("badsvc") == []
