"""The broker: its partitions, the cluster view it keeps from ZooKeeper, the
leader/follower roles it plays per partition, and the TCP server.

Everything that changes state runs on one asyncio loop. ZooKeeper watches post
into it; blocking ZooKeeper writes go to a worker thread and their effect comes
back through the watches, so the loop's view is always what ZooKeeper says.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor

from . import controller
from . import topicconfig as tc
from .client import Connection
from .config import BrokerConfig
from .group import GroupCoordinator, OffsetAndMetadata
from .log import LogConfig
from .partition import Partition
from .protocol import records as rec
from .protocol.api import ApiKey
from .protocol.errors import Error
from .zk import ZkCluster

log = logging.getLogger("lab.kafka.broker")

OFFSETS_TOPIC = "__consumer_offsets"
MAX_PARTITIONS_PER_TOPIC = 1000
CHECKPOINT = "replication-offset-checkpoint"


def java_string_hash(s: str) -> int:
    h = 0
    for unit in s.encode("utf-16-be").hex(" ", 2).split():
        h = (31 * h + int(unit, 16)) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_group(group_id: str, n: int) -> int:
    h = java_string_hash(group_id)
    return (0 if h == -(1 << 31) else abs(h)) % n


class Broker:
    def __init__(self, config: BrokerConfig):
        self.config = config
        self.id = config.broker_id
        self.log_dir = config.log_dirs[0]
        self.partitions: dict[tuple[str, int], Partition] = {}
        self.live_brokers: dict[int, dict] = {}
        # every broker id seen registered since start: one that is down is still a
        # broker a manual assignment may name (KRaft's "registered", here from memory)
        self.known_brokers: set[int] = set()
        self.assignments: dict[str, dict[int, list[int]]] = {}
        self.states: dict[tuple[str, int], dict] = {}
        # topic -> its config overrides, typed (topicconfig.parse)
        self.topic_configs: dict[str, dict] = {}
        self.controller_id = -1
        self.is_controller = False
        self.cluster_id = ""
        self.groups = GroupCoordinator(
            config.group_initial_rebalance_delay_ms,
            config.group_min_session_timeout_ms,
            config.group_max_session_timeout_ms,
        )
        self.loading_offsets: set[int] = set()
        self.fetchers: dict[int, ReplicaFetcher] = {}
        self._progress = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()
        # topic -> its current incarnation (topic id); the partition state watches and
        # the log directories are bound to one incarnation
        self.topic_ids: dict[str, str] = {}
        self._watched_topics: set[str] = set()
        self._watched_partitions: dict[tuple[str, int], str] = {}
        self._reconcile_lock = asyncio.Lock()
        self._reconcile_again = False
        self._preferred_due = False
        self._pid_block = (0, -1)
        self._next_pid = 0
        self.server: asyncio.base_events.Server | None = None
        self.zk: ZkCluster | None = None
        self.hw_checkpoint: dict[tuple[str, int], int] = {}
        self._last_checkpoint = ""
        self._codec_pool = ThreadPoolExecutor(1, thread_name_prefix="kafka-codec")

    # ---------- lifecycle ----------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._load_checkpoint()
        from .server import serve  # the TCP side, kept apart from the state

        self.server = await serve(self)
        port = self.server.sockets[0].getsockname()[1]
        adv = self.config.advertised_listener
        self.advertised = (adv.host or self.config.listener.host or "127.0.0.1", adv.port or port)
        if self.config.advertised is None:
            self.advertised = (self.advertised[0], port)
        self.zk = ZkCluster(
            self.config.zookeeper_connect, self.config.zookeeper_session_timeout_ms, loop
        )
        cto = (
            self.config.zookeeper_connection_timeout_ms or self.config.zookeeper_session_timeout_ms
        )
        await self._in_thread(self.zk.start, cto / 1000)
        self.cluster_id = await self._in_thread(self.zk.cluster_id)
        await self._register()
        self.zk.on_new_session(lambda: self.spawn(self._register()))
        self.zk.watch_brokers(self._on_brokers)
        self.zk.watch_controller(self._on_controller)
        self.zk.watch_topics(self._on_topics)
        self.zk.watch_delete_requests(lambda _ch: self._trigger_reconcile())
        for coro in (
            self._isr_shrink_loop(),
            self._housekeeping_loop(),
            self._leader_balance_loop(),
        ):
            self._tasks.append(asyncio.create_task(coro))
        await self.server.start_serving()
        log.info("broker %d serving on %s:%d", self.id, *self.advertised)

    async def _register(self) -> None:
        await self._in_thread(
            self.zk.register_broker,
            self.id,
            self.advertised[0],
            self.advertised[1],
            self.config.rack,
            self.config.zookeeper_session_timeout_ms / 1000 + 10,
        )
        await self._elect()

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for f in list(self.fetchers.values()):
            await f.stop()
        if self.server:
            self.server.close()
        if self.zk:
            await self._in_thread(self.zk.stop)
        self._save_checkpoint()
        for p in self.partitions.values():
            p.close()
        self._codec_pool.shutdown(wait=False, cancel_futures=True)

    def spawn(self, coro) -> asyncio.Task:
        """A background task the loop keeps a reference to (asyncio only holds
        weak ones, so an unreferenced task can vanish mid-way)."""
        t = asyncio.get_running_loop().create_task(coro)
        self._background.add(t)
        t.add_done_callback(self._background.discard)
        return t

    async def _in_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def in_codec_thread(self, fn, *args):
        """Decompression of clients' batches: one thread of its own, so a burst of big
        batches queues there instead of taking the threads ZooKeeper writes use."""
        return await asyncio.get_running_loop().run_in_executor(self._codec_pool, fn, *args)

    def notify(self) -> None:
        """Wake every waiter (long-poll fetches, acks=all produces)."""
        ev, self._progress = self._progress, asyncio.Event()
        ev.set()

    async def wait_progress(self, timeout: float) -> None:
        if timeout <= 0:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._progress.wait(), timeout)

    # ---------- HW checkpoint ----------
    def _load_checkpoint(self) -> None:
        path = self.log_dir / CHECKPOINT
        if not path.exists():
            return
        lines = path.read_text().splitlines()
        for line in lines[2:]:
            topic, p, hw = line.rsplit(" ", 2)
            self.hw_checkpoint[(topic, int(p))] = int(hw)

    def _save_checkpoint(self) -> None:
        entries = [(t, p, part.high_watermark) for (t, p), part in self.partitions.items()]
        body = f"0\n{len(entries)}\n" + "".join(f"{t} {p} {hw}\n" for t, p, hw in entries)
        if body == self._last_checkpoint:
            return  # unchanged: no write every half second on an idle broker
        self._last_checkpoint = body
        tmp = self.log_dir / (CHECKPOINT + ".tmp")
        tmp.write_text(body)
        tmp.replace(self.log_dir / CHECKPOINT)

    # ---------- cluster view from ZooKeeper ----------
    def _on_brokers(self, brokers: dict[int, dict]) -> None:
        self.live_brokers = brokers
        self.known_brokers.update(brokers)
        self._trigger_reconcile()

    def _on_controller(self, cid: int) -> None:
        self.controller_id = cid
        if cid == -1 or (cid != self.id and self.is_controller):
            self.is_controller = False
            self.spawn(self._elect())

    async def _elect(self) -> None:
        won = await self._in_thread(self.zk.try_become_controller, self.id)
        if won:
            log.info("broker %d is the controller", self.id)
            self.is_controller = True
            self.controller_id = self.id
            self._trigger_reconcile()

    def _trigger_reconcile(self) -> None:
        if not self.is_controller:
            return
        if self._reconcile_lock.locked():
            self._reconcile_again = True
            return
        self.spawn(self._reconcile())

    async def _reconcile(self) -> None:
        async with self._reconcile_lock:
            while True:
                self._reconcile_again = False
                live = set(self.live_brokers)
                preferred, self._preferred_due = self._preferred_due, False
                try:
                    changes = await self._in_thread(
                        controller.reconcile,
                        self.zk,
                        live,
                        self.config.unclean_leader_election,
                        preferred,
                    )
                except Exception:  # noqa: BLE001 - a ZooKeeper hiccup: the next event retries
                    log.exception("controller pass failed")
                    changes = []
                for c in changes:
                    log.info("controller: %s", c)
                if not self._reconcile_again or not self.is_controller:
                    return

    def _on_topics(self, topics: list[str]) -> None:
        for t in topics:
            if t not in self._watched_topics:
                self._watched_topics.add(t)
                self.zk.watch_assignment(t, self._on_assignment)
        self._trigger_reconcile()

    def _on_assignment(
        self, topic: str, assignment: dict[int, list[int]] | None, topic_id: str | None
    ) -> None:
        old = self.topic_ids.get(topic)
        if old is not None and old != topic_id:
            self._drop_topic(topic)  # deleted, or deleted and created again
        if assignment is None:
            return
        self.topic_ids[topic] = topic_id
        self.topic_configs.setdefault(topic, {})
        self.spawn(self._watch_topic(topic, assignment, topic_id))

    async def _watch_topic(self, topic: str, assignment: dict[int, list[int]], tid: str) -> None:
        # the topic's config first, so its partitions open with their overrides
        await self._load_topic_config(topic)
        if self.topic_ids.get(topic) != tid:
            return  # deleted (or replaced) while the config was read
        self.assignments[topic] = assignment
        for p in assignment:
            if self._watched_partitions.get((topic, p)) != tid:
                self._watched_partitions[(topic, p)] = tid
                self.zk.watch_partition_state(topic, p, tid, self._on_partition_state)
        self._trigger_reconcile()
        self.notify()

    async def _load_topic_config(self, topic: str) -> None:
        raw = await self._in_thread(self.zk.topic_config, topic)

        def bad(name, value, why):
            log.warning(
                "topic %s: ignoring %s=%r, using the broker default: %s", topic, name, value, why
            )

        self.topic_configs[topic] = tc.typed_or_skip(raw, bad)
        for (t, _), part in self.partitions.items():
            if t == topic:
                part.log.config = self.log_config_for(topic)

    # topic-level overrides (CreateTopics configs), over the broker's log.* defaults
    _TOPIC_LOG_KEYS = {
        "segment.bytes": "segment_bytes",
        "retention.bytes": "retention_bytes",
        "retention.ms": "retention_ms",
        "index.interval.bytes": "index_interval_bytes",
        "flush.messages": "flush_interval_messages",
        "flush.ms": "flush_interval_ms",
    }

    def log_config_for(self, topic: str) -> LogConfig:
        cfg = dataclasses.replace(self.config.log)
        for key, attr in self._TOPIC_LOG_KEYS.items():
            v = self.topic_configs.get(topic, {}).get(key)
            if v is not None:
                setattr(cfg, attr, v)
        return cfg

    def _drop_topic(self, topic: str) -> None:
        """Kafka's StopReplica with deletion: the topic's replicas here and their logs go.
        The topic's assignment watch stays, for a topic created again under its name."""
        self.assignments.pop(topic, None)
        self.topic_configs.pop(topic, None)
        self.topic_ids.pop(topic, None)
        for key in [k for k in self.partitions if k[0] == topic]:
            part = self.partitions.pop(key)
            for f in self.fetchers.values():
                f.remove(key)
            self.hw_checkpoint.pop(key, None)
            try:
                part.log.delete()
            except OSError:  # the replica is gone from this broker either way
                log.exception("%s-%d: deleting the log failed", *key)
        self._forget_offsets_of(topic)
        for key in [k for k in self.states if k[0] == topic]:
            del self.states[key]
        for key in [k for k in self._watched_partitions if k[0] == topic]:
            del self._watched_partitions[key]  # those watches stop on their next event
        log.info("topic %s deleted", topic)
        self.notify()

    def _on_partition_state(
        self, topic: str, p: int, tid: str, state: dict | None, version: int
    ) -> None:
        key = (topic, p)
        if state is None or self.topic_ids.get(topic) != tid:
            return  # not yet elected, or news of a topic incarnation already dropped
        self.states[key] = dict(state, zk_version=version)
        replicas = self.assignments.get(topic, {}).get(p, [])
        if self.id not in replicas:
            self.notify()
            return
        part = self.partitions.get(key)
        if part is None:
            part = self.partitions[key] = Partition(
                topic, p, self.log_dir, self.log_config_for(topic), tid
            )
            if part.log.wiped_stale:
                log.info("%s-%d: emptied a log left by an earlier topic of that name", topic, p)
            part.high_watermark = min(self.hw_checkpoint.get(key, 0), part.leo)
        if version < part.zk_version:
            return  # older than what our own conditional ISR write already returned
        part.replicas = replicas
        part.isr = list(state["isr"])
        part.zk_version = version
        new_leader, new_epoch = state["leader"], state["leader_epoch"]
        changed = new_leader != part.leader or new_epoch != part.leader_epoch
        part.leader, part.leader_epoch = new_leader, new_epoch
        if changed:
            for f in self.fetchers.values():
                f.remove(key)
            if new_leader == self.id:
                log.info("%s-%d: leader at epoch %d, isr %s", topic, p, new_epoch, part.isr)
                part.become_leader()
                if len(part.isr) == 1:
                    part.high_watermark = part.leo
                if topic == OFFSETS_TOPIC:
                    self._load_offsets(part)
            else:
                was_leader = part.is_leader
                part.become_follower()
                if topic == OFFSETS_TOPIC and was_leader:
                    self._unload_offsets(p)
                if new_leader >= 0:
                    # the fetcher first asks the leader where our logs diverge
                    # (OffsetsForLeaderEpoch) and truncates there, then fetches
                    self._fetcher_for(new_leader).add(key)
        if part.is_leader:
            self._advance_hw(part)
        self.notify()

    def _fetcher_for(self, leader: int) -> ReplicaFetcher:
        f = self.fetchers.get(leader)
        if f is None:
            f = self.fetchers[leader] = ReplicaFetcher(self, leader)
            f.start()
        return f

    def broker_address(self, bid: int) -> tuple[str, int] | None:
        b = self.live_brokers.get(bid)
        if b is None:
            return None
        return b["host"], b["port"]

    # ---------- leader side ----------
    def partition_error(self, topic: str, p: int) -> Error:
        key = (topic, p)
        if topic not in self.assignments or p not in self.assignments[topic]:
            return Error.UNKNOWN_TOPIC_OR_PARTITION
        part = self.partitions.get(key)
        if part is None or not part.is_leader:
            return Error.NOT_LEADER_OR_FOLLOWER
        return Error.NONE

    def min_isr(self, topic: str) -> int:
        v = self.topic_configs.get(topic, {}).get("min.insync.replicas")
        return v if v is not None else self.config.min_insync_replicas

    def max_message_bytes(self, topic: str) -> int:
        v = self.topic_configs.get(topic, {}).get("max.message.bytes")
        return v if v is not None else self.config.message_max_bytes

    def append_as_leader(self, part: Partition, data: bytes, headers: list) -> int:
        """Stamp offsets and our leader epoch into validated batches, append, and
        return the first offset."""
        buf = bytearray(data)
        first = off = part.leo
        max_ts = -1
        count = 0
        pos = 0
        for h in headers:
            rec.stamp(buf, pos, off, part.leader_epoch)
            part.record_batch(h, off)
            pos += h.size
            off += h.last_offset_delta + 1
            max_ts = max(max_ts, h.max_timestamp)
            count += h.records_count
        part.log.append(bytes(buf), first, off, max_ts, count)
        self._advance_hw(part)
        self.notify()
        return first

    def _advance_hw(self, part: Partition) -> None:
        hw = part.compute_high_watermark()
        if hw != part.high_watermark:
            part.high_watermark = hw
            self.notify()

    async def wait_for_hw(self, part: Partition, offset: int, timeout: float) -> Error:
        """acks=all: wait until every ISR replica has the records before ``offset``."""
        deadline = time.monotonic() + timeout
        epoch = part.leader_epoch
        while True:
            if not part.is_leader or part.leader_epoch != epoch:
                return Error.NOT_LEADER_OR_FOLLOWER
            if part.high_watermark >= offset:
                if len(part.isr) < self.min_isr(part.topic):
                    return Error.NOT_ENOUGH_REPLICAS_AFTER_APPEND
                return Error.NONE
            left = deadline - time.monotonic()
            if left <= 0:
                return Error.REQUEST_TIMED_OUT
            await self.wait_progress(left)

    def on_follower_fetch(self, part: Partition, replica: int, fetch_offset: int) -> None:
        part.update_follower(replica, fetch_offset)
        if (
            replica not in part.isr
            and fetch_offset >= part.high_watermark
            and replica in self.live_brokers
        ):
            self._change_isr(part, part.isr + [replica])
        self._advance_hw(part)

    def _change_isr(self, part: Partition, new_isr: list[int]) -> None:
        if part.isr_update_pending:
            return
        part.isr_update_pending = True
        state = {
            "controller_epoch": self.states.get((part.topic, part.index), {}).get(
                "controller_epoch", 0
            ),
            "leader": self.id,
            "version": 1,
            "leader_epoch": part.leader_epoch,
            "isr": new_isr,
        }

        async def write():
            try:
                v = await self._in_thread(
                    self.zk.set_partition_state, part.topic, part.index, state, part.zk_version
                )
                if v is not None and part.is_leader and part.leader_epoch == state["leader_epoch"]:
                    log.info("%s-%d: isr %s -> %s", part.topic, part.index, part.isr, new_isr)
                    part.isr, part.zk_version = new_isr, v
                    self._advance_hw(part)
                    self.notify()
            finally:
                part.isr_update_pending = False

        self.spawn(write())

    async def _isr_shrink_loop(self) -> None:
        lag = self.config.replica_lag_time_max_ms / 1000
        while True:
            await asyncio.sleep(max(lag / 2, 0.05))
            now = time.monotonic()
            for part in list(self.partitions.values()):
                if not part.is_leader or part.isr_update_pending:
                    continue
                out = [
                    r
                    for r in part.isr
                    if r != self.id and now - part.followers.get(r, _NEVER).last_caught_up > lag
                ]
                if out:
                    self._change_isr(part, [r for r in part.isr if r not in out])

    async def _leader_balance_loop(self) -> None:
        """auto.leader.rebalance.enable: every leader.imbalance.check.interval.seconds
        the controller moves leadership back to preferred replicas in the ISR."""
        if not self.config.auto_leader_rebalance:
            return
        while True:
            await asyncio.sleep(max(self.config.leader_imbalance_check_interval_s, 1))
            if self.is_controller:
                self._preferred_due = True
                self._trigger_reconcile()

    async def _housekeeping_loop(self) -> None:
        last_retention = time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            self.groups.expire_sessions()
            self._save_checkpoint()
            for part in self.partitions.values():
                if part.log.unflushed and (
                    (time.monotonic() - part.log.last_flush) * 1000
                    >= self.config.log.flush_interval_ms
                ):
                    part.log.flush()
            if (
                time.monotonic() - last_retention
            ) * 1000 >= self.config.retention_check_interval_ms:
                last_retention = time.monotonic()
                for part in self.partitions.values():
                    if part.log.apply_retention():
                        log.info(
                            "%s-%d: retention moved log start to %d",
                            part.topic,
                            part.index,
                            part.log.log_start_offset,
                        )

    # ---------- topics ----------
    def assign_replicas(self, partitions: int, rf: int) -> dict[int, list[int]]:
        """Round-robin from a random start, as Kafka's AdminUtils does (no racks)."""
        brokers = sorted(self.live_brokers)
        start = random.randrange(len(brokers))
        shift = random.randrange(len(brokers))
        out = {}
        for p in range(partitions):
            first = (start + p) % len(brokers)
            reps = [brokers[first]]
            for j in range(rf - 1):
                reps.append(brokers[(first + 1 + (shift + j) % (len(brokers) - 1)) % len(brokers)])
            out[p] = reps
        return out

    async def create_topic(
        self,
        name: str,
        partitions: int,
        rf: int,
        config: dict[str, str],
        assignment: dict[int, list[int]] | None = None,
        validate_only: bool = False,
    ) -> tuple[Error, str | None]:
        """Everything is checked before anything is written to ZooKeeper (Kafka's
        AdminZkClient.validateTopicCreate): the name, the partitions and replicas, and
        every config against LogConfig's types and ranges."""
        err = validate_topic_name(name)
        if err:
            return Error.INVALID_TOPIC_EXCEPTION, err
        if name in self.assignments or await self._in_thread(self.zk.topic_exists, name):
            return Error.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists."
        if await self._in_thread(self.zk.delete_pending, name):
            return Error.TOPIC_ALREADY_EXISTS, f"Topic '{name}' is marked for deletion."
        if assignment is None:
            if partitions <= 0:
                return Error.INVALID_PARTITIONS, "Number of partitions must be larger than 0."
            if partitions > MAX_PARTITIONS_PER_TOPIC:
                # Kafka would try and run out of memory assigning 2^31 partitions; a lab
                # broker refuses what it could not open (two files per partition)
                return (
                    Error.INVALID_PARTITIONS,
                    f"Number of partitions {partitions} is above this broker's limit of "
                    f"{MAX_PARTITIONS_PER_TOPIC} per topic.",
                )
            if rf <= 0:
                return Error.INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0."
            if rf > len(self.live_brokers):
                return (
                    Error.INVALID_REPLICATION_FACTOR,
                    f"Replication factor: {rf} larger than available brokers: {len(self.live_brokers)}.",
                )
        else:
            if len(assignment) > MAX_PARTITIONS_PER_TOPIC:
                return (
                    Error.INVALID_PARTITIONS,
                    f"Number of partitions {len(assignment)} is above this broker's limit of "
                    f"{MAX_PARTITIONS_PER_TOPIC} per topic.",
                )
            why = self.assignment_error(assignment)
            if why:
                return Error.INVALID_REPLICA_ASSIGNMENT, why
        try:
            tc.validate(config)
        except tc.ConfigValueError as e:
            return Error.INVALID_CONFIG, str(e)
        if validate_only:
            return Error.NONE, None
        if assignment is None:
            assignment = self.assign_replicas(partitions, rf)
        ok = await self._in_thread(self.zk.create_topic, name, assignment, config)
        if not ok:
            return Error.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists."
        log.info("created topic %s %s", name, assignment)
        return Error.NONE, None

    def assignment_error(self, assignment: dict[int, list[int]]) -> str | None:
        """A manual assignment that would make a partition with no possible leader, as
        Kafka's controller refuses it (ReplicationControlManager's messages)."""
        rf = None
        for p in sorted(assignment):
            reps = assignment[p]
            if not reps:
                return "The manual partition assignment includes an empty replica list."
            for bid in sorted(reps):
                if bid not in self.known_brokers and not any(
                    bid in r for a in self.assignments.values() for r in a.values()
                ):
                    return (
                        f"The manual partition assignment includes broker {bid}, but no such "
                        "broker is registered."
                    )
            if len(set(reps)) != len(reps):
                dup = next(r for r in reps if reps.count(r) > 1)
                return f"The manual partition assignment includes the broker {dup} more than once."
            if not any(bid in self.live_brokers for bid in reps):
                return (
                    f"All brokers specified in the manual partition assignment for partition "
                    f"{p} are offline, so it could have no leader."
                )
            if rf is not None and len(reps) != rf:
                return (
                    f"The manual partition assignment includes a partition with {len(reps)} "
                    "replica(s), but this is not consistent with previous partitions, which "
                    f"have {rf} replica(s)."
                )
            rf = len(reps)
        if sorted(assignment) != list(range(len(assignment))):
            return "partitions should be a consecutive 0-based integer sequence"
        return None

    async def wait_topic_ready(self, name: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            a = self.assignments.get(name)
            if a and all(self.states.get((name, p), {}).get("leader", -1) >= 0 for p in a):
                return True
            await self.wait_progress(min(0.2, deadline - time.monotonic()))
        return False

    # ---------- group offsets in __consumer_offsets ----------
    def coordinator_partition(self, group_id: str) -> int:
        n = len(self.assignments.get(OFFSETS_TOPIC, {})) or self.config.offsets_topic_num_partitions
        return partition_for_group(group_id, n)

    def coordinator_error(self, group_id: str) -> Error:
        p = self.coordinator_partition(group_id)
        part = self.partitions.get((OFFSETS_TOPIC, p))
        if part is None or not part.is_leader:
            return Error.NOT_COORDINATOR
        if p in self.loading_offsets:
            return Error.COORDINATOR_LOAD_IN_PROGRESS
        return Error.NONE

    def _load_offsets(self, part: Partition) -> None:
        self.loading_offsets.add(part.index)
        try:
            off = part.log.log_start_offset
            while off < part.leo:
                data = part.log.read(off, 1 << 20)
                if not data:
                    break
                for r in rec.read_records(data):
                    off = r.offset + 1
                    if r.key is None:
                        continue
                    kind, group, topic, p = json.loads(r.key)
                    if kind != "o":
                        continue
                    g = self.groups.group(group)
                    if r.value is None:
                        g.offsets.pop((topic, p), None)
                    else:
                        v = json.loads(r.value)
                        g.offsets[(topic, p)] = OffsetAndMetadata(
                            v["offset"], v["metadata"], v["ts"]
                        )
        finally:
            self.loading_offsets.discard(part.index)

    def _unload_offsets(self, p: int) -> None:
        n = len(self.assignments.get(OFFSETS_TOPIC, {}))
        for gid in [g for g in self.groups.groups if n and partition_for_group(g, n) == p]:
            del self.groups.groups[gid]

    def _forget_offsets_of(self, topic: str) -> None:
        """Kafka's coordinator drops a deleted topic's committed offsets and writes their
        tombstones, so a group reading a topic created again under the name starts from
        its reset policy, not from offsets of the old topic."""
        n = len(self.assignments.get(OFFSETS_TOPIC, {}))
        tombstones: dict[int, list[tuple[bytes, None]]] = {}
        for gid, g in self.groups.groups.items():
            gone = [k for k in g.offsets if k[0] == topic]
            if not gone or not n:
                continue
            p = partition_for_group(gid, n)
            part = self.partitions.get((OFFSETS_TOPIC, p))
            if part is None or not part.is_leader:
                continue
            for t, pi in gone:
                del g.offsets[(t, pi)]
                tombstones.setdefault(p, []).append((json.dumps(["o", gid, t, pi]).encode(), None))
        for p, recs in tombstones.items():
            part = self.partitions[(OFFSETS_TOPIC, p)]
            batch = rec.build_batch(recs)
            self.append_as_leader(part, batch, [rec.parse_header(batch)])

    async def commit_offsets(
        self, group_id: str, entries: list[tuple[str, int, int, str | None]]
    ) -> Error:
        """Write the commits to the group's __consumer_offsets partition and wait
        until they are replicated, then make them visible."""
        p = self.coordinator_partition(group_id)
        part = self.partitions.get((OFFSETS_TOPIC, p))
        if part is None or not part.is_leader:
            return Error.NOT_COORDINATOR
        ts = int(time.time() * 1000)
        recs = [
            (
                json.dumps(["o", group_id, t, pi]).encode(),
                json.dumps({"offset": off, "metadata": md, "ts": ts}).encode(),
            )
            for t, pi, off, md in entries
        ]
        batch = rec.build_batch(recs, timestamp_ms=ts)
        if len(part.isr) < self.min_isr(OFFSETS_TOPIC) and len(part.replicas) > 1:
            return Error.NOT_ENOUGH_REPLICAS
        first = self.append_as_leader(part, batch, [rec.parse_header(batch)])
        err = await self.wait_for_hw(
            part, first + len(recs), self.config.offsets_commit_timeout_ms / 1000
        )
        if err not in (Error.NONE, Error.NOT_ENOUGH_REPLICAS_AFTER_APPEND):
            return (
                Error.REQUEST_TIMED_OUT if err == Error.REQUEST_TIMED_OUT else Error.NOT_COORDINATOR
            )
        for t, pi, off, md in entries:
            self.groups.store_offset(group_id, t, pi, OffsetAndMetadata(off, md, ts))
        return Error.NONE

    async def ensure_offsets_topic(self) -> Error:
        if OFFSETS_TOPIC in self.assignments:
            return Error.NONE
        rf = self.config.offsets_topic_replication_factor
        if len(self.live_brokers) < rf:
            return Error.COORDINATOR_NOT_AVAILABLE
        err, _ = await self.create_topic(
            OFFSETS_TOPIC,
            self.config.offsets_topic_num_partitions,
            rf,
            {"cleanup.policy": "compact"},
        )
        if err not in (Error.NONE, Error.TOPIC_ALREADY_EXISTS):
            return Error.COORDINATOR_NOT_AVAILABLE
        return Error.NONE

    # ---------- producer ids ----------
    async def next_producer_id(self) -> int:
        if self._next_pid > self._pid_block[1]:
            self._pid_block = await self._in_thread(self.zk.allocate_producer_id_block, self.id)
            self._next_pid = self._pid_block[0]
        pid = self._next_pid
        self._next_pid += 1
        return pid


class _Never:
    last_caught_up = float("-inf")


_NEVER = _Never()

_LEGAL = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def validate_topic_name(name: str) -> str | None:
    if not name:
        return "Topic name is illegal, it can't be empty"
    if name in (".", ".."):
        return 'Topic name cannot be "." or ".."'
    if len(name) > 249:
        return "Topic name is illegal, it can't be longer than 249 characters"
    if not set(name) <= _LEGAL:
        return f"Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
    return None


class ReplicaFetcher:
    """Follower side: one task per leader broker, fetching every partition this
    broker follows there, appending the leader's batches unchanged."""

    FETCH_VERSION = 11

    def __init__(self, broker: Broker, leader: int):
        self.broker = broker
        self.leader = leader
        self.keys: set[tuple[str, int]] = set()
        self.task: asyncio.Task | None = None
        self.conn: Connection | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    def add(self, key) -> None:
        self.keys.add(key)
        self._wake.set()

    def remove(self, key) -> None:
        self.keys.discard(key)

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        if self.conn:
            await self.conn.close()

    async def _run(self) -> None:
        b = self.broker
        while True:
            if not self.keys:
                self._wake.clear()
                await self._wake.wait()
                continue
            addr = b.broker_address(self.leader)
            if addr is None:
                await asyncio.sleep(0.2)
                continue
            try:
                if self.conn is None or (self.conn.host, self.conn.port) != addr:
                    if self.conn:
                        await self.conn.close()
                    self.conn = Connection(addr[0], addr[1], client_id=f"broker-{b.id}-fetcher")
                    await self.conn.connect()
                await self._fetch_once()
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as e:
                log.info("fetch from broker %d failed: %s", self.leader, e)
                if self.conn:
                    await self.conn.close()
                self.conn = None
                await asyncio.sleep(0.3)

    async def _truncate_diverged(self) -> None:
        """KIP-101: for partitions that just became followers, ask the leader
        where our latest epoch ended in its log and cut ours there."""
        b = self.broker
        pending: dict[str, list] = {}
        for t, p in sorted(self.keys):
            part = b.partitions.get((t, p))
            if part is None or not part.needs_truncation:
                continue
            if not part.epochs:
                part.needs_truncation = False
                continue
            pending.setdefault(t, []).append(
                {
                    "partition": p,
                    "current_leader_epoch": part.leader_epoch,
                    "leader_epoch": part.epochs[-1][0],
                }
            )
        if not pending:
            return
        resp = await self.conn.request(
            ApiKey.OFFSET_FOR_LEADER_EPOCH,
            3,
            {
                "replica_id": b.id,
                "topics": [{"topic": t, "partitions": ps} for t, ps in pending.items()],
            },
        )
        for tr in resp["topics"]:
            for pr in tr["partitions"]:
                part = b.partitions.get((tr["topic"], pr["partition"]))
                if part is None or pr["error_code"] != Error.NONE or not part.needs_truncation:
                    continue
                epoch, end = pr["leader_epoch"], pr["end_offset"]
                if epoch < 0 or end < 0:
                    target = part.high_watermark
                else:
                    target = min(end, part.end_offset_for(epoch)[1])
                if target < part.leo:
                    log.info(
                        "%s-%d: truncating from %d to %d to match leader %d",
                        part.topic,
                        part.index,
                        part.leo,
                        target,
                        self.leader,
                    )
                    part.truncate_to(target)
                part.needs_truncation = False

    async def _fetch_once(self) -> None:
        b = self.broker
        await self._truncate_diverged()
        topics: dict[str, list] = {}
        for t, p in sorted(self.keys):
            part = b.partitions.get((t, p))
            if part is None or part.needs_truncation:
                continue
            topics.setdefault(t, []).append(
                {
                    "partition": p,
                    "current_leader_epoch": part.leader_epoch,
                    "fetch_offset": part.leo,
                    "log_start_offset": part.log.log_start_offset,
                    "partition_max_bytes": b.config.replica_fetch_max_bytes,
                }
            )
        if not topics:
            await asyncio.sleep(0.1)
            return
        wait = b.config.replica_fetch_wait_max_ms
        resp = await self.conn.request(
            ApiKey.FETCH,
            self.FETCH_VERSION,
            {
                "replica_id": b.id,
                "max_wait_ms": wait,
                "min_bytes": 1,
                "max_bytes": 10 << 20,
                "isolation_level": 0,
                "session_id": 0,
                "session_epoch": -1,
                "topics": [{"topic": t, "partitions": ps} for t, ps in topics.items()],
                "forgotten_topics_data": [],
                "rack_id": "",
            },
            timeout=wait / 1000 + 30,
        )
        backoff = False
        for tr in resp["responses"]:
            for pr in tr["partitions"]:
                key = (tr["topic"], pr["partition_index"])
                part = b.partitions.get(key)
                if (
                    part is None
                    or part.is_leader
                    or part.leader != self.leader
                    or key not in self.keys
                ):
                    continue
                err = pr["error_code"]
                if err == Error.OFFSET_OUT_OF_RANGE:
                    if part.leo < pr["log_start_offset"]:
                        part.truncate_fully_and_start_at(pr["log_start_offset"])
                    else:
                        part.truncate_to(min(part.high_watermark, pr["high_watermark"]))
                    continue
                if err != Error.NONE:
                    backoff = True
                    continue
                data = pr["records"]
                if data:
                    self._append(part, data)
                part.high_watermark = max(part.high_watermark, min(pr["high_watermark"], part.leo))
        b.notify()
        if backoff:
            await asyncio.sleep(0.2)

    @staticmethod
    def _append(part: Partition, data: bytes) -> None:
        batches = []
        try:
            for pos, h in rec.iter_batches(data):
                if h.last_offset < part.leo:
                    continue
                if h.base_offset != part.leo and not batches:
                    log.warning(
                        "%s-%d: leader sent offset %d, expected %d",
                        part.topic,
                        part.index,
                        h.base_offset,
                        part.leo,
                    )
                    return
                batches.append((pos, h))
        except rec.CorruptBatch as e:
            log.warning("%s-%d: corrupt batch from leader: %s", part.topic, part.index, e)
        if not batches:
            return
        start = batches[0][0]
        end = batches[-1][0] + batches[-1][1].size
        for _, h in batches:
            part.note_epoch(h.partition_leader_epoch, h.base_offset)
            part.record_batch(h, h.base_offset)
        part.log.append(
            bytes(data[start:end]),
            batches[0][1].base_offset,
            batches[-1][1].last_offset + 1,
            max(h.max_timestamp for _, h in batches),
            sum(h.records_count for _, h in batches),
        )
