"""kafka-queue: kafka-python producers and group consumers on one replicated topic.

Producers send distinct integers (no key: the client's partitioner spreads them) and
wait for the acknowledgement, which names the partition and offset. Consumers in one
group poll with auto-commit; a poll during which the group rebalanced is marked, since
a consumer may then legitimately go back to its last committed offset. After healing,
a fresh consumer outside the group reads every partition from its start to its end:
the final read the checker compares every acknowledged send against.

Safe settings (the default): acks=all, an idempotent producer, min.insync.replicas 2 and
no unclean leader election. ``options={"acks": 1, "unclean": True}`` is the classic
unsafe setting: an acknowledged write can then vanish when a lagging replica is elected.
"""

from __future__ import annotations

import itertools
import threading
import time

from kafka import TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import NotEnoughReplicasError

from lab.chaos.checkers import queue
from lab.chaos.history import FAIL, INFO, OK

from .base import ChaosError, Workload
from .kafka_clients import KafkaAdminClient, KafkaConsumer, KafkaProducer, close, make

KAFKA_PORT = 9092
TOPIC = "racklab-chaos"
GROUP = "racklab-chaos"


def _classify(e: Exception) -> str:
    # NOT_ENOUGH_REPLICAS is refused before the append; anything else (timeouts, a
    # leader gone mid-request, ..._AFTER_APPEND) leaves the write's fate unknown
    return FAIL if isinstance(e, NotEnoughReplicasError) else INFO


class _Rebalanced(ConsumerRebalanceListener):
    def __init__(self):
        self.flag = False

    def on_partitions_revoked(self, revoked):
        self.flag = True

    def on_partitions_assigned(self, assigned):
        self.flag = True


class KafkaQueue(Workload):
    name = "kafka-queue"
    known_options = (
        "acks",
        "unclean",
        "idempotent",
        "retries",
        "partitions",
        "replication",
        "min_insync",
    )
    service = "kafka"
    default_concurrency = 4

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        o = self.options
        self.acks = o.get("acks", "all")
        if self.acks not in ("all", -1, "-1"):
            try:
                self.acks = int(self.acks)
            except ValueError:
                raise ChaosError(
                    f"workload option acks must be all, 1 or 0, not {self.acks!r}"
                ) from None
        elif self.acks == "-1":
            self.acks = "all"
        self.unclean = self.opt_bool("unclean", False)
        self.partitions = int(o.get("partitions", 3))
        self._values = itertools.count(1)
        self._vlock = threading.Lock()
        # a topic of its own per run: nothing an earlier run wrote can muddle this one
        self.topic = f"{TOPIC}-{int(time.time())}-{self.seed}"

    def bootstrap(self) -> list[str]:
        return [f"{self.addr(n)}:{KAFKA_PORT}" for n in self.nodes()]

    def topic_settings(self) -> tuple[int, dict]:
        rf = int(self.options.get("replication", min(3, len(self.nodes()))))
        safe = self.acks in ("all", -1) and not self.unclean
        min_isr = int(self.options.get("min_insync", 2 if safe and rf >= 3 else 1))
        return rf, {
            "min.insync.replicas": str(min_isr),
            "unclean.leader.election.enable": "true" if self.unclean else "false",
        }

    def setup(self) -> None:
        rf, configs = self.topic_settings()
        admin = make(KafkaAdminClient, bootstrap_servers=self.bootstrap(), request_timeout_ms=15000)
        try:
            admin.create_topics(
                [NewTopic(self.topic, self.partitions, rf, topic_configs=configs)],
                timeout_ms=15000,
            )
            self._wait(lambda: self._leaders_known(admin), "partition leaders")
        finally:
            close(admin)

    def _wait(self, cond, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if cond():
                    return
            except Exception:  # noqa: BLE001 - not ready yet
                pass
            time.sleep(0.3)
        raise TimeoutError(f"kafka: waited {timeout:g} s for {what}")

    def _leaders_known(self, admin) -> bool:
        [t] = admin.describe_topics([self.topic])
        parts = t.get("partitions", [])
        return len(parts) == self.partitions and all(p["leader_id"] >= 0 for p in parts)

    def leader(self) -> str | None:
        """The node leading partition 0 (for kill-leader). An admin client of its own
        each time, closed before it returns: the runner hands the nemesis the leader()
        of the workload it made only to validate the options, which is never torn down."""
        admin = make(KafkaAdminClient, bootstrap_servers=self.bootstrap(), request_timeout_ms=3000)
        try:
            [t] = admin.describe_topics([self.topic])
            leader = next(p["leader_id"] for p in t["partitions"] if p["partition_index"] == 0)
            hosts = {b["broker_id"]: b["host"] for b in admin.describe_cluster()["brokers"]}
        finally:
            close(admin)
        by_addr = {a: n for n, a in self.ctx.addresses.items()}
        return by_addr.get(hosts.get(leader))

    # clients: the first half produce, the rest consume
    def open_client(self, worker):
        t = int(self.op_timeout * 1000)
        if worker < max(1, self.concurrency // 2):
            idem = self.acks in ("all", -1) and self.opt_bool("idempotent", True)
            return make(
                KafkaProducer,
                bootstrap_servers=self.bootstrap(),
                acks=self.acks,
                enable_idempotence=idem,
                retries=int(self.options.get("retries", 3 if idem else 0)),
                request_timeout_ms=t,
                max_block_ms=t,
                delivery_timeout_ms=max(t * 2, 2 * t + 100),
                linger_ms=0,
                metadata_max_age_ms=2000,
                reconnect_backoff_max_ms=1000,
            )
        listener = _Rebalanced()
        consumer = make(
            KafkaConsumer,
            bootstrap_servers=self.bootstrap(),
            group_id=GROUP,
            auto_offset_reset="earliest",
            enable_auto_commit=True,
            auto_commit_interval_ms=500,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            request_timeout_ms=max(t, 7000),
            metadata_max_age_ms=2000,
            reconnect_backoff_max_ms=1000,
        )
        try:
            consumer.subscribe([self.topic], listener=listener)
        except BaseException:
            close(consumer)
            raise
        consumer._chaos_listener = listener
        return consumer

    def close_client(self, client) -> None:
        close(client)

    def step(self, client, process, rng):
        if isinstance(client, KafkaProducer):
            with self._vlock:
                v = next(self._values)

            def send():
                md = client.send(self.topic, value=str(v).encode()).get(timeout=self.op_timeout)
                return [md.partition, md.offset]

            return self.record(process, "send", v, send, _classify)
        listener = client._chaos_listener
        inv = self.history.invoke(process, "poll", None)
        try:
            got = client.poll(timeout_ms=500, max_records=200)
        except Exception as e:  # noqa: BLE001
            self.history.complete(inv, INFO, None, error=f"{type(e).__name__}: {e}"[:300])
            return INFO
        records = [
            [tp.partition, r.offset, int(r.value)]
            for tp, rs in sorted(got.items(), key=lambda kv: kv[0].partition)
            for r in rs
        ]
        extra = {"rebalanced": True} if listener.flag else {}
        listener.flag = False
        self.history.complete(inv, OK, records, **extra)
        return OK

    def final(self) -> None:
        consumer = self.retry_until_deadline(
            lambda: make(
                KafkaConsumer,
                bootstrap_servers=self.bootstrap(),
                enable_auto_commit=False,
                request_timeout_ms=7000,
                metadata_max_age_ms=2000,
            )
        )
        try:
            tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends = self.retry_until_deadline(lambda: consumer.end_offsets(tps))
            records: dict[int, list] = {tp.partition: [] for tp in tps}
            done = {tp.partition for tp in tps if ends[tp] == 0}
            while len(done) < len(tps) and time.monotonic() < self.final_deadline:
                try:
                    got = consumer.poll(timeout_ms=500, max_records=1000)
                except Exception:  # noqa: BLE001 - still recovering
                    time.sleep(0.3)
                    continue
                for tp, rs in got.items():
                    records[tp.partition] += [[tp.partition, r.offset, int(r.value)] for r in rs]
                for tp in tps:
                    if consumer.position(tp) >= ends[tp]:
                        done.add(tp.partition)
            for p in sorted(records):
                inv = self.history.invoke(f"final-{p}", "poll", None)
                if p in done:
                    self.history.complete(
                        inv, OK, records[p], final=True, partitions=[p], end_offset=ends[tps[p]]
                    )
                else:
                    self.history.complete(inv, FAIL, None, error="partition not read to its end")
        finally:
            close(consumer)

    def check(self):
        return [queue.check(self.history)]
