"""Topic configs and the broker's own numeric settings, checked as Kafka's ConfigDef
checks them (types and ranges from Kafka 2.8's LogConfig and KafkaConfig).

A value is refused before anything is written, with Kafka's own message
("Invalid value abc for configuration max.message.bytes: Not a number of type INT"),
so nothing later (a produce, a roll, a retention pass) meets a value it cannot use.
Kafka stores the strings as given; the broker reads them back through ``parse``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any


class ConfigValueError(ValueError):
    """Kafka's ConfigException / InvalidConfigurationException: INVALID_CONFIG (40)."""


INT_RANGE = (-(1 << 31), (1 << 31) - 1)
SHORT_RANGE = (-(1 << 15), (1 << 15) - 1)
LONG_RANGE = (-(1 << 63), (1 << 63) - 1)
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")  # Java's parseInt/parseLong, never Python's "1_000"
_DOUBLE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[dDfF]?\Z")
_LIST_SPLIT = re.compile(r"\s*,\s*")


def _invalid(name: str, value: Any, why: str) -> ConfigValueError:
    return ConfigValueError(f"Invalid value {value} for configuration {name}: {why}")


def _number(type_name: str, bounds: tuple[int, int]) -> Callable[[str, str], int]:
    def parse(name: str, value: str) -> int:
        s = value.strip()
        if not _INTEGER.match(s) or not bounds[0] <= int(s) <= bounds[1]:
            raise _invalid(name, value, f"Not a number of type {type_name}")
        return int(s)

    return parse


INT = _number("INT", INT_RANGE)
SHORT = _number("SHORT", SHORT_RANGE)
LONG = _number("LONG", LONG_RANGE)


def DOUBLE(name: str, value: str) -> float:
    s = value.strip()
    if not _DOUBLE.match(s):
        raise _invalid(name, value, "Not a number of type DOUBLE")
    return float(s.rstrip("dDfF"))


def BOOLEAN(name: str, value: str) -> bool:
    s = value.strip().lower()
    if s not in ("true", "false"):
        raise _invalid(name, value, "Expected value to be either true or false")
    return s == "true"


def STRING(name: str, value: str) -> str:
    return value.strip()


def LIST(name: str, value: str) -> list[str]:
    s = value.strip()
    return _LIST_SPLIT.split(s) if s else []


def at_least(low: float):
    def check(name: str, value: Any, raw: str) -> None:
        if value < low:
            raise _invalid(name, raw, f"Value must be at least {low}")

    return check


def between(low: float, high: float):
    def check(name: str, value: Any, raw: str) -> None:
        if not low <= value <= high:  # also refuses NaN, which is no ratio
            why = (
                f"Value must be at least {low}"
                if value < low
                else f"Value must be no more than {high}"
            )
            raise _invalid(name, raw, why)

    return check


def one_of(*allowed: str):
    def check(name: str, value: Any, raw: str) -> None:
        for v in value if isinstance(value, list) else [value]:
            if v not in allowed:
                raise _invalid(name, v, "String must be one of: " + ", ".join(allowed))

    return check


def _throttled_replicas(name: str, value: list[str], raw: str) -> None:
    if value == ["*"] or all(re.fullmatch(r"[0-9]+:[0-9]+", v) for v in value):
        return
    raise _invalid(
        name,
        raw,
        "must be the literal '*' or a list of replicas in the following format: "
        "[partitionId]:[brokerId],[partitionId]:[brokerId],...",
    )


_VERSION = re.compile(
    r"(0\.(8\.[0-2]|9\.0|10\.[0-2]|11\.0)|1\.[01]|2\.[0-8]|3\.[0-9])(\.[0-9]+)?(-IV[0-9]+)?\Z"
)


def _format_version(name: str, value: str, raw: str) -> None:
    if not _VERSION.match(value):
        raise _invalid(name, raw, f"Version `{value}` is not a valid version")


# name -> (parser, validator or None): Kafka 2.8 LogConfig.configDef
TOPIC_CONFIGS: dict[str, tuple[Callable, Callable | None]] = {
    "segment.bytes": (INT, at_least(14)),  # LegacyRecord.RECORD_OVERHEAD_V0
    "segment.ms": (LONG, at_least(1)),
    "segment.jitter.ms": (LONG, at_least(0)),
    "segment.index.bytes": (INT, at_least(0)),
    "flush.messages": (LONG, at_least(0)),
    "flush.ms": (LONG, at_least(0)),
    "retention.bytes": (LONG, None),  # negative: no size limit
    "retention.ms": (LONG, at_least(-1)),
    "max.message.bytes": (INT, at_least(0)),
    "index.interval.bytes": (INT, at_least(0)),
    "delete.retention.ms": (LONG, at_least(0)),
    "min.compaction.lag.ms": (LONG, at_least(0)),
    "max.compaction.lag.ms": (LONG, at_least(1)),
    "file.delete.delay.ms": (LONG, at_least(0)),
    "min.cleanable.dirty.ratio": (DOUBLE, between(0, 1)),
    "cleanup.policy": (LIST, one_of("compact", "delete")),
    "unclean.leader.election.enable": (BOOLEAN, None),
    "min.insync.replicas": (INT, at_least(1)),
    "compression.type": (
        STRING,
        one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
    ),
    "preallocate": (BOOLEAN, None),
    "message.format.version": (STRING, _format_version),
    "message.timestamp.type": (STRING, one_of("CreateTime", "LogAppendTime")),
    "message.timestamp.difference.max.ms": (LONG, at_least(0)),
    "leader.replication.throttled.replicas": (LIST, _throttled_replicas),
    "follower.replication.throttled.replicas": (LIST, _throttled_replicas),
    "message.downconversion.enable": (BOOLEAN, None),
}


def parse(name: str, value: str) -> Any:
    """The typed value of one topic config; ConfigValueError naming the key if bad."""
    if name not in TOPIC_CONFIGS:
        raise ConfigValueError(f"Unknown topic config name: {name}")
    conv, check = TOPIC_CONFIGS[name]
    typed = conv(name, value)
    if check is not None:
        check(name, typed, value)
    return typed


def validate(configs: dict[str, str]) -> dict[str, Any]:
    """Every name known and every value of its type and range (LogConfig.validate);
    returns the typed values."""
    typed = {name: parse(name, value) for name, value in configs.items()}
    lo = typed.get("min.compaction.lag.ms", 0)
    hi = typed.get("max.compaction.lag.ms", LONG_RANGE[1])
    if lo > hi:
        raise ConfigValueError(
            f"conflict topic config setting min.compaction.lag.ms ({lo}) > "
            f"max.compaction.lag.ms ({hi})"
        )
    return typed


def typed_or_skip(configs: dict[str, str], on_bad: Callable[[str, str, str], None]) -> dict:
    """Typed values of configs read back from ZooKeeper; a value this broker cannot use
    (written by something that did not check it) is reported and left to the default."""
    out = {}
    for name, value in configs.items():
        try:
            out[name] = parse(name, value)
        except ConfigValueError as e:
            on_bad(name, value, str(e))
    return out
