"""The ``hosts:`` section: the machines a lab spreads over, and which rack runs where.

    hosts:
      h1: {address: spare1.example.net, user: root, key: ~/.ssh/id_ed25519,
           known_hosts: ~/.ssh/known_hosts}
      h2: {address: 192.0.2.12, port: 2222}
    racks:
      r1: {host: h1, nodes: [n1, n2, n3]}

A lab without ``hosts`` is local, as it always was; with it, every rack names its host.
Paths may start with ``~`` and are read relative to the topology file's folder.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,14}$")
# a DNS name (labels of letters, digits, '-') or an IPv4/IPv6 address
DNS_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")  # fmt: skip
USER_NAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


@dataclass
class HostDef:
    name: str
    address: str
    user: str = "root"
    port: int = 22
    key: str | None = None  # a private key file; None: the user's usual keys
    known_hosts: str = DEFAULT_KNOWN_HOSTS

    def as_dict(self) -> dict:
        return dict(vars(self))


def _path(value: str, base: Path) -> str:
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def check_hosts(parsed, src) -> tuple[dict[str, HostDef], dict[str, str]]:
    """-> (hosts by name, host of each rack); ``src.error`` for the first mistake.

    ``parsed`` is the TopologyFile; ``src`` the yamlsource it came from (for lines and
    the file's folder)."""
    base = Path(src.file).parent if src.file and not src.file.startswith("<") else Path.cwd()
    hosts: dict[str, HostDef] = {}
    seen: dict[tuple[str, int], HostDef] = {}
    for name, h in parsed.hosts.items():
        where = ("hosts", name)
        if h is None:
            raise src.error(where, "give the host's address: {address: ...}")
        if not HOST_NAME.match(name):
            raise src.error(
                where, "host names: a lower-case letter, then letters, digits, '-' (15 max)"
            )
        if not _is_address(h.address):
            raise src.error(
                where + ("address",), f"{h.address!r} is neither a host name nor an IP address"
            )
        if not USER_NAME.match(h.user):
            raise src.error(where + ("user",), f"{h.user!r} is not a login name")
        # files are looked for when racklab logs in (a login names what is missing), so
        # that a file for other machines still validates here
        key = _path(h.key, base) if h.key is not None else None
        known = _path(h.known_hosts or DEFAULT_KNOWN_HOSTS, base)
        hosts[name] = HostDef(name, h.address, h.user, h.port, key, known)
        spot = (h.address.lower(), h.port)
        if spot in seen:
            first = seen[spot]
            raise src.error(
                where + ("address",),
                f"host {first.name} is already {first.address} port {first.port}; "
                "one machine, one host name",
            )
        seen[spot] = hosts[name]

    placed: dict[str, str] = {}
    for rack, rdef in parsed.racks.items():
        if rdef.host is None:
            if hosts:
                raise src.error(
                    ("racks", rack),
                    f"rack {rack} names no host; with a hosts section every rack says where "
                    "it runs (host: ...)",
                )
            continue
        if rdef.host not in hosts:
            known_names = ", ".join(hosts) if hosts else "the file has no hosts section"
            raise src.error(("racks", rack, "host"), f"unknown host {rdef.host!r} ({known_names})")
        placed[rack] = rdef.host
    return hosts, placed


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]"))
        return True
    except ValueError:
        return bool(DNS_NAME.match(value)) and not value.replace(".", "").isdigit()
