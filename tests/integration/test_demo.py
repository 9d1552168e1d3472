"""`make demo` in a test: the quickstart lab (with its services) comes up, the
end-to-end trial passes with the real clients, and nothing is left behind."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .leftovers import leftovers

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.yaml"


def test_quickstart_demo_passes_and_cleans_up(tmp_path):
    f = tmp_path / "quickstart.yaml"
    f.write_text(QUICKSTART.read_text().replace("name: quickstart", "name: itest-demo"))
    res = subprocess.run([sys.executable, "-m", "lab", "demo", "quickstart", "--file", str(f),
                          "--out", str(tmp_path / "runs")],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "PASS: quickstart trial" in res.stdout
    for service in ("zookeeper", "kafka", "hdfs", "yarn"):
        assert any(line.split()[:2] == [service, "ok"] for line in res.stdout.splitlines()), service
    assert (tmp_path / "runs" / "itest-demo-graph.svg").exists()
    assert leftovers("itest-demo") == []
