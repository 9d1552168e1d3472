"""The ResourceManager's scheduler: queues, asks, and placement on node heartbeats.

Pure bookkeeping without I/O, so it can be tested alone. Two policies share it:

- FIFO (``FifoScheduler``): one queue, applications served in submission order.
- Capacity (``CapacityScheduler``): leaf queues under root, each with a
  guaranteed ``capacity`` and an elastic ``maximum-capacity`` (percent of the
  cluster). On every node heartbeat the queue furthest below its guarantee
  (lowest used/guaranteed) is offered the node first; inside a queue the oldest
  application goes first (FIFO ordering policy).

Placement follows delay scheduling as the Capacity Scheduler does it: an ask
that names hosts waits up to ``node-locality-delay`` missed scheduling
opportunities for one of its hosts, then accepts a node in one of its racks, and
after a further ``rack-locality-additional-delay`` (default: cluster size) any
node (off-switch).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .records import ABORTED, LOST_CONTAINER, ZERO, Resource, container_id

NODE_LOCAL, RACK_LOCAL, OFF_SWITCH = "NODE_LOCAL", "RACK_LOCAL", "OFF_SWITCH"


@dataclass
class Container:
    id: str
    app_id: str
    attempt_id: str
    node_id: str
    resource: Resource
    priority: int = 0
    allocation_request_id: int = -1
    locality: str = OFF_SWITCH
    is_am: bool = False
    state: str = "ALLOCATED"  # ALLOCATED -> ACQUIRED -> RUNNING -> COMPLETE
    allocated_at: float = field(default_factory=time.monotonic)
    allocated_ms: int = field(default_factory=lambda: int(time.time() * 1000))  # for reports

    def json(self, node: SchedulerNode | None = None) -> dict:
        return {
            "id": self.id,
            "nodeId": self.node_id,
            "nodeHttpAddress": node.http_address if node else "",
            "resource": self.resource.json(),
            "priority": self.priority,
            "allocationRequestId": self.allocation_request_id,
        }


@dataclass
class SchedulerNode:
    node_id: str  # host:port of the NodeManager's container-management endpoint
    host: str
    rack: str
    capability: Resource
    http_address: str = ""
    used: Resource = ZERO
    containers: dict[str, Container] = field(default_factory=dict)

    @property
    def available(self) -> Resource:
        return self.capability - self.used


@dataclass
class Ask:
    """One outstanding container request (AMRMClient's ContainerRequest shape)."""

    request_id: int
    priority: int
    capability: Resource
    num: int
    hosts: frozenset[str] = frozenset()
    racks: frozenset[str] = frozenset()
    relax_locality: bool = True
    missed: int = 0


@dataclass
class SchedulerApp:
    app_id: str
    attempt_id: str
    queue: str
    user: str
    order: int
    am_resource: Resource
    asks: dict[int, Ask] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    new_containers: list[Container] = field(default_factory=list)
    completed: list[dict] = field(default_factory=list)
    blacklist: set[str] = field(default_factory=set)
    used: Resource = ZERO
    active: bool = False
    next_container: int = 1
    priority: int = 0

    def pending(self) -> tuple[int, Resource]:
        n, res = 0, ZERO
        for ask in self.asks.values():
            n += ask.num
            res = res + Resource(ask.capability.memory * ask.num, ask.capability.vcores * ask.num)
        return n, res


class _Share:
    """What a queue's capacity and max_capacity (absolute percents) mean in resources."""

    def guaranteed(self, cluster: Resource) -> Resource:
        return Resource(
            int(cluster.memory * self.capacity / 100), int(cluster.vcores * self.capacity / 100)
        )

    def maximum(self, cluster: Resource) -> Resource:
        return Resource(
            int(cluster.memory * self.max_capacity / 100),
            int(cluster.vcores * self.max_capacity / 100),
        )

    def used_ratio(self, cluster: Resource) -> float:
        g = self.guaranteed(cluster)
        if g.memory <= 0:
            return float("inf") if self.used.memory else 0.0
        return self.used.memory / g.memory


@dataclass
class ParentQueue(_Share):
    """A queue with children: its share is split among them; it holds no apps."""

    path: str  # root.eng
    capacity: float  # absolute percent of the cluster
    max_capacity: float  # absolute percent
    rel_capacity: float = 100.0  # percent of its parent, as configured
    rel_max_capacity: float = 100.0
    leaves: list[Queue] = field(default_factory=list)

    @property
    def used(self) -> Resource:
        total = ZERO
        for q in self.leaves:
            total = total + q.used
        return total


@dataclass
class Queue(_Share):
    name: str
    capacity: float  # absolute percent of the cluster (= percent of root for root's children)
    max_capacity: float  # absolute percent
    max_am_percent: float = 0.1
    state: str = "RUNNING"
    apps: list[SchedulerApp] = field(default_factory=list)
    used: Resource = ZERO
    am_used: Resource = ZERO
    path: str = ""  # root.<...>.name
    rel_capacity: float | None = None  # percent of its parent, as configured (nested queues)
    rel_max_capacity: float | None = None
    ancestors: list[ParentQueue] = field(default_factory=list)  # outermost first, root excluded


class SchedulerError(Exception):
    """An ask the scheduler refuses (InvalidResourceRequestException in Hadoop)."""


class Scheduler:
    kind = "capacityScheduler"

    def __init__(
        self,
        queues: list[Queue],
        *,
        minimum: Resource = Resource(1024, 1),
        maximum: Resource = Resource(8192, 4),
        node_locality_delay: int = 40,
        rack_locality_additional_delay: int = -1,
        memory_only: bool = True,
    ):
        self.queues: dict[str, Queue] = {q.name: q for q in queues}
        self.minimum = minimum
        self.maximum = maximum
        self.node_locality_delay = node_locality_delay
        self.rack_locality_additional_delay = rack_locality_additional_delay
        # DefaultResourceCalculator (Hadoop's default) counts memory only;
        # DominantResourceCalculator counts vcores too.
        self.memory_only = memory_only
        self.nodes: dict[str, SchedulerNode] = {}
        self.apps: dict[str, SchedulerApp] = {}  # by attempt id
        self._order = itertools.count()
        self.containers_allocated_total = 0
        self.on_release: Callable[[Container], None] | None = None

    def find_queue(self, name: str) -> Queue | None:
        """A leaf queue by its name or its full path (root.eng.dev)."""
        q = self.queues.get(name)
        if q is None and name.startswith("root."):
            q = next((x for x in self.queues.values() if x.path == name), None)
        return q

    # -- cluster -----------------------------------------------------------
    @property
    def cluster(self) -> Resource:
        total = ZERO
        for n in self.nodes.values():
            total = total + n.capability
        return total

    @property
    def used(self) -> Resource:
        total = ZERO
        for n in self.nodes.values():
            total = total + n.used
        return total

    def add_node(self, node: SchedulerNode) -> None:
        self.nodes[node.node_id] = node

    def remove_node(self, node_id: str, diagnostics: str = LOST_CONTAINER) -> list[Container]:
        """A node left (LOST, shut down): its containers complete as ABORTED."""
        node = self.nodes.pop(node_id, None)
        if node is None:
            return []
        lost = list(node.containers.values())
        for c in lost:
            self._release(c, ABORTED, diagnostics, node=node)
        return lost

    # -- applications -------------------------------------------------------
    def normalize(self, res: Resource) -> Resource:
        """Round up to a multiple of the minimum allocation, refuse above the maximum."""
        if not res.fits_in(self.maximum):
            raise SchedulerError(
                f"Invalid resource request, requested resource type=[memory-mb] < 0 or greater than maximum allowed allocation. "
                f"Requested resource=<memory:{res.memory}, vCores:{res.vcores}>, "
                f"maximum allowed allocation=<memory:{self.maximum.memory}, vCores:{self.maximum.vcores}>"
            )
        step = max(self.minimum.memory, 1)
        mem = max(step, -(-res.memory // step) * step)
        return Resource(min(mem, self.maximum.memory), max(res.vcores, self.minimum.vcores))

    def add_attempt(
        self,
        app_id: str,
        attempt_id: str,
        queue: str,
        user: str,
        am_resource: Resource,
        priority: int = 0,
    ) -> SchedulerApp:
        q = self.queues[queue]
        app = SchedulerApp(
            app_id, attempt_id, queue, user, next(self._order), self.normalize(am_resource)
        )
        app.priority = priority
        app.asks[0] = Ask(0, 0, app.am_resource, 1)  # the AM container: anywhere
        self.apps[attempt_id] = app
        q.apps.append(app)
        self._activate(q)
        return app

    def _activate(self, q: Queue) -> None:
        # Capacity Scheduler's maximum-am-resource-percent: a queue always runs at least
        # one application, more only while their AMs fit in the queue's AM share.
        limit = q.maximum(self.cluster).memory * q.max_am_percent
        for app in q.apps:
            if app.active:
                continue
            running = any(a.active for a in q.apps)
            if running and q.am_used.memory + app.am_resource.memory > limit:
                break
            app.active = True
            q.am_used = q.am_used + app.am_resource

    def remove_attempt(
        self, attempt_id: str, exit_status: int, diagnostics: str
    ) -> list[Container]:
        """The attempt ended: drop its asks and release its live containers (returned)."""
        app = self.apps.get(attempt_id)
        if app is None:
            return []
        live = list(app.containers.values())
        for c in live:  # while the app is still known, so node, app and queue usage all drop
            self._release(c, exit_status, diagnostics)
        del self.apps[attempt_id]
        q = self.queues[app.queue]
        if app in q.apps:
            q.apps.remove(app)
        if app.active:
            q.am_used = q.am_used - app.am_resource
        self._activate(q)
        return live

    def parent_names(self) -> set[str]:
        """Names and paths of the parent queues (root included): they take no apps."""
        out = {"root"}
        for q in self.queues.values():
            for p in q.ancestors:
                out |= {p.path, p.path.rsplit(".", 1)[-1]}
        return out

    def move(self, attempt_id: str, target: Queue) -> None:
        """Move a running attempt's application to another leaf queue, taking what it
        uses along (CapacityScheduler.moveApplication); the source queue may then start
        an application its AM share held back."""
        app = self.apps[attempt_id]
        src = self.queues[app.queue]
        if src is target:
            return
        src.apps.remove(app)
        src.used = src.used - app.used
        target.apps.append(app)
        target.used = target.used + app.used
        if app.active:
            src.am_used = src.am_used - app.am_resource
            target.am_used = target.am_used + app.am_resource
        app.queue = target.name
        self._activate(src)
        self._activate(target)

    def update_asks(self, attempt_id: str, asks: list[Ask]) -> None:
        app = self.apps[attempt_id]
        for ask in asks:
            if ask.request_id == 0:
                raise SchedulerError("allocationRequestId 0 is reserved for the AM container")
            cap = self.normalize(ask.capability)
            if ask.num <= 0:
                app.asks.pop(ask.request_id, None)
                continue
            old = app.asks.get(ask.request_id)
            ask.capability = cap
            if old:
                ask.missed = old.missed
            app.asks[ask.request_id] = ask

    def release(
        self, attempt_id: str, container_ids: list[str], diagnostics: str, exit_status: int
    ) -> list[Container]:
        app = self.apps.get(attempt_id)
        out = []
        for cid in container_ids:
            c = app.containers.get(cid) if app else None
            if c:
                self._release(c, exit_status, diagnostics)
                out.append(c)
        return out

    def container_completed(self, cid: str, exit_status: int, diagnostics: str) -> Container | None:
        for node in self.nodes.values():
            c = node.containers.get(cid)
            if c:
                self._release(c, exit_status, diagnostics, node=node)
                return c
        return None

    def find_container(self, cid: str) -> Container | None:
        for node in self.nodes.values():
            if cid in node.containers:
                return node.containers[cid]
        return None

    def _release(
        self, c: Container, exit_status: int, diagnostics: str, node: SchedulerNode | None = None
    ) -> None:
        node = node or self.nodes.get(c.node_id)
        if node and node.containers.pop(c.id, None):
            node.used = node.used - c.resource
        app = self.apps.get(c.attempt_id)
        if app and app.containers.pop(c.id, None):
            app.used = app.used - c.resource
            self.queues[app.queue].used = self.queues[app.queue].used - c.resource
            app.new_containers = [x for x in app.new_containers if x.id != c.id]
            app.completed.append(
                {
                    "containerId": c.id,
                    "state": "COMPLETE",
                    "exitStatus": exit_status,
                    "diagnostics": diagnostics,
                }
            )
        if c.state != "COMPLETE" and self.on_release:
            self.on_release(c)
        c.state = "COMPLETE"

    # -- placement ------------------------------------------------------------
    def _fits(self, want: Resource, room: Resource) -> bool:
        if self.memory_only:
            return want.memory <= room.memory
        return want.fits_in(room)

    def _locality(self, ask: Ask, node: SchedulerNode) -> str | None:
        """The locality this node would give the ask now, or None to pass on it."""
        if node.host in ask.hosts:
            return NODE_LOCAL
        if not ask.hosts and not ask.racks:
            return OFF_SWITCH
        if not ask.hosts and node.rack in ask.racks:
            return RACK_LOCAL
        if not ask.relax_locality:
            return None
        n = len(self.nodes)
        node_delay = min(self.node_locality_delay, n)
        if node.rack in ask.racks and ask.missed >= node_delay:
            return RACK_LOCAL
        extra = (
            self.rack_locality_additional_delay if self.rack_locality_additional_delay >= 0 else n
        )
        if ask.missed >= node_delay + extra:
            return OFF_SWITCH
        return None

    def _try_app(
        self, app: SchedulerApp, node: SchedulerNode, q: Queue, passed: set[int]
    ) -> Container | None:
        cluster = self.cluster
        for ask in sorted(app.asks.values(), key=lambda a: (a.priority, a.request_id)):
            if ask.num <= 0 or not self._fits(ask.capability, node.available):
                continue
            if not self._fits(q.used + ask.capability, q.maximum(cluster)):
                continue
            if any(
                not self._fits(a.used + ask.capability, a.maximum(cluster)) for a in q.ancestors
            ):
                continue  # a parent queue at its maximum-capacity
            locality = self._locality(ask, node)
            if locality is None:
                # One missed opportunity per node heartbeat, however many rounds it takes.
                if id(ask) not in passed:
                    passed.add(id(ask))
                    ask.missed += 1
                continue
            seq = app.next_container
            app.next_container += 1
            c = Container(
                container_id(app.attempt_id, seq),
                app.app_id,
                app.attempt_id,
                node.node_id,
                ask.capability,
                ask.priority,
                ask.request_id,
                locality,
                is_am=ask.request_id == 0,
            )
            ask.num -= 1
            ask.missed = 0
            if ask.num == 0:
                del app.asks[ask.request_id]
            node.containers[c.id] = c
            node.used = node.used + c.resource
            app.containers[c.id] = c
            app.used = app.used + c.resource
            q.used = q.used + c.resource
            if not c.is_am:
                app.new_containers.append(c)
            self.containers_allocated_total += 1
            return c
        return None

    def node_update(self, node_id: str) -> list[Container]:
        """Offer a heartbeating node to the queues; returns the containers placed on it."""
        node = self.nodes.get(node_id)
        placed: list[Container] = []
        if node is None:
            return placed
        passed: set[int] = set()
        for _ in range(1000):  # bounded: each round places at most one container
            cluster = self.cluster
            got = None

            # Hierarchical: the most under-served parent first, then within it, down to leaves.
            def key(q: Queue, cluster=cluster) -> tuple:
                levels = [(a.used_ratio(cluster), a.path) for a in q.ancestors]
                return (*levels, (q.used_ratio(cluster), q.path or q.name))

            for q in sorted(self.queues.values(), key=key):
                if q.state != "RUNNING":
                    continue
                # FIFO ordering policy: higher application priority first, then submission order
                for app in sorted(q.apps, key=lambda a: (-a.priority, a.order)):
                    if (
                        not app.active
                        or node.node_id in app.blacklist
                        or node.host in app.blacklist
                    ):
                        continue
                    got = self._try_app(app, node, q, passed)
                    if got:
                        break
                if got:
                    break
            if not got:
                break
            placed.append(got)
        return placed

    def pending(self) -> tuple[int, Resource]:
        n, res = 0, ZERO
        for app in self.apps.values():
            an, ar = app.pending()
            n += an
            res = res + ar
        return n, res


class FifoScheduler(Scheduler):
    kind = "fifoScheduler"

    def __init__(self, **kw):
        super().__init__([Queue("default", 100.0, 100.0, max_am_percent=1.0)], **kw)
