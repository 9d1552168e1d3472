"""HDFS's configuration: core-site.xml + hdfs-site.xml with Hadoop 3's key names and
defaults, read by hadoop-common's Configuration, and the addresses and directories the
daemons derive from it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from ..hadoop import conf as common
from ..hadoop.conf import local_dir, split_hostport

# The defaults are Hadoop 3's (hdfs-default.xml / core-default.xml), so a lab that sets
# nothing behaves like a stock cluster; labs and tests turn the timers down explicitly.
DEFAULTS: dict[str, str] = {
    "fs.defaultFS": "hdfs://localhost:8020",
    "fs.permissions.umask-mode": "022",
    "dfs.namenode.name.dir": "/tmp/hadoop/dfs/name",
    "dfs.datanode.data.dir": "/tmp/hadoop/dfs/data",
    "dfs.namenode.checkpoint.dir": "/tmp/hadoop/dfs/namesecondary",
    "dfs.namenode.http-address": "0.0.0.0:9870",
    "dfs.namenode.secondary.http-address": "0.0.0.0:9868",
    "dfs.datanode.http.address": "0.0.0.0:9864",
    "dfs.datanode.address": "0.0.0.0:9866",
    "dfs.replication": "3",
    "dfs.replication.max": "512",
    "dfs.namenode.replication.min": "1",
    "dfs.blocksize": "134217728",
    "dfs.bytes-per-checksum": "512",
    "dfs.client-write-packet-size": "65536",
    "dfs.heartbeat.interval": "3s",
    "dfs.namenode.heartbeat.recheck-interval": "300000",
    "dfs.namenode.stale.datanode.interval": "30000",
    "dfs.blockreport.intervalMsec": "21600000",
    "dfs.namenode.redundancy.interval.seconds": "3s",
    "dfs.namenode.replication.work.multiplier.per.iteration": "2",
    "dfs.namenode.replication.max-streams": "2",
    "dfs.namenode.replication.max-streams-hard-limit": "4",
    "dfs.namenode.reconstruction.pending.timeout-sec": "300",
    "dfs.block.invalidate.limit": "1000",
    "dfs.datanode.scan.period.hours": "504",
    "dfs.namenode.safemode.threshold-pct": "0.999f",
    "dfs.namenode.safemode.extension": "30000",
    "dfs.namenode.safemode.min.datanodes": "0",
    "dfs.namenode.checkpoint.period": "3600s",
    "dfs.namenode.checkpoint.txns": "1000000",
    "dfs.namenode.checkpoint.check.period": "60s",
    "dfs.namenode.num.checkpoints.retained": "2",
    "dfs.namenode.num.extra.edits.retained": "1000000",
    "dfs.permissions.enabled": "true",
    "dfs.permissions.superusergroup": "supergroup",
    "fs.trash.interval": "0",  # minutes; 0 (Hadoop's default): no trash
    "fs.trash.checkpoint.interval": "0",
    "dfs.namenode.acls.enabled": "true",  # Hadoop 3's default (2.x: false)
    "dfs.namenode.posix.acl.inheritance.enabled": "true",
    "dfs.datanode.du.reserved": "0",
    "dfs.client.socket-timeout": "60000",
    "dfs.namenode.lease-hard-limit-sec": "1200",
    # Hadoop's soft limit is a constant (HdfsConstants.LEASE_SOFTLIMIT_PERIOD, 60 s) that
    # only its tests change (NameNodeAdapter.setLeasePeriod): racklab's own key, for tests.
    "racklab.namenode.lease-soft-limit-sec": "60",
    "dfs.datanode.socket.write.timeout": "480000",
    "dfs.datanode.max.transfer.threads": "4096",
    # Hadoop's DataNode fsyncs a finished block only with this set; an hsync'd packet is
    # fsynced whatever it says.
    "dfs.datanode.synconclose": "false",
}


class Configuration(common.Configuration):
    DEFAULTS = DEFAULTS
    FILES = ("core-site.xml", "hdfs-site.xml")

    # Derived settings used by several daemons.
    def namenode_rpc_address(self) -> tuple[str, int]:
        if self.is_set("dfs.namenode.rpc-address"):
            return split_hostport(self.get("dfs.namenode.rpc-address"), 8020)
        url = urlparse(self.get("fs.defaultFS"))
        return url.hostname or "localhost", url.port or 8020

    def name_dir(self) -> Path:
        return local_dir(self.get("dfs.namenode.name.dir"))

    def data_dir(self) -> Path:
        return local_dir(self.get("dfs.datanode.data.dir"))

    def checkpoint_dir(self) -> Path:
        return local_dir(self.get("dfs.namenode.checkpoint.dir"))
