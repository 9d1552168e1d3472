"""Test harness: Apache ZooKeeper 3.8 from Debian's package, and racklab Kafka
brokers as subprocesses, each on its own loopback address and a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from lab.bench.reference import apache_zk_argv, free_port, wait_port


class ApacheZooKeeper:
    def __init__(self, workdir: Path, host: str = "127.0.0.1"):
        self.host = host
        self.port = free_port(host)
        self.dir = workdir
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        self.cfg = workdir / "zoo.cfg"
        self.cfg.write_text(
            f"tickTime=500\ndataDir={workdir / 'data'}\nclientPort={self.port}\n"
            f"clientPortAddress={host}\nadmin.enableServer=false\nminSessionTimeout=1000\n"
            "maxSessionTimeout=60000\n4lw.commands.whitelist=ruok,stat\n"
        )
        self.proc: subprocess.Popen | None = None

    @property
    def connect(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self.log = open(self.dir / "zk.log", "wb")
        self.proc = subprocess.Popen(
            apache_zk_argv(self.cfg), stdout=self.log, stderr=subprocess.STDOUT
        )
        wait_port(self.host, self.port, 30, self.proc)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class RacklabZooKeeper(ApacheZooKeeper):
    """racklab's own ZooKeeper (lab.services.zookeeper), same zoo.cfg."""

    def start(self) -> None:
        self.log = open(self.dir / "zk.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lab.services.zookeeper", str(self.cfg)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_port(self.host, self.port, 30, self.proc)


class BrokerProcess:
    """One racklab broker, `python -m lab.services.kafka server.properties`."""

    def __init__(
        self, workdir: Path, broker_id: int, zk_connect: str, host: str = "127.0.0.1", **props
    ):
        self.id = broker_id
        self.host = host
        self.port = free_port(host)
        self.dir = workdir / f"broker-{broker_id}"
        self.dir.mkdir(parents=True, exist_ok=True)
        defaults = {
            "broker.id": broker_id,
            "listeners": f"PLAINTEXT://{host}:{self.port}",
            "log.dirs": self.dir / "logs",
            "zookeeper.connect": zk_connect,
            "zookeeper.session.timeout.ms": 4000,
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 4,
            "group.initial.rebalance.delay.ms": 0,
            "replica.lag.time.max.ms": 3000,
        }
        defaults.update({k.replace("_", "."): v for k, v in props.items()})
        self.props = defaults
        self.config = self.dir / "server.properties"
        self.config.write_text("".join(f"{k}={v}\n" for k, v in defaults.items()))
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, wait: float = 40) -> None:
        self.logf = open(self.dir / "broker.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lab.services.kafka", str(self.config)],
            stdout=self.logf,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        wait_port(self.host, self.port, wait, self.proc)
        # listening comes before ZooKeeper registration: wait for the banner line
        deadline = time.monotonic() + wait
        while b"listening on" not in (self.dir / "broker.log").read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("broker did not register:\n" + self.log_text()[-3000:])
            time.sleep(0.1)

    def log_text(self) -> str:
        return (self.dir / "broker.log").read_text(errors="replace")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "logf", None):
            self.logf.close()


def chroot(zk: ApacheZooKeeper) -> str:
    """A fresh ZooKeeper chroot per cluster, so tests sharing one ZK never meet."""
    return f"{zk.connect}/racklab-{uuid.uuid4().hex[:8]}"


# --- kafka-python clients, as the tests use them ---------------------------------------


def send_values(bootstrap, topic: str, values: list[bytes]) -> None:
    """Produce with kafka-python's defaults and wait until everything is acknowledged."""
    p = KafkaProducer(bootstrap_servers=bootstrap)
    for v in values:
        p.send(topic, v)
    p.flush(30)
    p.close()


def group_consumer(bootstrap, topic: str, group: str) -> KafkaConsumer:
    """A member of `group` reading `topic` from the earliest offset, committing only when
    told to (so a test decides what the group has consumed)."""
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )


def poll_until(consumer, want: int, timeout: float, max_records: bool = False) -> list:
    """Records polled until `want` came or `timeout` passed; with max_records, never more
    than `want` (the rest stays for whoever reads after a commit)."""
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        limit = {"max_records": want - len(got)} if max_records else {}
        for records in consumer.poll(timeout_ms=300, **limit).values():
            got.extend(records)
    return got
