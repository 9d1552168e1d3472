"""The scheduler alone: queues, FIFO, delay scheduling, lost nodes."""

import pytest

from lab.services.yarn.records import ABORTED, Resource, app_id, attempt_id
from lab.services.yarn.scheduler import (
    NODE_LOCAL,
    OFF_SWITCH,
    RACK_LOCAL,
    Ask,
    FifoScheduler,
    Queue,
    Scheduler,
    SchedulerError,
    SchedulerNode,
)

MIN = Resource(128, 1)


def node(i: int, rack: str = "/r1", mem: int = 1024) -> SchedulerNode:
    return SchedulerNode(f"10.0.0.{i}:1000", f"10.0.0.{i}", rack, Resource(mem, 64))


def start_app(s: Scheduler, seq: int, queue: str = "default", am_mb: int = 128):
    aid = app_id(1, seq)
    att = attempt_id(aid, 1)
    s.add_attempt(aid, att, queue, "u", Resource(am_mb, 1))
    return att


def heartbeat_all(s: Scheduler, rounds: int = 1):
    placed = []
    for _ in range(rounds):
        for n in list(s.nodes):
            placed += s.node_update(n)
    return placed


def test_capacity_queues_share_70_30_under_contention():
    s = Scheduler([Queue("a", 70, 100, 1.0), Queue("b", 30, 100, 1.0)], minimum=MIN)
    for i in range(1, 5):
        s.add_node(node(i, mem=1280))  # 40 containers of 128 MB in all
    a, b = start_app(s, 1, "a"), start_app(s, 2, "b")
    s.update_asks(a, [Ask(1, 1, Resource(128, 1), 100)])
    s.update_asks(b, [Ask(1, 1, Resource(128, 1), 100)])
    heartbeat_all(s, 3)
    used_a, used_b = s.queues["a"].used.memory, s.queues["b"].used.memory
    total = s.cluster.memory
    assert used_a + used_b == total  # the cluster is full
    assert abs(used_a / total - 0.7) <= 0.05 and abs(used_b / total - 0.3) <= 0.05


def test_idle_queue_lends_capacity_up_to_maximum():
    s = Scheduler([Queue("a", 50, 75, 1.0), Queue("b", 50, 100, 1.0)], minimum=MIN)
    s.add_node(node(1, mem=1024))
    a = start_app(s, 1, "a")
    s.update_asks(a, [Ask(1, 1, Resource(128, 1), 100)])
    heartbeat_all(s, 2)
    assert s.queues["a"].used.memory == 768  # 75% of 1024: elastic beyond 50%, capped at max


def test_fifo_serves_oldest_application_first():
    s = FifoScheduler(minimum=MIN)
    s.add_node(node(1, mem=1024))
    first, second = start_app(s, 1), start_app(s, 2)
    s.update_asks(first, [Ask(1, 1, Resource(256, 1), 10)])
    s.update_asks(second, [Ask(1, 1, Resource(256, 1), 10)])
    heartbeat_all(s)
    assert len(s.apps[first].containers) == 4  # AM(128) + 3x256 of 1024: the older app first
    assert len(s.apps[second].containers) == 1  # the younger app gets only what is left: its AM


def test_delay_scheduling_node_then_rack_then_off_switch():
    s = Scheduler(
        [Queue("default", 100, 100, 1.0)],
        minimum=MIN,
        node_locality_delay=2,
        rack_locality_additional_delay=2,
    )
    s.add_node(node(1, "/r1"))
    s.add_node(node(2, "/r1"))
    s.add_node(node(3, "/r2"))
    att = start_app(s, 1)
    assert s.node_update("10.0.0.3:1000")  # the AM goes anywhere
    s.update_asks(
        att, [Ask(1, 1, Resource(128, 1), 1, frozenset({"10.0.0.1"}), frozenset({"/r1"}))]
    )
    # node 3 (other rack) is passed over until both delays have gone by
    assert s.node_update("10.0.0.3:1000") == []
    assert s.node_update("10.0.0.3:1000") == []
    got = s.node_update("10.0.0.1:1000")
    assert [c.locality for c in got] == [NODE_LOCAL]

    s.update_asks(
        att, [Ask(2, 1, Resource(128, 1), 1, frozenset({"10.0.0.1"}), frozenset({"/r1"}))]
    )
    assert s.node_update("10.0.0.2:1000") == []  # rack-local, but still waiting for the host
    assert s.node_update("10.0.0.2:1000") == []
    assert [c.locality for c in s.node_update("10.0.0.2:1000")] == [RACK_LOCAL]

    s.update_asks(
        att, [Ask(3, 1, Resource(128, 1), 1, frozenset({"10.0.0.1"}), frozenset({"/r1"}))]
    )
    for _ in range(4):
        assert s.node_update("10.0.0.3:1000") == []
    assert [c.locality for c in s.node_update("10.0.0.3:1000")] == [OFF_SWITCH]


def test_lost_node_reports_its_containers_as_aborted():
    s = FifoScheduler(minimum=MIN)
    s.add_node(node(1))
    att = start_app(s, 1)
    s.node_update("10.0.0.1:1000")
    s.update_asks(att, [Ask(1, 1, Resource(128, 1), 2)])
    s.node_update("10.0.0.1:1000")
    lost = s.remove_node("10.0.0.1:1000")
    assert len(lost) == 3
    statuses = s.apps[att].completed
    assert {st["exitStatus"] for st in statuses} == {ABORTED}
    assert all("lost" in st["diagnostics"] for st in statuses)
    assert s.cluster == Resource(0, 0)


def test_requests_above_maximum_are_refused_and_small_ones_rounded_up():
    s = FifoScheduler(minimum=Resource(256, 1), maximum=Resource(1024, 2))
    assert s.normalize(Resource(300, 1)) == Resource(512, 1)
    with pytest.raises(SchedulerError, match="maximum allowed allocation"):
        s.normalize(Resource(2048, 1))


def test_am_resource_limit_keeps_second_app_pending():
    s = Scheduler([Queue("default", 100, 100, 0.1)], minimum=MIN)
    s.add_node(node(1, mem=1024))
    first, second = start_app(s, 1, am_mb=128), start_app(s, 2, am_mb=128)
    assert s.apps[first].active and not s.apps[second].active  # 10% of 1 GB fits one 128 MB AM
    s.remove_attempt(first, 0, "done")
    assert s.apps[second].active


def test_higher_priority_application_is_served_first_in_its_queue():
    s2 = FifoScheduler(minimum=MIN)
    s2.add_node(node(1, mem=256))
    first = start_app(s2, 1)
    second_id = app_id(1, 2)
    second = attempt_id(second_id, 1)
    s2.add_attempt(second_id, second, "default", "u", Resource(128, 1), priority=9)
    placed = s2.node_update("10.0.0.1:1000")
    assert [c.attempt_id for c in placed] == [second, first]  # priority beats submission order


def test_ending_an_attempt_gives_back_everything_it_held():
    s = Scheduler([Queue("a", 50, 100, 1.0), Queue("b", 50, 100, 1.0)], minimum=MIN)
    s.add_node(node(1, mem=1024))
    att = start_app(s, 1, "a")
    s.update_asks(att, [Ask(1, 1, Resource(128, 1), 3)])
    s.node_update("10.0.0.1:1000")
    assert s.queues["a"].used.memory == 512
    released = s.remove_attempt(att, ABORTED, "killed")
    assert len(released) == 4
    assert s.queues["a"].used == Resource(0, 0) and s.queues["a"].am_used == Resource(0, 0)
    assert s.used == Resource(0, 0)
    # and the next application gets the whole node again
    nxt = start_app(s, 2, "a")
    s.update_asks(nxt, [Ask(1, 1, Resource(128, 1), 7)])
    s.node_update("10.0.0.1:1000")
    assert s.used.memory == 1024


def test_blacklisted_host_gets_no_containers_of_that_app():
    s = FifoScheduler(minimum=MIN)
    s.add_node(node(1))
    s.add_node(node(2))
    att = start_app(s, 1)
    s.apps[att].blacklist.add("10.0.0.1")  # resource names are host names, as in Hadoop
    assert s.node_update("10.0.0.1:1000") == []
    assert [c.node_id for c in s.node_update("10.0.0.2:1000")] == ["10.0.0.2:1000"]


def test_nested_queues_absolute_capacities_and_parent_maximum():
    from lab.services.yarn.conf import Configuration
    from lab.services.yarn.rm import build_scheduler

    conf = Configuration(
        {
            "yarn.scheduler.minimum-allocation-mb": "128",
            "yarn.scheduler.capacity.root.queues": "eng,ops",
            "yarn.scheduler.capacity.root.eng.capacity": "80",
            "yarn.scheduler.capacity.root.eng.maximum-capacity": "80",
            "yarn.scheduler.capacity.root.ops.capacity": "20",
            "yarn.scheduler.capacity.root.eng.queues": "dev,prod",
            "yarn.scheduler.capacity.root.eng.dev.capacity": "25",
            "yarn.scheduler.capacity.root.eng.prod.capacity": "75",
            "yarn.scheduler.capacity.maximum-am-resource-percent": "1.0",
        }
    )
    s = build_scheduler(conf)
    assert {q.name: (q.path, q.capacity) for q in s.queues.values()} == {
        "dev": ("root.eng.dev", 20.0),
        "prod": ("root.eng.prod", 60.0),
        "ops": ("root.ops", 20.0),
    }
    assert s.find_queue("root.eng.dev") is s.queues["dev"]
    s.add_node(node(1, mem=1280))
    att = start_app(s, 1, "dev")
    s.update_asks(att, [Ask(1, 1, Resource(128, 1), 50)])
    s.node_update("10.0.0.1:1000")
    # dev may grow past its 20 % up to its parent's 80 % maximum-capacity, not further
    assert s.queues["dev"].used.memory == 1024


def test_nested_queue_capacities_must_add_up():
    from lab.services.yarn.conf import Configuration
    from lab.services.yarn.rm import build_scheduler

    conf = Configuration(
        {
            "yarn.scheduler.capacity.root.queues": "eng",
            "yarn.scheduler.capacity.root.eng.queues": "a,b",
            "yarn.scheduler.capacity.root.eng.a.capacity": "50",
            "yarn.scheduler.capacity.root.eng.b.capacity": "40",
        }
    )
    with pytest.raises(ValueError, match="under root.eng add up to 90.0"):
        build_scheduler(conf)
