"""kafka-python clients that leave no thread behind, however they end.

kafka-python 3.x runs each admin client's and consumer's network loop on a daemon
thread ("kafka-io-<client id>") started inside the constructor, before the client
bootstraps; a producer runs its sender thread ("<client id>-network-thread"). Under
chaos three paths leak those threads into the process that ran the workload:

- a constructor that fails to bootstrap (the brokers are partitioned or dead) has
  started its loop already and hands back no object to close;
- ``KafkaProducer.close`` flushes first and raises on a flush timeout before it
  stops its sender;
- ``KafkaConsumer.close`` gives up on a coordinator that does not answer by raising,
  its loop still running.

So clients are made with ``make`` and ended with ``close``, which stop the client's
own loop or sender when the polite close did not.
"""

from __future__ import annotations

import threading

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

# the names kafka-python gives its threads, for tests and for a look at a live process
THREAD_PREFIX = "kafka-io-"
SENDER_SUFFIX = "-network-thread"
CLOSE_TIMEOUT_S = 2.0


def kafka_threads() -> list[threading.Thread]:
    """kafka-python's network threads alive in this process."""
    return [
        t
        for t in threading.enumerate()
        if t.is_alive() and (t.name.startswith(THREAD_PREFIX) or t.name.endswith(SENDER_SUFFIX))
    ]


def _stop_threads(client) -> None:
    """Stop what a (possibly half-made) client started, without asking the cluster."""
    sender = getattr(client, "_sender", None)
    if sender is not None and sender.is_alive():
        sender.force_close()
        sender.join(CLOSE_TIMEOUT_S)
    net = getattr(client, "_net", None)
    if net is not None:
        try:
            net.close()  # stops and joins the IO thread, then drops its sockets
        except Exception:  # noqa: BLE001 - the thread is what matters, and it is joined
            pass


def make(cls: type, *topics: str, **config):
    """``cls(*topics, **config)``; if the constructor raises, the loop it started is stopped
    before the error goes on."""
    client = cls.__new__(cls)
    try:
        client.__init__(*topics, **config)
    except BaseException:
        _stop_threads(client)
        raise
    return client


def close(client) -> None:
    """Close politely within a couple of seconds, then stop whatever still runs."""
    try:
        if isinstance(client, KafkaProducer):
            client.close(timeout=CLOSE_TIMEOUT_S)
        elif isinstance(client, KafkaConsumer):
            client.close(timeout_ms=int(CLOSE_TIMEOUT_S * 1000))
        else:
            client.close()
    except Exception:  # noqa: BLE001 - closing against a broken cluster may fail
        pass
    finally:
        _stop_threads(client)


__all__ = ["KafkaAdminClient", "KafkaConsumer", "KafkaProducer", "close", "kafka_threads", "make"]
