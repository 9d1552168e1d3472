"""The schema-driven codec: hand-computed bytes for flexible and classic
versions, and an encode/decode round trip of every served API version."""

from __future__ import annotations

import pytest

from lab.services.kafka.protocol import records as rec
from lab.services.kafka.protocol.api import APIS, REQUEST_HEADER, encode_request
from lab.services.kafka.protocol.primitives import DecodeError, Reader
from lab.services.kafka.protocol.schema import Field, MessageSchema, load


def test_api_versions_v3_request_bytes():
    # header v2: key, version, correlation id, classic nullable client id, no tags;
    # body: two compact strings, no tags
    frame = encode_request(
        APIS[18], 3, 7, "cli", {"client_software_name": "py", "client_software_version": "1"}
    )
    assert frame == (
        b"\x00\x00\x00\x14"  # size 20
        b"\x00\x12\x00\x03\x00\x00\x00\x07\x00\x03cli\x00"
        b"\x03py\x021\x00"
    )


def test_metadata_v1_null_topics_means_all():
    m = load("MetadataRequest")
    assert m.encode({"topics": None}, 1) == b"\xff\xff\xff\xff"
    assert m.decode(b"\xff\xff\xff\xff", 1)["topics"] is None
    with pytest.raises(ValueError):
        m.encode({"topics": None}, 0)  # v0 has no null array


def test_tagged_fields_written_only_when_not_default():
    s = load("ApiVersionsResponse")
    plain = s.encode({"error_code": 0, "api_keys": [], "throttle_time_ms": 0}, 3)
    tagged = s.encode(
        {"error_code": 0, "api_keys": [], "throttle_time_ms": 0, "finalized_features_epoch": 5}, 3
    )
    assert plain.endswith(b"\x00") and len(tagged) > len(plain)
    assert s.decode(tagged, 3)["finalized_features_epoch"] == 5
    assert s.decode(plain, 3)["finalized_features_epoch"] == -1


def test_unknown_tags_are_skipped():
    spec = {
        "name": "T",
        "type": "request",
        "validVersions": "0",
        "flexibleVersions": "0+",
        "fields": [{"name": "A", "type": "int8", "versions": "0+"}],
    }
    m = MessageSchema(spec)
    # A=1, one tagged field (tag 9, 2 bytes) nobody knows
    assert m.decode(b"\x01\x01\x09\x02\xaa\xbb", 0) == {"a": 1}


def test_truncated_input_is_a_decode_error():
    with pytest.raises(DecodeError):
        load("ProduceRequest").decode(b"\x00\x01", 3)
    with pytest.raises(DecodeError):
        REQUEST_HEADER.decode(Reader(b"\x00\x12\x00\x03\x00\x00"), 2)


def _sample(field: Field, version: int):
    if field.is_array:
        if field.fields is not None:
            return [{f.key: _sample(f, version) for f in field.fields if version in f.versions}]
        return [_scalar(field.elem)]
    if field.fields is not None:
        return {f.key: _sample(f, version) for f in field.fields if version in f.versions}
    return _scalar(field.type)


def _scalar(t: str):
    return {
        "int8": 3,
        "int16": -2,
        "uint16": 7,
        "int32": 70000,
        "int64": -(1 << 40),
        "string": "héllo",
        "bytes": b"\x00\x01",
        "records": b"rec",
        "bool": True,
        "float64": 1.5,
        "uuid": bytes(range(16)),
    }[t]


@pytest.mark.parametrize("api_key", sorted(APIS))
def test_round_trip_every_version(api_key):
    api = APIS[api_key]
    for schema in (api.request, api.response):
        for v in range(api.min_version, api.max_version + 1):
            obj = {f.key: _sample(f, v) for f in schema.fields if v in f.versions}
            back = schema.decode(schema.encode(obj, v), v)
            for k, val in obj.items():
                assert back[k] == val, (schema.name, v, k)


def test_record_batch_crc_and_gzip():
    b = rec.build_batch([(b"k", b"v" * 100), (None, b"x")], compression=rec.COMPRESSION_GZIP)
    (h,) = rec.validate_batches(b)
    assert h.records_count == 2 and h.compression == rec.COMPRESSION_GZIP
    assert [r.value for r in rec.read_records(b)] == [b"v" * 100, b"x"]
    bad = bytearray(b)
    bad[-1] ^= 0xFF
    with pytest.raises(rec.CorruptBatch, match="CRC"):
        rec.validate_batches(bytes(bad))
    # stamping offsets and epoch leaves the CRC valid (it starts at attributes)
    stamped = bytearray(b)
    rec.stamp(stamped, 0, 1234, 7)
    (h2,) = rec.validate_batches(bytes(stamped))
    assert h2.base_offset == 1234 and h2.partition_leader_epoch == 7


def _with_payload(batch: bytes, payload: bytes) -> bytes:
    """The same batch header around another payload, length and CRC made right."""
    import struct

    import crc32c

    after_crc = batch[21 : rec.HEADER_SIZE] + payload
    length = 4 + 1 + 4 + len(after_crc)
    return batch[:8] + struct.pack(">iibI", length, -1, 2, crc32c.crc32c(after_crc)) + after_crc


@pytest.mark.parametrize(
    "codec",
    [rec.COMPRESSION_GZIP, rec.COMPRESSION_SNAPPY, rec.COMPRESSION_LZ4, rec.COMPRESSION_ZSTD],
)
def test_every_codec_round_trips_and_a_payload_that_does_not_decode_is_corrupt(codec):
    values = [b"v" * 100, b"x", bytes(range(256)) * 300]  # the last spans xerial blocks
    b = rec.build_batch([(b"k", v) for v in values], compression=codec)
    (h,) = rec.validate_batches(b)
    assert h.compression == codec and h.records_count == 3
    assert [r.value for r in rec.read_records(b)] == values
    # the CRC is right, the compressed bytes are not: refused as Kafka's LogValidator does
    garbage = _with_payload(b, b"\x00\x01not-" + rec.COMPRESSION_NAMES[codec].encode() * 9)
    with pytest.raises(rec.CorruptBatch, match="does not decompress|runs past|length"):
        rec.validate_batches(garbage)
    # a payload that decodes but holds fewer records than the header counts
    short = rec.build_batch([(b"k", b"v")], compression=codec)
    lying = bytearray(_with_payload(b, short[rec.HEADER_SIZE :]))
    with pytest.raises(rec.CorruptBatch):
        rec.validate_batches(bytes(lying))


def test_snappy_reads_a_raw_block_as_librdkafka_may_send():
    import cramjam

    from lab.services.kafka.protocol import compression

    data = b"hello snappy " * 50
    raw = bytes(cramjam.snappy.compress_raw(data))
    assert compression.decompress(compression.SNAPPY, raw) == data
    framed = compression.compress(compression.SNAPPY, data)
    assert framed.startswith(compression.XERIAL_MAGIC)
    assert compression.decompress(compression.SNAPPY, framed) == data


def test_group_partition_uses_javas_string_hash():
    from lab.services.kafka.offsets import java_string_hash, partition_for_group

    # values of String.hashCode() in Java
    assert java_string_hash("") == 0
    assert java_string_hash("abc") == 96354
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("polygenelubricants") == -(2**31)
    assert partition_for_group("polygenelubricants", 50) == 0  # Kafka's abs() maps MIN_VALUE to 0
    assert partition_for_group("hello", 50) == 99162322 % 50


def test_record_walk_gives_the_same_verdict_whole_or_in_tiny_chunks():
    """Compressed batches are checked by a streamed walk with a fast path for records
    lying whole in a chunk: fed whole or a few bytes at a time, and mutated at random,
    it must accept and refuse exactly the same payloads."""
    import random

    rnd = random.Random(21)
    agreed = refused = 0
    for _ in range(400):
        n = rnd.randint(1, 6)
        recs = [
            (
                rnd.choice([None, b"", rnd.randbytes(rnd.randint(1, 300))]),
                rnd.choice([None, b"", rnd.randbytes(rnd.randint(1, 300))]),
            )
            for _ in range(n)
        ]
        headers = [(f"h{i}", rnd.choice([None, b"x" * i])) for i in range(rnd.randint(0, 3))]
        payload = bytearray(rec.build_batch(recs, headers=headers)[rec.HEADER_SIZE :])
        for _ in range(rnd.choice([0, 0, 1, 2])):
            payload[rnd.randrange(len(payload))] = rnd.randrange(256)
        if rnd.random() < 0.1:
            payload = payload[: rnd.randrange(len(payload))]
        verdicts = []
        for size in (len(payload) or 1, 1, rnd.randint(2, 9)):
            chunks = [bytes(payload[i : i + size]) for i in range(0, len(payload), size)]
            try:
                rec._walk_records(iter(chunks), n)
                verdicts.append(None)
            except rec.CorruptBatch:
                verdicts.append("corrupt")
        assert len(set(verdicts)) == 1, (verdicts, bytes(payload).hex())
        agreed += 1
        refused += verdicts[0] == "corrupt"
    assert agreed == 400 and 0 < refused < 400
