"""MapReduce jobs over racklab's HDFS: correctness, locality, failures."""

from __future__ import annotations

import collections
import os
import random
import re
import signal
import time

import pytest
import requests
from yarn_api_client.application_master import ApplicationMaster

from lab.services.hadoop.webclient import WebHdfsClient
from lab.services.yarn.mapreduce import client

from .cluster import make_text, start_stack, wait_until

FAST = {
    "mapreduce.map.memory.mb": 128,
    "mapreduce.reduce.memory.mb": 128,
    "yarn.app.mapreduce.am.scheduler.heartbeat.interval-ms": 100,
}


def run(y, dfs, kind, inputs, output, **kw):
    conf = dict(FAST, **kw.pop("conf", {}))
    app = client.submit_job(y.url, dfs.url, kind, inputs, output, conf=conf, **kw)
    rm_app = client.wait_for_job(y.url, app, timeout=120, interval=0.2)
    return app, rm_app, client.job_report(dfs.url, app)


def test_wordcount_matches_a_local_count_and_reports_locality(stack):
    dfs, y, texts = stack
    app, rm_app, report = run(y, dfs, "wordcount", ["/data/in"], "/out/wc", reduces=3)
    assert (rm_app["state"], rm_app["finalStatus"]) == ("FINISHED", "SUCCEEDED"), rm_app[
        "diagnostics"
    ]
    expected = collections.Counter(w for t in texts.values() for w in t.split())
    out = client.read_output(dfs.url, "/out/wc")
    got = collections.Counter()
    for line in out.splitlines():
        word, n = line.split("\t")
        assert word not in got  # each word in exactly one partition
        got[word] = int(n)
    assert got == expected
    fs = WebHdfsClient(dfs.url, user="root")
    names = sorted(s["pathSuffix"] for s in fs.list("/out/wc"))
    assert names == ["_SUCCESS", "part-r-00000", "part-r-00001", "part-r-00002"]
    c = report["counters"]
    print(
        f"\nwordcount: {report['mapsTotal']} maps: {c['DATA_LOCAL_MAPS']} node-local, "
        f"{c['RACK_LOCAL_MAPS']} rack-local, {c['OTHER_LOCAL_MAPS']} off-switch"
    )
    assert report["mapsTotal"] > 4  # several blocks per file: more than one split per file
    assert (
        c["DATA_LOCAL_MAPS"] + c["RACK_LOCAL_MAPS"] + c["OTHER_LOCAL_MAPS"]
        == c["TOTAL_LAUNCHED_MAPS"]
    )
    assert c["TOTAL_LAUNCHED_MAPS"] == report["mapsTotal"]
    # the cluster has room for every map beside its block: delay scheduling finds most of them
    assert c["DATA_LOCAL_MAPS"] >= report["mapsTotal"] // 2
    assert c["MAP_INPUT_RECORDS"] == sum(t.count("\n") for t in texts.values())
    assert c["REDUCE_OUTPUT_RECORDS"] == len(expected)
    # once the app is over, the NodeManagers drop its intermediate data (map outputs)
    caches = [y.base / f"nm-{h}" / "local" / "usercache" / "root" / "appcache" / app for h in y.nms]
    wait_until(lambda: not any(p.exists() for p in caches), timeout=30, what="appcache removed")


def test_grep_counts_matches(stack):
    dfs, y, texts = stack
    app, rm_app, report = run(
        y,
        dfs,
        "grep",
        ["/data/in/part0.txt", "/data/in/part2.txt"],
        "/out/grep",
        conf={"mapreduce.mapper.regex": r"w1[0-4]\d"},
    )
    assert rm_app["finalStatus"] == "SUCCEEDED", rm_app["diagnostics"]
    expected = collections.Counter()
    for p in ("/data/in/part0.txt", "/data/in/part2.txt"):
        expected.update(re.findall(r"w1[0-4]\d", texts[p]))
    got = {
        k: int(v)
        for k, v in (
            line.split("\t") for line in client.read_output(dfs.url, "/out/grep").splitlines()
        )
    }
    assert got == dict(expected) and len(got) == 50


def test_sort_with_sampling_partitioner_is_totally_ordered(stack):
    dfs, y, texts = stack
    app, rm_app, report = run(y, dfs, "sort", ["/data/in"], "/out/sort", reduces=3)
    assert rm_app["finalStatus"] == "SUCCEEDED", rm_app["diagnostics"]
    lines = [line for t in texts.values() for line in t.splitlines()]
    out = client.read_output(dfs.url, "/out/sort")  # part files in order
    assert out.splitlines() == sorted(lines)
    assert len(report["splitPoints"]) == 2  # 3 reducers: 2 cut points from the sample
    fs = WebHdfsClient(dfs.url, user="root")
    sizes = [fs.status(f"/out/sort/part-r-0000{i}")["length"] for i in range(3)]
    assert all(s > 0 for s in sizes)  # the sample spreads keys over every reducer


def test_missing_input_fails_the_job_with_a_diagnostic(stack):
    dfs, y, _ = stack
    with pytest.raises(client.JobError, match="Input path does not exist: /no/such/dir"):
        client.submit_job(y.url, dfs.url, "wordcount", ["/no/such/dir"], "/out/x")
    # submitted anyway (as a REST client could): the AM fails the job and says why
    app = client.submit_job(
        y.url, dfs.url, "wordcount", ["/no/such/dir"], "/out/missing", conf=FAST, check_paths=False
    )
    rm_app = client.wait_for_job(y.url, app, timeout=120, interval=0.2)
    assert (rm_app["state"], rm_app["finalStatus"]) == ("FINISHED", "FAILED")
    assert "Input path does not exist: /no/such/dir" in rm_app["diagnostics"]
    assert requests.get(y.url + "/ws/v1/cluster/info", timeout=5).ok


def test_existing_output_is_refused(stack):
    dfs, y, _ = stack
    WebHdfsClient(dfs.url, user="root").mkdirs("/out/taken")
    with pytest.raises(client.JobError, match="Output directory /out/taken already exists"):
        client.submit_job(y.url, dfs.url, "wordcount", ["/data/in"], "/out/taken")


def test_killing_a_nodemanager_mid_job_still_succeeds(tmp_path):
    # Small NodeManagers (two 192 MB maps at a time each) so the job runs in waves.
    dfs, y = start_stack(tmp_path, nm_memory=640)
    try:
        fs = WebHdfsClient(dfs.url, user="root")
        rnd = random.Random(3)
        texts = {f"/in/f{i}.txt": make_text(rnd, 4000) for i in range(4)}
        for p, t in texts.items():
            fs.write(p, t.encode(), overwrite=True)
        # reducers after the last map: the victim's finished output is then surely still needed
        conf = dict(
            FAST,
            **{"mapreduce.map.memory.mb": 192, "mapreduce.job.reduce.slowstart.completedmaps": 1.0},
        )
        app = client.submit_job(y.url, dfs.url, "wordcount", ["/in"], "/out", reduces=2, conf=conf)
        am_host = wait_until(lambda: y.app(app)["masterNodeId"], what="AM placed").split(":")[0]
        tracking = wait_until(
            lambda: y.app(app)["state"] == "RUNNING" and y.app(app)["trackingUrl"],
            what="AM running",
        )
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            job = requests.get(tracking, timeout=5).json()["job"]
            # Reducers start only when every map is done: killing while some maps are still
            # to run guarantees that finished output on the victim is still needed.
            if 1 <= job["mapsCompleted"] < job["mapsTotal"]:
                # a node (not the AM's) that holds finished map output
                for t in job["tasks"]:
                    if t["state"] == "SUCCEEDED" and t["id"].count("_m_"):
                        host = next(a["host"] for a in t["attempts"] if a["state"] == "SUCCEEDED")
                        if host != am_host:
                            victim = host
                            break
            if victim is None:
                time.sleep(0.05)
        assert victim, "no map finished on a non-AM node in time"
        y.nms[victim].kill()
        rm_app = client.wait_for_job(y.url, app, timeout=120, interval=0.2)
        assert (rm_app["state"], rm_app["finalStatus"]) == ("FINISHED", "SUCCEEDED"), rm_app[
            "diagnostics"
        ]
        report = client.job_report(dfs.url, app)
        print("\nevents after killing the NodeManager on", victim, *report["events"], sep="\n  ")
        assert report["counters"]["MAPS_RERUN_FOR_LOST_OUTPUT"] >= 1
        expected = collections.Counter(w for t in texts.values() for w in t.split())
        got = collections.Counter(
            {
                k: int(v)
                for k, v in (
                    ln.split("\t") for ln in client.read_output(dfs.url, "/out").splitlines()
                )
            }
        )
        assert got == expected
        assert [n["nodeHostName"] for n in y.nodes("LOST")] == [victim]
    finally:
        y.stop()
        dfs.stop()


def test_failed_application_master_is_restarted_and_the_job_succeeds(stack):
    dfs, y, texts = stack
    app = client.submit_job(
        y.url, dfs.url, "wordcount", ["/data/in"], "/out/am-restart", reduces=2, conf=FAST
    )
    ts, seq = app.split("_")[1:]
    am_container = f"container_{ts}_{seq}_01_000001"
    host = wait_until(
        lambda: y.app(app)["state"] == "RUNNING" and y.app(app)["masterNodeId"], what="AM running"
    ).split(":")[0]
    base = y.leftover_cgroups(host)[
        0
    ]  # the NM's hierarchy in one controller (v1) or the unified tree
    pids = (base / am_container / "cgroup.procs").read_text().split()
    assert pids
    for pid in pids:
        os.kill(int(pid), signal.SIGKILL)  # the AM dies as a crashed JVM would
    rm_app = client.wait_for_job(y.url, app, timeout=120, interval=0.2)
    assert (rm_app["state"], rm_app["finalStatus"]) == ("FINISHED", "SUCCEEDED"), rm_app[
        "diagnostics"
    ]
    assert rm_app["attempts"] == 2
    attempts = requests.get(f"{y.url}/ws/v1/cluster/apps/{app}/appattempts", timeout=5).json()[
        "appAttempts"
    ]["appAttempt"]
    assert (
        attempts[0]["appAttemptState"] == "FAILED"
        and "exitCode: 137" in attempts[0]["diagnosticsInfo"]
    )
    expected = collections.Counter(w for t in texts.values() for w in t.split())
    got = {
        k: int(v)
        for k, v in (
            ln.split("\t") for ln in client.read_output(dfs.url, "/out/am-restart").splitlines()
        )
    }
    assert got == expected
    assert "_temporary" not in {
        s["pathSuffix"] for s in WebHdfsClient(dfs.url, user="root").list("/out/am-restart")
    }


def test_map_over_its_memory_is_killed_and_the_job_fails_after_its_attempts(stack):
    dfs, y, _ = stack
    # One 12 MB block of short lines: the sort map holds them all, far past a 64 MB container.
    data = "".join(f"{i % 9973}\n" for i in range(2_500_000)).encode()
    WebHdfsClient(dfs.url, user="root").write(
        "/data/big/lines.txt", data, blocksize=32 << 20, overwrite=True
    )
    conf = dict(
        FAST,
        **{
            "mapreduce.map.memory.mb": 64,
            "mapreduce.map.maxattempts": 3,
            # one failure is enough to keep the job off a node (Hadoop's default: 3)
            "mapreduce.job.maxtaskfailures.per.tracker": 1,
            "yarn.app.mapreduce.am.job.node-blacklisting.ignore-threshold-node-percent": 100,
        },
    )
    app, rm_app, report = run(y, dfs, "sort", ["/data/big"], "/out/oom", conf=conf)
    assert (rm_app["state"], rm_app["finalStatus"]) == ("FINISHED", "FAILED")
    diag = rm_app["diagnostics"]
    assert "Task failed task_" in diag and "failedMaps:1" in diag
    assert "beyond the 'PHYSICAL' memory limit" in diag and "-104" in diag
    attempts = report["tasks"][0]["attempts"]
    assert [a["state"] for a in attempts] == ["FAILED"] * 3  # retried as configured, then given up
    assert len({a["host"] for a in attempts}) == 3  # each retry ran elsewhere
    assert report["counters"]["NUM_FAILED_MAPS"] == 3


def test_bad_job_configuration_is_refused(stack):
    dfs, y, _ = stack
    with pytest.raises(client.JobError, match="invalid job configuration"):
        client.submit_job(
            y.url,
            dfs.url,
            "grep",
            ["/data/in"],
            "/out/badre",
            conf={"mapreduce.mapper.regex": "(unclosed"},
        )
    # through the REST API anyway: the AM fails the job with the reason, and does not crash
    app = client.submit_job(
        y.url,
        dfs.url,
        "wordcount",
        ["/data/in"],
        "/out/badre",
        conf=dict(FAST, **{"mapreduce.job.kind": "grep"}),
        check_paths=False,
    )
    rm_app = client.wait_for_job(y.url, app, timeout=120, interval=0.2)
    assert (rm_app["finalStatus"], rm_app["attempts"]) == ("FAILED", 1)
    assert "invalid job configuration: grep needs a pattern" in rm_app["diagnostics"]


def test_bytes_that_are_not_utf8_survive_the_job(stack):
    dfs, y, _ = stack
    raw = b"b\xff\xfe line\nplain\nnaive \xc3\xa9\na\x80\n"
    WebHdfsClient(dfs.url, user="root").write("/data/bin/x.txt", raw, overwrite=True)
    app, rm_app, _ = run(y, dfs, "sort", ["/data/bin"], "/out/bin", reduces=2)
    assert rm_app["finalStatus"] == "SUCCEEDED", rm_app["diagnostics"]
    fs = WebHdfsClient(dfs.url, user="root")
    got = fs.read_bytes("/out/bin/part-r-00000") + fs.read_bytes("/out/bin/part-r-00001")
    lines = raw.decode("utf-8", "surrogateescape").splitlines()
    assert got == "".join(x + "\n" for x in sorted(lines)).encode("utf-8", "surrogateescape")


def test_application_master_web_services_through_the_rm_proxy(stack):
    """yarn-api-client's ApplicationMaster against a running job's AM, through the RM's
    /proxy/: maps that fit no NodeManager (1.5 GB asked, 1 GB nodes) keep the job
    running with its attempts waiting, so every call meets a live AM."""
    dfs, y, _ = stack
    conf = dict(FAST, **{"mapreduce.map.memory.mb": 1536})
    app = client.submit_job(y.url, dfs.url, "wordcount", ["/data/in"], "/out/am-web", conf=conf)
    try:
        wait_until(lambda: "/proxy/" in y.app(app)["trackingUrl"], what="the AM registered")
        am = ApplicationMaster(service_endpoint=y.url, timeout=10)
        job_id = "job_" + app[len("application_") :]
        # the AM registers, then computes its splits: wait for its tasks
        wait_until(
            lambda: am.jobs(app).data["jobs"]["job"][0]["mapsTotal"] > 0, what="the job's tasks"
        )
        assert am.application_information(app).data["info"]["appId"] == app
        (job,) = am.jobs(app).data["jobs"]["job"]
        assert (job["id"], job["state"], job["mapsCompleted"]) == (job_id, "RUNNING", 0)
        assert job["mapsTotal"] > 4 and job["mapsPending"] == job["mapsTotal"]
        assert [a["name"] for a in job["acls"]] == [
            "mapreduce.job.acl-modify-job",
            "mapreduce.job.acl-view-job",
        ]
        assert am.job(app, job_id).data["job"]["reducesTotal"] == 1
        (attempt,) = am.job_attempts(app, job_id).data["jobAttempts"]["jobAttempt"]
        assert attempt["id"] == 1 and attempt["containerId"].endswith("_01_000001")
        groups = am.job_counters(app, job_id).data["jobCounters"]["counterGroup"]
        assert "org.apache.hadoop.mapreduce.JobCounter" in [g["counterGroupName"] for g in groups]
        props = {p["name"]: p["value"] for p in am.job_conf(app, job_id).data["conf"]["property"]}
        assert props["mapreduce.map.memory.mb"] == "1536"
        tasks = am.job_tasks(app, job_id).data["tasks"]["task"]
        task = tasks[0]["id"]
        assert {t["type"] for t in tasks} == {"MAP", "REDUCE"} and tasks[0]["state"] == "SCHEDULED"
        assert am.job_task(app, job_id, task).data["task"]["id"] == task
        assert am.task_counters(app, job_id, task).data["jobTaskCounters"]["id"] == task
        (att,) = am.task_attempts(app, job_id, task).data["taskAttempts"]["taskAttempt"]
        assert (att["state"], att["type"]) == ("STARTING", "MAP")
        assert am.task_attempt(app, job_id, task, att["id"]).data["taskAttempt"]["id"] == att["id"]
        assert (
            am.task_attempt_counters(app, job_id, task, att["id"]).data["jobTaskAttemptCounters"][
                "id"
            ]
            == att["id"]
        )
        state = am.task_attempt_state(app, job_id, task, att["id"]).data
        assert state == {"state": "STARTING"}
        # PUT {"state": "KILLED"}: the attempt ends and the task gets another
        killed = am.task_attempt_state_kill(app, job_id, task, att["id"]).data
        assert killed == {"state": "KILLED"}
        wait_until(
            lambda: (
                len(am.task_attempts(app, job_id, task).data["taskAttempts"]["taskAttempt"]) == 2
            ),
            what="a second attempt",
        )
        # AMWebServices' refusals, passed through the proxy
        base = f"{y.url}/proxy/{app}/ws/v1/mapreduce/jobs"
        r = requests.get(f"{base}/job_1_0001", timeout=5)
        assert r.status_code == 404 and r.json()["RemoteException"]["message"] == (
            "java.lang.Exception: job, job_1_0001, is not found"
        )
        r = requests.get(f"{base}/{job_id}/tasks/bogus", timeout=5)
        assert r.status_code == 404 and "not properly formed" in r.text
        # an escaped NUL or space in the path reaches the AM as written
        for bad in ("%00", "%20"):
            r = requests.get(f"{base}/{job_id}/tasks/{bad}/counters", timeout=5)
            assert r.status_code == 404 and f"{bad} is not properly formed" in r.text, r.text
        r = requests.put(
            f"{base}/{job_id}/tasks/{task}/attempts/{att['id']}/state",
            json={"state": "RUNNING"},
            timeout=5,
        )
        assert r.status_code == 400 and r.json()["RemoteException"]["message"] == (
            "java.lang.Exception: Only 'KILLED' is allowed as a target state."
        )
        # Jersey's answers for other methods: HEAD as GET without a body, the rest 405;
        # a body the AM cannot parse is refused, and the AM goes on serving
        r = requests.head(f"{base}/{job_id}", timeout=5)
        assert r.status_code == 200 and r.text == ""
        for method in ("POST", "DELETE"):
            r = requests.request(method, f"{base}/{job_id}/counters", data=b"{", timeout=5)
            assert r.status_code == 405, (method, r.text)
        r = requests.post(f"{y.url}/proxy/{app}/umbilical/done", data=b"not json", timeout=5)
        assert r.status_code == 400
        assert am.job(app, job_id).data["job"]["state"] == "RUNNING"
        # the proxy's own answers: an unknown application, and one with no tracking URL
        r = requests.get(f"{y.url}/proxy/application_1_0099/ws/v1/mapreduce/info", timeout=5)
        assert r.status_code == 404 and "could not be found in RM" in r.text
    finally:
        requests.put(f"{y.url}/ws/v1/cluster/apps/{app}/state", json={"state": "KILLED"}, timeout=5)
    # a finished application is redirected to its tracking URL: with no history server
    # behind it, the client meets a refused connection, as it would with Hadoop
    r = requests.get(f"{y.url}/proxy/{app}/ws/v1/mapreduce/info", allow_redirects=False, timeout=5)
    assert r.status_code == 302
