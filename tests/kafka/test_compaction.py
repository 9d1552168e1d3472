"""The log cleaner on a partition log alone: what stays, offsets kept, the segments'
indexes, and a log reopened after compaction (as at a broker's restart)."""

from __future__ import annotations

from lab.services.kafka import cleaner
from lab.services.kafka.fetcher import ReplicaFetcher
from lab.services.kafka.log import LogConfig, PartitionLog
from lab.services.kafka.partition import Partition
from lab.services.kafka.protocol import records as rec

NOW = 1_800_000_000_000


def _append(log: PartitionLog, records, **batch) -> None:
    off = log.log_end_offset
    data = rec.build_batch(records, base_offset=off, timestamp_ms=NOW - 10_000, **batch)
    log.append(data, off, off + len(records), NOW - 10_000, len(records))


def _everything(log: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    return [(r.offset, r.key, r.value) for r in rec.read_records(log.read(0, 1 << 30))]


def _compact(log: PartitionLog, delete_retention_ms: int = 0) -> int:
    segs = cleaner.cleanable(log, log.log_end_offset, NOW, 0)
    done = cleaner.plan([(s, s.size) for s in segs], NOW, delete_retention_ms)
    for seg, _, data in done:
        cleaner.swap(seg, data, log.config.index_interval_bytes)
    return len(done)


def test_latest_per_key_stays_at_its_offset_and_survives_a_reopen(tmp_path):
    log = PartitionLog(tmp_path, LogConfig(segment_bytes=300, index_interval_bytes=64))
    # a compressed batch that loses one record: written again, compressed as it was
    _append(log, [(b"a", b"early"), (b"c", b"c0")], compression=rec.COMPRESSION_GZIP)
    for v in range(6):
        _append(log, [(b"a", b"a%d" % v), (b"b", b"b%d" % v)])
    _append(log, [(b"b", None)])  # b deleted
    _append(log, [(b"z", b"zz")], compression=rec.COMPRESSION_GZIP)
    for i in range(4):  # what comes later seals the segments above
        _append(log, [(b"f%d" % i, b"." * 60)])
    _append(log, [(b"tail", b"t")])  # in the active segment: never compacted
    assert len(log.segments) > 2
    before = _everything(log)
    assert _compact(log) >= 1
    after = _everything(log)
    sealed_end = log.segments[-1].base_offset
    kept = [(o, k, v) for o, k, v in after if o < sealed_end]
    assert [(k, v) for _, k, v in kept if k == b"a"] == [(b"a", b"a5")]
    assert (0, b"c", b"c0") not in after and (1, b"c", b"c0") in after
    first = rec.parse_header(log.read(0, 1 << 20))
    assert first.compression == rec.COMPRESSION_GZIP and first.base_offset == 0
    assert not [k for _, k, _ in kept if k == b"b"]  # the tombstone went, delete.retention.ms 0
    assert all(x in before for x in after)  # same offsets, nothing new
    assert [o for o, _, _ in after] == sorted(o for o, _, _ in after)
    # a reader positioned in a gap gets the next record
    gap = next(o for o, _, _ in before if o not in {o for o, _, _ in after})
    assert rec.read_records(log.read(gap, 1 << 20))[-1].offset >= gap
    end = log.log_end_offset
    log.close()
    again = PartitionLog(tmp_path, LogConfig(segment_bytes=300, index_interval_bytes=64))
    assert _everything(again) == after and again.log_end_offset == end
    again.close()


def test_a_tombstone_younger_than_delete_retention_stays(tmp_path):
    log = PartitionLog(tmp_path, LogConfig(segment_bytes=200))
    _append(log, [(b"a", b"1")])
    _append(log, [(b"a", None)])
    for i in range(6):
        _append(log, [(b"f%d" % i, b"." * 30)])
    _compact(log, delete_retention_ms=3_600_000)
    keys = [(k, v) for _, k, v in _everything(log) if k == b"a"]
    assert keys == [(b"a", None)]
    log.close()


def test_transactional_batches_and_a_producers_last_batch_stay_whole(tmp_path):
    log = PartitionLog(tmp_path, LogConfig(segment_bytes=200))
    _append(log, [(b"a", b"1")], producer_id=7, producer_epoch=0, base_sequence=0)
    _append(log, [(b"a", b"2")], producer_id=7, producer_epoch=0, base_sequence=1)
    _append(log, [(b"a", b"3")])
    _append(log, [(b"t", b"1")], producer_id=8, producer_epoch=0, base_sequence=0,
            attributes=rec.ATTR_TRANSACTIONAL)  # fmt: skip
    _append(log, [(b"t", b"2")])
    for i in range(6):
        _append(log, [(b"f%d" % i, b"." * 30)])
    _compact(log)
    left = [(k, v) for _, k, v in _everything(log)]
    # producer 7's first batch went; its last one stays (its state at a restart)
    assert (b"a", b"1") not in left and (b"a", b"2") in left and (b"a", b"3") in left
    assert (b"t", b"1") in left  # a transactional batch is not rewritten
    log.close()


def test_a_follower_takes_the_gaps_a_compacted_leader_sends(tmp_path):
    """Whole batches the leader's cleaner removed leave gaps in what it sends a follower
    catching up; the follower appends past them, as Kafka's does (offsets only increase)."""
    part = Partition("t", 0, tmp_path, LogConfig())
    first = rec.build_batch([(b"a", b"1"), (b"b", b"1")], base_offset=0, timestamp_ms=NOW)
    after_gap = rec.build_batch([(b"a", b"9")], base_offset=7, timestamp_ms=NOW)
    ReplicaFetcher._append(part, first)
    ReplicaFetcher._append(part, after_gap)  # the next fetch answer starts past the gap
    assert part.leo == 8
    assert [(r.offset, r.value) for r in rec.read_records(part.log.read(0, 1 << 20))] == [
        (0, b"1"),
        (1, b"1"),
        (7, b"9"),
    ]
    # a batch that starts before the log end does not line up: refused
    ReplicaFetcher._append(part, rec.build_batch([(b"c", b"x")], base_offset=5, timestamp_ms=NOW))
    assert part.leo == 8
    part.close()
