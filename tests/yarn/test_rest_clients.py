"""The RM and NM REST calls a yarn-api-client user makes beyond the basics, against one
cluster with a running application: attempts and their containers, the apps filters and
their refusals, application statistics, moving an application between queues, its
priority and lifetime, the resources Hadoop refuses without their machinery, and the
NodeManager's filters, each answered as Hadoop 3's RM and NM answer them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import requests
from yarn_api_client.errors import APIError
from yarn_api_client.node_manager import NodeManager
from yarn_api_client.resource_manager import ResourceManager

from .cluster import YarnCluster, wait_until

# Hadoop 3.3's text for a web-app exception made from a String (see the RM REST docs)
J = "java.lang.Exception: "


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = YarnCluster(
        tmp_path_factory.mktemp("yarn-clients"),
        capacity={
            "yarn.scheduler.capacity.root.queues": "default,other",
            "yarn.scheduler.capacity.root.default.capacity": "50",
            "yarn.scheduler.capacity.root.other.capacity": "50",
            "yarn.scheduler.capacity.root.default.maximum-capacity": "100",
            "yarn.scheduler.capacity.root.other.maximum-capacity": "100",
        },
    )
    try:
        c.start_rm()
        c.start_nm("127.0.0.51")
        c.start_nm("127.0.0.52")
        c.wait_nodes(2)
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def rm(cluster):
    return ResourceManager(service_endpoints=[cluster.url], timeout=10)


@pytest.fixture
def running(cluster, rm):
    """A fresh application whose AM container runs; killed afterwards."""
    aid = cluster.submit("sleep 120", name="sleeper", max_attempts=1)
    wait_until(lambda: cluster.app(aid)["runningContainers"] == 1, what="AM running")
    yield aid
    requests.put(f"{cluster.url}/ws/v1/cluster/apps/{aid}/state", json={"state": "KILLED"})


def remote(r: requests.Response, status: int, exception: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()["RemoteException"]
    assert body["exception"] == exception
    return body["message"]


def test_an_attempt_and_its_containers(cluster, rm, running):
    attempt = rm.cluster_application_attempts(running).data["appAttempts"]["appAttempt"][0]
    att_id, am_id = attempt["appAttemptId"], attempt["containerId"]
    assert (attempt["blacklistedNodes"], attempt["nodesBlacklistedBySystem"]) == ("", "")
    info = rm.cluster_application_attempt_info(running, att_id).data["appAttempt"]
    assert info["appAttemptId"] == att_id and info["amContainerId"] == am_id
    # its AM container is allocated: launched by now, or about to be
    assert info["appAttemptState"] in ("ALLOCATED", "LAUNCHED", "RUNNING")
    assert info["finishedTime"] == 0
    listed = rm.cluster_application_attempt_containers(running, att_id).data
    (c,) = listed["containers"]["container"]
    assert (c["containerId"], c["allocatedMB"], c["containerState"]) == (am_id, 128, "RUNNING")
    assert c["assignedNodeId"] == cluster.app(running)["masterNodeId"]
    one = rm.cluster_application_attempt_container_info(running, att_id, am_id).data
    assert one["container"]["containerId"] == am_id

    base = f"{cluster.url}/ws/v1/cluster/apps/{running}/appattempts"
    msg = remote(requests.get(f"{base}/1", timeout=5), 400, "IllegalArgumentException")
    assert msg == "Invalid AppAttemptId prefix: 1"
    other = att_id.replace(running.rsplit("_", 1)[1] + "_", "9999_")
    msg = remote(requests.get(f"{base}/{other}", timeout=5), 404, "NotFoundException")
    assert msg == f"{J}appId and appAttemptId don't match"
    second = att_id[:-1] + "2"
    msg = remote(requests.get(f"{base}/{second}", timeout=5), 404, "NotFoundException")
    assert msg == (
        "org.apache.hadoop.yarn.exceptions.ApplicationAttemptNotFoundException: "
        f"ApplicationAttempt with id '{second}' doesn't exist in RM."
    )
    gone = am_id[:-1] + "9"
    msg = remote(
        requests.get(f"{base}/{att_id}/containers/{gone}", timeout=5), 404, "NotFoundException"
    )
    assert msg == (
        "org.apache.hadoop.yarn.exceptions.ContainerNotFoundException: "
        f"Container with id '{gone}' doesn't exist in RM."
    )


def test_apps_filters_and_their_refusals(cluster, rm, running):
    assert [
        a["id"] for a in rm.cluster_applications(states=["RUNNING", "ACCEPTED"]).data["apps"]["app"]
    ] == [running]
    # an unfinished application's finish time is 0: outside any finishedTimeBegin > 0
    assert rm.cluster_applications(finished_time_begin=1, states=["ACCEPTED"]).data == {
        "apps": None
    }
    assert rm.cluster_applications(application_types=["yarn"], states=["ACCEPTED", "RUNNING"]).data[
        "apps"
    ]
    app = rm.cluster_application(running).data["app"]
    assert app["timeouts"]["timeout"][0]["expiryTime"] == "UNLIMITED"
    assert app["resourceInfo"]["resourceUsagesByPartition"][0]["used"]["memory"] == 128
    slim = rm.cluster_applications(
        states=["ACCEPTED", "RUNNING"], de_selects=["timeouts", "resourceInfo"]
    )
    assert not {"timeouts", "resourceInfo"} & set(slim.data["apps"]["app"][0])
    u = f"{cluster.url}/ws/v1/cluster/apps"
    cases = [
        (
            {"deSelects": "nothing"},
            "Invalid deSelects string nothing specified. It should be one of [resourceRequests, "
            "timeouts, appNodeLabelExpression, amNodeLabelExpression, resourceInfo]",
        ),
        ({"limit": "x"}, "limit value must be a number!"),
        ({"limit": "0"}, "limit value must be greater then 0"),
        ({"startedTimeBegin": str(2**63)}, "startedTimeBegin value must be a number!"),
        (
            {"startedTimeBegin": "5", "startedTimeEnd": "4"},
            "startedTimeEnd must be greater than startTimeBegin",
        ),
        ({"finishedTimeBegin": "-1"}, "finishTimeBegin must be greater than 0"),
        ({"queue": "nosuch"}, "Unknown queue: nosuch"),
        (
            {"states": "SLEEPING"},
            "Invalid application-state SLEEPING specified. It should be one of "
            "[NEW, NEW_SAVING, SUBMITTED, ACCEPTED, RUNNING, FINISHED, FAILED, KILLED]",
        ),
    ]
    for params, text in cases:
        assert (
            remote(requests.get(u, params=params, timeout=5), 400, "BadRequestException")
            == J + text
        )
    msg = remote(
        requests.get(u, params={"finalStatus": "succeeded"}, timeout=5),
        400,
        "IllegalArgumentException",
    )
    assert msg.endswith("FinalApplicationStatus.succeeded")
    # ... checked against the applications the other filters leave: with none, no refusal
    r = requests.get(u, params={"finalStatus": "succeeded", "user": "nobody"}, timeout=5)
    assert r.json() == {"apps": None}


def test_application_statistics_count_one_type_and_the_asked_states(cluster, rm, running):
    stats = rm.cluster_application_statistics(
        states=["ACCEPTED", "RUNNING"], application_types=["YARN"]
    )
    items = stats.data["appStatInfo"]["statItem"]
    assert {i["state"] for i in items} == {"ACCEPTED", "RUNNING"}
    assert all(i["type"] == "yarn" for i in items) and sum(i["count"] for i in items) >= 1
    r = requests.get(
        f"{cluster.url}/ws/v1/cluster/appstatistics",
        params={"applicationTypes": "YARN,MAPREDUCE"},
        timeout=5,
    )
    assert remote(r, 400, "BadRequestException") == J + (
        "# of applicationTypes = 2, we temporarily support at most one applicationType"
    )


def test_queue_partitions_as_yarn_api_client_reads_them(cluster, rm, running):
    """cluster_queue_partition / cluster_scheduler_queue_availability (what Jupyter
    Enterprise Gateway asks before it starts a kernel) read Hadoop 3's per-partition
    capacities; racklab has only the default partition, ""."""
    wait_until(lambda: _queue_used(rm, "default") == 128, what="the AM's container counted")
    queue = rm.cluster_scheduler_queue("default")
    part = rm.cluster_queue_partition(queue, "")
    assert (part["absoluteCapacity"], part["absoluteUsedCapacity"]) == (50.0, 6.25)
    assert part["effectiveMinResource"] == {"memory": 1024, "vCores": 4}
    assert rm.cluster_scheduler_queue_availability(part, 50) is True
    assert rm.cluster_scheduler_queue_availability(part, 5) is False
    (usage,) = queue["resources"]["resourceUsagesByPartition"]
    assert (usage["used"]["memory"], usage["amUsed"]["memory"]) == (128, 128)
    assert rm.cluster_queue_partition(queue, "gpu") is None


def _queue_used(rm: ResourceManager, name: str) -> int:
    return rm.cluster_scheduler_queue(name)["resourcesUsed"]["memory"]


def test_move_between_queues_and_change_priority(cluster, rm, running):
    assert rm.cluster_change_application_queue(running, "other").data == {"queue": "other"}
    assert rm.cluster_get_application_queue(running).data == {"queue": "other"}
    assert rm.cluster_application(running).data["app"]["queue"] == "other"
    assert (_queue_used(rm, "other"), _queue_used(rm, "default")) == (128, 0)
    assert rm.cluster_change_application_priority(running, 7).data == {"priority": 7}
    assert rm.cluster_get_application_priority(running).data == {"priority": 7}

    u = f"{cluster.url}/ws/v1/cluster/apps/{running}"
    # their XML has the root element their JSON lacks
    xml = {"Accept": "application/xml"}
    for path, want in (
        ("queue", "<appqueue><queue>other</queue></appqueue>"),
        ("priority", "<applicationpriority><priority>7</priority></applicationpriority>"),
        ("state", "<appstate><state>"),
    ):
        assert want in requests.get(f"{u}/{path}", headers=xml, timeout=5).text
    # Hadoop lets the scheduler's YarnException escape: 500, UndeclaredThrowableException
    r = requests.put(f"{u}/queue", json={"queue": "nosuch"}, timeout=5)
    assert (
        remote(r, 500, "UndeclaredThrowableException")
        == "The specified Queue: nosuch doesn't exist"
    )
    r = requests.put(f"{u}/queue", json={"queue": "root"}, timeout=5)
    assert (
        remote(r, 500, "UndeclaredThrowableException")
        == "The specified Queue: root is not a Leaf Queue."
    )
    for bad in ("high", 2**31, 1.5):
        r = requests.put(f"{u}/priority", json={"priority": bad}, timeout=5)
        remote(r, 400, "BadRequestException")

    rm.cluster_application_kill(running)
    r = requests.put(f"{u}/queue", json={"queue": "default"}, timeout=5)
    assert (r.status_code, r.text) == (400, "App in KILLED state cannot be moved.")
    assert rm.cluster_change_application_priority(running, 1).data == {"priority": 7}
    wait_until(lambda: _queue_used(rm, "other") == 0, what="the moved app's resources freed")
    assert rm.cluster_information().data["clusterInfo"]["state"] == "STARTED"


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}" + dt.strftime("%z")


def test_lifetime_timeout_kills_the_application(cluster, rm, running):
    assert rm.cluster_application_timeouts(running).data == {
        "timeouts": {
            "timeout": [
                {"type": "LIFETIME", "expiryTime": "UNLIMITED", "remainingTimeInSeconds": -1}
            ]
        }
    }
    u = f"{cluster.url}/ws/v1/cluster/apps/{running}"
    msg = remote(requests.get(f"{u}/timeouts/FOREVER", timeout=5), 400, "BadRequestException")
    assert msg == f"{J}Invalid application-state FOREVER specified. It should be one of [LIFETIME]"
    r = requests.put(
        f"{u}/timeout", json={"timeout": {"type": "LIFETIME", "expiryTime": "tomorrow"}}, timeout=5
    )
    assert (r.status_code, r.text) == (
        400,
        "Expire time is not in ISO8601 format. ISO8601 supported format is yyyy-MM-dd'T'HH:mm:ss.SSSZ",
    )
    r = requests.put(
        f"{u}/timeout", json={"timeout": {"expiryTime": "2030-01-01T00:00:00.000+0000"}}, timeout=5
    )
    assert (r.status_code, r.text) == (400, "Timeout type or ExpiryTime is null.")
    past = _iso(datetime.now(UTC) - timedelta(hours=1))
    r = requests.put(
        f"{u}/timeout", json={"timeout": {"type": "LIFETIME", "expiryTime": past}}, timeout=5
    )
    assert remote(r, 500, "UndeclaredThrowableException").startswith(
        "Expire time is less than current time"
    )

    # far enough ahead that a loaded machine still sends it before it passes
    soon = _iso(datetime.now(UTC) + timedelta(seconds=5))
    got = rm.cluster_update_application_timeout(running, "LIFETIME", soon).data["timeout"]
    assert got["type"] == "LIFETIME" and 0 <= got["remainingTimeInSeconds"] <= 5
    assert (
        rm.cluster_application_timeout(running, "LIFETIME").data["timeout"]["expiryTime"]
        != "UNLIMITED"
    )
    app = cluster.wait_app(running, timeout=30)
    assert (app["state"], app["finalStatus"]) == ("KILLED", "KILLED")
    assert (
        app["diagnostics"]
        == "Application is killed by ResourceManager as it has exceeded the lifetime period."
    )


def test_resources_hadoop_refuses_without_their_machinery(cluster, rm):
    with pytest.raises(APIError, match="status: 400.*not an instance of MutableConfScheduler"):
        rm.cluster_scheduler_conf_mutation()
    with pytest.raises(APIError, match="status: 403.*Kerberos authenticated channel"):
        rm.cluster_new_delegation_token("me")
    with pytest.raises(APIError, match="status: 400.*Reservation is not enabled"):
        rm.cluster_reservations(queue="default")
    with pytest.raises(APIError, match="status: 500.*YarnRuntimeException"):
        rm.cluster_new_reservation()
    assert rm.cluster_metrics().data["clusterMetrics"]["activeNodes"] == 2


def test_nodemanager_filters_and_ids(cluster, running):
    addr = cluster.app(running)["amHostHttpAddress"]
    nm = NodeManager(service_endpoint=f"http://{addr}", timeout=10)
    info = nm.node_information().data["nodeInfo"]
    assert info["nodeHealthy"] is True and info["nmStartupTime"] > 0
    assert [a["id"] for a in nm.node_applications(state="RUNNING").data["apps"]["app"]] == [running]
    assert nm.node_applications(user="nobody").data == {"apps": None}
    assert nm.node_application(running).data["app"]["containerids"]
    u = f"http://{addr}/ws/v1/node"
    msg = remote(
        requests.get(f"{u}/apps", params={"user": ""}, timeout=5), 400, "BadRequestException"
    )
    assert msg == f"{J}Error: You must specify a non-empty string for the user"
    remote(
        requests.get(f"{u}/apps", params={"state": "SLEEPING"}, timeout=5),
        400,
        "IllegalArgumentException",
    )
    remote(requests.get(f"{u}/apps/bogus", timeout=5), 400, "BadRequestException")
    for call in (nm.auxiliary_services, lambda: nm.auxiliary_services_update({"services": []})):
        with pytest.raises(
            APIError, match="status: 400.*Auxiliary services manifest is not enabled"
        ):
            call()
    msg = remote(requests.get(f"{u}/containers/bogus", timeout=5), 400, "BadRequestException")
    assert msg == f"{J}invalid container id, bogus"


def test_a_client_configured_by_hadoop_conf_dir_alone(cluster):
    """ResourceManager() with no endpoint reads the RM's address, and
    cluster_node_container_memory the NodeManagers' memory, from $HADOOP_CONF_DIR."""
    code = (
        "from yarn_api_client import ResourceManager\n"
        "rm = ResourceManager()\n"
        "print(rm.cluster_node_container_memory(), rm.cluster_metrics().data['clusterMetrics']['totalMB'])\n"
    )
    env = {**os.environ, "HADOOP_CONF_DIR": str(cluster.root / "rm")}
    env.pop("YARN_CONF_DIR", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1024", "2048"]


def test_signal_a_container(cluster, rm):
    """POST containers/{id}/signal/{command}: the NodeManager sends the container's
    process group SIGQUIT for a thread dump (the AM here traps it), SIGKILL to force it."""
    aid = cluster.submit(
        "trap 'echo dumped' QUIT; echo ready; while true; do sleep 0.1; done",
        name="dumper",
        max_attempts=1,
    )
    app = wait_until(lambda: (a := cluster.app(aid))["runningContainers"] == 1 and a, what="AM")
    cid = rm.cluster_application_attempts(aid).data["appAttempts"]["appAttempt"][0]["containerId"]
    log = f"http://{app['amHostHttpAddress']}/ws/v1/node/containerlogs/{cid}/stdout"
    # signalled before its trap is set, the shell would quit: wait until it says ready
    wait_until(lambda: "ready" in requests.get(log, timeout=5).text, what="the AM's trap")
    assert rm.cluster_container_signal(cid, "OUTPUT_THREAD_DUMP").data == {}
    wait_until(lambda: "dumped" in requests.get(log, timeout=5).text, what="the thread dump")

    u = f"{cluster.url}/ws/v1/cluster/containers"
    r = requests.post(f"{u}/{cid}/signal/hup", timeout=5)
    assert (r.status_code, r.text) == (
        400,
        "Invalid command: HUP, valid commands are: "
        "[OUTPUT_THREAD_DUMP, GRACEFUL_SHUTDOWN, FORCEFUL_SHUTDOWN]",
    )
    r = requests.post(f"{u}/bogus/signal/OUTPUT_THREAD_DUMP", timeout=5)
    assert (r.status_code, r.text) == (500, "Invalid ContainerId prefix: bogus")
    gone = cid[:-1] + "9"
    r = requests.post(f"{u}/{gone}/signal/OUTPUT_THREAD_DUMP", timeout=5)
    assert (r.status_code, r.text) == (500, f"Trying to signal an absent container {gone}")

    rm.cluster_container_signal(cid, "FORCEFUL_SHUTDOWN")
    ended = cluster.wait_app(aid, timeout=30)
    assert ended["state"] == "FAILED" and "exitCode: 137" in ended["diagnostics"]


def test_a_nodes_resource_and_node_labels(cluster, rm):
    node = rm.cluster_nodes().data["nodes"]["node"][0]["id"]
    bigger = {"resource": {"memory": 2048, "vCores": 8}, "overCommitTimeout": -1}
    try:
        got = rm.cluster_node_update_resource(node, bigger).data
        assert got == {"resourceInfo": {"memory": 2048, "vCores": 8}}
        assert rm.cluster_node(node).data["node"]["totalResource"] == bigger["resource"]
        assert rm.cluster_metrics().data["clusterMetrics"]["totalMB"] == 3072
    finally:
        rm.cluster_node_update_resource(node, {"resource": {"memory": 1024, "vCores": 4}})
    assert rm.cluster_metrics().data["clusterMetrics"]["totalMB"] == 2048
    u = f"{cluster.url}/ws/v1/cluster"
    r = requests.post(f"{u}/nodes/nosuch:1/resource", json=bigger, timeout=5)
    assert remote(r, 404, "NotFoundException") == f"{J}nodeId, nosuch:1, is not found"
    r = requests.post(f"{u}/nodes/{node}/resource", json={"resource": "big"}, timeout=5)
    remote(r, 400, "BadRequestException")
    # node labels are off: empty lists, and changing them is refused
    assert requests.get(f"{u}/get-node-labels", timeout=5).json() == {"nodeLabelsInfo": None}
    assert requests.get(f"{u}/nodes/{node}/get-labels", timeout=5).json() == {
        "nodeLabelsInfo": None
    }
    r = requests.post(f"{u}/add-node-labels", json={"nodeLabelInfo": [{"name": "gpu"}]}, timeout=5)
    assert remote(r, 400, "BadRequestException").endswith("Please check yarn.node-labels.enabled")
