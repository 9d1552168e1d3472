"""NodeManager containers: own cgroup with the granted limits, memory enforcement, logs."""

import requests

from lab.services.yarn.cgroups import detect

from .cluster import wait_until

SHOW_LIMITS = r"""{{PYTHON}} -c '
import pathlib
from lab.services.yarn.cgroups import detect
version, root = detect()
lines = pathlib.Path("/proc/self/cgroup").read_text().splitlines()
if version == "v1":
    mem = next(l.split(":")[2] for l in lines if l.split(":")[1] == "memory")
    cpu = next(l.split(":")[2] for l in lines if "cpu" in l.split(":")[1].split(","))
    print(mem, (root / "memory" / mem.lstrip("/") / "memory.limit_in_bytes").read_text().strip(),
          (root / "cpu" / cpu.lstrip("/") / "cpu.shares").read_text().strip())
else:
    path = next(l.split(":")[2] for l in lines if l.startswith("0::"))
    print(path, (root / path.lstrip("/") / "memory.max").read_text().strip(),
          (root / path.lstrip("/") / "cpu.weight").read_text().strip())
'"""

GROW = r"""{{PYTHON}} -c '
import time
hog = []
for i in range(60):  # up to 600 MB in steps of 10 MB, bounded
    hog.append(bytearray(10 * 1024 * 1024))
    time.sleep(0.02)
print("survived with", len(hog) * 10, "MB")
'"""


def _am_logs(yarn, aid, name="stdout"):
    app = yarn.app(aid)
    base = f"http://{app['amHostHttpAddress']}/ws/v1/node"
    cid = requests.get(f"{base}/apps/{aid}", timeout=5).json()["app"]["containerids"][0]
    return requests.get(f"{base}/containerlogs/{cid}/{name}", timeout=5).text, cid


def test_container_runs_in_its_own_cgroup_with_the_granted_limits(yarn):
    aid = yarn.submit(SHOW_LIMITS, memory=192, max_attempts=1)
    yarn.wait_app(aid)
    out, cid = _am_logs(yarn, aid)
    path, limit, cpu = out.split()
    assert path.endswith("/" + cid)  # one cgroup per container, named after it
    assert int(limit) == 192 * 1024 * 1024
    version, _ = detect()
    assert int(cpu) == (1024 if version == "v1" else 100)  # one vcore's weight


def test_container_over_its_memory_is_killed_with_yarn_diagnostic(yarn):
    aid = yarn.submit(GROW, memory=128, max_attempts=1)
    app = yarn.wait_app(aid)
    assert app["state"] == "FAILED"
    diag = app["diagnostics"]
    assert "is running" in diag and "beyond the 'PHYSICAL' memory limit" in diag, diag
    assert "exitCode: -104" in diag  # ContainerExitStatus.KILLED_EXCEEDED_PMEM
    out, cid = _am_logs(yarn, aid)
    assert "survived" not in out
    node = f"http://{app['amHostHttpAddress']}/ws/v1/node/containers/{cid}"
    info = requests.get(node, timeout=5).json()["container"]
    assert info["state"] == "DONE" and info["exitCode"] == -104
    # the RM has the memory back
    wait_until(
        lambda: (
            requests.get(yarn.url + "/ws/v1/cluster/metrics", timeout=5).json()["clusterMetrics"][
                "allocatedMB"
            ]
            == 0
        )
    )


def test_container_logs_are_kept_and_listed(yarn):
    aid = yarn.submit("echo to-out; echo to-err >&2; exit 0", max_attempts=1)
    wait_until(lambda: "to-out" in _am_logs(yarn, aid)[0], what="stdout")
    err, cid = _am_logs(yarn, aid, "stderr")
    assert err.strip() == "to-err"
    app = yarn.app(aid)
    listing = requests.get(
        f"http://{app['amHostHttpAddress']}/ws/v1/node/containers/{cid}/logs", timeout=5
    ).json()
    assert {f["fileName"] for f in listing[0]["containerLogInfo"]} >= {"stdout", "stderr"}
    r = requests.get(
        f"http://{app['amHostHttpAddress']}/ws/v1/node/containerlogs/{cid}/nosuchfile", timeout=5
    )
    assert r.status_code == 404 and r.json()["RemoteException"]["exception"] == "NotFoundException"


def test_logs_of_finished_apps_go_after_the_retention_time(yarn_factory):
    y = yarn_factory()
    y.start_rm()
    nm = y.start_nm("127.0.0.11", extra={"yarn.nodemanager.log.retain-seconds": "1"})
    y.wait_nodes(1)
    aid = y.submit("echo bye", max_attempts=1)
    app = y.wait_app(aid)
    base = f"http://{app['amHostHttpAddress']}/ws/v1/node/apps/{aid}"
    log_dir = nm.conf_dir / "logs" / aid
    wait_until(
        lambda: requests.get(base, timeout=5).status_code == 404, timeout=20, what="app forgotten"
    )
    assert not log_dir.exists()


def test_without_cgroups_containers_run_in_sessions_and_memory_is_still_enforced(yarn_factory):
    """A node whose cgroupfs cannot be written (Docker mounts it read-only) runs YARN
    containers as Hadoop's DefaultContainerExecutor does: the ContainersMonitor still
    kills a container over its grant with the -104 diagnostic."""
    c = yarn_factory()
    c.start_rm()
    c.start_nm(
        "127.0.0.13",
        extra={"yarn.nodemanager.linux-container-executor.cgroups.mount-path": "/nonexistent"},
    )
    c.wait_nodes(1)
    aid = c.submit(GROW, memory=128, max_attempts=1)
    app = c.wait_app(aid)
    assert app["state"] == "FAILED"
    assert "beyond the 'PHYSICAL' memory limit" in app["diagnostics"], app["diagnostics"]
    assert "exitCode: -104" in app["diagnostics"]
    assert "container cgroups unavailable" in c.nms["127.0.0.13"].log.read_text()
    ok = c.submit("echo fine under $CONTAINER_ID", memory=128, max_attempts=1)
    c.wait_app(ok)  # an AM that never registers ends FAILED, as on YARN; its output is there
    out, cid = _am_logs(c, ok)
    assert out.strip() == f"fine under {cid}"
