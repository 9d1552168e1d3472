"""The partition log on disk: segments, offset index, retention, recovery of a
torn tail, flush policy; and a broker restart that keeps data and offsets."""

from __future__ import annotations

import os
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from lab.services.kafka.log import LogConfig, PartitionLog
from lab.services.kafka.protocol import records as rec

from .clients import group_consumer, poll_until, send_values


def _append(log: PartitionLog, n: int, size: int = 100, ts: int | None = None) -> None:
    for _ in range(n):
        off = log.log_end_offset
        b = bytearray(rec.build_batch([(None, os.urandom(size))], timestamp_ms=ts))
        rec.stamp(b, 0, off, 0)
        log.append(bytes(b), off, off + 1, ts or int(time.time() * 1000), 1)


def _offsets(data: bytes) -> list[int]:
    return [r.offset for r in rec.read_records(data)]


def test_segments_roll_and_index_finds_offsets(tmp_path):
    cfg = LogConfig(segment_bytes=2000, index_interval_bytes=300)
    log = PartitionLog(tmp_path / "t-0", cfg)
    _append(log, 100)
    files = sorted(p.name for p in (tmp_path / "t-0").glob("*.log"))
    assert len(files) > 5 and files[0] == "00000000000000000000.log"
    assert all(
        (tmp_path / "t-0" / f.replace(".log", ".index")).stat().st_size % 8 == 0 for f in files
    )
    for want in (0, 1, 37, 63, 99):
        assert _offsets(log.read(want, 1))[0] == want
    assert _offsets(log.read(95, 1 << 20)) == [95, 96, 97, 98, 99]
    assert log.read(100, 1000) == b""
    log.close()
    # reopening finds the same end and the same data
    log = PartitionLog(tmp_path / "t-0", cfg)
    assert log.log_end_offset == 100
    assert _offsets(log.read(50, 1)) == [50]
    log.close()


def test_recovery_truncates_torn_tail(tmp_path):
    cfg = LogConfig()
    log = PartitionLog(tmp_path / "t-0", cfg)
    _append(log, 10)
    seg = log.segments[-1].path
    log.close()
    size = seg.stat().st_size
    # a crash in the middle of the last write: half a batch at the end
    with open(seg, "r+b") as f:
        f.truncate(size - 40)
    log = PartitionLog(tmp_path / "t-0", cfg)
    assert log.log_end_offset == 9
    _append(log, 1)
    assert _offsets(log.read(0, 1 << 20)) == list(range(10))
    log.close()


def test_recovery_truncates_at_a_bad_crc(tmp_path):
    log = PartitionLog(tmp_path / "t-0", LogConfig())
    _append(log, 10)
    seg = log.segments[-1].path
    one = log.segments[-1].size // 10
    log.close()
    with open(seg, "r+b") as f:  # flip a byte inside batch 6's records
        f.seek(6 * one + 70)
        b = f.read(1)
        f.seek(6 * one + 70)
        f.write(bytes([b[0] ^ 0xFF]))
    log = PartitionLog(tmp_path / "t-0", LogConfig())
    assert log.log_end_offset == 6
    assert seg.stat().st_size == 6 * one
    log.close()


def test_retention_by_size_and_time(tmp_path):
    cfg = LogConfig(segment_bytes=1000, retention_bytes=3000)
    log = PartitionLog(tmp_path / "s-0", cfg)
    _append(log, 60)
    total = log.size_bytes()
    assert log.apply_retention() > 0
    assert log.size_bytes() < total and log.size_bytes() - log.segments[0].size < 3000
    assert log.log_start_offset > 0
    assert _offsets(log.read(log.log_start_offset, 1))[0] == log.log_start_offset
    log.close()

    cfg = LogConfig(segment_bytes=1000, retention_ms=60_000)
    log = PartitionLog(tmp_path / "t-0", cfg)
    old = int(time.time() * 1000) - 3_600_000
    _append(log, 30, ts=old)
    _append(log, 30)
    deleted = log.apply_retention()
    assert deleted > 0
    # every segment left holds recent data, except possibly the one straddling the edge
    assert all(s.max_timestamp > old for s in log.segments[1:])
    assert log.log_start_offset <= 30
    log.close()


def test_flush_policy_by_messages(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    log = PartitionLog(tmp_path / "f-0", LogConfig(flush_interval_messages=5))
    _append(log, 4)
    assert synced == []
    _append(log, 1)
    assert synced and log.unflushed == 0
    log.close()


def test_truncate_to_cuts_at_batch_edge(tmp_path):
    log = PartitionLog(tmp_path / "x-0", LogConfig(segment_bytes=1500))
    _append(log, 40)
    log.truncate_to(17)
    assert log.log_end_offset == 17
    _append(log, 3)
    assert _offsets(log.read(0, 1 << 20)) == list(range(20))
    log.close()


def test_broker_restart_keeps_records_and_committed_offsets(make_broker):
    b = make_broker(0)
    send_values(b.bootstrap, "keep", [f"r{i}".encode() for i in range(30)])
    c = group_consumer(b.bootstrap, "keep", "keepers")
    poll_until(c, 12, 30, max_records=True)
    c.commit({TopicPartition("keep", 0): __import__("kafka").OffsetAndMetadata(12, "", -1)})
    c.close()
    b.kill()  # no clean shutdown
    b.start()
    c = group_consumer(b.bootstrap, "keep", "keepers")
    rest = [r.value for r in poll_until(c, 18, 40)]
    c.close()
    assert rest == [f"r{i}".encode() for i in range(12, 30)]


def test_leader_epoch_cache_finds_divergence(tmp_path):
    from lab.services.kafka.partition import Partition

    def fill(part: Partition, epochs: list[int]) -> None:
        for e in epochs:
            off = part.leo
            b = bytearray(rec.build_batch([(None, b"x")]))
            rec.stamp(b, 0, off, e)
            part.note_epoch(e, off)
            part.log.append(bytes(b), off, off + 1, 0, 1)

    leader = Partition("t", 0, tmp_path / "a", LogConfig())
    follower = Partition("t", 0, tmp_path / "b", LogConfig())
    fill(leader, [0] * 5 + [2] * 3)  # epoch 1's leader never got its records here
    fill(follower, [0] * 5 + [1] * 4)  # the old leader of epoch 1, unacknowledged tail
    assert leader.end_offset_for(2) == (2, 8)
    assert leader.end_offset_for(0) == (0, 5)
    epoch, end = leader.end_offset_for(follower.epochs[-1][0])  # asks about epoch 1
    assert (epoch, end) == (0, 5)
    follower.truncate_to(min(end, follower.end_offset_for(epoch)[1]))
    assert follower.leo == 5 and follower.epochs == [(0, 0)]
    # reopening rebuilds the cache from the batches' stamped epochs
    leader.close()
    again = Partition("t", 0, tmp_path / "a", LogConfig())
    assert again.epochs == [(0, 0), (2, 5)]
    again.close()
    follower.close()


def test_broker_applies_retention_and_clients_see_the_new_start(make_broker):
    b = make_broker(
        0, log_segment_bytes=4096, log_retention_bytes=8192, log_retention_check_interval_ms=300
    )
    p = KafkaProducer(bootstrap_servers=b.bootstrap, linger_ms=0)
    for i in range(60):
        p.send("ret", f"{i:04d}".encode() * 100).get(30)  # ~400 B records, one batch each
    p.close()
    c = KafkaConsumer(bootstrap_servers=b.bootstrap)
    tp = TopicPartition("ret", 0)
    deadline = time.monotonic() + 20
    start = 0
    while start == 0 and time.monotonic() < deadline:
        start = c.beginning_offsets([tp])[tp]
        time.sleep(0.3)
    assert start > 0
    assert c.end_offsets([tp])[tp] == 60
    c.assign([tp])
    c.seek_to_beginning(tp)
    got = []
    deadline = time.monotonic() + 20
    while (not got or got[-1] != 59) and time.monotonic() < deadline:
        for recs in c.poll(timeout_ms=300).values():
            got.extend(r.offset for r in recs)
    c.close()
    # retention may have moved the start again since we asked: the consumer
    # begins at a start at least as late, and reads every offset from there
    assert got and got[0] >= start > 0
    assert got == list(range(got[0], 60))
    assert "retention moved log start" in b.log_text()
