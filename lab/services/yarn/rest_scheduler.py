"""The RM REST API's scheduler resource (/ws/v1/cluster/scheduler): the FIFO
scheduler's one queue, or the Capacity Scheduler's queue tree with each queue's
capacities and usage, per partition as Hadoop 3 reports them (racklab has only the
default partition, "")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .records import ZERO, Resource

if TYPE_CHECKING:
    from .scheduler import Scheduler


def scheduler_json(sched: Scheduler) -> dict:
    total, used = sched.cluster, sched.used
    if sched.kind == "fifoScheduler":
        q = sched.queues["default"]
        return {
            "scheduler": {
                "schedulerInfo": {
                    "type": "fifoScheduler",
                    "capacity": 1.0,
                    "usedCapacity": used.memory / total.memory if total.memory else 0.0,
                    "qstate": q.state,
                    "minQueueMemoryCapacity": sched.minimum.memory,
                    "maxQueueMemoryCapacity": sched.maximum.memory,
                    "numNodes": len(sched.nodes),
                    "usedNodeCapacity": used.memory,
                    "availNodeCapacity": total.memory - used.memory,
                    "totalNodeCapacity": total.memory,
                    "numContainers": sum(len(n.containers) for n in sched.nodes.values()),
                }
            }
        }

    def pct(part: int, whole: int) -> float:
        return 100.0 * part / whole if whole else 0.0

    def by_partition(q, am_percent: float, pending: Resource) -> dict:
        """Hadoop 3's per-partition capacities and usage (capacities /
        resources): racklab has no node labels, so the default partition "" only."""
        guaranteed, maximum = q.guaranteed(total), q.maximum(total)
        rel = q.rel_capacity if q.rel_capacity is not None else q.capacity
        rel_max = q.rel_max_capacity if q.rel_max_capacity is not None else q.max_capacity
        am_limit = Resource(int(maximum.memory * am_percent), int(maximum.vcores * am_percent))
        am_used = getattr(q, "am_used", ZERO)
        return {
            "capacities": {
                "queueCapacitiesByPartition": [
                    {
                        "partitionName": "",
                        "capacity": rel,
                        "usedCapacity": pct(q.used.memory, guaranteed.memory),
                        "maxCapacity": rel_max,
                        "absoluteCapacity": q.capacity,
                        "absoluteUsedCapacity": pct(q.used.memory, total.memory),
                        "absoluteMaxCapacity": q.max_capacity,
                        "maxAMLimitPercentage": am_percent * 100,
                        "weight": -1.0,
                        "normalizedWeight": 0.0,
                        "configuredMinResource": ZERO.json(),
                        "effectiveMinResource": guaranteed.json(),
                        "effectiveMaxResource": maximum.json(),
                    }
                ]
            },
            "resources": {
                "resourceUsagesByPartition": [
                    {
                        "partitionName": "",
                        "used": q.used.json(),
                        "reserved": ZERO.json(),
                        "pending": pending.json(),
                        "amUsed": am_used.json(),
                        "amLimit": am_limit.json(),
                        "userAmLimit": am_limit.json(),
                    }
                ]
            },
        }

    def pending_of(leaves: list) -> Resource:
        out = ZERO
        for q in leaves:
            for a in q.apps:
                out = out + a.pending()[1]
        return out

    def leaf_json(q) -> dict:
        guaranteed = q.guaranteed(total)
        active = [a for a in q.apps if a.active]
        return {
            "type": "capacitySchedulerLeafQueueInfo",
            "queueName": q.name,
            "queuePath": q.path or f"root.{q.name}",
            "state": q.state,
            "capacity": q.rel_capacity if q.rel_capacity is not None else q.capacity,
            "maxCapacity": q.rel_max_capacity if q.rel_max_capacity is not None else q.max_capacity,
            "usedCapacity": pct(q.used.memory, guaranteed.memory),
            "absoluteCapacity": q.capacity,
            "absoluteMaxCapacity": q.max_capacity,
            "absoluteUsedCapacity": pct(q.used.memory, total.memory),
            "numApplications": len(q.apps),
            "numActiveApplications": len(active),
            "numPendingApplications": len(q.apps) - len(active),
            "numContainers": sum(len(a.containers) for a in q.apps),
            "resourcesUsed": q.used.json(),
            "usedAMResource": q.am_used.json(),
            "maxApplications": 10000,
            "userLimit": 100,
            "userLimitFactor": 1.0,
            "maxAMResourcePercent": q.max_am_percent,
            "orderingPolicyInfo": "fifo",
            **by_partition(q, q.max_am_percent, pending_of([q])),
        }

    def level(depth: int, leaves: list) -> list[dict]:
        """The queues at one depth of the tree, parents with their own children."""
        out: list = []
        groups: dict[str, tuple] = {}
        for q in leaves:
            item = [*q.ancestors, q][depth]
            if item is q:
                out.append(leaf_json(q))
            elif item.path not in groups:
                groups[item.path] = (item, [q])
                out.append(item.path)
            else:
                groups[item.path][1].append(q)
        for i, x in enumerate(out):
            if isinstance(x, str):
                parent, members = groups[x]
                out[i] = {
                    "queueName": parent.path.rsplit(".", 1)[1],
                    "queuePath": parent.path,
                    "state": "RUNNING",
                    "capacity": parent.rel_capacity,
                    "maxCapacity": parent.rel_max_capacity,
                    "usedCapacity": pct(parent.used.memory, parent.guaranteed(total).memory),
                    "absoluteCapacity": parent.capacity,
                    "absoluteMaxCapacity": parent.max_capacity,
                    "absoluteUsedCapacity": pct(parent.used.memory, total.memory),
                    "numApplications": sum(len(m.apps) for m in members),
                    "resourcesUsed": parent.used.json(),
                    **by_partition(parent, 0.0, pending_of(members)),
                    "queues": {"queue": level(depth + 1, members)},
                }
        return out

    queues = level(0, list(sched.queues.values()))
    return {
        "scheduler": {
            "schedulerInfo": {
                "type": "capacityScheduler",
                "capacity": 100.0,
                "usedCapacity": 100.0 * used.memory / total.memory if total.memory else 0.0,
                "maxCapacity": 100.0,
                "queueName": "root",
                "queuePath": "root",
                "queues": {"queue": queues},
            }
        }
    }
