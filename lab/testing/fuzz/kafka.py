"""Kafka under fuzz: a frame for every API the broker serves at every version it
advertises and one either side, built from Kafka's own message schemas, then mutated;
unknown APIs, garbage and lying sizes too. Between batches kafka-python produces with
acks=all and reads back every record ever acknowledged."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from pathlib import Path

from lab.services.kafka.minicluster import KafkaMiniCluster
from lab.services.kafka.protocol.api import APIS, encode_request
from lab.services.zookeeper.minicluster import standalone

from .core import Daemon, Probe, Target
from .mutate import garbage, mutate

TOPIC = "acked"


def header_only(key: int, version: int, cid: int) -> bytes:
    body = struct.pack(">hhih", key, version, cid, 4) + b"fuzz"
    return struct.pack(">i", len(body)) + body


class KafkaTarget(Target):
    service = "kafka"

    def start(self, workdir: Path) -> None:
        self.zk = standalone(str(workdir / "zk"), tick_time=500).start()
        self.cluster = KafkaMiniCluster(
            workdir,
            self.zk.hosts,
            zookeeper_session_timeout_ms=6000,
            offsets_topic_num_partitions=2,
            num_partitions=1,
        )
        self.broker = self.cluster.add_broker(1)
        self.port = self.broker.port
        self.bootstrap = self.broker.bootstrap
        self.acked: list[bytes] = []
        self.check()

    def stop(self) -> None:
        try:
            self.cluster.stop()
        finally:
            self.zk.stop()

    def daemons(self) -> list[Daemon]:
        b = self.broker
        return [Daemon("broker", b.proc.pid, b.host, b.port, b.log_path)]

    def alive(self, d: Daemon, timeout: float) -> bool:
        import socket

        try:
            with socket.create_connection((d.host, d.port), timeout=timeout) as s:
                s.sendall(encode_request(APIS[18], 0, 7, "probe", {}))
                s.settimeout(timeout)
                return len(s.recv(8)) > 0
        except OSError:
            return False

    def check(self) -> None:
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # the real client

        new = [f"{len(self.acked)}-{i}".encode() for i in range(5)]
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", retries=3)
        try:
            for v in new:
                producer.send(TOPIC, v).get(timeout=30)
        finally:
            producer.close(timeout=10)
        self.acked += new
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, consumer_timeout_ms=10_000)
        try:
            tp = TopicPartition(TOPIC, 0)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            got: list[bytes] = []
            while len(got) < len(self.acked):
                batch = consumer.poll(timeout_ms=10_000, max_records=10_000).get(tp, [])
                if not batch:
                    break
                got += [r.value for r in batch]
        finally:
            consumer.close()
        assert got == self.acked, f"read back {len(got)} of {len(self.acked)} acknowledged records"

    def probes(self, rng: random.Random) -> Iterator[Probe]:
        keys = sorted(APIS)
        cid = 0
        while True:
            cid += 1
            what = rng.random()
            if what < 0.05:
                pieces = [garbage(rng)]
            elif what < 0.1:
                pieces = [
                    struct.pack(">i", rng.choice([2**31 - 1, 10**9, -1, 0, 7])) + garbage(rng)
                ]
            elif what < 0.15:
                pieces = [
                    header_only(rng.choice([-1, 17, 42, 99, 32767]), rng.randint(-1, 20), cid)
                ]
            else:
                api = APIS[rng.choice(keys)]
                version = rng.randint(max(0, api.min_version - 1), api.max_version + 1)
                if api.supports(version):
                    frame = encode_request(api, version, cid, "fuzz", {})
                    pieces = [mutate(rng, frame) if what > 0.3 else frame]
                else:
                    pieces = [header_only(api.key, version, cid)]
            yield Probe("kafka", "127.0.0.1", self.port, pieces)
