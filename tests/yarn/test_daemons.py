"""The daemons' command line: a bad configuration is one sentence and exit code 2."""

import subprocess
import sys

from lab.services.hadoop.conf import render_site_xml


def run(tmp_path, role, yarn_site, capacity=None):
    (tmp_path / "yarn-site.xml").write_text(render_site_xml(yarn_site))
    if capacity is not None:
        (tmp_path / "capacity-scheduler.xml").write_text(render_site_xml(capacity))
    return subprocess.run(
        [sys.executable, "-m", "lab.services.yarn", role, "--config", str(tmp_path)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_capacities_not_adding_up(tmp_path):
    r = run(
        tmp_path,
        "resourcemanager",
        {"yarn.resourcemanager.webapp.address": "127.0.0.1:0"},
        {
            "yarn.scheduler.capacity.root.queues": "a,b",
            "yarn.scheduler.capacity.root.a.capacity": "60",
            "yarn.scheduler.capacity.root.b.capacity": "30",
        },
    )
    assert r.returncode == 2
    assert "capacities of the queues under root add up to 90.0, not 100" in r.stderr
    assert "Traceback" not in r.stderr


def test_malformed_xml(tmp_path):
    (tmp_path / "yarn-site.xml").write_text("<configuration><property><name>x</name>")
    r = subprocess.run(
        [sys.executable, "-m", "lab.services.yarn", "nodemanager", "--config", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2 and "not a Hadoop configuration file" in r.stderr


def test_non_numeric_setting(tmp_path):
    r = run(tmp_path, "resourcemanager", {"yarn.scheduler.minimum-allocation-mb": "lots"})
    assert r.returncode == 2
    assert "yarn.scheduler.minimum-allocation-mb='lots' is not an integer" in r.stderr
