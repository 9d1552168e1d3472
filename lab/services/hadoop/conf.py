"""Hadoop's Configuration, as hadoop-common gives it to HDFS and YARN alike: *-site.xml
files layered over a daemon's defaults, ${key} expansion, Hadoop's size and time suffixes,
and the rack table TableMapping reads (net.topology.table.file.name).

One reader for all daemons, so a key or a rack file means the same to every one of them.
"""

from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger(__name__)

DEFAULT_RACK = "/default-rack"
# Every daemon's defaults start with core-default.xml's keys it honours.
CORE_DEFAULTS: dict[str, str] = {
    "hadoop.http.staticuser.user": "dr.who",
    "hadoop.http.idle_timeout.ms": "60000",
    "net.topology.table.file.name": "",
}

_SIZE = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_TIME = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
_VAR = re.compile(r"\$\{([^}]+)\}")


class Configuration:
    """Key/value settings from Hadoop XML files over `DEFAULTS` (a subclass's), with typed
    look-ups that fail with one sentence naming the key."""

    DEFAULTS: dict[str, str] = CORE_DEFAULTS
    FILES: tuple[str, ...] = ("core-site.xml",)

    def __init__(
        self, values: dict[str, str] | None = None, defaults: dict[str, str] | None = None
    ) -> None:
        self.defaults = dict(CORE_DEFAULTS)
        self.defaults.update(self.DEFAULTS)
        self.defaults.update(defaults or {})
        self.values: dict[str, str] = {k: str(v) for k, v in (values or {}).items()}
        self.config_dir: Path | None = None

    @classmethod
    def load(cls, config_dir: str | os.PathLike, names: tuple[str, ...] | None = None):
        conf = cls()
        conf.config_dir = Path(config_dir)
        for name in names or cls.FILES:
            path = conf.config_dir / name
            if path.exists():
                conf.values.update(read_site_xml(path))
        return conf

    # ------------------------------------------------------------ look-ups
    def raw(self, key: str) -> str | None:
        return self.values[key] if key in self.values else self.defaults.get(key)

    def is_set(self, key: str) -> bool:
        """Set by a site file (or the caller), not only by a default."""
        return key in self.values

    def get(self, key: str, default: str | None = None) -> str | None:
        value = self.raw(key)
        if value is None:
            return default
        # Hadoop expands ${other.key}; bounded so a loop of references cannot spin.
        for _ in range(10):
            new = _VAR.sub(lambda m: self.raw(m.group(1)) or "", value)
            if new == value:
                break
            value = new
        return value.strip()

    def _typed(self, key: str, default, parse):
        """parse(value), or one sentence naming the key: `key: <parse's own message>`."""
        value = self.get(key)
        if value is None or value == "":
            if default is None:
                raise KeyError(key)
            return default
        try:
            return parse(value)
        except ValueError as exc:
            msg = str(exc)
            raise ValueError(msg if key in msg else f"{key}: {msg}") from None

    def get_int(self, key: str, default: int | None = None) -> int:
        return self._typed(key, default, lambda v: _number(int, v, key, "an integer"))

    def get_float(self, key: str, default: float | None = None) -> float:
        # Hadoop's files write floats Java-style too (0.999f).
        return self._typed(key, default, lambda v: _number(float, v.rstrip("fF"), key, "a number"))

    def get_bool(self, key: str, default: bool = False) -> bool:
        value = self.get(key)
        return default if value is None or value == "" else value.lower() == "true"

    def get_size(self, key: str, default: int | None = None) -> int:
        """Sizes as Hadoop writes them: 134217728, 128m, 1k."""
        return self._typed(key, default, parse_size)

    def get_seconds(self, key: str, unit: str = "s", default: float | None = None) -> float:
        """Durations as Hadoop's getTimeDuration reads them: a bare number is in the key's
        own unit (ms for *Msec / *-interval keys, s for others), a suffix wins."""
        return self._typed(key, default, lambda v: parse_duration(v, unit))

    def get_address(self, key: str, default_port: int | None = None) -> tuple[str, int]:
        value = self.get(key) or ""
        host, sep, port = value.rpartition(":")
        if not sep:
            if default_port is None or not value:
                raise ValueError(f"configuration {key}={value!r} is not host:port")
            return value, default_port
        try:
            return host, int(port)
        except ValueError:
            raise ValueError(f"configuration {key}={value!r} is not host:port") from None

    def get_bind_address(
        self, key: str, bind_host_key: str, default_port: int | None = None
    ) -> tuple[str, int]:
        """Where a server listens, as Configuration.getSocketAddr(hostProperty, ...) reads
        it: the address key, its host replaced by the bind-host key's when that is set
        (`*.bind-host` = 0.0.0.0 listens on every address while the address key keeps
        naming the host that clients configured from the same file connect to)."""
        host, port = self.get_address(key, default_port)
        return self.get(bind_host_key) or host, port

    def set(self, key: str, value) -> None:
        self.values[key] = str(value)

    def rack_table(self) -> dict[str, str]:
        name = self.get("net.topology.table.file.name")
        if not name:
            return {}
        path = Path(name)
        if not path.is_absolute() and self.config_dir is not None:
            path = self.config_dir / path
        return parse_rack_table(path.read_text())


# ---------------------------------------------------------------- values
def _number(kind, value: str, key: str, what: str):
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"configuration {key}={value!r} is not {what}") from None


def parse_size(value: str) -> int:
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kmgtp]?)b?\s*", value.lower())
    if not m:
        raise ValueError(f"cannot read {value!r} as a size")
    return int(float(m.group(1)) * _SIZE.get(m.group(2), 1))


def parse_duration(value: str, unit: str = "s") -> float:
    m = re.fullmatch(r"\s*([0-9.]+)\s*([a-z]*)\s*", value.lower())
    if not m or (m.group(2) or unit) not in _TIME:
        raise ValueError(f"cannot read {value!r} as a duration")
    return float(m.group(1)) * _TIME[m.group(2) or unit]


def split_hostport(value: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host:
        return value, default_port
    return host, int(port)


def local_dir(value: str) -> Path:
    """First entry of a comma-separated list of file:// URIs or plain paths."""
    first = value.split(",")[0].strip()
    if first.startswith("file://"):
        first = urlparse(first).path
    return Path(first)


# ---------------------------------------------------------------- site files
def parse_site_xml(text: str, source: str = "<xml>") -> dict[str, str]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(
            f"{source}: not a Hadoop configuration file, not valid XML ({exc})"
        ) from None
    values = {}
    for prop in root.iter("property"):
        name = prop.findtext("name")
        if name is None:
            raise ValueError(f"{source}: a <property> has no <name>")
        values[name.strip()] = (prop.findtext("value") or "").strip()
    return values


def read_site_xml(path: str | os.PathLike) -> dict[str, str]:
    return parse_site_xml(Path(path).read_text(), str(path))


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


# ---------------------------------------------------------------- rack table
def parse_rack_table(text: str) -> dict[str, str]:
    """TableMapping's file, read as TableMapping reads it: a line starting with # is a
    comment, a line of exactly two columns (host-or-ip, rack) is an entry, any other line
    is skipped with a warning. Racks are network paths: "r1" means "/r1"."""
    table = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            log.warning("Line does not have two columns. Ignoring. %s", line)
            continue
        table[parts[0]] = parts[1] if parts[1].startswith("/") else "/" + parts[1]
    return table


def render_rack_table(host_racks: dict[str, str]) -> str:
    return "".join(
        f"{host} {rack if rack.startswith('/') else '/' + rack}\n"
        for host, rack in sorted(host_racks.items())
    )
