"""Kafka benchmark: racklab's brokers driven by confluent-kafka (librdkafka) and
kafka-python, at replication factor 1 and 3, beside the disk's own sequential
write bandwidth measured by fio in the same run.

    python -m lab.bench.kafka [--seconds 3] [--zookeeper racklab|apache] [--json]

Per case: produce throughput (1 KiB records, acks=all, until all are
acknowledged), consume throughput (the same records read back from the start),
and end-to-end latency (one record at a time, send to receive) p50/p99.
Everything runs on loopback addresses of this machine and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from lab.services.kafka.minicluster import KafkaMiniCluster
from lab.services.ports import free_port
from lab.services.zookeeper.minicluster import standalone
from lab.testing.apache_zookeeper import ApacheZooKeeper

RECORD = 1024
HOSTS = ["127.0.0.21", "127.0.0.22", "127.0.0.23"]


# the broker settings this benchmark has always used, over the minicluster's quick ones
# (Kafka's own replica.lag.time.max.ms: the ISR is not what is measured here)
BROKER_PROPS = {
    "zookeeper_session_timeout_ms": 6000,
    "offsets_topic_num_partitions": 3,
    "replica_lag_time_max_ms": 30000,
    "min_insync_replicas": 1,
    "log_segment_bytes": 268435456,
}


def fio_seq_write(directory: Path, seconds: int) -> float:
    """MB/s of buffered sequential 1 MiB writes with an fsync at the end (what a log does)."""
    out = subprocess.run(
        [
            "fio",
            "--name=seqwrite",
            f"--directory={directory}",
            "--rw=write",
            "--bs=1M",
            "--size=1G",
            f"--runtime={seconds}",
            "--time_based=0",
            "--end_fsync=1",
            "--ioengine=psync",
            "--output-format=json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    job = json.loads(out.stdout)["jobs"][0]["write"]
    for f in directory.glob("seqwrite*"):
        f.unlink()
    return job["bw_bytes"] / 1e6


def create_topic(bootstrap: str, name: str, rf: int) -> None:
    from lab.services.kafka import admin

    admin.run(admin.create_topic(bootstrap, name, partitions=1, replication_factor=rf))


# ---------------- confluent-kafka ----------------


def ck_case(bootstrap: str, topic: str, seconds: float, max_records: int) -> dict:
    import confluent_kafka as ck

    payload = os.urandom(RECORD)
    p = ck.Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 5,
            "batch.size": 1 << 20,
            "queue.buffering.max.kbytes": 262144,
        }
    )
    errors = []
    sent = 0
    t0 = time.perf_counter()
    while sent < max_records and time.perf_counter() - t0 < seconds:
        try:
            p.produce(topic, payload, on_delivery=lambda e, m: e and errors.append(e))
            sent += 1
        except BufferError:
            p.poll(0.01)
        if sent % 1000 == 0:
            p.poll(0)
    left = p.flush(60)
    t_prod = time.perf_counter() - t0
    if errors or left:
        raise RuntimeError(f"confluent produce failed: {errors[:3]} left={left}")
    c = ck.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.max.bytes": 52428800,
        }
    )
    c.subscribe([topic])
    got = 0
    first = None
    deadline = time.monotonic() + 60
    while got < sent and time.monotonic() < deadline:
        # the clock starts with the call that brought the first records (timed from their
        # arrival, a topic that came in one call read at "millions of MB/s")
        called = time.perf_counter()
        msgs = c.consume(10000, 0.5)
        for m in msgs:
            if m.error() is None:
                if first is None:
                    first = called
                got += 1
    t_cons = time.perf_counter() - (first or time.perf_counter())
    c.close()
    lat = ck_latency(bootstrap, topic)
    return _result(sent, t_prod, got, t_cons, lat)


def ck_latency(bootstrap: str, topic: str, samples: int = 200) -> list[float]:
    import confluent_kafka as ck

    c = ck.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"lat-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "latest",
            "fetch.wait.max.ms": 100,
        }
    )
    c.subscribe([topic])
    while not c.assignment():
        c.poll(0.2)
    c.poll(0.5)
    p = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    out = []
    for _ in range(samples):
        t = time.perf_counter()
        p.produce(topic, str(t).encode().ljust(RECORD, b" "))
        p.poll(0)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is not None and m.error() is None:
                out.append((time.perf_counter() - float(m.value().strip())) * 1000)
                break
    p.flush(10)
    c.close()
    return out


# ---------------- kafka-python ----------------


def kp_case(bootstrap: str, topic: str, seconds: float, max_records: int) -> dict:
    from kafka import KafkaConsumer, KafkaProducer

    payload = os.urandom(RECORD)
    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, batch_size=1 << 20, acks="all")
    futs = []
    t0 = time.perf_counter()
    while len(futs) < max_records and time.perf_counter() - t0 < seconds:
        futs.append(p.send(topic, payload))
    p.flush(120)
    t_prod = time.perf_counter() - t0
    for f in futs[-10:]:
        f.get(0)
    sent = len(futs)
    p.close()
    c = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        fetch_max_bytes=52428800,
        max_partition_fetch_bytes=8 << 20,
    )
    got = 0
    first = None
    deadline = time.monotonic() + 120
    while got < sent and time.monotonic() < deadline:
        called = time.perf_counter()  # as in ck_case: from the call that brought the first
        for recs in c.poll(timeout_ms=500, max_records=20000).values():
            if first is None:
                first = called
            got += len(recs)
    t_cons = time.perf_counter() - (first or time.perf_counter())
    c.close()
    lat = kp_latency(bootstrap, topic)
    return _result(sent, t_prod, got, t_cons, lat)


def kp_latency(bootstrap: str, topic: str, samples: int = 200) -> list[float]:
    from kafka import KafkaConsumer, KafkaProducer

    c = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="latest",
        group_id=f"lat-{uuid.uuid4().hex[:6]}",
        fetch_max_wait_ms=100,
    )
    while not c.assignment():
        c.poll(timeout_ms=200)
    c.poll(timeout_ms=500)
    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    out: list[float] = []
    got = threading.Event()
    for _ in range(samples):
        t = time.perf_counter()
        p.send(topic, str(t).encode().ljust(RECORD, b" "))
        deadline = time.monotonic() + 5
        got.clear()
        while time.monotonic() < deadline and not got.is_set():
            for recs in c.poll(timeout_ms=1000).values():
                for r in recs:
                    out.append((time.perf_counter() - float(r.value.strip())) * 1000)
                    got.set()
    p.close()
    c.close()
    return out


def _result(sent, t_prod, got, t_cons, lat) -> dict:
    lat = sorted(lat)
    return {
        "records": sent,
        "produce_records_s": sent / t_prod,
        "produce_mb_s": sent * RECORD / t_prod / 1e6,
        "consumed": got,
        "consume_records_s": got / t_cons if t_cons > 0 else 0.0,
        "consume_mb_s": got * RECORD / t_cons / 1e6 if t_cons > 0 else 0.0,
        "e2e_p50_ms": statistics.median(lat) if lat else None,
        "e2e_p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None,
        "latency_samples": len(lat),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lab.bench.kafka",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--seconds", type=float, default=3.0, help="produce time per case")
    ap.add_argument("--zookeeper", choices=["racklab", "apache"], default="racklab")
    ap.add_argument("--clients", default="confluent-kafka,kafka-python")
    ap.add_argument(
        "--dir", default=None, help="where logs and the fio file go (default: under /var/tmp)"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="racklab-kafka-bench-", dir=args.dir or "/var/tmp"))
    servers: list = []
    results = {
        "machine": {"cpus": os.cpu_count(), "kernel": os.uname().release},
        "record_bytes": RECORD,
        "zookeeper": args.zookeeper,
        "cases": [],
    }
    try:
        fio_dir = work / "fio"
        fio_dir.mkdir()
        results["fio_seq_write_mb_s"] = fio_seq_write(fio_dir, 5)
        if args.zookeeper == "apache":
            zk = ApacheZooKeeper(str(work / "zk"), free_port(), tick_time=500)
        else:
            zk = standalone(str(work / "zk"), tick_time=500)
        kafka = KafkaMiniCluster(work, zk.hosts, **BROKER_PROPS)
        servers += [kafka, zk]  # brokers stop before their ZooKeeper
        zk.start()
        bootstrap = kafka.start(HOSTS).bootstrap
        for client in args.clients.split(","):
            for rf in (1, 3):
                topic = f"bench-{client}-rf{rf}"
                create_topic(bootstrap, topic, rf)
                fn, cap = (ck_case, 300000) if client == "confluent-kafka" else (kp_case, 60000)
                r = fn(bootstrap, topic, args.seconds, cap)
                r.update(client=client, replication_factor=rf)
                r["produce_vs_disk"] = r["produce_mb_s"] / results["fio_seq_write_mb_s"]
                results["cases"].append(r)
                if not args.json:
                    print(_row(r), flush=True)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(
            f"fio sequential write (1 MiB blocks, end fsync): {results['fio_seq_write_mb_s']:.0f} MB/s"
        )
    return 0


def _row(r: dict) -> str:
    return (
        f"{r['client']:<16} RF{r['replication_factor']}  produce {r['produce_mb_s']:7.1f} MB/s "
        f"{r['produce_records_s']:9.0f} rec/s   consume {r['consume_mb_s']:7.1f} MB/s "
        f"{r['consume_records_s']:9.0f} rec/s   e2e p50 {r['e2e_p50_ms']:.1f} ms p99 {r['e2e_p99_ms']:.1f} ms"
        f"   ({r['records']} records, produce = {r['produce_vs_disk']:.2f} of disk)"
    )


if __name__ == "__main__":
    sys.exit(main())
