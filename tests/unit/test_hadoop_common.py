"""hadoop-common's pieces, shared by HDFS and YARN: one rack file means the same racks to
both (read as Hadoop's TableMapping reads it), one Configuration reads both daemons'
files with the same units and the same errors."""

from __future__ import annotations

import pytest

from lab.services.hadoop.conf import render_site_xml
from lab.services.hdfs.config import Configuration as HdfsConfiguration
from lab.services.yarn.conf import Configuration as YarnConfiguration

RACK_FILE = """\
# racks of the lab: host-or-ip rack
10.0.0.1 /r1
10.0.0.2    r1
# 10.0.0.3 /commented-out
10.0.0.4 /r2 # a trailing comment makes three columns: TableMapping skips the line
10.0.0.5 /r2 extra
10.0.0.6

  10.0.0.7	/r3
"""
EXPECTED = {"10.0.0.1": "/r1", "10.0.0.2": "/r1", "10.0.0.7": "/r3"}


def test_one_rack_file_gives_hdfs_and_yarn_the_same_racks(tmp_path):
    # net.topology.table.file.name is a core-default key: core-site.xml, read by both.
    (tmp_path / "topology.table").write_text(RACK_FILE)
    (tmp_path / "core-site.xml").write_text(
        render_site_xml({"net.topology.table.file.name": "topology.table"})
    )
    hdfs = HdfsConfiguration.load(tmp_path).rack_table()
    yarn = YarnConfiguration.load(tmp_path).rack_table()
    assert hdfs == yarn == EXPECTED


def test_both_read_units_and_report_bad_values_the_same_way(tmp_path):
    values = {
        "dfs.blocksize": "128m",
        "dfs.heartbeat.interval": "500ms",
        "yarn.scheduler.capacity.root.default.capacity": "0.5f",
        "x.address": "${yarn.resourcemanager.hostname}:77",
        "bad.int": "ten",
    }
    for cls in (HdfsConfiguration, YarnConfiguration):
        conf = cls(values)
        assert conf.get_size("dfs.blocksize") == 128 << 20
        assert conf.get_seconds("dfs.heartbeat.interval") == 0.5
        assert conf.get_float("yarn.scheduler.capacity.root.default.capacity") == 0.5
        with pytest.raises(ValueError, match="bad.int='ten' is not an integer"):
            conf.get_int("bad.int")
        with pytest.raises(KeyError):
            conf.get_int("no.such.key")
        assert conf.get_int("no.such.key", 7) == 7
    assert YarnConfiguration(values).get_address("x.address") == ("0.0.0.0", 77)
