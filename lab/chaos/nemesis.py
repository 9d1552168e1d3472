"""Nemeses: the faults a chaos run injects, each with its exact undo.

A nemesis picks its victims with the run's seeded random generator among the
*targets* (the nodes running the workload's service) or, for rack partitions and
partitions that isolate a node from everything, among all the lab's nodes; it
returns an active Fault whose ``heal()`` puts things back. ``validate`` refuses, up
front and in one sentence, a nemesis that cannot act on this lab (a majority of one
node, a rack partition in a one-rack lab, a service that is not deployed).

Names (``--nemesis``, several joined with commas):

    none                     no faults (a baseline)
    kill                     SIGKILL the service on one target, restart it on heal
    kill-leader              the same, on the node the workload says leads
    pause                    freeze the service on one target (freezer cgroup; a node
                             without a cgroup per service is paused whole: a VM by
                             libvirt's suspend), thaw on heal
    kill-node                kill a whole target node (every process), boot it on heal
    partition-one            cut one target node off from every other node
    partition-leader         the same, for the node the workload says leads
    partition-majority       split the targets into a majority and a minority
    partition-random-halves  split all the lab's nodes into two random halves
    partition-majorities-ring  each target sees a majority, no two the same one
    partition-rack           cut one whole rack off from the other racks
    partition-one-way        one target hears nobody, while everyone still hears it
    delay loss duplicate corrupt reorder   packet faults on what the targets send
    cpu                      a target's CPU quota down to 5% of a core
    memory                   a target's memory limit squeezed to what it uses now + 8 MiB
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field

from lab.net import faults as netfaults

from .labctx import ChaosError, LabContext


@dataclass
class Fault:
    name: str
    description: str
    targets: list[str]
    _heal: object = None
    detail: dict = field(default_factory=dict)

    def heal(self) -> None:
        if self._heal is not None:
            heal, self._heal = self._heal, None
            heal()


class Nemesis:
    name = "?"

    def __init__(self, service: str | None, leader=None, log_dir: str = "/tmp"):
        self.service = service  # the workload's service: its nodes are the targets
        self.leader = leader  # callable -> node name, for kill-leader
        self.log_dir = log_dir

    def targets(self, ctx: LabContext) -> list[str]:
        if self.service is None:
            return sorted(ctx.nodes)
        return ctx.service_nodes(self.service)

    def validate(self, ctx: LabContext) -> None:
        if not self.targets(ctx):
            raise ChaosError(
                f"nemesis {self.name} has nothing to act on: lab {ctx.name} runs no "
                f"{self.service} (add it to the topology's services)"
            )

    def start(self, ctx: LabContext, rng: random.Random) -> Fault:
        raise NotImplementedError


class NoFault(Nemesis):
    name = "none"

    def validate(self, ctx):
        pass

    def start(self, ctx, rng):
        return Fault("none", "no fault", [])


def _service_ids(ctx: LabContext, service: str, node: str) -> list[str]:
    return [sid for sid, s in ctx.services(service).items() if s["node"] == node]


class Kill(Nemesis):
    name = "kill"

    def victim(self, ctx, rng) -> str:
        return rng.choice(self.targets(ctx))

    def start(self, ctx, rng):
        node = self.victim(ctx, rng)
        sids = _service_ids(ctx, self.service, node)
        how = {ctx.kill_service(sid) for sid in sids}

        def heal():
            for sid in sids:
                ctx.start_service(sid)

        return Fault(self.name, f"killed {self.service} on {node} ({', '.join(sorted(how))})",
                     [node], heal)  # fmt: skip


class KillLeader(Kill):
    name = "kill-leader"

    def validate(self, ctx):
        super().validate(ctx)
        if self.leader is None:
            raise ChaosError("nemesis kill-leader needs a workload that knows its leader")

    def victim(self, ctx, rng):
        try:
            node = self.leader()
        except Exception:  # noqa: BLE001 - no leader known right now: any target will do
            node = None
        return node if node in self.targets(ctx) else rng.choice(self.targets(ctx))


class Pause(Nemesis):
    name = "pause"

    def start(self, ctx, rng):
        node = rng.choice(self.targets(ctx))
        sids = _service_ids(ctx, self.service, node)
        how = [ctx.pause_service(sid) for sid in sids]

        def heal():
            for sid in sids:
                ctx.resume_service(sid)

        return Fault(self.name, f"paused {self.service} on {node} ({how[0]})", [node], heal)


class KillNode(Nemesis):
    name = "kill-node"

    def start(self, ctx, rng):
        node = rng.choice(self.targets(ctx))
        ctx.kill_node(node)
        return Fault(self.name, f"killed node {node}", [node], lambda: ctx.start_node(node))


# partitions


class Partition(Nemesis):
    min_nodes = 2
    scope = "targets"  # or "lab": choose among all the lab's nodes

    def pool(self, ctx) -> list[str]:
        return sorted(ctx.nodes) if self.scope == "lab" else self.targets(ctx)

    def validate(self, ctx):
        super().validate(ctx)
        pool = self.pool(ctx)
        if len(pool) < self.min_nodes:
            where = (
                f"{self.service} runs on"
                if self.scope == "targets" and self.service
                else (f"lab {ctx.name} has")
            )
            raise ChaosError(
                f"nemesis {self.name} cannot be met: it needs at least {self.min_nodes} "
                f"nodes and {where} {len(pool)} ({', '.join(pool)})"
            )

    def grudge(self, ctx, rng) -> tuple[dict[str, set], str]:
        raise NotImplementedError

    def start(self, ctx, rng):
        grudge, desc = self.grudge(ctx, rng)
        grudge = {n: set(e) for n, e in grudge.items() if e}
        involved = sorted(grudge)
        net = {n: ctx.net(n) for n in ctx.nodes}
        try:
            netfaults.apply_grudge(net, ctx.addresses, grudge)
        except BaseException:
            for n in involved:
                netfaults.unblock(net[n])
            raise

        def heal():
            for n in involved:
                netfaults.unblock(ctx.net(n))

        return Fault(self.name, desc, involved, heal,
                     {"grudge": {n: sorted(e) for n, e in grudge.items()}})  # fmt: skip


def _split(a: list[str], b: list[str]) -> dict[str, set]:
    g = {n: set(b) for n in a}
    g.update({n: set(a) for n in b})
    return g


class PartitionOne(Partition):
    name = "partition-one"

    def grudge(self, ctx, rng):
        node = rng.choice(self.targets(ctx))
        rest = [n for n in sorted(ctx.nodes) if n != node]
        return _split([node], rest), f"isolated {node} from every other node"


class PartitionLeader(Partition):
    name = "partition-leader"

    def validate(self, ctx):
        super().validate(ctx)
        if self.leader is None:
            raise ChaosError("nemesis partition-leader needs a workload that knows its leader")

    def grudge(self, ctx, rng):
        try:
            node = self.leader()
        except Exception:  # noqa: BLE001 - no leader known right now: any target will do
            node = None
        if node not in self.targets(ctx):
            node = rng.choice(self.targets(ctx))
        rest = [n for n in sorted(ctx.nodes) if n != node]
        return _split([node], rest), f"isolated the leader {node} from every other node"


class PartitionMajority(Partition):
    name = "partition-majority"
    min_nodes = 3

    def grudge(self, ctx, rng):
        nodes = self.targets(ctx)[:]
        rng.shuffle(nodes)
        minority = sorted(nodes[: (len(nodes) - 1) // 2])
        majority = sorted(nodes[len(minority) :])
        # nodes outside the service stay with the majority
        others = [n for n in sorted(ctx.nodes) if n not in nodes]
        return _split(minority, majority + others), f"majority {majority} | minority {minority}"


class PartitionRandomHalves(Partition):
    name = "partition-random-halves"
    scope = "lab"

    def grudge(self, ctx, rng):
        nodes = sorted(ctx.nodes)
        rng.shuffle(nodes)
        half = len(nodes) // 2
        a, b = sorted(nodes[:half]), sorted(nodes[half:])
        return _split(a, b), f"halves {a} | {b}"


class PartitionMajoritiesRing(Partition):
    name = "partition-majorities-ring"
    min_nodes = 4

    def grudge(self, ctx, rng):
        ring = self.targets(ctx)[:]
        rng.shuffle(ring)
        n = len(ring)
        k = (n // 2 + 1) // 2  # each node sees itself and k neighbours on each side
        g = {}
        for i, node in enumerate(ring):
            sees = {ring[(i + d) % n] for d in range(-k, k + 1)}
            if len(sees) <= n // 2:  # an even majority: one more neighbour on one side
                sees.add(ring[(i + k + 1) % n])
            g[node] = set(ring) - sees
        # a symmetric grudge: a link is cut when either end cuts it
        for a, enemies in list(g.items()):
            for b in enemies:
                g[b].add(a)
        return g, f"majorities ring over {ring}"


class PartitionRack(Partition):
    name = "partition-rack"
    scope = "lab"

    def validate(self, ctx):
        racks = sorted(set(ctx.racks.values()))
        if len(racks) < 2:
            raise ChaosError(
                f"nemesis partition-rack cannot be met: lab {ctx.name} has one rack ({racks[0]})"
            )

    def grudge(self, ctx, rng):
        rack = rng.choice(sorted(set(ctx.racks.values())))
        inside = sorted(n for n, r in ctx.racks.items() if r == rack)
        outside = sorted(n for n in ctx.nodes if n not in inside)
        return _split(inside, outside), f"rack {rack} ({', '.join(inside)}) cut off"


class PartitionOneWay(Partition):
    name = "partition-one-way"

    def grudge(self, ctx, rng):
        node = rng.choice(self.targets(ctx))
        rest = [n for n in sorted(ctx.nodes) if n != node]
        return {node: set(rest)}, f"{node} hears nobody; everyone still hears {node}"


# packet faults


PACKET_FAULTS = {
    "delay": netfaults.PacketFault(delay=0.05, jitter=0.02),
    "loss": netfaults.PacketFault(loss=20),
    "duplicate": netfaults.PacketFault(duplicate=20),
    "corrupt": netfaults.PacketFault(corrupt=10),
    "reorder": netfaults.PacketFault(delay=0.02, jitter=0.01, reorder=25),
}


class Packets(Nemesis):
    def __init__(self, name: str, *a, **kw):
        super().__init__(*a, **kw)
        self.name = name
        self.fault = PACKET_FAULTS[name]

    def start(self, ctx, rng):
        infos = []  # (info, the node)
        nodes = self.targets(ctx)
        try:
            for n in nodes:
                log = f"{self.log_dir}/faultline-{n}.log"
                seed = rng.randrange(2**31)
                node = ctx.nodes[n]
                infos.append((node.start_packet_fault(self.fault, seed, log), node))
        except BaseException:
            for i, node in infos:
                node.heal_packet_fault(i)
            raise

        def heal():
            for i, node in infos:
                node.heal_packet_fault(i)

        pids = [i["pid"] for i, _ in infos if "pid" in i]
        return Fault(self.name, f"{self.fault.describe()} on what {', '.join(nodes)} send",
                     nodes, heal, {"method": infos[0][0]["method"] if infos else "", "pids": pids})  # fmt: skip


# resources


class Cpu(Nemesis):
    name = "cpu"

    def start(self, ctx, rng):
        node = rng.choice(self.targets(ctx))
        ctx.nodes[node].set_limits(cpus=0.05)
        return Fault(self.name, f"CPU quota of {node} cut to 5% of a core", [node],
                     lambda: ctx.restore_limits(node))  # fmt: skip


class Memory(Nemesis):
    name = "memory"

    def start(self, ctx, rng):
        node = rng.choice(self.targets(ctx))
        used = ctx.nodes[node].memory_used() or 64 << 20
        limit = used + (8 << 20)
        ctx.nodes[node].set_limits(memory=limit)

        def heal():
            ctx.restore_limits(node)
            # a service the squeeze got OOM-killed is started again, as an operator would
            for sid, s in ctx.services().items():
                if s["node"] == node and not ctx.service_running(sid):
                    ctx.start_service(sid)

        return Fault(self.name, f"memory of {node} squeezed to {limit >> 20} MiB", [node], heal)


NEMESES: dict[str, type] = {
    c.name: c
    for c in (
        NoFault,
        Kill,
        KillLeader,
        Pause,
        KillNode,
        PartitionOne,
        PartitionLeader,
        PartitionMajority,
        PartitionRandomHalves,
        PartitionMajoritiesRing,
        PartitionRack,
        PartitionOneWay,
        Cpu,
        Memory,
    )  # fmt: skip
}
NAMES = sorted([*NEMESES, *PACKET_FAULTS])


def make(names: str | list[str], service: str | None, leader=None, log_dir="/tmp") -> list:
    """Nemeses from ``--nemesis`` (comma-separated names)."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        raise ChaosError(f"no nemesis named (known: {', '.join(NAMES)})")
    out = []
    for n in names:
        if n in PACKET_FAULTS:
            out.append(Packets(n, service, leader, log_dir))
        elif n in NEMESES:
            out.append(NEMESES[n](service, leader, log_dir))
        else:
            raise ChaosError(f"unknown nemesis {n!r} (known: {', '.join(NAMES)})")
    return out


# schedules


@dataclass
class Event:
    start: float
    end: float
    nemesis: str


def schedule(
    nemeses: list[str], time_s: float, interval: float, mode: str, seed: int
) -> list[Event]:
    """When each fault starts and heals. A quiet start, then faults of about
    ``interval`` seconds with quiet gaps of about ``interval`` between them (fixed, or
    drawn from [0.5, 1.5] x interval with ``seed``), and a quiet end of at least
    ``interval`` (and a fifth of the run) for the system to recover before the final
    checks. The same arguments always give the same schedule."""
    if mode not in ("fixed", "random"):
        raise ChaosError(f"unknown schedule {mode!r}: use fixed or random")
    if interval <= 0:
        raise ChaosError("the fault interval must be positive")
    if nemeses == ["none"]:
        return []
    recover = max(interval, time_s * 0.2)
    if time_s < 2 * interval + recover:
        raise ChaosError(
            f"a {time_s:g} s run cannot fit one fault with --interval {interval:g}: it needs a "
            f"quiet start, the fault and {recover:g} s to recover, so at least "
            f"{2 * interval + recover:g} s"
        )
    rng = random.Random(seed)
    out: list[Event] = []
    t = interval
    i = 0
    deck: list[str] = []  # random mode deals every nemesis once before any comes again
    while True:
        if mode == "random":
            quiet, length = (rng.uniform(0.5, 1.5) * interval for _ in range(2))
            if not deck:
                deck = rng.sample(nemeses, len(nemeses))
            name = deck.pop()
            t = (out[-1].end + quiet) if out else quiet
        else:
            length, name = interval, nemeses[i % len(nemeses)]
            t = (out[-1].end + interval) if out else interval
        if t + length > time_s - recover:
            break
        out.append(Event(round(t, 3), round(t + length, 3), name))
        i += 1
    missing = [n for n in nemeses if n not in {e.nemesis for e in out}]
    if missing:  # a title naming a nemesis that never fired would mislead the reader
        span = (2 if mode == "fixed" else 3) * interval * len(nemeses)  # 3: any seed fits
        need = math.ceil(max(span + interval, span / 0.8))
        raise ChaosError(
            f"a {time_s:g} s run fits {len(out)} fault{'s' * (len(out) != 1)} with --interval "
            f"{interval:g}, so {', '.join(missing)} would never fire: give --time {need} "
            "or more, or a shorter --interval"
        )
    return out


class NemesisThread(threading.Thread):
    """Walks the schedule: start each fault, heal it, record both in the history."""

    def __init__(self, ctx, nemeses: list, events: list[Event], history, seed: int, on_change):
        super().__init__(name="nemesis", daemon=True)
        self.ctx = ctx
        self.by_name = {n.name: n for n in nemeses}
        self.events = events
        self.history = history
        self.rng = random.Random(seed ^ 0x5EED)
        self.stop_event = threading.Event()
        self.active: dict[str, Fault] = {}
        self.errors: list[str] = []
        self.on_change = on_change  # called with the active faults, to persist them

    def run(self) -> None:
        for k, ev in enumerate(self.events):
            if self.stop_event.wait(max(0.0, ev.start - self.history.now())):
                return
            fid = f"f{k}"
            try:
                fault = self.by_name[ev.nemesis].start(self.ctx, self.rng)
            except Exception as e:  # noqa: BLE001 - a failed fault is recorded, the run goes on
                self.errors.append(f"{ev.nemesis}: {e}")
                self.history.add("info", "nemesis", "error", ev.nemesis, error=str(e), id=fid)
                continue
            self.active[fid] = fault
            self.on_change(self.active)
            self.history.add("info", "nemesis", "start", fault.name, id=fid,
                             description=fault.description, targets=fault.targets)  # fmt: skip
            if self.stop_event.wait(max(0.0, ev.end - self.history.now())):
                return
            self.heal(fid)

    def heal(self, fid: str) -> None:
        fault = self.active.pop(fid, None)
        if fault is None:
            return
        try:
            fault.heal()
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"healing {fault.name}: {e}")
            self.history.add("info", "nemesis", "error", fault.name, error=str(e), id=fid)
        self.history.add("info", "nemesis", "stop", fault.name, id=fid)
        self.on_change(self.active)

    def heal_all(self) -> None:
        self.stop_event.set()
        for fid in list(self.active):
            self.heal(fid)
