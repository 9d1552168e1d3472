"""pytest fixtures for chaos runs (registered by the racklab pytest plugin).

    def test_register_survives_partitions(lab_up, chaos_run):
        state = lab_up("examples/quickstart.yaml")
        result = chaos_run(state, "zk-register", "partition-majority", time_s=30)
        assert result.valid is True, result.anomalies

Each run's folder is kept under the test's tmp_path; ``result.report`` is its HTML.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class ChaosResult:
    run_dir: Path
    verdict: dict

    @property
    def valid(self):
        return self.verdict["valid"]

    @property
    def anomalies(self) -> list[dict]:
        return [a for c in self.verdict.get("checkers", []) for a in c.get("anomalies", [])]

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"


@pytest.fixture
def chaos_run(tmp_path):
    """chaos_run(lab, workload, nemesis, **runner.run options) -> ChaosResult."""
    from lab.chaos import runner

    def run(lab, workload: str, nemesis: str = "partition-majority", **kw) -> ChaosResult:
        kw.setdefault("runs_dir", tmp_path / "chaos-runs")
        d = runner.run(lab, workload, nemesis, **kw)
        return ChaosResult(d, json.loads((d / "verdict.json").read_text()))

    return run
