"""server.properties with Kafka's own keys, so an existing file works.

Keys this broker does not know are kept (and logged once) rather than refused:
real Kafka files carry many tuning keys that have no meaning here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from . import topicconfig as tc
from .log import LogConfig

log = logging.getLogger("lab.kafka.config")


class ConfigError(ValueError):
    pass


def parse_properties(text: str) -> dict[str, str]:
    """Java .properties, the subset Kafka files use: key=value or key: value,
    # and ! comments, backslash line continuations."""
    props: dict[str, str] = {}
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#!":
            continue
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        for i, ch in enumerate(line):
            if ch in "=:":
                props[line[:i].strip()] = line[i + 1 :].strip()
                break
        else:
            props[line] = ""
    return props


@dataclass
class Listener:
    name: str
    host: str
    port: int


def parse_listener(spec: str) -> Listener:
    first = spec.split(",")[0].strip()
    u = urlsplit(first)
    if not u.scheme or u.port is None:
        raise ConfigError(f"listener {first!r} is not of the form PLAINTEXT://host:port")
    if u.scheme.upper() not in ("PLAINTEXT",):
        raise ConfigError(f"listener {first!r}: only PLAINTEXT is served")
    return Listener(u.scheme.upper(), u.hostname or "", u.port)


_KNOWN = {
    "broker.id",
    "listeners",
    "advertised.listeners",
    "log.dirs",
    "log.dir",
    "zookeeper.connect",
    "zookeeper.session.timeout.ms",
    "zookeeper.connection.timeout.ms",
    "num.partitions",
    "default.replication.factor",
    "min.insync.replicas",
    "auto.create.topics.enable",
    "delete.topic.enable",
    "log.segment.bytes",
    "log.retention.hours",
    "log.retention.minutes",
    "log.retention.ms",
    "log.retention.bytes",
    "log.retention.check.interval.ms",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.index.interval.bytes",
    "socket.request.max.bytes",
    "message.max.bytes",
    "replica.lag.time.max.ms",
    "replica.fetch.wait.max.ms",
    "replica.fetch.max.bytes",
    "unclean.leader.election.enable",
    "offsets.topic.num.partitions",
    "offsets.topic.replication.factor",
    "offsets.commit.timeout.ms",
    "transaction.state.log.num.partitions",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "transaction.max.timeout.ms",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
    "group.initial.rebalance.delay.ms",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "broker.rack",
    "cluster.id",
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
    "connections.max.idle.ms",
    "log.cleaner.enable",
    "log.cleaner.backoff.ms",
}
KNOWN_KEYS = frozenset(_KNOWN)  # for a 'did you mean' in racklab's topology check


# Kafka's ConfigDef types and ranges (KafkaConfig 2.8) of the broker settings racklab
# reads: (key, type, attribute when not the key with _ for ., check)
BROKER_SETTINGS = (
    ("broker.id", tc.INT, None, None),
    ("zookeeper.connect", tc.STRING, None, None),
    ("zookeeper.session.timeout.ms", tc.INT, None, tc.at_least(1)),
    ("zookeeper.connection.timeout.ms", tc.INT, None, tc.at_least(1)),
    ("num.partitions", tc.INT, None, tc.at_least(1)),
    ("default.replication.factor", tc.INT, None, tc.at_least(1)),
    ("min.insync.replicas", tc.INT, None, tc.at_least(1)),
    ("auto.create.topics.enable", tc.BOOLEAN, "auto_create_topics", None),
    ("delete.topic.enable", tc.BOOLEAN, None, None),
    ("log.retention.check.interval.ms", tc.LONG, "retention_check_interval_ms", tc.at_least(1)),
    ("socket.request.max.bytes", tc.INT, None, tc.at_least(1)),
    ("message.max.bytes", tc.INT, None, tc.at_least(0)),
    ("replica.lag.time.max.ms", tc.LONG, None, tc.at_least(1)),
    ("replica.fetch.wait.max.ms", tc.INT, None, tc.at_least(0)),
    ("replica.fetch.max.bytes", tc.INT, None, tc.at_least(0)),
    ("unclean.leader.election.enable", tc.BOOLEAN, "unclean_leader_election", None),
    ("auto.leader.rebalance.enable", tc.BOOLEAN, "auto_leader_rebalance", None),
    (
        "leader.imbalance.check.interval.seconds",
        tc.LONG,
        "leader_imbalance_check_interval_s",
        tc.at_least(1),
    ),
    ("offsets.topic.num.partitions", tc.INT, None, tc.at_least(1)),
    ("offsets.topic.replication.factor", tc.SHORT, None, tc.at_least(1)),
    ("offsets.commit.timeout.ms", tc.INT, None, tc.at_least(1)),
    ("transaction.state.log.num.partitions", tc.INT, "txn_topic_num_partitions", tc.at_least(1)),
    (
        "transaction.state.log.replication.factor",
        tc.SHORT,
        "txn_topic_replication_factor",
        tc.at_least(1),
    ),
    ("transaction.state.log.min.isr", tc.INT, "txn_topic_min_isr", tc.at_least(1)),
    ("transaction.max.timeout.ms", tc.INT, "txn_max_timeout_ms", tc.at_least(1)),
    (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        tc.INT,
        "txn_abort_interval_ms",
        tc.at_least(1),
    ),
    ("group.initial.rebalance.delay.ms", tc.INT, None, tc.at_least(0)),
    ("group.min.session.timeout.ms", tc.INT, None, tc.at_least(0)),
    ("group.max.session.timeout.ms", tc.INT, None, tc.at_least(0)),
    ("connections.max.idle.ms", tc.LONG, None, tc.at_least(1)),
    ("log.cleaner.enable", tc.BOOLEAN, None, None),
    ("log.cleaner.backoff.ms", tc.LONG, None, tc.at_least(0)),
    ("broker.rack", tc.STRING, "rack", None),
)


@dataclass
class BrokerConfig:
    broker_id: int = 0
    listener: Listener = field(default_factory=lambda: Listener("PLAINTEXT", "127.0.0.1", 9092))
    advertised: Listener | None = None
    log_dirs: list[Path] = field(default_factory=lambda: [Path("/tmp/kafka-logs")])
    zookeeper_connect: str = ""
    zookeeper_session_timeout_ms: int = 18000
    zookeeper_connection_timeout_ms: int | None = None  # Kafka: defaults to the session timeout
    num_partitions: int = 1
    default_replication_factor: int = 1
    min_insync_replicas: int = 1
    auto_create_topics: bool = True
    delete_topic_enable: bool = True
    log: LogConfig = field(default_factory=LogConfig)
    retention_check_interval_ms: int = 300000
    socket_request_max_bytes: int = 104857600
    message_max_bytes: int = 1048588
    replica_lag_time_max_ms: int = 30000
    replica_fetch_wait_max_ms: int = 500
    replica_fetch_max_bytes: int = 1048576
    unclean_leader_election: bool = False
    auto_leader_rebalance: bool = True
    leader_imbalance_check_interval_s: int = 300
    connections_max_idle_ms: int = 600000
    # the log cleaner (compaction of cleanup.policy=compact topics): on, every 15 s
    log_cleaner_enable: bool = True
    log_cleaner_backoff_ms: int = 15000
    offsets_topic_num_partitions: int = 50
    offsets_topic_replication_factor: int = 3
    offsets_commit_timeout_ms: int = 5000
    # the transaction coordinator's log (Kafka's TransactionLog/TransactionStateManager)
    txn_topic_num_partitions: int = 50
    txn_topic_replication_factor: int = 3
    txn_topic_min_isr: int = 2
    txn_max_timeout_ms: int = 900000
    txn_abort_interval_ms: int = 10000
    group_initial_rebalance_delay_ms: int = 3000
    group_min_session_timeout_ms: int = 6000
    group_max_session_timeout_ms: int = 1800000
    rack: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # every key=value of the file (and --override), as given: DescribeConfigs' static
    # broker config
    static: dict[str, str] = field(default_factory=dict)

    @property
    def advertised_listener(self) -> Listener:
        return self.advertised or self.listener

    @classmethod
    def from_properties(cls, props: dict[str, str]) -> BrokerConfig:
        c = cls()

        def typed(key, conv, check=None):
            # Kafka's ConfigDef types and ranges (KafkaConfig 2.8): a bad value is one
            # clear error at start, never a broker that fails on its first request
            try:
                val = conv(key, props[key])
                if check is not None:
                    check(key, val, props[key])
            except tc.ConfigValueError as e:
                raise ConfigError(str(e)) from None
            return val

        for key, conv, attr, check in BROKER_SETTINGS:
            if key in props:
                setattr(c, attr or key.replace(".", "_"), typed(key, conv, check))
        if "listeners" in props:
            c.listener = parse_listener(props["listeners"])
        if "advertised.listeners" in props:
            c.advertised = parse_listener(props["advertised.listeners"])
        dirs = props.get("log.dirs") or props.get("log.dir")
        if dirs:
            c.log_dirs = [Path(d.strip()) for d in dirs.split(",") if d.strip()]
        lc = c.log
        for key, attr, conv, check in (
            ("log.segment.bytes", "segment_bytes", tc.INT, tc.at_least(14)),
            ("log.retention.bytes", "retention_bytes", tc.LONG, None),
            ("log.index.interval.bytes", "index_interval_bytes", tc.INT, tc.at_least(0)),
            ("log.flush.interval.messages", "flush_interval_messages", tc.LONG, tc.at_least(1)),
            ("log.flush.interval.ms", "flush_interval_ms", tc.LONG, tc.at_least(0)),
        ):
            if key in props:
                setattr(lc, attr, typed(key, conv, check))
        # the most specific retention key wins, as in Kafka
        for key, conv, scale in (
            ("log.retention.ms", tc.LONG, 1),
            ("log.retention.minutes", tc.INT, 60000),
            ("log.retention.hours", tc.INT, 3600000),
        ):
            if key in props:
                v = typed(key, conv)
                lc.retention_ms = v * scale if v >= 0 else -1
                if lc.retention_ms == 0:
                    raise ConfigError(
                        "log.retention.ms must be unlimited (-1) or, greater than or equal to 1"
                    )
                break
        if c.replica_fetch_wait_max_ms > c.replica_lag_time_max_ms:
            raise ConfigError(
                "replica.fetch.wait.max.ms should always be less than or equal to "
                "replica.lag.time.max.ms to prevent frequent changes in ISR"
            )
        if c.group_min_session_timeout_ms > c.group_max_session_timeout_ms:
            raise ConfigError(
                "group.min.session.timeout.ms must not be above group.max.session.timeout.ms"
            )
        if c.broker_id < 0:
            raise ConfigError("broker.id must be >= 0 (automatic ids are not supported)")
        if not c.zookeeper_connect:
            raise ConfigError(
                "zookeeper.connect is required (brokers coordinate through ZooKeeper)"
            )
        if c.min_insync_replicas < 1:
            raise ConfigError("min.insync.replicas must be >= 1")
        c.extra = {k: v for k, v in props.items() if k not in _KNOWN}
        c.static = dict(props)
        for k in c.extra:
            log.info("ignoring unknown key %s", k)
        return c

    # what a dynamic broker config (IncrementalAlterConfigs on a broker) changes in a
    # running broker: the log defaults and the settings read on each request
    DYNAMIC_FIELDS = (
        "log",
        "message_max_bytes",
        "min_insync_replicas",
        "unclean_leader_election",
        "log_cleaner_enable",
        "log_cleaner_backoff_ms",
    )

    def with_dynamic(self, dynamic: dict[str, str]) -> BrokerConfig:
        """The settings of the file with ``dynamic`` over them (cluster defaults, then
        this broker's own); ConfigError naming the key for a value Kafka would refuse."""
        return BrokerConfig.from_properties({**self.static, **dynamic})

    @classmethod
    def load(cls, path: str | Path) -> BrokerConfig:
        return cls.from_properties(parse_properties(Path(path).read_text()))
