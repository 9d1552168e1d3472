"""The chaos Kafka workload's clients leave no kafka-python thread behind: a client
whose constructor fails to bootstrap, a producer whose close cannot flush, a consumer
whose coordinator is gone."""

from __future__ import annotations

import time

import pytest
from kafka.errors import KafkaError

from lab.chaos.workloads.kafka_clients import (
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    close,
    kafka_threads,
    make,
)
from lab.services.ports import free_port


def _none_left(before: set, wait: float = 5.0) -> list:
    deadline = time.monotonic() + wait
    while True:
        left = [t for t in kafka_threads() if t not in before]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@pytest.mark.parametrize("cls", [KafkaAdminClient, KafkaConsumer])
def test_a_constructor_that_cannot_bootstrap_leaves_no_thread(cls):
    before = set(kafka_threads())
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(KafkaError):
        make(cls, bootstrap_servers=dead, bootstrap_timeout_ms=800, request_timeout_ms=800)
    assert _none_left(before) == []


def test_clients_closed_after_their_broker_died_leave_no_thread(make_broker):
    broker = make_broker(0)
    before = set(kafka_threads())
    bs = broker.bootstrap
    admin = make(KafkaAdminClient, bootstrap_servers=bs, request_timeout_ms=5000)
    producer = make(KafkaProducer, bootstrap_servers=bs, acks="all", linger_ms=0)
    consumer = make(
        KafkaConsumer,
        "chaosclose",
        bootstrap_servers=bs,
        group_id="chaosclose",
        auto_offset_reset="earliest",
        request_timeout_ms=5000,
    )
    producer.send("chaosclose", b"x").get(timeout=30)
    deadline = time.monotonic() + 30
    while not consumer.poll(timeout_ms=300) and time.monotonic() < deadline:
        pass
    # they ran: each has its thread
    assert len([t for t in kafka_threads() if t not in before]) >= 3
    broker.kill()
    producer.send("chaosclose", b"never acknowledged")  # close's flush cannot finish
    for client in (producer, consumer, admin):
        close(client)
    assert _none_left(before) == []
