"""docs/CHAOS.md's tour runs as written: its `lab chaos` lines against the quickstart
lab (under a name of this suite's, as the only lab of the suite's RACKLAB_HOME, so the
lines need no --lab), and its pytest example with the arguments it shows. Slow: two
chaos runs of a minute each on a six-node lab with the four services."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .clirun import lab

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def tour() -> list[list[str]]:
    text = (ROOT / "docs" / "CHAOS.md").read_text()
    block = text.split("```\n", 2)[1]  # the first code block: the tour
    lines = [re.split(r"\s{2,}#", line)[0].split() for line in block.splitlines()]
    return [words[1:] for words in lines if words[:2] == ["lab", "chaos"]]


def test_the_chaos_tour_runs_as_written(lab_up, chaos_run, tmp_path):
    text = (ROOT / "examples" / "quickstart.yaml").read_text()
    state = lab_up(text.replace("name: quickstart", "name: cli-tour"))
    env = {"RACKLAB_RUNS": str(tmp_path / "runs")}
    commands = tour()
    assert [c[:2] for c in commands] == [["chaos", "run"]] * 2 + [
        ["chaos", "runs"], ["chaos", "report"], ["chaos", "heal"]]  # fmt: skip
    for words in commands:
        r = lab(*words, env=env, timeout=600)
        # a run's verdict may be valid or invalid; a refused command (2) or an unknown
        # verdict (3) would mean the page and the runner disagree
        assert r.returncode in ((0, 1) if words[1] == "run" else (0,)), (words, r.stderr)
        if words[1] == "run":
            assert "verdict: " in r.stdout and "nemesis error" not in r.stdout, r.stdout
    # the page's pytest example, with its arguments
    result = chaos_run(state, "zk-register", "partition-majority", time_s=30, seed=1)
    assert result.valid is True, result.anomalies
