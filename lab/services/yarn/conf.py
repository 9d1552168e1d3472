"""YARN's configuration (yarn-site.xml, capacity-scheduler.xml, mapred-site.xml) with
yarn-default.xml's defaults, read by hadoop-common's Configuration, so a file written for
a real cluster means the same thing here."""

from __future__ import annotations

from ..hadoop import conf as common

# Defaults as in yarn-default.xml / capacity-scheduler.xml, for the keys we honour.
YARN_DEFAULTS: dict[str, str] = {
    "yarn.resourcemanager.hostname": "0.0.0.0",
    "yarn.resourcemanager.address": "${yarn.resourcemanager.hostname}:8032",
    "yarn.resourcemanager.scheduler.address": "${yarn.resourcemanager.hostname}:8030",
    "yarn.resourcemanager.resource-tracker.address": "${yarn.resourcemanager.hostname}:8031",
    "yarn.resourcemanager.webapp.address": "${yarn.resourcemanager.hostname}:8088",
    "yarn.resourcemanager.scheduler.class": (
        "org.apache.hadoop.yarn.server.resourcemanager.scheduler.capacity.CapacityScheduler"
    ),
    "yarn.resourcemanager.am.max-attempts": "2",
    "yarn.resourcemanager.recovery.enabled": "false",
    "yarn.resourcemanager.max-completed-applications": "1000",
    "yarn.resourcemanager.fs.state-store.uri": "/tmp/hadoop-yarn/system/rmstore",
    "yarn.resourcemanager.nodemanagers.heartbeat-interval-ms": "1000",
    "yarn.nm.liveness-monitor.expiry-interval-ms": "600000",
    "yarn.am.liveness-monitor.expiry-interval-ms": "600000",
    "yarn.resourcemanager.rm.container-allocation.expiry-interval-ms": "600000",
    "yarn.scheduler.minimum-allocation-mb": "1024",
    "yarn.scheduler.maximum-allocation-mb": "8192",
    "yarn.scheduler.minimum-allocation-vcores": "1",
    "yarn.scheduler.maximum-allocation-vcores": "4",
    "yarn.nodemanager.hostname": "0.0.0.0",
    "yarn.nodemanager.address": "${yarn.nodemanager.hostname}:0",
    "yarn.nodemanager.webapp.address": "${yarn.nodemanager.hostname}:8042",
    "yarn.nodemanager.resource.memory-mb": "8192",
    "yarn.nodemanager.resource.cpu-vcores": "8",
    "yarn.nodemanager.local-dirs": "/tmp/hadoop-yarn/nm-local-dir",
    "yarn.nodemanager.log-dirs": "/tmp/hadoop-yarn/userlogs",
    "yarn.nodemanager.pmem-check-enabled": "true",
    "yarn.nodemanager.log.retain-seconds": "10800",
    "yarn.nodemanager.container-monitor.interval-ms": "3000",
    "yarn.nodemanager.linux-container-executor.cgroups.hierarchy": "/hadoop-yarn",
    "yarn.nodemanager.linux-container-executor.cgroups.mount-path": "/sys/fs/cgroup",
    "yarn.nodemanager.linux-container-executor.cgroups.strict-resource-usage": "false",
    "mapreduce.shuffle.port": "13562",
}

CAPACITY_DEFAULTS: dict[str, str] = {
    "yarn.scheduler.capacity.root.queues": "default",
    "yarn.scheduler.capacity.root.default.capacity": "100",
    "yarn.scheduler.capacity.maximum-am-resource-percent": "0.1",
    "yarn.scheduler.capacity.node-locality-delay": "40",
    "yarn.scheduler.capacity.rack-locality-additional-delay": "-1",
}


class Configuration(common.Configuration):
    """yarn-site.xml, capacity-scheduler.xml and mapred-site.xml over YARN's defaults."""

    DEFAULTS = {**YARN_DEFAULTS, **CAPACITY_DEFAULTS}
    FILES = ("core-site.xml", "yarn-site.xml", "capacity-scheduler.xml", "mapred-site.xml")
