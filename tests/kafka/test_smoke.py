from kafka import KafkaConsumer, KafkaProducer


def test_kafka_python_roundtrip(broker):
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    futs = [p.send("smoke", f"m{i}".encode()) for i in range(10)]
    p.flush(30)
    offsets = [f.get(10).offset for f in futs]
    assert offsets == list(range(10))
    p.close()
    c = KafkaConsumer(
        "smoke",
        bootstrap_servers=broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    got = [m.value for m in c]
    c.close()
    assert got == [f"m{i}".encode() for i in range(10)]
