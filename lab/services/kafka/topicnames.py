"""Topic names as Kafka's org.apache.kafka.common.internals.Topic has them: what a
name may be, and the internal topics' names."""

from __future__ import annotations

OFFSETS_TOPIC = "__consumer_offsets"
TXN_TOPIC = "__transaction_state"

_LEGAL = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def validate_topic_name(name: str) -> str | None:
    if not name:
        return "Topic name is illegal, it can't be empty"
    if name in (".", ".."):
        return 'Topic name cannot be "." or ".."'
    if len(name) > 249:
        return "Topic name is illegal, it can't be longer than 249 characters"
    if not set(name) <= _LEGAL:
        return f"Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
    return None
