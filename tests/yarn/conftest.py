import random

import pytest
import requests

from lab.services.hadoop.webclient import WebHdfsClient

from .cluster import YarnCluster, make_text, start_stack, wait_until


@pytest.fixture
def yarn_factory(tmp_path):
    """Build clusters with custom settings; every one is stopped and its cgroups checked."""
    made: list[YarnCluster] = []

    def make(**kw) -> YarnCluster:
        c = YarnCluster(tmp_path / f"yarn{len(made)}", **kw)
        made.append(c)
        return c

    yield make
    leaks = []
    for c in made:
        if c.rm and c.rm.alive():
            leaks += _leaked_resources(c)
    leftovers = []
    for c in made:
        # NMs stop gracefully first: their own teardown must leave no cgroup behind.
        # (an NM a test SIGKILLed cannot clean up: the finalizer below removes its cgroups)
        for host, nm in c.nms.items():
            if nm.alive():
                nm.stop()
                leftovers += c.leftover_cgroups(host)
        c.stop()
    assert not leftovers, f"NodeManagers left cgroups behind: {leftovers}"
    assert not leaks, f"the RM still holds resources with every application ended: {leaks}"


def _busy_queues(c: YarnCluster) -> list[dict]:
    sched = requests.get(c.url + "/ws/v1/cluster/scheduler", timeout=5).json()["scheduler"]
    info = sched["schedulerInfo"]
    busy, todo = [], list(info["queues"]["queue"]) if "queues" in info else []
    while todo:  # parents carry their children under "queues"
        q = todo.pop()
        todo += q.get("queues", {}).get("queue", [])
        if q["resourcesUsed"]["memory"] or q.get("usedAMResource", {}).get("memory"):
            busy.append(q)
    return busy


def _leaked_resources(c: YarnCluster) -> list[dict]:
    """End what tests left running, then every queue must be back to zero."""
    apps = requests.get(c.url + "/ws/v1/cluster/apps", timeout=5).json()["apps"] or {"app": []}
    for a in apps["app"]:
        if a["state"] not in ("FINISHED", "FAILED", "KILLED"):
            requests.put(
                f"{c.url}/ws/v1/cluster/apps/{a['id']}/state", json={"state": "KILLED"}, timeout=5
            )
    try:
        wait_until(lambda: not _busy_queues(c), timeout=10, what="queues to drain")
        return []
    except AssertionError:
        return _busy_queues(c)


@pytest.fixture
def yarn(yarn_factory):
    """An RM and two NodeManagers (127.0.0.11, 127.0.0.12), 1 GB each."""
    c = yarn_factory()
    c.start_rm()
    c.start_nm("127.0.0.11")
    c.start_nm("127.0.0.12")
    c.wait_nodes(2)
    return c


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("mr")
    dfs, y = start_stack(root)
    fs = WebHdfsClient(dfs.url, user="root")
    rnd = random.Random(7)
    texts = {}
    for i in range(3):
        texts[f"/data/in/part{i}.txt"] = make_text(rnd, 2500 + 700 * i)
    texts["/data/in/sub/extra.txt"] = make_text(rnd, 900)
    for path, text in texts.items():
        fs.write(path, text.encode(), overwrite=True)
    fs.write("/data/in/_ignored", b"hidden files are not input\n", overwrite=True)
    try:
        yield dfs, y, texts
    finally:
        # Every job of the module has ended: the RM must hold no resources for anyone.
        def idle():
            sched = requests.get(y.url + "/ws/v1/cluster/scheduler", timeout=5).json()["scheduler"]
            queues = sched["schedulerInfo"]["queues"]["queue"]
            return all(
                q["resourcesUsed"]["memory"] == 0 and q["usedAMResource"]["memory"] == 0
                for q in queues
            )

        try:
            if any(nm.alive() for nm in y.nms.values()):
                wait_until(idle, timeout=30, what="the cluster to hold no resources")
        finally:
            _teardown_stack(dfs, y)


def _teardown_stack(dfs, y):
    leftovers = []
    try:
        for host, nm in y.nms.items():
            if nm.alive():
                nm.stop()
                leftovers += y.leftover_cgroups(host)
    finally:
        y.stop()
        dfs.stop()
    assert not leftovers, f"NodeManagers left cgroups behind: {leftovers}"
