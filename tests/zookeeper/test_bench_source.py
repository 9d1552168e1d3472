"""lab.bench.zookeeper --reference-source: the reference racklab server runs the `lab`
package of another source tree, so a change is measured side by side with the code
before it."""

from __future__ import annotations

import shutil
from pathlib import Path

from lab.bench.zookeeper import racklab_argv
from lab.services.zookeeper.minicluster import four_letter, standalone

LAB = Path(__file__).resolve().parents[2] / "lab"


def test_a_server_runs_from_another_source_tree(tmp_path):
    other = tmp_path / "other"
    shutil.copytree(LAB, other / "lab", ignore=shutil.ignore_patterns("__pycache__"))
    server_py = other / "lab" / "services" / "zookeeper" / "server.py"
    text = server_py.read_text()
    assert 'VERSION = "3.8.0-racklab"' in text
    server_py.write_text(text.replace('VERSION = "3.8.0-racklab"', 'VERSION = "3.8.0-other"'))
    srv = standalone(str(tmp_path / "d"), argv=lambda cfg: racklab_argv(cfg, str(other)))
    srv.start()
    try:
        assert "Zookeeper version: 3.8.0-other" in four_letter(srv.host, srv.port, "srvr")
    finally:
        srv.kill()
    mine = standalone(str(tmp_path / "m"), argv=racklab_argv)
    mine.start()
    try:
        assert "Zookeeper version: 3.8.0-racklab," in four_letter(mine.host, mine.port, "srvr")
    finally:
        mine.kill()
