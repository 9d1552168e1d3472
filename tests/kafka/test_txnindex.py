"""A partition's transaction bookkeeping without a broker: the last stable offset of
open transactions, and the aborted index as it outlives a restart and a truncation."""

from __future__ import annotations

from lab.services.kafka.log import LogConfig
from lab.services.kafka.partition import Partition
from lab.services.kafka.protocol import records as rec
from lab.services.kafka.protocol.errors import Error


def _append(part: Partition, batch: bytes) -> int:
    """As a leader appends: offsets stamped, the partition told, the log written."""
    buf = bytearray(batch)
    h = rec.parse_header(buf)
    first = part.leo
    rec.stamp(buf, 0, first, 0)
    part.record_batch(h, first, buf, 0)
    part.log.append(bytes(buf), first, first + h.last_offset_delta + 1, h.max_timestamp, 1)
    part.high_watermark = part.leo
    return first


def _txn(pid: int, value: bytes, seq: int = 0) -> bytes:
    return rec.build_batch(
        [(None, value)],
        producer_id=pid,
        producer_epoch=0,
        base_sequence=seq,
        attributes=rec.ATTR_TRANSACTIONAL,
    )


def test_open_transactions_bound_the_lso_and_aborts_are_indexed_across_a_restart(tmp_path):
    part = Partition("t", 0, tmp_path, LogConfig())
    _append(part, rec.build_batch([(None, b"plain")]))  # offset 0
    a = _append(part, _txn(7, b"a1"))  # offset 1, producer 7 opens
    _append(part, _txn(8, b"c1"))  # offset 2, producer 8 opens
    assert part.last_stable_offset == a == 1
    abort_at = _append(part, rec.build_control_batch(7, 0, commit=False, coordinator_epoch=3))
    assert part.last_stable_offset == 2  # producer 8 still open
    _append(part, rec.build_control_batch(8, 0, commit=True, coordinator_epoch=3))
    assert part.last_stable_offset == part.high_watermark == 5
    [aborted] = part.txns.aborted_between(0, 5)
    assert (aborted.producer_id, aborted.first_offset, aborted.last_offset) == (7, 1, abort_at)
    assert part.txns.aborted_between(abort_at + 1, 5) == []
    # the marker's epoch fences older ones from the partition's side too
    assert part.marker_epoch_error(7, 0) == Error.NONE
    _append(part, rec.build_control_batch(7, 1, commit=False, coordinator_epoch=3))
    assert part.marker_epoch_error(7, 0) == Error.INVALID_PRODUCER_EPOCH
    # ... and a coordinator older than the one that wrote the last marker is fenced
    assert part.marker_epoch_error(7, 1, coordinator_epoch=2) == (
        Error.TRANSACTION_COORDINATOR_FENCED
    )
    assert part.marker_epoch_error(7, 1, coordinator_epoch=3) == Error.NONE
    part.close()

    again = Partition("t", 0, tmp_path, LogConfig())
    again.high_watermark = again.leo
    assert again.txns.aborted == part.txns.aborted[:1]
    assert again.txns.ongoing == {}
    assert again.last_stable_offset == again.leo
    # a follower cutting its log back before the marker forgets that abort, and the
    # transaction is open again as far as the headers it still has say
    again.truncate_to(abort_at)
    assert again.txns.aborted == []
    again.close()
    third = Partition("t", 0, tmp_path, LogConfig())
    assert third.txns.aborted == []
    assert third.txns.ongoing == {7: 1, 8: 2}
    third.close()


def test_control_batches_are_not_records_to_a_reader(tmp_path):
    batch = rec.build_control_batch(5, 2, commit=True, coordinator_epoch=9)
    h = rec.parse_header(batch)
    assert h.is_control and h.is_transactional and h.producer_id == 5
    assert rec.control_marker(batch, 0, h) == (rec.CONTROL_COMMIT, 9)
    assert rec.read_records(batch) == []
    [(hh, recs)] = rec.read_batches(batch)
    assert rec.marker_is_commit(recs)


def test_retention_drops_the_aborts_of_deleted_segments(tmp_path):
    part = Partition("t", 0, tmp_path, LogConfig())
    _append(part, _txn(1, b"a"))
    end = _append(part, rec.build_control_batch(1, 0, commit=False, coordinator_epoch=0))
    _append(part, _txn(2, b"b"))
    _append(part, rec.build_control_batch(2, 0, commit=False, coordinator_epoch=0))
    assert len(part.txns.aborted) == 2
    part.txns.drop_before(end + 1)
    assert [a.producer_id for a in part.txns.aborted] == [2]
    part.close()
    again = Partition("t", 0, tmp_path, LogConfig())
    assert [a.producer_id for a in again.txns.aborted] == [2]
    again.close()


def test_a_marker_truncated_away_reopens_its_transaction(tmp_path):
    part = Partition("t", 0, tmp_path, LogConfig())
    _append(part, _txn(4, b"x"))  # offset 0
    part.high_watermark = 1  # the marker below is not yet on every ISR replica
    buf = bytearray(rec.build_control_batch(4, 0, commit=True, coordinator_epoch=0))
    h = rec.parse_header(buf)
    rec.stamp(buf, 0, 1, 0)
    part.record_batch(h, 1, buf, 0)
    part.log.append(bytes(buf), 1, 2, h.max_timestamp, 1)
    assert part.txns.ongoing == {}
    part.truncate_to(1)  # a new leader never had the marker
    assert part.txns.ongoing == {4: 0}
    assert part.last_stable_offset == 0
    part.close()
