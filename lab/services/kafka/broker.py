"""The broker: its partitions, the cluster view it keeps from ZooKeeper, the
leader/follower roles it plays per partition (ISR changes, high watermarks,
acks=all waits), and its lifecycle. What Kafka keeps in classes of their own lives
beside it: the replica fetcher (fetcher.py), committed offsets (offsets.py), topic
creation (topics.py) and topic-name rules (topicnames.py); the TCP side is server.py.

Everything that changes state runs on one asyncio loop. ZooKeeper watches post
into it; blocking ZooKeeper writes go to a worker thread and their effect comes
back through the watches, so the loop's view is always what ZooKeeper says.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from . import cleaner, controller
from . import topicconfig as tc
from .config import BrokerConfig, ConfigError
from .fetcher import ReplicaFetcher
from .group import GroupCoordinator
from .log import LogConfig
from .offsets import OffsetStore
from .partition import Partition
from .protocol import records as rec
from .protocol.errors import Error
from .server import serve
from .topicnames import OFFSETS_TOPIC, TXN_TOPIC
from .txncoordinator import TxnCoordinator
from .zk import ZkCluster

log = logging.getLogger("lab.kafka.broker")

CHECKPOINT = "replication-offset-checkpoint"


class Broker:
    def __init__(self, config: BrokerConfig):
        # the file's settings; self.config is them with the dynamic broker configs over
        self.static_config = dataclasses.replace(config, log=dataclasses.replace(config.log))
        self.config = config
        self.dynamic: dict[str, str] = {}  # the two below, this broker's over the defaults
        self.dynamic_default: dict[str, str] = {}
        self.dynamic_own: dict[str, str] = {}
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
        self.offsets = OffsetStore(self)
        self.txn = TxnCoordinator(self)
        self.fetchers: dict[int, ReplicaFetcher] = {}
        self._progress = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()
        # topic -> its current incarnation (topic id); the partition state watches and
        # the log directories are bound to one incarnation
        self.topic_ids: dict[str, str] = {}
        self._watched_topics: set[str] = set()
        # topic -> the incarnation whose /config/topics node is watched (AlterConfigs)
        self._config_watched: dict[str, str] = {}
        # partition -> (its cleanable segments, when) after a cleaner pass that changed nothing
        self._clean_memo: dict[tuple[str, int], tuple[tuple, float]] = {}
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
        await self.in_thread(self.zk.start, cto / 1000)
        self.cluster_id = await self.in_thread(self.zk.cluster_id)
        await self._register()
        self.zk.on_new_session(lambda: self.spawn(self._register()))
        self.zk.watch_brokers(self._on_brokers)
        self.zk.watch_controller(self._on_controller)
        self.zk.watch_topics(self._on_topics)
        self.zk.watch_delete_requests(lambda _ch: self._trigger_reconcile())
        for entity in ("<default>", str(self.id)):
            self.zk.watch_broker_config(entity, lambda: self.spawn(self._load_dynamic_config()))
        for coro in (
            self._isr_shrink_loop(),
            self._housekeeping_loop(),
            self._leader_balance_loop(),
            self.txn.abort_timed_out_loop(),
        ):
            self._tasks.append(asyncio.create_task(coro))
        await self.server.start_serving()
        log.info("broker %d serving on %s:%d", self.id, *self.advertised)

    async def _register(self) -> None:
        await self.in_thread(
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
        await self.txn.markers.close()
        if self.server:
            self.server.close()
        if self.zk:
            await self.in_thread(self.zk.stop)
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

    async def in_thread(self, fn, *args):
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
        won = await self.in_thread(self.zk.try_become_controller, self.id)
        if won:
            log.info("broker %d is the controller", self.id)
            # Its first pass must count the brokers registered now, itself included:
            # the brokers watch may not have reported yet (right after a restart it
            # has not), and with none live every partition would look offline.
            brokers = await self.in_thread(self.zk.live_brokers)
            self.live_brokers = brokers
            self.known_brokers.update(brokers)
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
                    changes = await self.in_thread(
                        controller.reconcile,
                        self.zk,
                        live,
                        self.config.unclean_leader_election,
                        preferred,
                        self.id,
                    )
                except Exception as exc:  # noqa: BLE001 - a ZooKeeper hiccup: the next event retries
                    # Expected around restarts and session moves: one line, not a traceback.
                    log.warning("controller pass failed (%r); the next event retries", exc)
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
        if self._config_watched.get(topic) != tid:
            self._config_watched[topic] = tid
            self.zk.watch_topic_config(topic, self._on_topic_config)
        for p in assignment:
            if self._watched_partitions.get((topic, p)) != tid:
                self._watched_partitions[(topic, p)] = tid
                self.zk.watch_partition_state(topic, p, tid, self._on_partition_state)
        self._trigger_reconcile()
        self.notify()

    async def _load_dynamic_config(self) -> None:
        """Dynamic broker configs (cluster-wide defaults, then this broker's) over the
        file's settings, as Kafka's DynamicBrokerConfig applies them: the log defaults of
        topics without overrides, message.max.bytes, min.insync.replicas, unclean leader
        election and the cleaner take the new values at once."""
        default = await self.in_thread(self.zk.broker_config, "<default>")
        own = await self.in_thread(self.zk.broker_config, str(self.id))
        merged = {**default, **own}
        try:
            fresh = self.static_config.with_dynamic(merged)
        except ConfigError as e:  # written by something that did not check it
            log.warning("dynamic broker configs ignored: %s", e)
            return
        for name in BrokerConfig.DYNAMIC_FIELDS:
            setattr(self.config, name, getattr(fresh, name))
        self.dynamic, self.dynamic_default, self.dynamic_own = merged, default, own
        for (t, _), part in self.partitions.items():
            part.log.config = self.log_config_for(t)
        if merged:
            log.info("dynamic broker configs: %s", merged)

    def _on_topic_config(self, topic: str) -> None:
        if topic in self.assignments:
            self.spawn(self._load_topic_config(topic))

    async def _load_topic_config(self, topic: str) -> None:
        raw = await self.in_thread(self.zk.topic_config, topic)

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
        self.offsets.forget_topic(topic)
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
                    self.offsets.load(part)
                elif topic == TXN_TOPIC:
                    self.txn.load(part)
            else:
                was_leader = part.is_leader
                part.become_follower()
                if topic == OFFSETS_TOPIC and was_leader:
                    self.offsets.unload(p)
                elif topic == TXN_TOPIC and was_leader:
                    self.txn.unload(p)
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
            part.record_batch(h, off, buf, pos)
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
                v = await self.in_thread(
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

    def _cleanup_policy(self, topic: str) -> list[str]:
        props = {**self.config.static, **self.dynamic}
        default = tc.LIST("log.cleanup.policy", props.get("log.cleanup.policy", "delete"))
        return self.topic_configs.get(topic, {}).get("cleanup.policy", default)

    async def _clean_compacted(self) -> None:
        """One pass of the log cleaner over this broker's replicas of compacted topics."""
        for key, part in list(self.partitions.items()):
            topic = key[0]
            if "compact" not in self._cleanup_policy(topic):
                continue
            cfg = self.topic_configs.get(topic, {})
            now_ms = int(time.time() * 1000)
            segs = cleaner.cleanable(
                part.log, part.last_stable_offset, now_ms, cfg.get("min.compaction.lag.ms", 0)
            )
            if not segs:
                continue
            # sealed segments as a pass that changed nothing left them are read again only
            # now and then (a tombstone may have aged past delete.retention.ms since)
            signature = tuple((seg.base_offset, seg.size) for seg in segs)
            seen = self._clean_memo.get(key)
            if seen and seen[0] == signature and time.monotonic() - seen[1] < 600:
                continue
            try:
                done = await self.in_codec_thread(
                    cleaner.plan,
                    [(seg, seg.size) for seg in segs],
                    now_ms,
                    cfg.get("delete.retention.ms", 86400000),
                )
            except (OSError, rec.CorruptBatch) as e:
                log.warning("%s-%d: compaction pass skipped: %s", *key, e)
                continue
            swapped = 0
            for seg, size, data in done:
                # still this replica's segment, as it was read (not deleted or cut since)
                if (
                    self.partitions.get(key) is part
                    and seg in part.log.segments[:-1]
                    and seg.size == size
                ):
                    cleaner.swap(seg, data, part.log.config.index_interval_bytes)
                    swapped += 1
            if swapped:
                log.info("%s-%d: compacted %d segment(s)", *key, swapped)
            elif not done:
                self._clean_memo[key] = (signature, time.monotonic())

    async def _housekeeping_loop(self) -> None:
        last_retention = last_clean = time.monotonic()
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
                self.config.log_cleaner_enable
                and (time.monotonic() - last_clean) * 1000 >= self.config.log_cleaner_backoff_ms
            ):
                last_clean = time.monotonic()
                await self._clean_compacted()
            if (
                time.monotonic() - last_retention
            ) * 1000 >= self.config.retention_check_interval_ms:
                last_retention = time.monotonic()
                for (topic, _), part in self.partitions.items():
                    if "delete" not in self._cleanup_policy(topic):
                        continue  # compact only: kept until compaction removes it
                    if part.log.apply_retention():
                        part.txns.drop_before(part.log.log_start_offset)
                        log.info(
                            "%s-%d: retention moved log start to %d",
                            part.topic,
                            part.index,
                            part.log.log_start_offset,
                        )

    async def wait_topic_ready(self, name: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            a = self.assignments.get(name)
            if a and all(self.states.get((name, p), {}).get("leader", -1) >= 0 for p in a):
                return True
            await self.wait_progress(min(0.2, deadline - time.monotonic()))
        return False

    # ---------- producer ids ----------
    async def next_producer_id(self) -> int:
        if self._next_pid > self._pid_block[1]:
            self._pid_block = await self.in_thread(self.zk.allocate_producer_id_block, self.id)
            self._next_pid = self._pid_block[0]
        pid = self._next_pid
        self._next_pid += 1
        return pid


class _Never:
    last_caught_up = float("-inf")


_NEVER = _Never()
