"""The NameNode's view of DataNodes and replicas: registration, heartbeats, stale/dead
detection, block reports, the default rack-aware placement policy, under-replication
queues by priority, pending replications, excess and corrupt replica handling."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from ..hadoop.conf import DEFAULT_RACK
from .namespace import Block, INodeFile

# LowRedundancyBlocks' queues, most urgent first.
QUEUE_HIGHEST = 0  # one replica left
QUEUE_VERY_LOW = 1  # live * 3 < expected
QUEUE_LOW = 2
QUEUE_BADLY_DISTRIBUTED = 3  # enough replicas, all on one rack
QUEUE_CORRUPT = 4  # no good replica left
QUEUE_NAMES = ["highest", "very-low", "low", "badly-distributed", "corrupt"]


@dataclass(eq=False)
class DatanodeDescriptor:
    uuid: str
    ip: str
    host_name: str
    xfer_port: int
    info_port: int
    rack: str
    ipc_port: int = 0  # ClientDatanodeProtocol's (dfs.datanode.ipc.address)
    capacity: int = 0
    dfs_used: int = 0
    remaining: int = 0
    xceivers: int = 0
    last_heartbeat: float = field(default_factory=time.monotonic)
    last_heartbeat_wall: float = field(default_factory=time.time)
    alive: bool = True
    blocks: set[int] = field(default_factory=set)
    replicate_queue: list[dict] = field(default_factory=list)
    invalidate_queue: set[int] = field(default_factory=set)
    needs_full_report: bool = True

    def info(self) -> dict:
        return {
            "uuid": self.uuid,
            "ip": self.ip,
            "hostName": self.host_name,
            "xferPort": self.xfer_port,
            "infoPort": self.info_port,
            "ipcPort": self.ipc_port,
            "rack": self.rack,
        }


@dataclass(eq=False)
class BlockInfo:
    block: Block
    file: INodeFile
    complete: bool = True
    locations: set[str] = field(default_factory=set)  # DataNode uuids with a good replica
    corrupt: set[str] = field(default_factory=set)  # DataNode uuids with a bad one
    expected_uc: list[str] = field(
        default_factory=list
    )  # pipeline targets while under construction

    @property
    def expected(self) -> int:
        return self.file.replication


class BlockManager:
    def __init__(self, conf, rack_table: dict[str, str]) -> None:
        self.rack_table = rack_table
        self.heartbeat_interval = conf.get_seconds("dfs.heartbeat.interval", "s")
        self.recheck_interval = conf.get_seconds("dfs.namenode.heartbeat.recheck-interval", "ms")
        # DatanodeManager: heartbeatExpireInterval = 2 * recheck + 10 * 1000 * heartbeat (10m30s default)
        self.expire_interval = 2 * self.recheck_interval + 10 * self.heartbeat_interval
        self.stale_interval = conf.get_seconds("dfs.namenode.stale.datanode.interval", "ms")
        self.min_replication = conf.get_int("dfs.namenode.replication.min")
        self.work_multiplier = conf.get_int(
            "dfs.namenode.replication.work.multiplier.per.iteration"
        )
        self.max_streams = conf.get_int("dfs.namenode.replication.max-streams")
        self.max_streams_hard = conf.get_int("dfs.namenode.replication.max-streams-hard-limit")
        self.pending_timeout = conf.get_seconds(
            "dfs.namenode.reconstruction.pending.timeout-sec", "s"
        )
        self.invalidate_limit = conf.get_int("dfs.block.invalidate.limit")
        self.datanodes: dict[str, DatanodeDescriptor] = {}
        self.blocks: dict[int, BlockInfo] = {}
        self.needed: list[set[int]] = [set() for _ in QUEUE_NAMES]
        self.pending: dict[int, tuple[float, list[str]]] = {}  # block id -> (deadline, targets)
        self.rng = random.Random()

    # ------------------------------------------------------------ topology
    def resolve_rack(self, host: str) -> str:
        return self.rack_table.get(host, DEFAULT_RACK)

    def racks(self) -> set[str]:
        return {d.rack for d in self.live_nodes()}

    def live_nodes(self) -> list[DatanodeDescriptor]:
        return [d for d in self.datanodes.values() if d.alive]

    def node_by_ip(self, ip: str) -> DatanodeDescriptor | None:
        for d in self.datanodes.values():
            if d.alive and d.ip == ip:
                return d
        return None

    def is_stale(self, d: DatanodeDescriptor, now: float | None = None) -> bool:
        return (now or time.monotonic()) - d.last_heartbeat > self.stale_interval

    def distance(self, a_ip: str, a_rack: str, d: DatanodeDescriptor) -> int:
        """NetworkTopology.getDistance for a two-level tree: 0 same node, 2 same rack, 4 else."""
        if d.ip == a_ip:
            return 0
        return 2 if d.rack == a_rack else 4

    def sort_by_distance(
        self, client_ip: str, nodes: list[DatanodeDescriptor]
    ) -> list[DatanodeDescriptor]:
        rack = self.resolve_rack(client_ip)
        shuffled = list(nodes)
        self.rng.shuffle(shuffled)  # spread reads among equally close replicas
        now = time.monotonic()
        return sorted(
            shuffled, key=lambda d: (self.is_stale(d, now), self.distance(client_ip, rack, d))
        )

    def pipeline_order(
        self, writer: DatanodeDescriptor | None, nodes: list[DatanodeDescriptor]
    ) -> list[DatanodeDescriptor]:
        """BlockPlacementPolicyDefault.getPipeline: from the writer (or the first node),
        each next node is the one nearest the previous."""
        rest = list(nodes)
        out: list[DatanodeDescriptor] = []
        ref = writer if writer is not None else (rest[0] if rest else None)
        while rest:
            nearest = min(rest, key=lambda d: self.distance(ref.ip, ref.rack, d))
            rest.remove(nearest)
            out.append(nearest)
            ref = nearest
        return out

    # ------------------------------------------------------------ registration and heartbeats
    def register(self, info: dict) -> DatanodeDescriptor:
        rack = self.resolve_rack(info["ip"])
        if info.get("hostName") and info["hostName"] in self.rack_table:
            rack = self.rack_table[info["hostName"]]
        old = self.datanodes.get(info["uuid"])
        if old is not None:
            self._remove_node_blocks(old)
        # A node registering from an address another uuid held (data dir wiped) replaces it.
        for d in list(self.datanodes.values()):
            if d.uuid != info["uuid"] and d.ip == info["ip"] and d.xfer_port == info["xferPort"]:
                self._remove_node_blocks(d)
                del self.datanodes[d.uuid]
        d = DatanodeDescriptor(
            info["uuid"],
            info["ip"],
            info.get("hostName") or info["ip"],
            int(info["xferPort"]),
            int(info["infoPort"]),
            rack,
            int(info.get("ipcPort", 0)),
        )
        self.datanodes[d.uuid] = d
        return d

    def heartbeat(self, d: DatanodeDescriptor, stats: dict, safemode: bool = False) -> list[dict]:
        d.last_heartbeat, d.last_heartbeat_wall = time.monotonic(), time.time()
        d.capacity = int(stats.get("capacity", 0))
        d.dfs_used = int(stats.get("dfsUsed", 0))
        d.remaining = int(stats.get("remaining", 0))
        d.xceivers = int(stats.get("xceiverCount", 0))
        commands = []
        if d.replicate_queue:
            commands.append({"action": "DNA_TRANSFER", "blocks": d.replicate_queue})
            d.replicate_queue = []
        # In safe mode nothing is deleted: the namespace may not have caught up with what
        # the DataNodes hold yet (Hadoop postpones these invalidations the same way).
        if d.invalidate_queue and not safemode:
            batch = sorted(d.invalidate_queue)[: self.invalidate_limit]
            d.invalidate_queue.difference_update(batch)
            commands.append({"action": "DNA_INVALIDATE", "blocks": batch})
        return commands

    def check_heartbeats(self) -> list[DatanodeDescriptor]:
        """HeartbeatManager: nodes silent longer than the expire interval are dead."""
        now = time.monotonic()
        dead = []
        for d in self.datanodes.values():
            if d.alive and now - d.last_heartbeat > self.expire_interval:
                d.alive = False
                dead.append(d)
                self._remove_node_blocks(d)
        return dead

    def _remove_node_blocks(self, d: DatanodeDescriptor) -> None:
        for bid in list(d.blocks):
            info = self.blocks.get(bid)
            if info is not None:
                info.locations.discard(d.uuid)
                info.corrupt.discard(d.uuid)
                self.update_needed(info)
        d.blocks.clear()
        d.replicate_queue.clear()
        d.invalidate_queue.clear()

    # ------------------------------------------------------------ block map
    def add_file_blocks(self, f: INodeFile) -> None:
        for i, b in enumerate(f.blocks):
            complete = f.client_name is None or i < len(f.blocks) - 1
            if b.block_id in self.blocks:
                info = self.blocks[b.block_id]
                info.block, info.file, info.complete = b, f, complete
            else:
                self.blocks[b.block_id] = BlockInfo(b, f, complete)

    def remove_blocks(self, blocks: list[Block]) -> None:
        """Blocks of deleted files: forget them and tell their DataNodes to delete them."""
        for b in blocks:
            info = self.blocks.pop(b.block_id, None)
            if info is None:
                continue
            # An unfinished block's pipeline nodes may hold replicas never reported
            # finished: they go too, rather than wait for a full block report.
            for uuid in info.locations | info.corrupt | set(info.expected_uc):
                d = self.datanodes.get(uuid)
                if d is not None:
                    d.blocks.discard(b.block_id)
                    d.invalidate_queue.add(b.block_id)
            for q in self.needed:
                q.discard(b.block_id)
            self.pending.pop(b.block_id, None)

    def live_replicas(self, info: BlockInfo) -> list[DatanodeDescriptor]:
        return [
            self.datanodes[u]
            for u in info.locations
            if u in self.datanodes and self.datanodes[u].alive
        ]

    def replica_received(self, d: DatanodeDescriptor, rep: list[int]) -> str:
        """One replica reported by a DataNode: [blockId, genStamp, numBytes] and, for one
        not finalized, its ReplicaState (1 RBW, 2 RWR). -> "ok", "invalidate" (unknown or
        stale block: the node must delete it) or "corrupt"."""
        bid, gs, length = rep[:3]
        info = self.blocks.get(bid)
        if info is None:
            return "invalidate"
        if len(rep) > 3 and rep[3] != 0:
            return self._unfinished_received(d, info, gs, rep[3])
        if gs < info.block.gen_stamp or (
            info.complete and gs == info.block.gen_stamp and length != info.block.num_bytes
        ):
            return self._corrupt_received(d, info, gs)
        if gs > info.block.gen_stamp and info.complete:
            info.corrupt.add(d.uuid)
            d.blocks.add(bid)
            self.update_needed(info)
            return "corrupt"
        info.locations.add(d.uuid)
        info.corrupt.discard(d.uuid)
        d.blocks.add(bid)
        pend = self.pending.get(bid)
        if pend and d.uuid in pend[1]:
            pend[1].remove(d.uuid)
            if not pend[1]:
                del self.pending[bid]
        if info.complete:
            self.update_needed(info)
        return "ok"

    def _unfinished_received(self, d: DatanodeDescriptor, info: BlockInfo, gs: int, state: int):
        """BlockManager.checkReplicaCorrupt and addStoredBlockUnderConstruction for an RBW
        or RWR replica. Of a block under construction it is one more replica the block's
        recovery asks (an expected location); of a complete block it is stale, except an
        RBW of the same stamp, whose FINALIZED report is on its way (HDFS-2791)."""
        bid = info.block.block_id
        if not info.complete and gs >= info.block.gen_stamp:
            if d.uuid not in info.expected_uc:
                info.expected_uc.append(d.uuid)
            d.blocks.add(bid)
            return "ok"
        if info.complete and gs == info.block.gen_stamp and state == 1:
            return "ok"
        return self._corrupt_received(d, info, gs)

    def _corrupt_received(self, d: DatanodeDescriptor, info: BlockInfo, gs: int) -> str:
        """markBlockAsCorrupt. A replica older than its block (a write or a recovery moved
        on without it: corruptedDuringWrite) is deleted at once while the block has its
        minimum of good replicas, so that its node can take a good copy again."""
        bid = info.block.block_id
        info.corrupt.add(d.uuid)
        info.locations.discard(d.uuid)
        d.blocks.add(bid)
        if gs < info.block.gen_stamp and len(self.live_replicas(info)) >= self.min_replication:
            d.invalidate_queue.add(bid)
        self.update_needed(info)
        return "corrupt"

    def replica_deleted(self, d: DatanodeDescriptor, bid: int) -> None:
        d.blocks.discard(bid)
        info = self.blocks.get(bid)
        if info is not None:
            info.locations.discard(d.uuid)
            info.corrupt.discard(d.uuid)
            self.update_needed(info)

    def full_report(self, d: DatanodeDescriptor, replicas: list[list[int]]) -> None:
        """Reconcile the NameNode's idea of this node with what it really stores."""
        reported = set()
        for rep in replicas:
            reported.add(rep[0])
            if self.replica_received(d, rep) == "invalidate":
                d.invalidate_queue.add(rep[0])
        for bid in list(d.blocks - reported):
            self.replica_deleted(d, bid)
        d.needs_full_report = False

    def mark_corrupt(self, bid: int, uuid: str) -> None:
        info = self.blocks.get(bid)
        d = self.datanodes.get(uuid)
        if info is None or d is None:
            return
        info.locations.discard(uuid)
        info.corrupt.add(uuid)
        self.update_needed(info)

    # ------------------------------------------------------------ redundancy
    def priority(self, info: BlockInfo) -> int | None:
        """LowRedundancyBlocks.getPriority; None when the block needs nothing."""
        live = len(self.live_replicas(info))
        expected = (
            min(info.expected, max(1, len(self.live_nodes())))
            if self.live_nodes()
            else info.expected
        )
        pending = len(self.pending.get(info.block.block_id, (0, []))[1])
        if live == 0:
            return QUEUE_CORRUPT if info.corrupt else QUEUE_HIGHEST
        if live + pending >= expected:
            if (
                live >= 2
                and len(self.racks()) > 1
                and len({r.rack for r in self.live_replicas(info)}) == 1
            ):
                return QUEUE_BADLY_DISTRIBUTED
            return None
        if live == 1:
            return QUEUE_HIGHEST
        if live * 3 < info.expected:
            return QUEUE_VERY_LOW
        return QUEUE_LOW

    def update_needed(self, info: BlockInfo) -> None:
        bid = info.block.block_id
        for q in self.needed:
            q.discard(bid)
        if not info.complete or bid not in self.blocks:
            return
        prio = self.priority(info)
        if prio is not None:
            self.needed[prio].add(bid)
        live = self.live_replicas(info)
        if len(live) >= info.expected and info.corrupt:
            # Enough good copies again: the bad ones can go (BlockManager.invalidateCorruptReplicas).
            for uuid in list(info.corrupt):
                d = self.datanodes.get(uuid)
                if d is not None and d.alive:
                    d.invalidate_queue.add(bid)
        if len(live) > info.expected:
            self._remove_excess(info, live)

    def _remove_excess(self, info: BlockInfo, live: list[DatanodeDescriptor]) -> None:
        """chooseReplicasToDelete: take from the rack holding most replicas, and there the
        node with least space left, until the count is right, never emptying a rack."""
        live = list(live)
        while len(live) > info.expected:
            by_rack: dict[str, list[DatanodeDescriptor]] = {}
            for d in live:
                by_rack.setdefault(d.rack, []).append(d)
            crowded = [ds for ds in by_rack.values() if len(ds) > 1] or list(by_rack.values())
            candidates = max(crowded, key=len)
            victim = min(candidates, key=lambda d: d.remaining)
            live.remove(victim)
            info.locations.discard(victim.uuid)
            victim.blocks.discard(info.block.block_id)
            victim.invalidate_queue.add(info.block.block_id)

    def recheck_all(self) -> None:
        for info in self.blocks.values():
            self.update_needed(info)

    def compute_replication_work(self, budget: int | None = None) -> int:
        """RedundancyMonitor: schedule up to live * multiplier blocks, most urgent first."""
        now = time.monotonic()
        for bid, (deadline, _) in list(self.pending.items()):
            if now > deadline:
                del self.pending[bid]  # timed out: count it as needed again
                if bid in self.blocks:
                    self.update_needed(self.blocks[bid])
        if budget is None:
            budget = len(self.live_nodes()) * self.work_multiplier
        scheduled = 0
        for prio, queue in enumerate(self.needed):
            if prio == QUEUE_CORRUPT:
                continue  # nothing good to copy from
            for bid in sorted(queue):
                if scheduled >= budget:
                    return scheduled
                info = self.blocks.get(bid)
                if info is None or bid in self.pending:
                    continue
                if self._schedule(info, prio):
                    scheduled += 1
        return scheduled

    def _schedule(self, info: BlockInfo, prio: int) -> bool:
        live = self.live_replicas(info)
        limit = self.max_streams_hard if prio == QUEUE_HIGHEST else self.max_streams
        sources = [d for d in live if len(d.replicate_queue) < limit]
        if not sources:
            return False
        source = self.rng.choice(sources)
        if prio == QUEUE_BADLY_DISTRIBUTED:
            # One more copy on another rack; the excess-replica rule then trims the crowded rack.
            others = [d for d in self.live_nodes() if d.rack not in {r.rack for r in live}]
            targets = [self.rng.choice(others)] if others else []
        else:
            needed = info.expected - len(live)
            # Nodes holding a corrupt copy cannot take a new one until theirs is deleted.
            targets = self.choose_target(needed, source, live, set(info.corrupt), new_block=False)
        if not targets:
            return False
        source.replicate_queue.append(
            {"block": info.block.to_json(), "targets": [t.info() for t in targets]}
        )
        self.pending[info.block.block_id] = (
            time.monotonic() + self.pending_timeout,
            [t.uuid for t in targets],
        )
        self.needed[prio].discard(info.block.block_id)
        return True

    # ------------------------------------------------------------ placement
    def _good(
        self,
        d: DatanodeDescriptor,
        excluded: set[str],
        chosen: list[DatanodeDescriptor],
        block_size: int = 0,
    ) -> bool:
        if not d.alive or d.uuid in excluded or d in chosen:
            return False
        if d.capacity and d.remaining < block_size:
            return False
        return True

    def choose_target(
        self,
        num: int,
        writer: DatanodeDescriptor | None,
        chosen: list[DatanodeDescriptor],
        excluded: set[str],
        new_block: bool = True,
        block_size: int = 0,
    ) -> list[DatanodeDescriptor]:
        """BlockPlacementPolicyDefault: 1st on the writer (or its rack, or anywhere),
        2nd on another rack, 3rd on the 2nd's rack (another node), the rest at random,
        at most (total-1)/racks + 2 replicas per rack."""
        results = list(chosen)
        total = len(results) + num
        racks = max(1, len(self.racks()))
        max_per_rack = (total - 1) // racks + 2
        if writer is not None and not writer.alive:
            writer = None

        def ok(d):
            if not self._good(d, excluded, results, block_size):
                return False
            return sum(1 for r in results if r.rack == d.rack) < max_per_rack

        def pick(pred) -> DatanodeDescriptor | None:
            cands = [d for d in self.live_nodes() if ok(d) and pred(d)]
            return self.rng.choice(cands) if cands else None

        def choose_local_rack(ref):
            if ref is None:
                return pick(lambda d: True)
            return pick(lambda d: d.rack == ref.rack) or pick(lambda d: True)

        def choose_remote_rack(ref):
            return pick(lambda d: d.rack != ref.rack) or choose_local_rack(ref)

        start = len(results)
        while len(results) < total:
            n = len(results)
            if n == 0:
                if writer is not None and ok(writer):
                    d = writer
                else:
                    d = choose_local_rack(writer)
            elif n == 1:
                d = choose_remote_rack(results[0])
            elif n == 2:
                if results[0].rack == results[1].rack:
                    d = choose_remote_rack(results[0])
                elif new_block:
                    d = choose_local_rack(results[1])
                else:
                    d = choose_local_rack(writer or results[1])
            else:
                d = pick(lambda d: True)
            if d is None:
                break
            results.append(d)
        return results[start:]
