"""What DescribeConfigs answers for a topic or a broker, as Kafka's ConfigHelper builds it
in a ZooKeeper-era 3.x broker: every topic config with its value, where the value comes
from (the topic's override, the broker's server.properties, or Kafka's default), its
type, and the broker-config synonyms behind it.

A topic config without an override takes the broker's setting of its synonym
(``retention.ms`` from ``log.retention.ms``, ``.minutes`` or ``.hours``, first found),
else Kafka's default. The synonyms listed are the broker keys set in the file
(STATIC_BROKER_CONFIG), then those with a Kafka default (DEFAULT_CONFIG), from the first
synonym's own entry on, as ConfigHelper.configSynonyms drops what comes before it.
"""

from __future__ import annotations

import logging

from . import topicconfig as tc
from .config import BROKER_SETTINGS, BrokerConfig

# DescribeConfigsResponse.ConfigSource ids
TOPIC_CONFIG = 1
DYNAMIC_BROKER_CONFIG = 2
DYNAMIC_DEFAULT_BROKER_CONFIG = 3
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5
DYNAMIC_BROKER_LOGGER_CONFIG = 6

# DescribeConfigsResponse.ConfigType ids, by the parser topicconfig uses for the key
_TYPE_IDS = {tc.BOOLEAN: 1, tc.STRING: 2, tc.INT: 3, tc.SHORT: 4, tc.LONG: 5, tc.DOUBLE: 6}
LIST_TYPE = 7

LONG_MAX = str((1 << 63) - 1)

# topic config -> (its broker synonyms with the factor to milliseconds where they are
# hours or minutes, Kafka 3.x's default of the topic config); ServerTopicConfigSynonyms
TOPIC_SYNONYMS: dict[str, tuple[tuple[tuple[str, int], ...], str]] = {
    "cleanup.policy": ((("log.cleanup.policy", 1),), "delete"),
    "compression.type": ((("compression.type", 1),), "producer"),
    "delete.retention.ms": ((("log.cleaner.delete.retention.ms", 1),), "86400000"),
    "file.delete.delay.ms": ((("log.segment.delete.delay.ms", 1),), "60000"),
    "flush.messages": ((("log.flush.interval.messages", 1),), LONG_MAX),
    "flush.ms": ((("log.flush.interval.ms", 1),), LONG_MAX),
    "follower.replication.throttled.replicas": ((), ""),
    "index.interval.bytes": ((("log.index.interval.bytes", 1),), "4096"),
    "leader.replication.throttled.replicas": ((), ""),
    "max.compaction.lag.ms": ((("log.cleaner.max.compaction.lag.ms", 1),), LONG_MAX),
    "max.message.bytes": ((("message.max.bytes", 1),), "1048588"),
    "message.downconversion.enable": ((("log.message.downconversion.enable", 1),), "true"),
    "message.format.version": ((("log.message.format.version", 1),), "3.0-IV1"),
    "message.timestamp.difference.max.ms": (
        (("log.message.timestamp.difference.max.ms", 1),),
        LONG_MAX,
    ),
    "message.timestamp.type": ((("log.message.timestamp.type", 1),), "CreateTime"),
    "min.cleanable.dirty.ratio": ((("log.cleaner.min.cleanable.ratio", 1),), "0.5"),
    "min.compaction.lag.ms": ((("log.cleaner.min.compaction.lag.ms", 1),), "0"),
    "min.insync.replicas": ((("min.insync.replicas", 1),), "1"),
    "preallocate": ((("log.preallocate", 1),), "false"),
    "retention.bytes": ((("log.retention.bytes", 1),), "-1"),
    "retention.ms": (
        (
            ("log.retention.ms", 1),
            ("log.retention.minutes", 60000),
            ("log.retention.hours", 3600000),
        ),
        "604800000",
    ),
    "segment.bytes": ((("log.segment.bytes", 1),), "1073741824"),
    "segment.index.bytes": ((("log.index.size.max.bytes", 1),), "10485760"),
    "segment.jitter.ms": ((("log.roll.jitter.ms", 1), ("log.roll.jitter.hours", 3600000)), "0"),
    "segment.ms": ((("log.roll.ms", 1), ("log.roll.hours", 3600000)), "604800000"),
    "unclean.leader.election.enable": ((("unclean.leader.election.enable", 1),), "false"),
}

# Kafka 3.x's defaults of broker keys (KafkaConfig): those a synonym list can name, and
# the settings this broker reads; a key without a default (log.retention.ms) is absent
BROKER_DEFAULTS: dict[str, str] = {
    "log.cleanup.policy": "delete",
    "compression.type": "producer",
    "log.cleaner.delete.retention.ms": "86400000",
    "log.segment.delete.delay.ms": "60000",
    "log.flush.interval.messages": LONG_MAX,
    "log.index.interval.bytes": "4096",
    "log.cleaner.max.compaction.lag.ms": LONG_MAX,
    "message.max.bytes": "1048588",
    "log.message.downconversion.enable": "true",
    "log.message.format.version": "3.0-IV1",
    "log.message.timestamp.difference.max.ms": LONG_MAX,
    "log.message.timestamp.type": "CreateTime",
    "log.cleaner.min.cleanable.ratio": "0.5",
    "log.cleaner.min.compaction.lag.ms": "0",
    "min.insync.replicas": "1",
    "log.preallocate": "false",
    "log.retention.bytes": "-1",
    "log.retention.hours": "168",
    "log.segment.bytes": "1073741824",
    "log.index.size.max.bytes": "10485760",
    "log.roll.jitter.hours": "0",
    "log.roll.hours": "168",
    "unclean.leader.election.enable": "false",
    "num.partitions": "1",
    "default.replication.factor": "1",
    "auto.create.topics.enable": "true",
    "delete.topic.enable": "true",
    "log.retention.check.interval.ms": "300000",
    "socket.request.max.bytes": "104857600",
    "replica.lag.time.max.ms": "30000",
    "replica.fetch.wait.max.ms": "500",
    "replica.fetch.max.bytes": "1048576",
    "auto.leader.rebalance.enable": "true",
    "leader.imbalance.check.interval.seconds": "300",
    "offsets.topic.num.partitions": "50",
    "offsets.topic.replication.factor": "3",
    "offsets.commit.timeout.ms": "5000",
    "transaction.state.log.num.partitions": "50",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "transaction.max.timeout.ms": "900000",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "10000",
    "group.initial.rebalance.delay.ms": "3000",
    "group.min.session.timeout.ms": "6000",
    "group.max.session.timeout.ms": "1800000",
    "zookeeper.session.timeout.ms": "18000",
    "connections.max.idle.ms": "600000",
    "log.cleaner.enable": "true",
    "log.cleaner.backoff.ms": "15000",
}

# broker keys a running broker takes (Kafka's DynamicBrokerConfig.AllDynamicConfigs, the
# part that concerns this broker: DynamicLogConfig's first synonym of each topic config,
# and the cleaner's); the rest are read-only
DYNAMIC_BROKER_KEYS = frozenset(syns[0][0] for syns, _ in TOPIC_SYNONYMS.values() if syns) | {
    "log.cleaner.threads",
    "log.cleaner.backoff.ms",
}

_BROKER_TYPES = {key: conv for key, conv, _, _ in BROKER_SETTINGS}


def topic_config_type(name: str) -> int:
    conv = tc.TOPIC_CONFIGS[name][0]
    return LIST_TYPE if conv is tc.LIST else _TYPE_IDS.get(conv, 0)


def _synonym(name: str, value: str | None, source: int) -> dict:
    return {"name": name, "value": value, "source": source}


def _broker_synonyms(
    static: dict[str, str],
    names: list[str],
    default: dict[str, str] | None = None,
    own: dict[str, str] | None = None,
) -> list[dict]:
    """ConfigHelper.configSynonyms: this broker's dynamic settings, the cluster's dynamic
    defaults, the static ones, then Kafka's defaults, from names[0]'s own entry on."""
    found = [_synonym(n, own[n], DYNAMIC_BROKER_CONFIG) for n in names if n in (own or {})]
    found += [
        _synonym(n, default[n], DYNAMIC_DEFAULT_BROKER_CONFIG)
        for n in names
        if n in (default or {})
    ]
    found += [_synonym(n, static[n], STATIC_BROKER_CONFIG) for n in names if n in static]
    found += [
        _synonym(n, BROKER_DEFAULTS[n], DEFAULT_CONFIG) for n in names if n in BROKER_DEFAULTS
    ]
    first = names[0] if names else None
    while found and found[0]["name"] != first:
        found.pop(0)
    return found


def _entry(name: str, value, source: int, synonyms: list[dict], type_id: int, read_only: bool):
    return {
        "name": name,
        "value": value,
        "read_only": read_only,
        "is_default": source == DEFAULT_CONFIG,  # v0 only
        "config_source": source,
        "is_sensitive": False,
        "synonyms": synonyms,
        "config_type": type_id,
        "documentation": None,
    }


def topic_effective(props: dict[str, str], name: str) -> str:
    """The value a topic without an override has: its broker synonym (``props``: the
    file's settings with the dynamic ones over them), or the default."""
    synonyms, default = TOPIC_SYNONYMS[name]
    for key, scale in synonyms:
        if key in props:
            raw = props[key].strip()
            if scale != 1:
                n = int(raw)
                return str(n * scale if n >= 0 else -1)
            return raw
    return default


def describe_topic(
    cfg: BrokerConfig,
    overrides: dict[str, str],
    synonyms: bool,
    default: dict[str, str] | None = None,
    own: dict[str, str] | None = None,
) -> list[dict]:
    out = []
    props = {**cfg.static, **(default or {}), **(own or {})}
    for name in sorted(TOPIC_SYNONYMS):
        names = [k for k, _ in TOPIC_SYNONYMS[name][0]]
        syns = _broker_synonyms(cfg.static, names, default, own)
        if name in overrides:
            value = overrides[name]
            syns.insert(0, _synonym(name, value, TOPIC_CONFIG))
        else:
            value = topic_effective(props, name)
        source = syns[0]["source"] if syns else DEFAULT_CONFIG
        out.append(
            _entry(name, value, source, syns if synonyms else [], topic_config_type(name), False)
        )
    return out


def describe_broker(
    cfg: BrokerConfig,
    synonyms: bool,
    default: dict[str, str] | None = None,
    own: dict[str, str] | None = None,
) -> list[dict]:
    """The broker's own settings: its dynamic ones, those in its file, and Kafka's
    defaults of the keys this broker knows."""
    out = []
    names = set(cfg.static) | set(BROKER_DEFAULTS) | set(default or {}) | set(own or {})
    for name in sorted(names):
        syns = _broker_synonyms(cfg.static, [name], default, own)
        source = syns[0]["source"] if syns else DEFAULT_CONFIG
        value = syns[0]["value"] if syns else None
        conv = _BROKER_TYPES.get(name)
        out.append(
            _entry(
                name,
                value,
                source,
                syns if synonyms else [],
                _TYPE_IDS.get(conv, 0) if conv else 0,
                name not in DYNAMIC_BROKER_KEYS,
            )
        )
    return out


def describe_cluster_defaults(dynamic_default: dict[str, str], synonyms: bool) -> list[dict]:
    """The broker resource with an empty name: the cluster-wide dynamic defaults only."""
    out = []
    for name, value in sorted(dynamic_default.items()):
        syns = [_synonym(name, value, DYNAMIC_DEFAULT_BROKER_CONFIG)]
        conv = _BROKER_TYPES.get(name)
        out.append(
            _entry(
                name,
                value,
                DYNAMIC_DEFAULT_BROKER_CONFIG,
                syns if synonyms else [],
                _TYPE_IDS.get(conv, 0) if conv else 0,
                False,
            )
        )
    return out


def logger_entry(name: str, logger: logging.Logger) -> dict:
    """A BROKER_LOGGER entry: a logger of this broker and its level (Kafka lists log4j's)."""
    level = logging.getLevelName(logger.getEffectiveLevel())
    return _entry(name, level, DYNAMIC_BROKER_LOGGER_CONFIG, [], 0, False)


def select(entries: list[dict], keys: list[str] | None) -> list[dict]:
    """Only the asked keys (null or empty: all), as ConfigHelper filters."""
    if not keys:
        return entries
    return [e for e in entries if e["name"] in keys]
