"""The ResourceManager's REST API with the unmodified yarn-api-client package, and its errors."""

import time

import pytest
import requests
from yarn_api_client.errors import APIError
from yarn_api_client.resource_manager import ResourceManager

from .cluster import wait_until


@pytest.fixture
def rm(yarn):
    return ResourceManager(service_endpoints=[yarn.url], timeout=10)


def test_cluster_info_metrics_and_nodes(yarn, rm):
    info = rm.cluster_information().data["clusterInfo"]
    assert info["state"] == "STARTED" and info["haState"] == "ACTIVE"
    metrics = rm.cluster_metrics().data["clusterMetrics"]
    assert metrics["activeNodes"] == 2
    assert metrics["totalMB"] == 2048 and metrics["totalVirtualCores"] == 8
    nodes = rm.cluster_nodes().data["nodes"]["node"]
    assert sorted(n["nodeHostName"] for n in nodes) == ["127.0.0.11", "127.0.0.12"]
    assert all(n["state"] == "RUNNING" and n["availMemoryMB"] == 1024 for n in nodes)
    one = rm.cluster_node(nodes[0]["id"]).data["node"]
    assert one["id"] == nodes[0]["id"]
    sched = rm.cluster_scheduler().data["scheduler"]["schedulerInfo"]
    assert sched["type"] == "capacityScheduler"
    assert [q["queueName"] for q in sched["queues"]["queue"]] == ["default"]


def test_apps_is_null_when_empty(rm):
    assert rm.cluster_applications().data == {"apps": None}


def test_submit_run_and_kill_with_yarn_api_client(yarn, rm):
    new = rm.cluster_new_application().data
    aid = new["application-id"]
    assert new["maximum-resource-capability"]["memory"] == 2048
    rm.cluster_submit_application(
        {
            "application-id": aid,
            "application-name": "sleeper",
            "am-container-spec": {"commands": {"command": "echo started; sleep 60"}},
            "resource": {"memory": 128, "vCores": 1},
            "application-type": "YARN",
            "max-app-attempts": 1,
        }
    )
    wait_until(
        lambda: rm.cluster_application(aid).data["app"]["runningContainers"] == 1, what="AM running"
    )
    apps = rm.cluster_applications(states=["ACCEPTED", "RUNNING"]).data["apps"]["app"]
    assert [a["id"] for a in apps] == [aid]
    app = rm.cluster_application(aid).data["app"]
    assert app["name"] == "sleeper" and app["allocatedMB"] == 128
    # the AM's stdout is kept by its NodeManager
    node = requests.get(
        f"http://{app['amHostHttpAddress']}/ws/v1/node/containers", timeout=5
    ).json()
    cid = node["containers"]["container"][0]["id"]
    log = wait_until(
        lambda: (
            requests.get(
                f"http://{app['amHostHttpAddress']}/ws/v1/node/containerlogs/{cid}/stdout",
                timeout=5,
            ).text
        ),
        what="AM stdout",
    )
    assert log.strip() == "started"

    assert rm.cluster_application_kill(aid).data == {"state": "KILLED"}
    app = rm.cluster_application(aid).data["app"]
    assert app["state"] == "KILLED" and app["finalStatus"] == "KILLED"
    assert rm.cluster_application_state(aid).data == {"state": "KILLED"}
    # the NodeManager really stops the container
    wait_until(
        lambda: (
            requests.get(
                f"http://{app['amHostHttpAddress']}/ws/v1/node/containers/{cid}", timeout=5
            ).json()["container"]["state"]
            == "DONE"
        ),
        what="AM container stopped",
    )
    wait_until(
        lambda: rm.cluster_metrics().data["clusterMetrics"]["allocatedMB"] == 0,
        what="resources freed",
    )


def test_failed_am_is_restarted_up_to_max_attempts(yarn):
    aid = yarn.submit("exit 3", max_attempts=2)
    app = yarn.wait_app(aid)
    assert app["state"] == "FAILED" and app["finalStatus"] == "FAILED"
    assert app["attempts"] == 2
    assert "failed 2 times" in app["diagnostics"] and "exitCode: 3" in app["diagnostics"]
    attempts = requests.get(f"{yarn.url}/ws/v1/cluster/apps/{aid}/appattempts", timeout=5).json()
    assert [a["appAttemptState"] for a in attempts["appAttempts"]["appAttempt"]] == [
        "FAILED",
        "FAILED",
    ]


def test_second_attempt_runs_in_a_fresh_am_container(yarn):
    # The first attempt exits 1; the second (APPLICATION_ATTEMPT_ID ends in 2) keeps running.
    aid = yarn.submit(
        'case "$APPLICATION_ATTEMPT_ID" in *_000001) exit 1;; *) sleep 30;; esac', max_attempts=3
    )
    wait_until(
        lambda: yarn.app(aid)["attempts"] == 2 and yarn.app(aid)["runningContainers"] == 1,
        what="attempt 2",
    )
    atts = requests.get(f"{yarn.url}/ws/v1/cluster/apps/{aid}/appattempts", timeout=5).json()
    first, second = atts["appAttempts"]["appAttempt"]
    assert first["appAttemptState"] == "FAILED" and "exitCode: 1" in first["diagnosticsInfo"]
    assert (
        second["containerId"].endswith("_02_000001")
        and second["containerId"] != first["containerId"]
    )
    assert yarn.app(aid)["state"] == "ACCEPTED"  # launched but not registered: not RUNNING yet
    requests.put(f"{yarn.url}/ws/v1/cluster/apps/{aid}/state", json={"state": "KILLED"}, timeout=5)


def test_silent_node_becomes_lost_and_its_am_is_retried(yarn):
    aid = yarn.submit("sleep 60", max_attempts=2)
    wait_until(lambda: yarn.app(aid)["runningContainers"] == 1, what="AM running")
    host = yarn.app(aid)["masterNodeId"].split(":")[0]
    yarn.nms[host].kill()  # SIGKILL: no goodbye, heartbeats just stop
    lost = wait_until(lambda: [n for n in yarn.nodes("LOST")], timeout=20, what="node LOST")
    assert lost[0]["nodeHostName"] == host
    metrics = requests.get(f"{yarn.url}/ws/v1/cluster/metrics", timeout=5).json()["clusterMetrics"]
    assert metrics["lostNodes"] == 1 and metrics["activeNodes"] == 1
    wait_until(
        lambda: yarn.app(aid)["attempts"] == 2 and yarn.app(aid)["runningContainers"] == 1,
        what="AM retried",
    )
    app = yarn.app(aid)
    assert app["masterNodeId"].split(":")[0] != host
    requests.put(f"{yarn.url}/ws/v1/cluster/apps/{aid}/state", json={"state": "KILLED"}, timeout=5)


def _remote(r: requests.Response, status: int, exception: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()["RemoteException"]
    assert body["exception"] == exception
    assert body["javaClassName"].endswith(exception)
    return body["message"]


def test_rest_errors_are_hadoop_remote_exceptions(yarn, rm):
    u = yarn.url + "/ws/v1/cluster"
    msg = _remote(requests.get(u + "/apps/application_1_0099", timeout=5), 404, "NotFoundException")
    # Hadoop 3.3's text, as in the REST docs' own example
    assert msg == "java.lang.Exception: app with id: application_1_0099 not found"
    msg = _remote(requests.get(u + "/apps/bogus", timeout=5), 400, "BadRequestException")
    assert "Invalid ApplicationId prefix: bogus" in msg
    _remote(
        requests.get(u + "/apps", params={"states": "SLEEPING"}, timeout=5),
        400,
        "BadRequestException",
    )
    _remote(requests.get(u + "/apps", params={"limit": "0"}, timeout=5), 400, "BadRequestException")
    _remote(requests.get(u + "/nodes/nosuchhost:1", timeout=5), 404, "NotFoundException")
    _remote(
        requests.get(u + "/nodes", params={"states": "HAPPY"}, timeout=5),
        400,
        "IllegalArgumentException",
    )
    _remote(
        requests.post(
            u + "/apps", data=b"{not json", headers={"Content-Type": "application/json"}, timeout=5
        ),
        400,
        "BadRequestException",
    )
    _remote(
        requests.post(u + "/apps", json={"application-name": "no id"}, timeout=5),
        400,
        "BadRequestException",
    )
    aid = rm.cluster_new_application().data["application-id"]
    bad = {"application-id": aid, "am-container-spec": {"commands": {"command": 42}}}
    _remote(requests.post(u + "/apps", json=bad, timeout=5), 400, "BadRequestException")
    big = {
        "application-id": aid,
        "am-container-spec": {"commands": {"command": "true"}},
        "resource": {"memory": 99999, "vCores": 1},
    }
    assert "maximum allowed allocation" in _remote(
        requests.post(u + "/apps", json=big, timeout=5), 400, "BadRequestException"
    )
    running = yarn.submit("sleep 30")
    msg = _remote(
        requests.put(f"{u}/apps/{running}/state", json={"state": "RUNNING"}, timeout=5),
        400,
        "BadRequestException",
    )
    assert msg == "java.lang.Exception: Only 'KILLED' is allowed as a target state."
    _remote(requests.get(u + "/no/such/thing", timeout=5), 404, "NotFoundException")
    with pytest.raises(APIError):
        rm.cluster_application("application_1_0099")
    # and the RM keeps serving
    assert rm.cluster_information().data["clusterInfo"]["state"] == "STARTED"
    rm.cluster_application_kill(running)


def test_unknown_queue_fails_the_application(yarn):
    aid = yarn.submit("true", queue="nosuchqueue")
    app = yarn.app(aid)
    assert app["state"] == "FAILED"
    assert (
        app["diagnostics"]
        == f"Application {aid} submitted by user dr.who to unknown queue: nosuchqueue"
    )


def test_nodemanager_shutting_down_cleanly_is_shutdown_not_lost(yarn):
    yarn.nms["127.0.0.12"].stop()  # SIGTERM: the NM unregisters on its way out
    node = wait_until(lambda: yarn.nodes("SHUTDOWN"), timeout=10, what="node SHUTDOWN")
    assert node[0]["nodeHostName"] == "127.0.0.12"
    metrics = requests.get(f"{yarn.url}/ws/v1/cluster/metrics", timeout=5).json()["clusterMetrics"]
    assert (metrics["shutdownNodes"], metrics["lostNodes"], metrics["activeNodes"]) == (1, 0, 1)
    assert metrics["totalMB"] == 1024


def test_restarted_resourcemanager_recovers_its_applications(yarn_factory, tmp_path):
    y = yarn_factory(
        rm_conf={
            "yarn.resourcemanager.recovery.enabled": "true",
            "yarn.resourcemanager.fs.state-store.uri": f"file://{tmp_path}/rmstore",
        }
    )
    y.start_rm()
    y.start_nm("127.0.0.11")
    y.wait_nodes(1)
    done = y.submit("exit 7", max_attempts=1, name="done-before")
    y.wait_app(done)
    running = y.submit("sleep 60", max_attempts=1, name="running")
    wait_until(lambda: y.app(running)["runningContainers"] == 1, what="AM running")
    # what a client changes after the submission is kept too
    u = f"{y.url}/ws/v1/cluster/apps/{running}"
    requests.put(f"{u}/priority", json={"priority": 4}, timeout=5).raise_for_status()
    expiry = time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime(time.time() + 3600))
    timeout = {"timeout": {"type": "LIFETIME", "expiryTime": expiry}}
    requests.put(f"{u}/timeout", json=timeout, timeout=5).raise_for_status()
    y.rm.kill()  # kill -9: nothing written at shutdown counts
    y.start_rm()
    y.wait_nodes(1)  # the NM resynced: its old containers are killed, it registered again
    old = y.app(done)
    assert (old["state"], old["name"]) == ("FAILED", "done-before") and "exitCode: 7" in old[
        "diagnostics"
    ]
    again = wait_until(
        lambda: (a := y.app(running))["runningContainers"] == 1 and a, what="new attempt running"
    )
    assert again["attempts"] == 2 and again["state"] in ("ACCEPTED", "RUNNING")
    assert again["priority"] == 4
    kept = again["timeouts"]["timeout"][0]
    assert kept["expiryTime"] != "UNLIMITED" and kept["remainingTimeInSeconds"] > 3000
    attempts = requests.get(f"{y.url}/ws/v1/cluster/apps/{running}/appattempts", timeout=5).json()
    first = attempts["appAttempts"]["appAttempt"][0]
    assert first["appAttemptState"] == "FAILED" and "restart" in first["diagnosticsInfo"]
    # new applications get ids of the new RM (another cluster timestamp): no clash
    new = requests.post(y.url + "/ws/v1/cluster/apps/new-application", timeout=5).json()[
        "application-id"
    ]
    assert new not in (done, running)


def test_nested_queues_in_the_scheduler_api(yarn_factory):
    y = yarn_factory(
        capacity={
            "yarn.scheduler.capacity.root.queues": "eng,ops",
            "yarn.scheduler.capacity.root.eng.capacity": "80",
            "yarn.scheduler.capacity.root.ops.capacity": "20",
            "yarn.scheduler.capacity.root.eng.queues": "dev,prod",
            "yarn.scheduler.capacity.root.eng.dev.capacity": "25",
            "yarn.scheduler.capacity.root.eng.prod.capacity": "75",
        }
    )
    y.start_rm()
    rm = ResourceManager(service_endpoints=[y.url], timeout=10)
    top = rm.cluster_scheduler().data["scheduler"]["schedulerInfo"]["queues"]["queue"]
    assert [(q["queuePath"], q["capacity"]) for q in top] == [
        ("root.eng", 80.0),
        ("root.ops", 20.0),
    ]
    eng = top[0]["queues"]["queue"]
    assert [(q["queueName"], q["capacity"], q["absoluteCapacity"]) for q in eng] == [
        ("dev", 25.0, 20.0),
        ("prod", 75.0, 60.0),
    ]
    assert eng[0]["type"] == "capacitySchedulerLeafQueueInfo"
    aid = y.submit("sleep 1", queue="root.eng.prod")
    assert y.app(aid)["queue"] == "prod"
    bad = y.submit("sleep 1", queue="eng")  # a parent queue takes no applications
    assert y.app(bad)["state"] == "FAILED" and "unknown queue: eng" in y.app(bad)["diagnostics"]
