"""Kafka under fuzz: a frame for every API the broker serves at every version it
advertises and one either side, built from Kafka's own message schemas, then mutated;
unknown APIs, garbage and lying sizes too. Between batches kafka-python produces with
acks=all and reads back every record ever acknowledged."""

from __future__ import annotations

import random
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from lab.services.kafka.protocol.api import APIS, encode_request
from lab.services.ports import free_port, wait_port

from .core import Daemon, Probe, Target
from .mutate import garbage, mutate

TOPIC = "acked"


def header_only(key: int, version: int, cid: int) -> bytes:
    body = struct.pack(">hhih", key, version, cid, 4) + b"fuzz"
    return struct.pack(">i", len(body)) + body


class KafkaTarget(Target):
    service = "kafka"

    def start(self, workdir: Path) -> None:
        self.procs: list[subprocess.Popen] = []
        zk_port = free_port("127.0.0.1")
        (workdir / "zk").mkdir()
        (workdir / "zk" / "zoo.cfg").write_text(
            f"tickTime=500\ndataDir={workdir / 'zk'}\nclientPort={zk_port}\nclientPortAddress=127.0.0.1\n"
        )
        self.zk = self._spawn([sys.executable, "-m", "lab.services.zookeeper", str(workdir / "zk" / "zoo.cfg")], workdir / "zk.log")  # fmt: skip
        wait_port("127.0.0.1", zk_port, 30, self.zk)
        self.port = free_port("127.0.0.1")
        props = workdir / "server.properties"
        props.write_text(
            f"broker.id=1\nlisteners=PLAINTEXT://127.0.0.1:{self.port}\nlog.dirs={workdir / 'logs'}\n"
            f"zookeeper.connect=127.0.0.1:{zk_port}/fuzz\nzookeeper.session.timeout.ms=6000\n"
            "offsets.topic.replication.factor=1\noffsets.topic.num.partitions=2\n"
            "group.initial.rebalance.delay.ms=0\nnum.partitions=1\n"
        )
        self.log = workdir / "broker.log"
        self.broker = self._spawn(
            [sys.executable, "-m", "lab.services.kafka", str(props)], self.log
        )
        wait_port("127.0.0.1", self.port, 30, self.broker)
        deadline = time.monotonic() + 40
        while b"listening on" not in self.log.read_bytes():
            if time.monotonic() > deadline or self.broker.poll() is not None:
                raise RuntimeError("broker did not register:\n" + self.log.read_text()[-2000:])
            time.sleep(0.1)
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.acked: list[bytes] = []
        self.check()

    def _spawn(self, argv, log: Path) -> subprocess.Popen:
        p = subprocess.Popen(argv, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()

    def daemons(self) -> list[Daemon]:
        return [Daemon("broker", self.broker.pid, "127.0.0.1", self.port, self.log)]

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
