"""Every service's fuzz target, by name."""

from __future__ import annotations

from .hdfs import HdfsTarget
from .kafka import KafkaTarget
from .yarn import YarnTarget
from .zookeeper import ZooKeeperTarget

TARGETS = {
    "zookeeper": ZooKeeperTarget,
    "kafka": KafkaTarget,
    "hdfs": HdfsTarget,
    "yarn": YarnTarget,
}
