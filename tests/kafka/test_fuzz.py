"""A small seeded fuzz run against one broker: random and mutated requests of every API
key and version it advertises, in bounded batches; after each batch a real
kafka-python client produces and consumes, so the broker must still serve and hold
every record it acknowledged, and its log must hold no traceback.

The seed is printed and given on failure; KAFKA_FUZZ_SEED=<n> replays one run."""

from __future__ import annotations

import os
import random
import socket
import struct
import time

from kafka import KafkaConsumer, KafkaProducer

from lab.services.kafka.protocol import records as rec
from lab.services.kafka.protocol.api import APIS, encode_request

from .clients import poll_until

BATCHES = 4
FRAMES_PER_BATCH = 150
TIME_BUDGET_S = 40.0
ACKED_TOPIC = "fuzz-acked"  # never named by the fuzzer: what it must not lose

_INT_BOUNDS = {
    "int8": 7,
    "int16": 15,
    "uint16": None,
    "int32": 31,
    "int64": 63,
}


def _int(rnd: random.Random, ftype: str) -> int:
    if ftype == "uint16":
        return rnd.choice([0, 1, 65535, rnd.randrange(65536)])
    bits = _INT_BOUNDS.get(ftype, 31)
    lo, hi = -(1 << bits), (1 << bits) - 1
    return rnd.choice([0, 1, -1, -2, 2, 3, 100, 1000, 60000, hi, lo, rnd.randint(lo, hi)])


def _string(rnd: random.Random) -> str:
    return rnd.choice(
        [
            "",
            "fz",
            "fz2",
            "g",
            "__consumer_offsets",
            "consumer",
            "range",
            "segment.bytes",
            "max.message.bytes",
            "cleanup.policy",
            "x" * rnd.randint(1, 300),
            "é\u0000☃",
            "".join(rnd.choice("abc.-_") for _ in range(rnd.randint(1, 12))),
        ]
    )


def _records(rnd: random.Random) -> bytes | None:
    codec = rnd.choice([0, 0, 1, 2, 3, 4])
    batch = bytearray(rec.build_batch([(b"k", b"v" * rnd.randint(0, 50))], compression=codec))
    kind = rnd.randrange(5)
    if kind == 0:
        return None
    if kind == 1:
        return rnd.randbytes(rnd.randint(0, 100))
    if kind == 2 and len(batch) > 21:
        batch[rnd.randrange(len(batch))] ^= 1 << rnd.randrange(8)
    return bytes(batch)


def _value(rnd: random.Random, field, version: int, depth: int):
    nullable = version in field.nullable
    if nullable and rnd.random() < 0.1:
        return None
    if field.is_array:
        if depth > 3:
            return []
        return [_elem(rnd, field, version, depth + 1) for _ in range(rnd.choice([0, 1, 1, 2, 3]))]
    return _elem(rnd, field, version, depth)


def _elem(rnd: random.Random, field, version: int, depth: int):
    if field.fields is not None:
        return {
            f.key: _value(rnd, f, version, depth)
            for f in field.fields
            if version in f.versions and rnd.random() < 0.95
        }
    t = field.elem
    if t in _INT_BOUNDS:
        return _int(rnd, t)
    if t == "bool":
        return rnd.random() < 0.5
    if t == "string":
        return _string(rnd)
    if t == "bytes":
        return rnd.randbytes(rnd.randint(0, 40))
    if t == "records":
        return _records(rnd)
    if t == "uuid":
        return rnd.randbytes(16)
    if t == "float64":
        return rnd.random()
    return None


def _frame(rnd: random.Random) -> bytes:
    api = rnd.choice(list(APIS.values()))
    version = rnd.randint(api.min_version, api.max_version)
    body = {f.key: _value(rnd, f, version, 0) for f in api.request.fields if version in f.versions}
    try:
        frame = bytearray(encode_request(api, version, rnd.randrange(1 << 31), "fuzz", body))
    except Exception:  # noqa: BLE001 - a value our own encoder will not write: use defaults
        frame = bytearray(encode_request(api, version, 1, "fuzz", {}))
    how = rnd.randrange(10)
    if how < 5:
        return bytes(frame)  # well-formed, random field values
    if how < 8:
        for _ in range(rnd.randint(1, 4)):  # mutated in place, size kept
            i = rnd.randrange(4, len(frame))
            frame[i] = rnd.randrange(256)
        return bytes(frame)
    if how < 9:
        cut = rnd.randrange(4, len(frame))  # truncated, size prefix fixed up
        return struct.pack(">i", cut - 4) + bytes(frame[4:cut])
    junk = rnd.randbytes(rnd.randint(0, 200))
    return struct.pack(">i", len(junk)) + junk


def _send(broker, conn, frame: bytes):
    """Send one frame; keep the connection while the broker answers."""
    if conn is None:
        conn = socket.create_connection((broker.host, broker.port), 5)
    try:
        conn.settimeout(0.5)
        conn.sendall(frame)
        head = conn.recv(4)
        if len(head) < 4:
            raise ConnectionError
        size = struct.unpack(">i", head)[0]
        got = 0
        while got < size:
            chunk = conn.recv(min(65536, size - got))
            if not chunk:
                raise ConnectionError
            got += len(chunk)
        return conn
    except (OSError, ConnectionError):  # closed, reset, or a long poll: a new connection
        conn.close()
        return None


def test_seeded_fuzz_keeps_the_broker_serving_and_loses_nothing(broker):
    seed = int(os.environ.get("KAFKA_FUZZ_SEED", random.randrange(1 << 32)))
    print(f"KAFKA_FUZZ_SEED={seed}")
    rnd = random.Random(seed)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    producer.send(ACKED_TOPIC, b"seed").get(30)
    acked = [b"seed"]
    start = time.monotonic()
    conn = None
    sent = 0
    for batch in range(BATCHES):
        for _ in range(FRAMES_PER_BATCH):
            if time.monotonic() - start > TIME_BUDGET_S:
                break
            conn = _send(broker, conn, _frame(rnd))
            sent += 1
        value = b"after-batch-%d" % batch
        producer.send(ACKED_TOPIC, value).get(30)
        acked.append(value)
        assert broker.proc.poll() is None, f"broker died (seed {seed})"
    if conn is not None:
        conn.close()
    producer.close()
    c = KafkaConsumer(ACKED_TOPIC, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest")
    got = [r.value for r in poll_until(c, len(acked), 30)]
    c.close()
    print(f"{sent} fuzz frames in {time.monotonic() - start:.1f} s")
    assert got == acked, f"seed {seed}"
    log = broker.log_text()
    assert "Traceback" not in log, f"seed {seed}:\n" + log[log.find("Traceback") - 300 :][:3000]
