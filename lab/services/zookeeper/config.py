"""zoo.cfg in Apache ZooKeeper's own format and key names, so an existing file works."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


class ConfigError(ValueError):
    pass


@dataclass
class Peer:
    sid: int
    host: str
    peer_port: int
    election_port: int
    role: str = "participant"
    client_host: str | None = None
    client_port: int | None = None


@dataclass
class Config:
    data_dir: str
    tick_time: int = 2000
    init_limit: int = 10
    sync_limit: int = 5
    client_port: int = 2181
    client_port_address: str = "0.0.0.0"
    data_log_dir: str | None = None
    max_client_cnxns: int = 60
    min_session_timeout: int = -1
    max_session_timeout: int = -1
    snap_count: int = 100000
    snap_retain_count: int = 3
    # ZooKeeper's default jute.maxbuffer: a request frame of more than 0xfffff bytes
    # closes the connection (NIOServerCnxn.readLength: len > maxBuffer)
    jute_maxbuffer: int = 0xFFFFF
    container_check_interval: int = 60000  # ms, znode.container.checkIntervalMs
    container_max_per_minute: int = 10000  # znode.container.maxPerMinute
    container_max_never_used: int = 0  # ms, znode.container.maxNeverUsedIntervalMs
    extended_types: bool = False  # zookeeper.extendedTypesEnabled (TTL nodes)
    enforce_quota: bool = False  # zookeeper.enforceQuota: hard quota limits refuse writes
    prealloc_kb: int = 16384  # preAllocSize: log files grow in steps of this many KB
    force_sync: bool = True  # forceSync=no skips the fsync (ZooKeeper's unsafe test knob)
    reconfig_enabled: bool = False  # reconfigEnabled: clients may change the membership
    config_version: int = 0  # the membership's version (a dynamic file's name holds it)
    super_digest: str | None = None  # DigestAuthenticationProvider.superDigest (user:hash)
    # 4lw.commands.whitelist: the four-letter words answered, None for every one;
    # without the key only srvr, as Apache 3.5+ (FourLetterCommands)
    four_letter_words: frozenset[str] | None = frozenset({"srvr"})
    servers: dict[int, Peer] = field(default_factory=dict)
    myid: int = 0
    raw: dict[str, str] = field(default_factory=dict)
    path: str | None = None

    @property
    def min_timeout(self) -> int:
        return self.min_session_timeout if self.min_session_timeout > 0 else 2 * self.tick_time

    @property
    def max_timeout(self) -> int:
        return self.max_session_timeout if self.max_session_timeout > 0 else 20 * self.tick_time

    @property
    def standalone(self) -> bool:
        return len(self.servers) <= 1

    @property
    def log_dir(self) -> str:
        return self.data_log_dir or self.data_dir


def _int(key: str, value: str, lineno: int) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"line {lineno}: {key} must be an integer, got {value!r}") from None


def _peer(sid: int, value: str, lineno: int) -> Peer:
    # server.N=host:peerPort:electionPort[:participant|observer][;[clientHost:]clientPort]
    client = None
    if ";" in value:
        value, client = value.split(";", 1)
    parts = value.split(":")
    if len(parts) < 3:
        raise ConfigError(f"line {lineno}: server.{sid} must be host:peerPort:electionPort")
    peer = Peer(
        sid, parts[0], _int("peerPort", parts[1], lineno), _int("electionPort", parts[2], lineno)
    )
    if len(parts) > 3:
        peer.role = parts[3]
    if client:
        if ":" in client:
            h, p = client.rsplit(":", 1)
            peer.client_host, peer.client_port = h, _int("clientPort", p, lineno)
        else:
            peer.client_port = _int("clientPort", client, lineno)
    return peer


def _read_servers(text: str, servers: dict[int, Peer]) -> None:
    """server.N lines of a dynamic config file (everything else in it is ignored)."""
    for lineno, line in enumerate(text.splitlines(), 1):
        key, eq, value = (s.strip() for s in line.partition("="))
        if eq and key.startswith("server."):
            sid = _int(key, key[len("server.") :], lineno)
            servers[sid] = _peer(sid, value, lineno)


def parse(text: str, path: str | None = None) -> Config:
    raw: dict[str, str] = {}
    where: dict[str, int] = {}  # key -> line number, for messages
    servers: dict[int, Peer] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ConfigError(f"line {lineno}: expected key=value, got {line!r}")
        key, value = (s.strip() for s in line.split("=", 1))
        if key.startswith("server."):
            sid = _int(key, key[len("server.") :], lineno)
            servers[sid] = _peer(sid, value, lineno)
        raw[key] = value
        where[key] = lineno
    if "dataDir" not in raw:
        raise ConfigError("dataDir is required")
    version = 0
    dynamic = raw.get("dynamicConfigFile")
    if dynamic:
        # zoo.cfg.dynamic.<version>, as a reconfig-enabled ensemble writes it
        try:
            with open(dynamic) as f:
                _read_servers(f.read(), servers)
        except OSError as e:
            raise ConfigError(f"dynamicConfigFile {dynamic}: {e.strerror}") from None
        suffix = dynamic.rsplit(".", 1)[-1]
        version = int(suffix, 16) if all(c in "0123456789abcdef" for c in suffix) else 0
    cfg = Config(
        data_dir=raw["dataDir"], raw=raw, servers=servers, path=path, config_version=version
    )
    ints = {
        "tickTime": "tick_time",
        "initLimit": "init_limit",
        "syncLimit": "sync_limit",
        "clientPort": "client_port",
        "maxClientCnxns": "max_client_cnxns",
        "minSessionTimeout": "min_session_timeout",
        "maxSessionTimeout": "max_session_timeout",
        "snapCount": "snap_count",
        "autopurge.snapRetainCount": "snap_retain_count",
        "jute.maxbuffer": "jute_maxbuffer",
        "znode.container.checkIntervalMs": "container_check_interval",
        "znode.container.maxPerMinute": "container_max_per_minute",
        "znode.container.maxNeverUsedIntervalMs": "container_max_never_used",
        "preAllocSize": "prealloc_kb",
    }
    for key, attr in ints.items():
        if key in raw:
            setattr(cfg, attr, _int(key, raw[key], where[key]))
    if "clientPortAddress" in raw:
        cfg.client_port_address = raw["clientPortAddress"]
    if "4lw.commands.whitelist" in raw:
        # FourLetterCommands: comma-separated words, "*" for all
        words = {w.strip() for w in raw["4lw.commands.whitelist"].split(",") if w.strip()}
        cfg.four_letter_words = None if "*" in words else frozenset(words)
    if raw.get("forceSync", "yes").lower() == "no":
        cfg.force_sync = False
    # Apache turns a zoo.cfg key it does not know into the system property
    # "zookeeper.<key>", so both spellings reach the same switch.
    for key in ("zookeeper.extendedTypesEnabled", "extendedTypesEnabled"):
        if key in raw:
            cfg.extended_types = raw[key].strip().lower() == "true"
    for key in ("zookeeper.enforceQuota", "enforceQuota"):
        if key in raw:
            cfg.enforce_quota = raw[key].strip().lower() == "true"
    cfg.reconfig_enabled = raw.get("reconfigEnabled", "false").strip().lower() == "true"
    for key in (
        "zookeeper.DigestAuthenticationProvider.superDigest",
        "DigestAuthenticationProvider.superDigest",
    ):
        if key in raw:
            cfg.super_digest = raw[key].strip()
    if "dataLogDir" in raw:
        cfg.data_log_dir = raw["dataLogDir"]
    myid_path = os.path.join(cfg.data_dir, "myid")
    if os.path.exists(myid_path):
        with open(myid_path) as f:
            text = f.read().strip()
        try:
            cfg.myid = int(text)
        except ValueError:
            if len(servers) > 1:  # a standalone server ignores myid, as Apache's does
                raise ConfigError(
                    f"{myid_path} must hold this server's id (1-255), not {text[:40]!r}"
                ) from None
    elif len(servers) > 1:
        raise ConfigError(f"{myid_path} is missing: an ensemble member needs its myid")
    if len(servers) > 1 and cfg.myid not in servers:
        raise ConfigError(f"myid {cfg.myid} has no server.{cfg.myid} line")
    return cfg


def load(path: str) -> Config:
    with open(path) as f:
        return parse(f.read(), path)


def render(cfg: dict) -> str:
    """zoo.cfg text from a mapping of ZooKeeper keys (used by the orchestrator and tests)."""
    return "".join(f"{k}={v}\n" for k, v in cfg.items())
