"""A Kafka minicluster: racklab brokers as subprocesses, each on a loopback address of
its choosing and a free port, under a ZooKeeper chroot of their own; for tests,
benchmarks and demos on one host (as kazoo ships kazoo/testing).

Kafka needs a ZooKeeper: pass the connect string of one running, such as racklab's
from lab/services/zookeeper/minicluster.py (`standalone(...).start().hosts`) or
Apache's from lab/testing/apache_zookeeper.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from ..ports import free_port, wait_port

# What a broker in a minicluster is told besides its id, listener, log dir and
# ZooKeeper: one broker alone must be able to hold the offsets topic, groups start at
# once, and a dead follower leaves the ISR in seconds rather than Kafka's 30.
MINI_DEFAULTS = {
    "zookeeper.session.timeout.ms": 4000,
    "offsets.topic.replication.factor": 1,
    "offsets.topic.num.partitions": 4,
    "transaction.state.log.replication.factor": 1,
    "transaction.state.log.min.isr": 1,
    "transaction.state.log.num.partitions": 4,
    "group.initial.rebalance.delay.ms": 0,
    "replica.lag.time.max.ms": 3000,
}


class BrokerProcess:
    """One racklab broker, `python -m lab.services.kafka server.properties`, in
    `workdir`/broker-<id>; `props` (dots or underscores) over MINI_DEFAULTS."""

    def __init__(
        self, workdir: Path, broker_id: int, zk_connect: str, host: str = "127.0.0.1", **props
    ):
        self.id = broker_id
        self.host = host
        self.port = free_port(host)
        self.dir = Path(workdir) / f"broker-{broker_id}"
        self.dir.mkdir(parents=True, exist_ok=True)
        values = {
            "broker.id": broker_id,
            "listeners": f"PLAINTEXT://{host}:{self.port}",
            "log.dirs": self.dir / "logs",
            "zookeeper.connect": zk_connect,
            **MINI_DEFAULTS,
        }
        values.update({k.replace("_", "."): v for k, v in props.items()})
        self.props = values
        self.config = self.dir / "server.properties"
        self._write_config()
        self.proc: subprocess.Popen | None = None
        self.ran = False  # once started, a broker keeps its address across restarts

    def _write_config(self) -> None:
        self.config.write_text("".join(f"{k}={v}\n" for k, v in self.props.items()))

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.dir / "broker.log"

    def start(self, wait: float = 40, tries: int = 3) -> BrokerProcess:
        attempt = 1
        while True:
            mark = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                self._start(wait, mark)
                self.ran = True
                return self
            except RuntimeError:
                # Its free port was taken between the pick and the bind (other suites
                # share this machine's loopback): a broker that never ran takes another.
                said = self.log_path.read_bytes()[mark:]
                if self.ran or attempt == tries or b"address already in use" not in said:
                    raise
            attempt += 1
            self.port = free_port(self.host)
            self.props["listeners"] = f"PLAINTEXT://{self.host}:{self.port}"
            self._write_config()

    def _start(self, wait: float, mark: int) -> None:
        # appended to, so a restarted broker's log still holds what it said before
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lab.services.kafka", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
        wait_port(self.host, self.port, wait, self.proc)
        # listening comes before ZooKeeper registration: wait for this run's banner line
        deadline = time.monotonic() + wait
        while b"listening on" not in self.log_path.read_bytes()[mark:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("broker did not register:\n" + self.log_text()[-3000:])
            time.sleep(0.1)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it is still there after 15 seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class KafkaMiniCluster:
    """Brokers sharing a fresh chroot of the ZooKeeper at `zookeeper` (a connect string),
    so clusters sharing one ZooKeeper never meet. `add_broker` makes them one at a time
    (each with its own host and settings); `start(n)` makes n on `hosts`."""

    def __init__(self, root: Path, zookeeper: str, **props):
        self.root = Path(root)
        self.zk_connect = f"{zookeeper}/racklab-{uuid.uuid4().hex[:8]}"
        self.props = props
        self.brokers: list[BrokerProcess] = []

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers)

    def add_broker(
        self, broker_id: int = 0, host: str = "127.0.0.1", start: bool = True, **props
    ) -> BrokerProcess:
        b = BrokerProcess(self.root, broker_id, self.zk_connect, host, **{**self.props, **props})
        self.brokers.append(b)
        if start:
            b.start()
        return b

    def start(self, hosts: list[str], first_id: int = 1) -> KafkaMiniCluster:
        """One broker per address in `hosts`, ids from `first_id`, each started (and
        registered) before the next."""
        try:
            for i, host in enumerate(hosts, start=first_id):
                self.add_broker(i, host)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for b in self.brokers:
            b.stop()

    def __enter__(self) -> KafkaMiniCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
