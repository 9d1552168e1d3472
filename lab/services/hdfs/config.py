"""Hadoop-style configuration: core-site.xml + hdfs-site.xml with Hadoop's key names and
defaults, Hadoop's size/time suffixes, and the rack table (net.topology.table.file.name)."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlparse

# The defaults are Hadoop 3's (hdfs-default.xml / core-default.xml), so a lab that sets
# nothing behaves like a stock cluster; labs and tests turn the timers down explicitly.
DEFAULTS: dict[str, str] = {
    "fs.defaultFS": "hdfs://localhost:8020",
    "hadoop.http.staticuser.user": "dr.who",
    "hadoop.http.idle_timeout.ms": "60000",
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
    "dfs.datanode.du.reserved": "0",
    "dfs.client.socket-timeout": "60000",
    "dfs.datanode.socket.write.timeout": "480000",
    "dfs.datanode.max.transfer.threads": "4096",
    "net.topology.table.file.name": "",
}

DEFAULT_RACK = "/default-rack"

_SIZE = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_TIME = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Configuration:
    """Key/value settings read from Hadoop XML files, layered over DEFAULTS."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values: dict[str, str] = dict(DEFAULTS)
        self.values.update(values or {})
        self.config_dir: Path | None = None

    @classmethod
    def load(cls, config_dir: str | os.PathLike) -> Configuration:
        conf = cls()
        conf.config_dir = Path(config_dir)
        for name in ("core-site.xml", "hdfs-site.xml"):
            path = conf.config_dir / name
            if path.exists():
                conf.values.update(parse_site_xml(path.read_text(), str(path)))
        return conf

    def get(self, key: str, default: str | None = None) -> str:
        value = self.values.get(key, default)
        if value is None:
            raise KeyError(key)
        return value.strip()

    def get_int(self, key: str) -> int:
        try:
            return int(self.get(key))
        except ValueError:
            raise ValueError(f"{key}: cannot read {self.get(key)!r} as an integer") from None

    def get_float(self, key: str) -> float:
        try:
            return float(self.get(key).rstrip("fF"))
        except ValueError:
            raise ValueError(f"{key}: cannot read {self.get(key)!r} as a number") from None

    def get_bool(self, key: str) -> bool:
        return self.get(key).lower() == "true"

    def get_size(self, key: str) -> int:
        """Sizes as Hadoop writes them: 134217728, 128m, 1k."""
        try:
            return parse_size(self.get(key))
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None

    def get_seconds(self, key: str, unit: str = "s") -> float:
        """Durations as Hadoop's getTimeDuration reads them: a bare number is in the
        key's own unit (ms for *Msec / *-interval keys, s for others), a suffix wins."""
        value = self.get(key)
        m = re.fullmatch(r"\s*([0-9.]+)\s*([a-z]*)\s*", value.lower())
        if not m:
            raise ValueError(f"{key}: cannot read {value!r} as a duration")
        number, suffix = float(m.group(1)), m.group(2) or unit
        if suffix not in _TIME:
            raise ValueError(f"{key}: unknown time unit {suffix!r}")
        return number * _TIME[suffix]

    # Derived settings used by several daemons.
    def namenode_rpc_address(self) -> tuple[str, int]:
        if "dfs.namenode.rpc-address" in self.values:
            return split_hostport(self.get("dfs.namenode.rpc-address"), 8020)
        url = urlparse(self.get("fs.defaultFS"))
        return url.hostname or "localhost", url.port or 8020

    def name_dir(self) -> Path:
        return local_dir(self.get("dfs.namenode.name.dir"))

    def data_dir(self) -> Path:
        return local_dir(self.get("dfs.datanode.data.dir"))

    def checkpoint_dir(self) -> Path:
        return local_dir(self.get("dfs.namenode.checkpoint.dir"))

    def rack_table(self) -> dict[str, str]:
        name = self.get("net.topology.table.file.name")
        if not name:
            return {}
        path = Path(name)
        if not path.is_absolute() and self.config_dir is not None:
            path = self.config_dir / path
        return parse_rack_table(path.read_text())


def local_dir(value: str) -> Path:
    """First entry of a comma-separated list of file:// URIs or plain paths."""
    first = value.split(",")[0].strip()
    if first.startswith("file://"):
        first = urlparse(first).path
    return Path(first)


def split_hostport(value: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host:
        return value, default_port
    return host, int(port)


def parse_size(value: str) -> int:
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kmgtp]?)b?\s*", value.lower())
    if not m:
        raise ValueError(f"cannot read {value!r} as a size")
    return int(float(m.group(1)) * _SIZE.get(m.group(2), 1))


def parse_site_xml(text: str, source: str = "<xml>") -> dict[str, str]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"{source}: not valid XML ({exc})") from None
    values = {}
    for prop in root.iter("property"):
        name = prop.findtext("name")
        if name is None:
            raise ValueError(f"{source}: a <property> has no <name>")
        values[name.strip()] = (prop.findtext("value") or "").strip()
    return values


def render_site_xml(values: dict[str, object]) -> str:
    """A site file in the layout Hadoop ships (one <property> per key)."""
    root = ET.Element("configuration")
    for key in sorted(values):
        prop = ET.SubElement(root, "property")
        ET.SubElement(prop, "name").text = key
        ET.SubElement(prop, "value").text = str(values[key])
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return (
        '<?xml version="1.0"?>\n<?xml-stylesheet type="text/xsl" href="configuration.xsl"?>\n'
        + body
        + "\n"
    )


def parse_rack_table(text: str) -> dict[str, str]:
    """TableMapping's file: `host-or-ip rack` per line, # comments allowed."""
    table = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            continue  # TableMapping skips malformed lines too
        table[parts[0]] = parts[1] if parts[1].startswith("/") else "/" + parts[1]
    return table


def render_rack_table(host_racks: dict[str, str]) -> str:
    return "".join(
        f"{host} {rack if rack.startswith('/') else '/' + rack}\n"
        for host, rack in sorted(host_racks.items())
    )
