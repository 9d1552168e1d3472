"""The MapReduce AM's own scheduling decisions, without a cluster: slow start of the
reducers, reduce preemption, and the map-completion events reducers follow."""

from lab.services.yarn.mapreduce.appmaster import AppMaster, Attempt, Task

ENV = {
    "APPLICATION_ATTEMPT_ID": "appattempt_1_0001_000001",
    "YARN_RM_SCHEDULER_ADDRESS": "127.0.0.1:1",
}


def make_am(**conf) -> AppMaster:
    base = {
        "mapreduce.job.kind": "wordcount",
        "fs.webhdfs.address": "http://127.0.0.1:1",
        "mapreduce.output.fileoutputformat.outputdir": "/out",
        "mapreduce.map.memory.mb": 128,
    }
    am = AppMaster(dict(base, **conf), ENV)
    am.maps = [
        Task(f"task_1_0001_m_{i:06d}", "MAP", i, {"hosts": [], "racks": []}) for i in range(20)
    ]
    am.reduce_tasks = [Task(f"task_1_0001_r_{i:06d}", "REDUCE", i) for i in range(2)]
    return am


def finish(am: AppMaster, task: Task, host: str = "h1") -> None:
    am._new_attempt(task)
    att = task.attempts[-1]
    att.state, att.host, att.container = (
        "RUNNING",
        host,
        {"id": f"c-{att.id}", "nodeId": f"{host}:1"},
    )
    am.task_done({"attempt": att.id, "counters": {}, "shuffle": f"{host}:9"})


def test_reducers_start_after_the_slowstart_share_and_not_while_maps_wait():
    am = make_am(**{"mapreduce.job.reduce.slowstart.completedmaps": 0.25})
    for t in am.maps[:4]:
        finish(am, t)
    assert not am._reduces_may_start()  # 4 of 20 < 25 %
    finish(am, am.maps[4])
    assert am._reduces_may_start()  # 5 of 20, and no map waits for a container
    am._new_attempt(am.maps[5])  # a map asked for, not yet placed
    assert not am._reduces_may_start()


def test_events_tell_reducers_where_outputs_are_and_when_they_go_obsolete():
    am = make_am()
    finish(am, am.maps[0], "h1")
    finish(am, am.maps[1], "h2")
    am.node_lost("h1")  # reducers are not done: the map's output on h1 must be made again
    finish(am, am.maps[0], "h3")
    ev = am.map_completion_events(0)
    assert ev["totalMaps"] == 20 and ev["next"] == 4
    assert [(e["type"], e["index"]) for e in ev["events"]] == [
        ("SUCCEEDED", 0),
        ("SUCCEEDED", 1),
        ("OBSOLETE", 0),
        ("SUCCEEDED", 0),
    ]
    assert ev["events"][-1]["shuffle"] == "h3:9"
    assert am.map_completion_events(4)["events"] == []
    assert am.counters["MAPS_RERUN_FOR_LOST_OUTPUT"] == 1


def test_a_reducer_is_preempted_when_maps_starve():
    am = make_am()
    for t in am.maps[:19]:
        finish(am, t)
    am._new_attempt(am.reduce_tasks[0])
    red = am.reduce_tasks[0].attempts[-1]
    red.state, red.container = "RUNNING", {"id": "c-red", "nodeId": "127.0.0.1:1"}
    am._new_attempt(am.maps[19])  # the last map waits, and the cluster has no room left
    for _ in range(4):
        am._preempt_reducer_if_starved(available_mb=64)
    assert red.state == "RUNNING"  # a few heartbeats of patience first
    am._preempt_reducer_if_starved(available_mb=64)
    assert red.state == "KILLED" and am.reduce_tasks[0].state == "PENDING"
    assert am.counters["NUM_KILLED_REDUCES"] == 1 and am.reduce_tasks[0].failures == 0
    am.pool.shutdown(wait=True)


def test_no_preemption_when_there_is_room():
    am = make_am()
    am._new_attempt(am.reduce_tasks[0])
    red = am.reduce_tasks[0].attempts[-1]
    red.state = "RUNNING"
    am._new_attempt(am.maps[0])
    for _ in range(10):
        am._preempt_reducer_if_starved(available_mb=1024)
    assert red.state == "RUNNING"


def test_attempt_ids_follow_hadoop():
    am = make_am()
    am._new_attempt(am.maps[3])
    am._new_attempt(am.maps[3])
    assert [a.id for a in am.maps[3].attempts] == [
        "attempt_1_0001_m_000003_0",
        "attempt_1_0001_m_000003_1",
    ]
    assert isinstance(am.maps[3].attempts[0], Attempt)
