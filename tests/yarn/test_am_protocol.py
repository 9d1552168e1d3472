"""The ApplicationMaster protocol, driven by the test itself as an unmanaged AM,
by DistributedShell, and two capacity queues under contention."""

from __future__ import annotations

import time

import pytest
import requests

from lab.services.yarn.http import RpcError, call

from .cluster import wait_until

DSHELL = "{{PYTHON}} -m lab.services.yarn.distshell --interval_ms 100 "


def unmanaged_app(yarn) -> tuple[str, str]:
    aid = requests.post(yarn.url + "/ws/v1/cluster/apps/new-application", timeout=5).json()[
        "application-id"
    ]
    body = {
        "application-id": aid,
        "application-name": "unmanaged",
        "unmanaged-AM": True,
        "am-container-spec": {},
    }
    assert requests.post(yarn.url + "/ws/v1/cluster/apps", json=body, timeout=5).status_code == 202
    ts, seq = aid.split("_")[1:]
    return aid, f"appattempt_{ts}_{seq}_000001"


def test_register_allocate_launch_finish(yarn):
    aid, attempt = unmanaged_app(yarn)
    am = f"http://127.0.0.1:{yarn.sched_port}/rpc/ApplicationMasterProtocol"
    with pytest.raises(RpcError) as e:
        call(f"{am}/allocate", {"attemptId": attempt, "ask": []})
    assert e.value.exception == "ApplicationMasterNotRegisteredException"
    with pytest.raises(RpcError) as e:
        call(f"{am}/registerApplicationMaster", {"attemptId": "appattempt_1_0099_000001"})
    assert e.value.exception == "ApplicationAttemptNotFoundException"

    reg = call(
        f"{am}/registerApplicationMaster",
        {"attemptId": attempt, "host": "127.0.0.1", "rpcPort": 1, "trackingUrl": ""},
    )
    assert reg["queue"] == "default" and reg["maximumResourceCapability"]["memory"] == 2048
    assert yarn.app(aid)["state"] == "RUNNING"
    with pytest.raises(RpcError) as e:
        call(
            f"{am}/allocate",
            {
                "attemptId": attempt,
                "ask": [{"allocationRequestId": 1, "capability": {"memory": 99999, "vCores": 1}}],
            },
        )
    assert e.value.exception == "InvalidResourceRequestException"

    ask = [
        {
            "allocationRequestId": 7,
            "priority": 1,
            "capability": {"memory": 100, "vCores": 1},
            "numContainers": 2,
        }
    ]
    got: list[dict] = []
    deadline = time.monotonic() + 20
    while len(got) < 2 and time.monotonic() < deadline:
        resp = call(f"{am}/allocate", {"attemptId": attempt, "ask": ask, "progress": 0.1})
        ask = []
        got += resp["allocatedContainers"]
        time.sleep(0.1)
    assert len(got) == 2
    assert all(
        c["allocationRequestId"] == 7 and c["resource"]["memory"] == 128 for c in got
    )  # rounded up to 64s
    for i, c in enumerate(got):
        req = {
            "containerId": c["id"],
            "resource": c["resource"],
            "launchContext": {"commands": [f"exit {i}"]},
        }
        call(
            f"http://{c['nodeId']}/rpc/ContainerManagementProtocol/startContainers",
            {"requests": [req]},
        )
    done: dict[str, dict] = {}
    deadline = time.monotonic() + 20
    while len(done) < 2 and time.monotonic() < deadline:
        resp = call(f"{am}/allocate", {"attemptId": attempt, "progress": 0.5})
        done.update({s["containerId"]: s for s in resp["completedContainersStatuses"]})
        time.sleep(0.1)
    assert sorted(s["exitStatus"] for s in done.values()) == [0, 1]
    assert call(
        f"{am}/finishApplicationMaster",
        {"attemptId": attempt, "finalApplicationStatus": "SUCCEEDED"},
    )["isUnregistered"]
    app = yarn.app(aid)
    assert (app["state"], app["finalStatus"], app["progress"]) == ("FINISHED", "SUCCEEDED", 100.0)
    with pytest.raises(RpcError) as e:
        call(f"{am}/allocate", {"attemptId": attempt})
    assert e.value.exception == "ApplicationAttemptNotFoundException"


def test_distributed_shell_runs_containers(yarn):
    aid = yarn.submit(
        DSHELL + "--num_containers 4 --shell_command 'echo hi'", memory=128, max_attempts=1
    )
    app = yarn.wait_app(aid)
    assert (app["state"], app["finalStatus"]) == ("FINISHED", "SUCCEEDED"), app["diagnostics"]


def test_task_over_its_memory_fails_the_job_with_the_diagnostic(yarn):
    grow = (
        '{{PYTHON}} -c "import time; h=[(bytearray(10<<20), time.sleep(0.02)) for _ in range(60)]"'
    )
    aid = yarn.submit(
        DSHELL + f"--num_containers 1 --container_memory 128 --shell_command '{grow}'",
        memory=128,
        max_attempts=1,
    )
    app = yarn.wait_app(aid)
    assert (app["state"], app["finalStatus"]) == ("FINISHED", "FAILED")
    assert "exit -104" in app["diagnostics"]
    assert "beyond the 'PHYSICAL' memory limit" in app["diagnostics"]


CAPACITY = {
    "yarn.scheduler.capacity.root.queues": "a,b",
    "yarn.scheduler.capacity.root.a.capacity": "70",
    "yarn.scheduler.capacity.root.b.capacity": "30",
    "yarn.scheduler.capacity.root.a.maximum-capacity": "100",
    "yarn.scheduler.capacity.root.b.maximum-capacity": "100",
    "yarn.scheduler.capacity.maximum-am-resource-percent": "0.5",
}


def test_two_queues_70_30_under_contention(yarn_factory):
    y = yarn_factory(capacity=CAPACITY)
    y.start_rm()
    y.start_nm("127.0.0.11", memory_mb=1024)
    y.start_nm("127.0.0.12", memory_mb=1024)
    y.wait_nodes(2)
    sched = requests.get(y.url + "/ws/v1/cluster/scheduler", timeout=5).json()["scheduler"][
        "schedulerInfo"
    ]
    assert [(q["queueName"], q["capacity"]) for q in sched["queues"]["queue"]] == [
        ("a", 70.0),
        ("b", 30.0),
    ]
    work = DSHELL + "--num_containers 60 --container_memory 128 --shell_command 'sleep 1'"
    b = y.submit(work, queue="b", memory=128, max_attempts=1)  # b first: it takes the idle cluster
    wait_until(lambda: y.app(b)["runningContainers"] > 5, what="b spreading over the idle cluster")
    a = y.submit(work, queue="a", memory=128, max_attempts=1)
    wait_until(lambda: y.app(a)["runningContainers"] > 1, what="a getting containers")
    time.sleep(1.5)  # b's first wave drains (no preemption): shares settle as containers turn over
    samples = []
    end = time.monotonic() + 3.0
    while time.monotonic() < end:
        qs = requests.get(y.url + "/ws/v1/cluster/scheduler", timeout=5).json()["scheduler"][
            "schedulerInfo"
        ]["queues"]["queue"]
        used = {q["queueName"]: q["resourcesUsed"]["memory"] for q in qs}
        if used["a"] + used["b"]:
            samples.append(used["a"] / (used["a"] + used["b"]))
        time.sleep(0.1)
    still = [y.app(x)["state"] for x in (a, b)]
    share = sum(samples) / len(samples)
    print(
        f"\nqueues a=70% b=30% under contention: a held {share:.0%}, b {1 - share:.0%} of used memory ({len(samples)} samples)"
    )
    assert still == ["RUNNING", "RUNNING"], "contention ended before the measurement did"
    assert 0.55 <= share <= 0.85
    for x in (a, b):
        requests.put(f"{y.url}/ws/v1/cluster/apps/{x}/state", json={"state": "KILLED"}, timeout=5)


def test_allocated_but_never_launched_containers_expire(yarn_factory):
    y = yarn_factory(
        rm_conf={"yarn.resourcemanager.rm.container-allocation.expiry-interval-ms": "1500"}
    )
    y.start_rm()
    y.start_nm("127.0.0.11")
    y.wait_nodes(1)
    aid, attempt = unmanaged_app(y)
    am = f"http://127.0.0.1:{y.sched_port}/rpc/ApplicationMasterProtocol"
    call(f"{am}/registerApplicationMaster", {"attemptId": attempt})
    ask = [
        {"allocationRequestId": 1, "capability": {"memory": 256, "vCores": 1}, "numContainers": 1}
    ]
    got, done = [], []
    deadline = time.monotonic() + 20
    while not done and time.monotonic() < deadline:
        resp = call(f"{am}/allocate", {"attemptId": attempt, "ask": ask})
        ask = []
        got += resp["allocatedContainers"]
        done += resp["completedContainersStatuses"]
        time.sleep(0.1)
    assert len(got) == 1  # allocated, handed to the AM, never started
    assert done == [
        {
            "containerId": got[0]["id"],
            "state": "COMPLETE",
            "exitStatus": -100,
            "diagnostics": "Container expired since it was unused",
        }
    ]
    assert (
        requests.get(y.url + "/ws/v1/cluster/metrics", timeout=5).json()["clusterMetrics"][
            "allocatedMB"
        ]
        == 0
    )
    call(
        f"{am}/finishApplicationMaster",
        {"attemptId": attempt, "finalApplicationStatus": "SUCCEEDED"},
    )


def test_silent_application_master_expires(yarn_factory):
    y = yarn_factory(rm_conf={"yarn.am.liveness-monitor.expiry-interval-ms": "1500"})
    y.start_rm()
    aid, attempt = unmanaged_app(y)
    am = f"http://127.0.0.1:{y.sched_port}/rpc/ApplicationMasterProtocol"
    call(f"{am}/registerApplicationMaster", {"attemptId": attempt})
    assert y.app(aid)["state"] == "RUNNING"
    # no allocate heartbeats from now on: the RM gives up on the attempt
    app = wait_until(
        lambda: (a := y.app(aid))["attempts"] == 2 and a, timeout=20, what="attempt expired"
    )
    attempts = requests.get(f"{y.url}/ws/v1/cluster/apps/{aid}/appattempts", timeout=5).json()
    assert "timed out" in attempts["appAttempts"]["appAttempt"][0]["diagnosticsInfo"]
    assert app["state"] in ("ACCEPTED", "FAILED", "RUNNING")


def test_only_the_newest_completed_applications_are_kept(yarn_factory):
    y = yarn_factory(rm_conf={"yarn.resourcemanager.max-completed-applications": "2"})
    y.start_rm()
    ids = []
    for _ in range(3):
        aid, attempt = unmanaged_app(y)
        am = f"http://127.0.0.1:{y.sched_port}/rpc/ApplicationMasterProtocol"
        call(f"{am}/registerApplicationMaster", {"attemptId": attempt})
        call(
            f"{am}/finishApplicationMaster",
            {"attemptId": attempt, "finalApplicationStatus": "SUCCEEDED"},
        )
        ids.append(aid)
    listed = [
        a["id"]
        for a in requests.get(y.url + "/ws/v1/cluster/apps", timeout=5).json()["apps"]["app"]
    ]
    assert sorted(listed) == sorted(ids[1:])
    assert requests.get(f"{y.url}/ws/v1/cluster/apps/{ids[0]}", timeout=5).status_code == 404
