"""Malformed input: a clear error or a closed connection, and the broker keeps
serving everyone else."""

from __future__ import annotations

import os
import socket
import struct

from kafka import KafkaProducer

from lab.services.kafka.protocol import records as rec
from lab.services.kafka.protocol.api import APIS, decode_response, encode_request
from lab.services.kafka.protocol.errors import Error


def _conn(broker) -> socket.socket:
    s = socket.create_connection((broker.host, broker.port), 5)
    s.settimeout(10)
    return s


def _recv_frame(s: socket.socket) -> bytes | None:
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    size = struct.unpack(">i", head)[0]
    data = b""
    while len(data) < size:
        chunk = s.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _closed(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, TimeoutError):
        return True


def _still_serves(broker) -> None:
    s = _conn(broker)
    s.sendall(
        encode_request(
            APIS[18], 3, 1, "probe", {"client_software_name": "t", "client_software_version": "1"}
        )
    )
    _, body = decode_response(APIS[18], 3, _recv_frame(s))
    s.close()
    assert body["error_code"] == 0 and any(k["api_key"] == 0 for k in body["api_keys"])


def test_api_versions_downgrade_path(broker):
    s = _conn(broker)
    # v9 of ApiVersions does not exist here: error 35 with a v0 body of our ranges
    frame = struct.pack(">hhih", 18, 9, 42, 3) + b"cli" + b"\x00" + b"\x02x\x021\x00"
    s.sendall(struct.pack(">i", len(frame)) + frame)
    cid, body = decode_response(APIS[18], 0, _recv_frame(s))
    assert cid == 42
    assert body["error_code"] == Error.UNSUPPORTED_VERSION
    ranges = {k["api_key"]: (k["min_version"], k["max_version"]) for k in body["api_keys"]}
    assert ranges[18] == (0, 3) and ranges[0][0] <= 3 <= ranges[0][1]
    # the same connection then works at a version from the list
    s.sendall(encode_request(APIS[18], 3, 43, "cli", {}))
    cid, body = decode_response(APIS[18], 3, _recv_frame(s))
    assert (cid, body["error_code"]) == (43, 0)
    s.close()


def test_random_bytes_close_the_connection(broker):
    s = _conn(broker)
    junk = os.urandom(64)
    s.sendall(struct.pack(">i", len(junk)) + junk)
    assert _closed(s)
    s.close()
    _still_serves(broker)


def test_unknown_api_key_and_version(broker):
    s = _conn(broker)
    frame = struct.pack(">hhih", 999, 0, 1, -1)
    s.sendall(struct.pack(">i", len(frame)) + frame)
    assert _closed(s)
    s = _conn(broker)
    frame = struct.pack(">hhih", 0, 99, 1, -1) + b"\x00" * 16  # Produce v99
    s.sendall(struct.pack(">i", len(frame)) + frame)
    assert _closed(s)
    _still_serves(broker)
    assert "unknown API key 999" in broker.log_text()
    assert "Produce v99 is not supported" in broker.log_text()


def test_frame_above_socket_request_max_bytes(make_broker):
    b = make_broker(0, socket_request_max_bytes=100000)
    s = _conn(b)
    s.sendall(struct.pack(">i", 100001) + b"\x00" * 1000)
    assert _closed(s)
    _still_serves(b)
    assert "larger than socket.request.max.bytes" in b.log_text()


def test_wrong_crc_batch_gets_corrupt_message(broker):
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)  # creates the topic
    p.send("crc", b"good").get(30)
    p.close()
    batch = bytearray(rec.build_batch([(None, b"payload")]))
    batch[-1] ^= 0x55
    s = _conn(broker)
    body = {
        "transactional_id": None,
        "acks": 1,
        "timeout_ms": 5000,
        "topic_data": [{"name": "crc", "partition_data": [{"index": 0, "records": bytes(batch)}]}],
    }
    s.sendall(encode_request(APIS[0], 7, 5, "raw", body))
    _, resp = decode_response(APIS[0], 7, _recv_frame(s))
    pr = resp["responses"][0]["partition_responses"][0]
    assert pr["error_code"] == Error.CORRUPT_MESSAGE
    # the good batch then still goes in on the same connection
    body["topic_data"][0]["partition_data"][0]["records"] = rec.build_batch([(None, b"ok")])
    s.sendall(encode_request(APIS[0], 7, 6, "raw", body))
    _, resp = decode_response(APIS[0], 7, _recv_frame(s))
    pr = resp["responses"][0]["partition_responses"][0]
    assert (pr["error_code"], pr["base_offset"]) == (0, 1)
    s.close()


def test_truncated_body_closes_only_that_connection(broker):
    other = _conn(broker)
    s = _conn(broker)
    frame = encode_request(APIS[3], 1, 1, "x", {"topics": [{"name": "abc"}]})[4:-3]
    s.sendall(struct.pack(">i", len(frame)) + frame)
    assert _closed(s)
    other.sendall(encode_request(APIS[18], 0, 9, "x", {}))
    cid, body = decode_response(APIS[18], 0, _recv_frame(other))
    assert (cid, body["error_code"]) == (9, 0)
    other.close()


def test_mutated_requests_never_break_the_broker(broker):
    """Valid requests of every API with random bytes flipped: each gets an answer
    or a closed connection; the broker logs no crash and keeps serving."""
    import random

    from lab.services.kafka.protocol.api import APIS as ALL

    rnd = random.Random(4)
    samples = {
        0: {
            "transactional_id": None,
            "acks": 1,
            "timeout_ms": 1000,
            "topic_data": [
                {
                    "name": "fz",
                    "partition_data": [{"index": 0, "records": rec.build_batch([(b"k", b"v")])}],
                }
            ],
        },
        1: {
            "replica_id": -1,
            "max_wait_ms": 10,
            "min_bytes": 1,
            "max_bytes": 1000,
            "isolation_level": 0,
            "session_id": 0,
            "session_epoch": -1,
            "topics": [
                {
                    "topic": "fz",
                    "partitions": [
                        {
                            "partition": 0,
                            "current_leader_epoch": -1,
                            "fetch_offset": 0,
                            "log_start_offset": -1,
                            "partition_max_bytes": 1000,
                        }
                    ],
                }
            ],
            "forgotten_topics_data": [],
            "rack_id": "",
        },
        3: {"topics": [{"name": "fz"}], "allow_auto_topic_creation": True},
        9: {"group_id": "g", "topics": None, "require_stable": False},
        10: {"key": "g", "key_type": 0},
        11: {
            "group_id": "g",
            "session_timeout_ms": 10000,
            "rebalance_timeout_ms": 100,
            "member_id": "",
            "group_instance_id": None,
            "protocol_type": "consumer",
            "protocols": [{"name": "range", "metadata": b""}],
        },
        12: {"group_id": "g", "generation_id": 1, "member_id": "m", "group_instance_id": None},
        19: {
            "topics": [
                {
                    "name": "fz2",
                    "num_partitions": 1,
                    "replication_factor": 1,
                    "assignments": [],
                    "configs": [],
                }
            ],
            "timeout_ms": 1000,
            "validate_only": True,
        },
        22: {"transactional_id": None, "transaction_timeout_ms": 1000},
    }
    sent = 0
    for _ in range(12):
        for key, body in samples.items():
            api = ALL[key]
            version = rnd.randint(api.min_version, api.max_version)
            try:
                frame = bytearray(encode_request(api, version, 1, "fuzz", body))
            except (ValueError, KeyError):
                continue
            for _ in range(rnd.randint(1, 4)):
                i = rnd.randrange(8, len(frame))  # keep the size; mutate header and body
                frame[i] = rnd.randrange(256)
            s = _conn(broker)
            s.settimeout(5)
            s.sendall(bytes(frame))
            try:
                _recv_frame(s)
            except (TimeoutError, ConnectionResetError):
                pass
            s.close()
            sent += 1
    assert sent > 50
    _still_serves(broker)
    assert "Traceback" not in broker.log_text()
