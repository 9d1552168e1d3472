"""Cluster state in ZooKeeper, laid out as Kafka 2.x kept it:

    /cluster/id                                   {"version":"1","id":...}
    /brokers/ids/<id>              (ephemeral)    host, port, endpoints
    /controller                    (ephemeral)    {"version":1,"brokerid":N,...}
    /controller_epoch                             N
    /brokers/topics/<t>                           {"version":3,"topic_id":...,"partitions":{"0":[1,2,3]}}
    /brokers/topics/<t>/partitions/<p>/state      {"leader","leader_epoch","isr","controller_epoch"}
    /config/topics/<t>                            {"version":1,"config":{...}}
    /config/changes/config_change_<seq>           {"version":2,"entity_path":"topics/<t>"}
    /config/brokers/<id>|<default>                dynamic broker configs
    /admin/delete_topics/<t>                      a deletion request
    /latest_producer_id_block                     producer id blocks handed to brokers

kazoo runs its callbacks on its own thread; every callback here only posts the
new data to the broker's asyncio loop, where all state changes happen.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import Callable

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

log = logging.getLogger("lab.kafka.zk")


def _j(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def state_path(topic: str, partition: int) -> str:
    return f"/brokers/topics/{topic}/partitions/{partition}/state"


def new_topic_id() -> str:
    """Kafka's Uuid.toString: 16 random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def topic_id_of(data: bytes, stat) -> str:
    """The incarnation of a topic: its topic_id (Kafka 2.8+ writes one at creation), or
    for a topic znode written without one, its creation zxid, unique in the ensemble."""
    tid = json.loads(data).get("topic_id")
    return tid or f"czxid-{stat.czxid:x}"


class ZkCluster:
    def __init__(self, connect: str, session_timeout_ms: int, loop: asyncio.AbstractEventLoop):
        self.zk = KazooClient(hosts=connect, timeout=session_timeout_ms / 1000.0)
        self.loop = loop
        self._session_listeners: list[Callable[[], None]] = []
        self.zk.add_listener(self._on_state)
        self._lost = False

    # ---- connection ----
    def start(self, timeout: float = 30) -> None:
        self.zk.start(timeout=timeout)
        # Kafka's top-level paths (KafkaZkClient.createTopLevelPaths), asked for all at
        # once: the requests share round trips and the ensemble's log syncs, where one
        # after another they were a quorum write each before the broker could serve
        cluster_id = _j({"version": "1", "id": uuid.uuid4().hex[:22]})
        pending = [
            self.zk.create_async(p, makepath=True)
            for p in ("/brokers/ids", "/brokers/topics", "/config/topics", "/admin/delete_topics")
        ]
        pending.append(self.zk.create_async("/cluster/id", cluster_id, makepath=True))
        for result in pending:
            try:
                result.get(timeout=timeout)
            except NodeExistsError:
                pass  # made by another broker, or an earlier run

    def stop(self) -> None:
        try:
            self.zk.stop()
            self.zk.close()
        except Exception:  # noqa: BLE001 - shutting down; nothing to report to
            pass

    def on_new_session(self, fn: Callable[[], None]) -> None:
        """fn runs on the loop after a session was lost and a new one made
        (ephemeral nodes are gone then and must be made again)."""
        self._session_listeners.append(fn)

    def _on_state(self, state) -> None:
        if state == KazooState.LOST:
            self._lost = True
        elif state == KazooState.CONNECTED and self._lost:
            self._lost = False
            for fn in self._session_listeners:
                self.loop.call_soon_threadsafe(fn)

    def cluster_id(self) -> str:
        data, _ = self.zk.get("/cluster/id")
        return json.loads(data)["id"]

    # ---- brokers ----
    def register_broker(
        self, broker_id: int, host: str, port: int, rack: str | None, wait_s: float
    ) -> None:
        """Create /brokers/ids/N. A previous run's node may still be there until
        its session times out: wait for it rather than fail."""
        data = _j(
            {
                "version": 4,
                "host": host,
                "port": port,
                "jmx_port": -1,
                "timestamp": str(int(time.time() * 1000)),
                "endpoints": [f"PLAINTEXT://{host}:{port}"],
                "listener_security_protocol_map": {"PLAINTEXT": "PLAINTEXT"},
                "rack": rack,
            }
        )
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.zk.create(f"/brokers/ids/{broker_id}", data, ephemeral=True)
                return
            except NodeExistsError:
                try:
                    _, stat = self.zk.get(f"/brokers/ids/{broker_id}")
                except NoNodeError:
                    # the previous run's session expired between the two calls: the id
                    # is free now, so create again (was: "cannot start: NoNodeError")
                    continue
                if stat.ephemeralOwner == self.zk.client_id[0]:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"broker id {broker_id} is registered by another live broker"
                    ) from None
                time.sleep(0.5)

    def _brokers(self, children) -> dict[int, dict]:
        brokers = {}
        for c in children:
            try:
                data, _ = self.zk.get(f"/brokers/ids/{c}")
                brokers[int(c)] = json.loads(data)
            except NoNodeError:
                continue
        return brokers

    def live_brokers(self) -> dict[int, dict]:
        """The registered brokers now (what a new controller starts from, as Kafka's
        reads /brokers/ids on failover rather than wait for a watch)."""
        return self._brokers(self.zk.get_children("/brokers/ids"))

    def watch_brokers(self, cb: Callable[[dict[int, dict]], None]) -> None:
        def on_children(children):
            self.loop.call_soon_threadsafe(cb, self._brokers(children))

        self.zk.ChildrenWatch("/brokers/ids", on_children)

    # ---- controller ----
    def try_become_controller(self, broker_id: int) -> bool:
        try:
            self.zk.create(
                "/controller",
                _j(
                    {"version": 1, "brokerid": broker_id, "timestamp": str(int(time.time() * 1000))}
                ),
                ephemeral=True,
            )
        except NodeExistsError:
            return False
        try:
            data, stat = self.zk.get("/controller_epoch")
            self.zk.set("/controller_epoch", str(int(data) + 1).encode(), version=stat.version)
        except NoNodeError:
            self.zk.create("/controller_epoch", b"1")
        return True

    def controller_epoch(self) -> int:
        try:
            return int(self.zk.get("/controller_epoch")[0])
        except NoNodeError:
            return 0

    def watch_controller(self, cb: Callable[[int], None]) -> None:
        def on_data(data, stat):
            cid = json.loads(data)["brokerid"] if data else -1
            self.loop.call_soon_threadsafe(cb, cid)

        self.zk.DataWatch("/controller", on_data)

    # ---- topics ----
    def watch_topics(self, cb: Callable[[list[str]], None]) -> None:
        self.zk.ChildrenWatch(
            "/brokers/topics", lambda ch: self.loop.call_soon_threadsafe(cb, list(ch))
        )

    def watch_assignment(self, topic: str, cb) -> None:
        """cb(topic, assignment, topic_id), or cb(topic, None, None) when it is gone. The
        watch outlives a deletion: a topic created again under the same name reaches the
        broker here even when ZooKeeper folded the deletion and the creation into one
        event, and its new topic_id tells the broker the old logs are not its own."""

        def on_data(data, stat):
            if data is None:
                self.loop.call_soon_threadsafe(cb, topic, None, None)
                return
            parts = json.loads(data)["partitions"]
            assignment = {int(p): list(r) for p, r in parts.items()}
            self.loop.call_soon_threadsafe(cb, topic, assignment, topic_id_of(data, stat))

        self.zk.DataWatch(f"/brokers/topics/{topic}", on_data)

    def current_topic_id(self, topic: str) -> str | None:
        try:
            return topic_id_of(*self.zk.get(f"/brokers/topics/{topic}"))
        except NoNodeError:
            return None

    def watch_partition_state(self, topic: str, partition: int, topic_id: str, cb) -> None:
        """A watch bound to one incarnation of the topic: kazoo re-reads a node after each
        event, so after a delete and re-create this watch may read the new topic's state;
        it checks whose state it is, and stops once its topic is gone or replaced."""

        def on_data(data, stat):
            if self.current_topic_id(topic) != topic_id:
                return False
            state = json.loads(data) if data else None
            self.loop.call_soon_threadsafe(
                cb, topic, partition, topic_id, state, stat.version if stat else -1
            )

        self.zk.DataWatch(state_path(topic, partition), on_data)

    def topic_config(self, topic: str) -> dict[str, str]:
        try:
            return json.loads(self.zk.get(f"/config/topics/{topic}")[0]).get("config", {})
        except NoNodeError:
            return {}

    def create_topic(
        self, topic: str, assignment: dict[int, list[int]], config: dict[str, str]
    ) -> bool:
        """False when it exists already."""
        try:
            self.zk.create(f"/config/topics/{topic}", _j({"version": 1, "config": config}))
        except NodeExistsError:
            pass
        try:
            self.zk.create(
                f"/brokers/topics/{topic}",
                _j(
                    {
                        "version": 3,
                        "topic_id": new_topic_id(),
                        "partitions": {str(p): r for p, r in assignment.items()},
                        "adding_replicas": {},
                        "removing_replicas": {},
                    }
                ),
            )
        except NodeExistsError:
            return False
        return True

    def watch_topic_config(self, topic: str, cb) -> None:
        """cb(topic) on every change of the topic's config (AlterConfigs), in the loop."""

        def on_data(data, stat):
            if data is None:
                return False  # the topic is gone; a new one under the name watches anew
            self.loop.call_soon_threadsafe(cb, topic)

        self.zk.DataWatch(f"/config/topics/{topic}", on_data)

    def set_topic_config(self, topic: str, config: dict[str, str]) -> None:
        """The topic's whole config replaced, and the change notification Kafka's
        AdminZkClient.changeTopicConfig writes beside it (for tools that read it)."""
        self.zk.set(f"/config/topics/{topic}", _j({"version": 1, "config": config}))
        self.zk.ensure_path("/config/changes")
        self.zk.create(
            "/config/changes/config_change_",
            _j({"version": 2, "entity_path": f"topics/{topic}"}),
            sequence=True,
        )

    def add_partitions(self, topic: str, added: dict[int, list[int]]) -> bool:
        """New partitions in the topic's assignment, its topic id kept (Kafka's
        AdminZkClient.createPartitionsWithAssignment); False if the topic is gone or
        changed meanwhile."""
        path = f"/brokers/topics/{topic}"
        try:
            data, stat = self.zk.get(path)
            doc = json.loads(data)
            doc["partitions"].update({str(p): r for p, r in added.items()})
            self.zk.set(path, _j(doc), version=stat.version)
            return True
        except (NoNodeError, BadVersionError):
            return False

    def broker_config(self, entity: str) -> dict[str, str]:
        """Dynamic broker configs of one broker id, or of "<default>" (all brokers)."""
        try:
            return json.loads(self.zk.get(f"/config/brokers/{entity}")[0]).get("config", {})
        except NoNodeError:
            return {}

    def watch_broker_config(self, entity: str, cb) -> None:
        """cb() in the loop whenever the dynamic configs of ``entity`` change."""
        self.zk.DataWatch(
            f"/config/brokers/{entity}", lambda data, stat: self.loop.call_soon_threadsafe(cb)
        )

    def set_broker_config(self, entity: str, config: dict[str, str]) -> None:
        path = f"/config/brokers/{entity}"
        data = _j({"version": 1, "config": config})
        try:
            self.zk.set(path, data)
        except NoNodeError:
            self.zk.ensure_path("/config/brokers")
            self.zk.create(path, data)
        self.zk.ensure_path("/config/changes")
        self.zk.create(
            "/config/changes/config_change_",
            _j({"version": 2, "entity_path": f"brokers/{entity}"}),
            sequence=True,
        )

    def topic_exists(self, topic: str) -> bool:
        return self.zk.exists(f"/brokers/topics/{topic}") is not None

    def delete_pending(self, topic: str) -> bool:
        return self.zk.exists(f"/admin/delete_topics/{topic}") is not None

    def request_delete(self, topic: str) -> None:
        try:
            self.zk.create(f"/admin/delete_topics/{topic}")
        except NodeExistsError:
            pass

    def watch_delete_requests(self, cb) -> None:
        self.zk.ChildrenWatch(
            "/admin/delete_topics", lambda ch: self.loop.call_soon_threadsafe(cb, list(ch))
        )

    def delete_topic_nodes(self, topic: str) -> None:
        for p in (
            f"/brokers/topics/{topic}",
            f"/config/topics/{topic}",
            f"/admin/delete_topics/{topic}",
        ):
            try:
                self.zk.delete(p, recursive=True)
            except NoNodeError:
                pass

    def get_partition_state(self, topic: str, partition: int) -> tuple[dict | None, int]:
        try:
            data, stat = self.zk.get(state_path(topic, partition))
            return json.loads(data), stat.version
        except NoNodeError:
            return None, -1

    def create_partition_state(self, topic: str, partition: int, state: dict) -> bool:
        self.zk.ensure_path(f"/brokers/topics/{topic}/partitions/{partition}")
        try:
            self.zk.create(state_path(topic, partition), _j(state))
            return True
        except (NodeExistsError, NoNodeError):
            return False

    def set_partition_state(
        self, topic: str, partition: int, state: dict, version: int
    ) -> int | None:
        """Conditional write; the new znode version, or None if someone else wrote first."""
        try:
            stat = self.zk.set(state_path(topic, partition), _j(state), version=version)
            return stat.version
        except (BadVersionError, NoNodeError):
            return None

    # ---- producer ids ----
    def allocate_producer_id_block(self, broker_id: int, size: int = 1000) -> tuple[int, int]:
        path = "/latest_producer_id_block"
        while True:
            try:
                data, stat = self.zk.get(path)
            except NoNodeError:
                try:
                    self.zk.create(path, b"")
                except NodeExistsError:
                    pass
                continue
            start = int(json.loads(data)["block_end"]) + 1 if data else 0
            block = {
                "version": 1,
                "broker": broker_id,
                "block_start": str(start),
                "block_end": str(start + size - 1),
            }
            try:
                self.zk.set(path, _j(block), version=stat.version)
                return start, start + size - 1
            except BadVersionError:
                continue
