"""The scheduler a ResourceManager's configuration asks for (CapacitySchedulerConfiguration's
role): yarn.resourcemanager.scheduler.class, the allocation limits, locality delays, and
the Capacity scheduler's queue tree from capacity-scheduler.xml, checked as Hadoop checks
it (capacities of siblings add up to 100, a maximum not below its capacity, leaf names
unique)."""

from __future__ import annotations

from .conf import Configuration
from .records import Resource
from .scheduler import FifoScheduler, ParentQueue, Queue, Scheduler


def build_scheduler(conf: Configuration) -> Scheduler:
    kw = dict(
        minimum=Resource(
            conf.get_int("yarn.scheduler.minimum-allocation-mb"),
            conf.get_int("yarn.scheduler.minimum-allocation-vcores"),
        ),
        maximum=Resource(
            conf.get_int("yarn.scheduler.maximum-allocation-mb"),
            conf.get_int("yarn.scheduler.maximum-allocation-vcores"),
        ),
        node_locality_delay=conf.get_int("yarn.scheduler.capacity.node-locality-delay"),
        rack_locality_additional_delay=conf.get_int(
            "yarn.scheduler.capacity.rack-locality-additional-delay"
        ),
        memory_only=not (conf.get("yarn.scheduler.capacity.resource-calculator") or "").endswith(
            "DominantResourceCalculator"
        ),
    )
    cls = conf.get("yarn.resourcemanager.scheduler.class") or ""
    if cls.endswith("FifoScheduler"):
        return FifoScheduler(**kw)
    if not cls.endswith("CapacityScheduler"):
        raise ValueError(
            f"yarn.resourcemanager.scheduler.class={cls!r}: only the Capacity and FIFO schedulers exist here"
        )
    default_am = conf.get_float("yarn.scheduler.capacity.maximum-am-resource-percent")
    leaves: list[Queue] = []

    def children(path: str, abs_cap: float, abs_max: float, ancestors: list[ParentQueue]) -> None:
        names = [
            n.strip()
            for n in (conf.get(f"yarn.scheduler.capacity.{path}.queues") or "").split(",")
            if n.strip()
        ]
        if not names:
            raise ValueError(f"yarn.scheduler.capacity.{path}.queues names no queue")
        total = 0.0
        for name in names:
            qpath = f"{path}.{name}"
            prefix = f"yarn.scheduler.capacity.{qpath}."
            cap = conf.get_float(prefix + "capacity", 100.0 if len(names) == 1 else 0.0)
            maxcap = conf.get_float(prefix + "maximum-capacity", 100.0)
            if maxcap == -1:
                maxcap = 100.0
            if maxcap < cap:
                raise ValueError(
                    f"queue {qpath}: maximum-capacity {maxcap} is below capacity {cap}"
                )
            total += cap
            q_abs, q_max = abs_cap * cap / 100, abs_max * maxcap / 100
            if conf.get(prefix + "queues"):
                parent = ParentQueue(qpath, q_abs, q_max, cap, maxcap)
                before = len(leaves)
                children(qpath, q_abs, q_max, [*ancestors, parent])
                parent.leaves = leaves[before:]
                continue
            if any(q.name == name for q in leaves):
                raise ValueError(f"queue {qpath}: a leaf queue named {name} exists twice")
            leaves.append(
                Queue(
                    name, q_abs, q_max,
                    conf.get_float(prefix + "maximum-am-resource-percent", default_am),
                    state=(conf.get(prefix + "state") or "RUNNING").upper(),
                    path=qpath, rel_capacity=cap, rel_max_capacity=maxcap, ancestors=list(ancestors),
                )
            )  # fmt: skip
        if abs(total - 100.0) > 1e-6:
            raise ValueError(f"capacities of the queues under {path} add up to {total}, not 100")

    children("root", 100.0, 100.0, [])
    return Scheduler(leaves, **kw)
