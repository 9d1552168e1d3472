"""The end-to-end trial of a running lab: each service it runs, used the way a user
would, with the unmodified public clients, from the host.

Each check returns {"service", "ok", "detail"}; a check never raises.
"""

from __future__ import annotations

import collections
import hashlib
import time
import uuid

from lab.orchestrator import lab as orch


def _check(service: str, fn) -> dict:
    t = time.monotonic()
    try:
        ok, detail = fn()
    except Exception as e:  # noqa: BLE001 - the trial reports, it does not crash
        ok, detail = False, f"{type(e).__name__}: {e}"
    return {
        "service": service,
        "ok": ok,
        "detail": detail,
        "seconds": round(time.monotonic() - t, 2),
    }


def zookeeper(state) -> tuple[bool, str]:
    from kazoo.client import KazooClient

    servers = orch.service_addresses(state, "zookeeper")
    path = f"/racklab-trial/{uuid.uuid4().hex[:8]}"
    first = KazooClient(hosts=f"{servers[0]}:2181", timeout=10)
    last = KazooClient(hosts=f"{servers[-1]}:2181", timeout=10)
    first.start(timeout=15)
    last.start(timeout=15)
    try:
        first.create(path, b"hello", makepath=True)
        last.sync(path)  # reads are local: sync makes the other server catch up first
        data, stat = last.get(path)
        first.delete(path)
        ok = data == b"hello"
        return (
            ok,
            f"written through {servers[0]}, read back through {servers[-1]} (zxid {stat.mzxid:#x})",
        )
    finally:
        first.stop()
        last.stop()


def kafka(state, n: int = 200) -> tuple[bool, str]:
    from kafka import KafkaConsumer, KafkaProducer

    brokers = [f"{a}:9092" for a in orch.service_addresses(state, "kafka")]
    topic = f"trial-{uuid.uuid4().hex[:6]}"
    producer = KafkaProducer(bootstrap_servers=brokers, acks="all")
    for i in range(n):
        producer.send(topic, key=str(i % 3).encode(), value=f"message {i}".encode())
    producer.flush(timeout=60)
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=brokers, group_id=f"{topic}-g",
                             auto_offset_reset="earliest")  # fmt: skip
    got: list[bytes] = []
    deadline = time.monotonic() + 60
    while len(got) < n and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=1000).values():
            got += [m.value for m in records]
    consumer.close()
    ok = sorted(got) == sorted(f"message {i}".encode() for i in range(n))
    return ok, f"{n} records produced with acks=all to {topic}, {len(got)} consumed by a group"


def hdfs(state, size: int = 3 * 2**20) -> tuple[bool, str]:
    from hdfs import InsecureClient

    nn = orch.service_addresses(state, "hdfs", "namenode")[0]
    client = InsecureClient(f"http://{nn}:9870", user="root")
    data = hashlib.sha256(b"racklab").digest() * (size // 32)
    path = f"/racklab-trial/{uuid.uuid4().hex[:8]}.bin"
    client.write(path, data=data, overwrite=True)
    with client.read(path) as r:
        back = r.read()
    replication = client.status(path)["replication"]
    client.delete(path)
    ok = back == data
    return ok, f"{size // 2**20} MiB written and read back intact (replication {replication})"


WORDS = "the quick brown fox jumps over the lazy dog and the rack"


def yarn(state) -> tuple[bool, str]:
    from hdfs import InsecureClient

    from lab.services.yarn import cli_support as y

    rm, nn = y.endpoints(state.data)
    client = InsecureClient(nn, user="root")
    base = f"/racklab-trial/wc-{uuid.uuid4().hex[:6]}"
    text = "\n".join(WORDS for _ in range(500)) + "\n"
    client.write(f"{base}/in/a.txt", data=text, overwrite=True)
    lines: list[str] = []
    code = y.yarn_command(["jar", "wordcount", f"{base}/in", f"{base}/out"], rm, nn,
                          write=lambda s: lines.append(str(s)))  # fmt: skip
    counts: dict[str, int] = {}
    for name in client.list(f"{base}/out"):
        if name.startswith("part-"):
            with client.read(f"{base}/out/{name}", encoding="utf-8") as r:
                for line in r.read().splitlines():
                    word, n = line.split("\t")
                    counts[word] = int(n)
    client.delete(base, recursive=True)
    expected = collections.Counter(text.split())
    ok = code == 0 and counts == dict(expected)
    return (
        ok,
        f"wordcount over HDFS: {len(counts)} words, {'matches' if ok else 'differs from'} a local count",
    )


CHECKS = {"zookeeper": zookeeper, "kafka": kafka, "hdfs": hdfs, "yarn": yarn}


def run(state) -> list[dict]:
    services = {svc["service"] for svc in state.get("services", {}).values()}
    return [
        _check(name, lambda fn=fn: fn(state)) for name, fn in CHECKS.items() if name in services
    ]
