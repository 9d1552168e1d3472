"""Hadoop-style XML configuration (yarn-site.xml, capacity-scheduler.xml, ...).

Reads ``<configuration><property><name/><value/></property></configuration>``
files and answers typed look-ups with Hadoop's defaults, so a file written for a
real cluster means the same thing here.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape

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
    "net.topology.table.file.name": "",
}

CAPACITY_DEFAULTS: dict[str, str] = {
    "yarn.scheduler.capacity.root.queues": "default",
    "yarn.scheduler.capacity.root.default.capacity": "100",
    "yarn.scheduler.capacity.maximum-am-resource-percent": "0.1",
    "yarn.scheduler.capacity.node-locality-delay": "40",
    "yarn.scheduler.capacity.rack-locality-additional-delay": "-1",
}

_VAR = re.compile(r"\$\{([^}]+)\}")


class Configuration:
    """Merged key/value view over several Hadoop XML files, with ${var} expansion."""

    def __init__(
        self, values: dict[str, str] | None = None, defaults: dict[str, str] | None = None
    ):
        self.defaults = dict(YARN_DEFAULTS)
        self.defaults.update(CAPACITY_DEFAULTS)
        if defaults:
            self.defaults.update(defaults)
        self.values: dict[str, str] = dict(values or {})
        self.conf_dir: Path | None = None

    @classmethod
    def load_dir(
        cls,
        conf_dir: str | Path,
        names=("core-site.xml", "yarn-site.xml", "capacity-scheduler.xml", "mapred-site.xml"),
    ) -> Configuration:
        conf = cls()
        conf.conf_dir = Path(conf_dir)
        for name in names:
            path = Path(conf_dir) / name
            if path.exists():
                conf.values.update(parse_xml(path))
        return conf

    def raw(self, key: str) -> str | None:
        if key in self.values:
            return self.values[key]
        return self.defaults.get(key)

    def get(self, key: str, default: str | None = None) -> str | None:
        value = self.raw(key)
        if value is None:
            return default
        # Hadoop expands ${other.key} (and ${env.X} is not supported here); bounded depth.
        for _ in range(10):
            new = _VAR.sub(lambda m: self.raw(m.group(1)) or "", value)
            if new == value:
                break
            value = new
        return value.strip()

    def get_int(self, key: str, default: int | None = None) -> int:
        value = self.get(key)
        if value is None or value == "":
            if default is None:
                raise KeyError(key)
            return default
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"configuration {key}={value!r} is not an integer") from None

    def get_float(self, key: str, default: float | None = None) -> float:
        value = self.get(key)
        if value is None or value == "":
            if default is None:
                raise KeyError(key)
            return default
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"configuration {key}={value!r} is not a number") from None

    def get_bool(self, key: str, default: bool = False) -> bool:
        value = self.get(key)
        if value is None or value == "":
            return default
        return value.lower() == "true"

    def get_address(self, key: str) -> tuple[str, int]:
        value = self.get(key)
        if not value or ":" not in value:
            raise ValueError(f"configuration {key}={value!r} is not host:port")
        host, _, port = value.rpartition(":")
        return host, int(port)

    def set(self, key: str, value) -> None:
        self.values[key] = str(value)


def parse_xml(path: str | Path) -> dict[str, str]:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(f"{path}: not a Hadoop configuration file: {e}") from None
    out: dict[str, str] = {}
    for prop in root.iter("property"):
        name = prop.findtext("name")
        value = prop.findtext("value")
        if name is None:
            raise ValueError(f"{path}: a <property> without <name>")
        out[name.strip()] = (value or "").strip()
    return out


def render_xml(values: dict[str, object]) -> str:
    """The inverse of parse_xml: what the orchestrator and tests write to disk."""
    lines = ['<?xml version="1.0"?>', "<configuration>"]
    for key, value in values.items():
        lines.append(
            f"  <property><name>{escape(str(key))}</name><value>{escape(str(value))}</value></property>"
        )
    lines.append("</configuration>")
    return "\n".join(lines) + "\n"
