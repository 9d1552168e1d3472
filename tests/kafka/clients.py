"""kafka-python clients as the Kafka tests drive them (the brokers they talk to come
from lab.services.kafka.minicluster)."""

from __future__ import annotations

import threading
import time

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError


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
    than `want` (the rest stays for whoever reads after a commit).

    A client error is retried until the deadline, as an application's poll loop goes on:
    kafka-python (3.0.x) raises a refused connection out of poll() when its metadata
    refresh picks a broker a test has just killed, where it would try another next time.
    An error that lasts leaves the records missing, which is what the test then sees."""
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        limit = {"max_records": want - len(got)} if max_records else {}
        try:
            batch = consumer.poll(timeout_ms=300, **limit)
        except KafkaError:
            time.sleep(0.1)
            continue
        for records in batch.values():
            got.extend(records)
    return got


class PolledGroup:
    """Members of one group, each polled back to back in a thread of its own, as an
    application runs its consumers.

    Why not one loop polling each member in turn: kafka-python (3.0.x) sends a fresh
    JoinGroup when the join it started in an earlier poll() finished while no poll() was
    running, dropping the finished one's assignment. In a loop over several members a
    member's join always finishes during another member's poll(), because the
    coordinator answers only once every member has rejoined. When that member is the
    group leader its fresh JoinGroup makes the coordinator rebalance again (as Kafka
    does on a leader's rejoin), so the group can keep rebalancing for as long as the
    timing keeps lining up that way, which on a loaded machine can be longer than any
    deadline a test gives it."""

    def __init__(self, consumers: list[KafkaConsumer], poll_ms: int = 100):
        self.consumers = list(consumers)
        self.poll_ms = poll_ms
        self.values: list[list[bytes]] = [[] for _ in self.consumers]
        self.errors: list[Exception] = []
        self._assigned: list[set] = [set() for _ in self.consumers]
        self._lock = threading.Lock()
        self._stops = [threading.Event() for _ in self.consumers]
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True)
            for i in range(len(self.consumers))
        ]
        for t in self._threads:
            t.start()

    def _run(self, i: int) -> None:
        c = self.consumers[i]
        while not self._stops[i].is_set():
            try:
                batch = c.poll(timeout_ms=self.poll_ms)
            except KafkaError as exc:
                # An application's poll loop goes on after a client error (a dropped
                # connection, a rebalance that failed a commit); a thread that died here
                # left its member out of the group for the rest of the test.
                self.errors.append(exc)
                time.sleep(0.1)
                continue
            assigned = set(c.assignment())
            with self._lock:
                for recs in batch.values():
                    self.values[i].extend(r.value for r in recs)
                self._assigned[i] = assigned

    def sizes(self) -> list[int]:
        """How many partitions each member still polling holds, sorted."""
        with self._lock:
            return sorted(len(self._assigned[i]) for i in self.live())

    def union(self) -> set:
        """Every partition some member still polling holds."""
        with self._lock:
            return set().union(*(self._assigned[i] for i in self.live()))

    def live(self) -> list[int]:
        return [i for i, s in enumerate(self._stops) if not s.is_set()]

    def wait_sizes(self, want: list[int], timeout: float) -> list[int]:
        """Wait (bounded) until the members' assignment sizes are `want`; the last seen."""
        deadline = time.monotonic() + timeout
        while self.sizes() != want and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.sizes()

    def wait_values(self, count: int, timeout: float) -> list[bytes]:
        """Wait (bounded) until the members together have `count` values; all of them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                got = [v for vs in self.values for v in vs]
            if len(got) >= count:
                break
            time.sleep(0.05)
        return got

    def close(self, i: int) -> None:
        """Stop member i's polling and close it (it leaves the group)."""
        self._stops[i].set()
        self._threads[i].join(30)
        self.consumers[i].close()

    def close_all(self) -> None:
        for i in self.live():
            self.close(i)


def group_story(broker, group: str, members: PolledGroup | None = None) -> str:
    """What the broker logged about a group, and what each member last saw: said when
    a group test fails, so a failure in CI shows how the group got there."""
    lines = [ln for ln in broker.log_text().splitlines() if f"group {group}" in ln]
    out = ["broker log of the group:", *lines[-40:]]
    if members is not None:
        with members._lock:
            for i, c in enumerate(members.consumers):
                out.append(
                    f"member {i}: assigned {sorted(tp.partition for tp in members._assigned[i])}"
                    f", generation {getattr(c._coordinator, '_generation', None)}"
                )
        out.append(f"client errors: {members.errors[-10:]}")
    return "\n".join(out)
