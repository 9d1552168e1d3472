"""The overhead benchmark runs end to end on a small setting and its output parses.
No figure is asserted: they depend on the machine."""

import json
import os
import subprocess
import sys

import pytest

from lab.bench.overhead import METRICS

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def test_quick_overhead_run_gives_a_figure_or_a_reason_for_every_metric(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "lab.bench.overhead", "--kinds", "native,process", "--quick",
         "--json", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(res.stdout)
    assert set(report["kinds"]) == {"native", "process"}
    assert report["machine"]["cgroup"] in ("v1", "v2")
    for kind, row in report["kinds"].items():
        assert set(row["metrics"]) == set(METRICS)
        for metric, cell in row["metrics"].items():
            # each metric is either measured (a positive median) or says why not
            assert ("median" in cell and cell["median"] > 0) or cell.get("why"), (kind, metric)
    process = report["kinds"]["process"]["metrics"]
    assert "ratio_to_native" in process["cpu_events_s"]
    assert (tmp_path / "overhead.png").stat().st_size > 0
    assert (
        json.loads((tmp_path / "overhead.json").read_text())["kinds"].keys()
        == report["kinds"].keys()
    )


def test_unknown_kind_is_refused():
    res = subprocess.run([sys.executable, "-m", "lab.bench.overhead", "--kinds", "lxc", "--quick"],
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode != 0
    assert "unknown kind 'lxc'" in res.stderr
