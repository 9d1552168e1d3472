"""Clients speaking Kafka 0.10's protocol (Produce v2, Fetch v2, message format v1)
are refused with UNSUPPORTED_VERSION, which they raise, as a broker that dropped those
versions refuses them; the connection stays open and newer clients are unaffected."""

from __future__ import annotations

import logging
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import UnsupportedVersionError

from .clients import send_values


def test_old_producer_gets_unsupported_version(broker):
    send_values(broker.bootstrap, "old", [b"from a current client"])  # creates the topic
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, api_version=(0, 10, 0), retries=0, acks=1)
    try:
        with pytest.raises(UnsupportedVersionError):
            p.send("old", b"v1 message set").get(30)
        # the same connection answers again: refused each time, not dropped
        with pytest.raises(UnsupportedVersionError):
            p.send("old", b"again").get(30)
    finally:
        p.close()
    log = broker.log_text()
    assert "Produce v2 from 127.0.0.1" in log
    assert "refused with UNSUPPORTED_VERSION" in log
    assert "closing connection" not in log


def test_old_consumer_gets_unsupported_version(broker, caplog):
    send_values(broker.bootstrap, "oldfetch", [b"stored as a record batch"])
    c = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, api_version=(0, 10, 0), auto_offset_reset="earliest"
    )
    tp = TopicPartition("oldfetch", 0)
    c.assign([tp])
    # from offset 0 straight away: its first request is the Fetch (v2 at 0.10)
    c.seek(tp, 0)
    raised = None
    deadline = time.monotonic() + 20
    try:
        while raised is None and time.monotonic() < deadline:
            try:
                assert not c.poll(timeout_ms=300)  # never records in a format it cannot read
            except UnsupportedVersionError as e:
                raised = e
    finally:
        c.close()
    assert raised is not None, "the old consumer was never told its Fetch version is refused"
    assert "Fetch v2 from 127.0.0.1" in broker.log_text()
    # without a position it first asks for offsets (ListOffsets v0): refused the same
    # way; kafka-python retries that one and logs why each time
    c = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, api_version=(0, 10, 0), auto_offset_reset="earliest"
    )
    c.assign([tp])
    deadline = time.monotonic() + 20
    try:
        with caplog.at_level(logging.WARNING, logger="kafka.consumer.fetcher"):
            while "UnsupportedVersionError" not in caplog.text and time.monotonic() < deadline:
                assert not c.poll(timeout_ms=300)
    finally:
        c.close()
    assert "failed due to: UnsupportedVersionError" in caplog.text
    assert "ListOffsets v0 from 127.0.0.1" in broker.log_text()
    assert "closing connection" not in broker.log_text()
    # a current client still reads the record
    c = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000
    )
    c.assign([TopicPartition("oldfetch", 0)])
    assert [m.value for m in c] == [b"stored as a record batch"]
    c.close()
