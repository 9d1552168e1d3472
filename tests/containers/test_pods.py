"""Pods: shared namespaces through the infra container, one container per service,
and a crash restarting that service only."""

from __future__ import annotations

import os
import time

import pytest

from lab.cgroups import pid_paths as cgroup_of

MiB = 1 << 20
LOOP = ["{python}", "-c", "import time\nwhile True: time.sleep(1)"]


@pytest.fixture
def pod(pod_backend, lab_name, make_spec):
    spec = make_spec(lab_name, "p1", kind="pod", memory=128 * MiB, hosts={"p1": "10.99.1.20/24"})
    node = pod_backend.create(spec)
    node.start_service("alpha", LOOP, files={"/etc/racklab/alpha.json": '{"id": 1}'})
    node.start_service("beta", ["sleep", "infinity"], memory=48 * MiB, restart="on-failure")
    return node


def _wait_restarted(pod, name: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        svc = pod.services()[name]
        if svc.restart_count >= 1 and svc.status == "running" and svc.pid:
            return svc
        time.sleep(0.1)
    raise AssertionError(
        f"service {name} was not restarted within {timeout}s: {pod.services()[name]}"
    )


def _ns(pid: int, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def test_services_join_the_infra_namespaces(pod):
    infra = pod.describe()["pid"]
    for svc in pod.services().values():
        for kind in ("net", "ipc", "pid"):
            assert _ns(svc.pid, kind) == _ns(infra, kind), kind
    # one PID namespace: the infra's view lists every service's process
    ps = pod.exec(["ps", "-eo", "args"]).check().stdout
    assert "while True" in ps and "sleep infinity" in ps
    alpha = pod.client.containers.get(pod.services()["alpha"].container_id)
    assert alpha.exec_run(["hostname"]).output.decode().strip() == "p1"
    assert alpha.exec_run(["cat", "/etc/racklab/alpha.json"]).output == b'{"id": 1}'


def test_each_service_has_its_own_limits_inside_the_pods(pod, docker_engine):
    limits = {
        name: docker_engine.api.inspect_container(s.container_id)["HostConfig"]["Memory"]
        for name, s in pod.services().items()
    }
    if pod.pod_cgroup is None:  # Docker's systemd driver: the node's limits are defaults
        assert limits == {"alpha": 128 * MiB, "beta": 48 * MiB}
        return
    # the node's limit caps the pod's cgroup, which holds every container of the pod
    assert limits == {"alpha": 0, "beta": 48 * MiB}
    assert pod.stats().memory_max == 128 * MiB
    assert pod.cgroup() == pod.pod_cgroup
    for svc in pod.services().values():
        paths = cgroup_of(svc.pid)
        assert (paths.get("memory") or paths.get("")).lstrip("/").startswith(pod.pod_cgroup + "/")


def test_the_pods_limit_holds_all_its_services_together(pod):
    if pod.pod_cgroup is None:
        pytest.skip("no pod cgroup under Docker's systemd driver")
    pod.start_service(
        "hog",
        ["{python}", "-c", "import time\nb = bytearray(300 * 1024 * 1024)\ntime.sleep(60)"],
        restart="no",
    )
    deadline = time.monotonic() + 60
    while pod.services()["hog"].status == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    hog = pod.services()["hog"]
    assert hog.oom_killed and hog.exit_code == 137  # no limit of its own: the pod's stopped it
    assert pod.stats().oom_kills >= 1
    assert pod.describe()["services"]["hog"]["oom_killed"]


def _pid_in_pod(host_pid: int) -> int:
    """The process id as the pod's own PID namespace numbers it (last NSpid field)."""
    for line in open(f"/proc/{host_pid}/status"):
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    raise AssertionError("no NSpid line")


def test_killing_one_service_restarts_it_only(pod):
    infra_before = pod.describe()["pid"]
    before = pod.services()
    beta_inner = _pid_in_pod(before["beta"].pid)
    pod.crash_service("alpha")
    alpha = _wait_restarted(pod, "alpha")
    after = pod.services()
    assert alpha.pid != before["alpha"].pid
    assert after["beta"].pid == before["beta"].pid
    assert after["beta"].restart_count == 0
    assert pod.describe()["pid"] == infra_before
    # inside the pod, beta keeps its process id and alpha's new process is listed
    assert _pid_in_pod(after["beta"].pid) == beta_inner
    inner = pod.exec(["ps", "-eo", "pid=,args="]).check().stdout
    assert f"{beta_inner} sleep infinity" in " ".join(inner.split())
    assert f"{_pid_in_pod(alpha.pid)} /usr/bin/python3" in " ".join(inner.split())


def test_oom_in_one_service_restarts_only_that_service(pod):
    beta_before = pod.services()["beta"]
    pod.start_service(
        "hog",
        ["{python}", "-c", "import time\nb = bytearray(200 * 1024 * 1024)\ntime.sleep(60)"],
        memory=32 * MiB,
        restart="on-failure",
        max_retries=1,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        hog = pod.services()["hog"]
        if hog.oom_killed and hog.status != "running":
            break
        time.sleep(0.2)
    assert hog.oom_killed and hog.exit_code == 137
    beta = pod.services()["beta"]
    assert beta.pid == beta_before.pid and beta.restart_count == 0


def test_pod_kill_stops_every_service_and_start_brings_them_back(pod):
    pod.kill()
    d = pod.describe()
    assert not d["running"]
    assert all(s["status"] != "running" for s in d["services"].values())
    pod.start()
    svcs = pod.services()
    assert all(s.status == "running" for s in svcs.values()), svcs
    infra = pod.describe()["pid"]
    assert _ns(svcs["alpha"].pid, "pid") == _ns(infra, "pid")


def test_cleanup_removes_infra_services_volume_and_cgroup(
    pod, pod_backend, lab_name, docker_engine, labelled
):
    from lab import cgroups

    assert len(labelled(docker_engine, lab_name)["containers"]) == 3
    pod_backend.cleanup(lab_name, lab_name[-6:])
    assert labelled(docker_engine, lab_name) == {"containers": [], "volumes": [], "networks": []}
    assert not cgroups.lab_cgroup(lab_name).exists()


def test_orchestrator_service_interface(pod):
    """What lab up uses: put_file before start_service reaches the service, output in
    its log file, service_running/stop_service; a stopped service stays down."""
    pod.put_file("/etc/racklab/gamma.conf", b"port=9\n")
    info = pod.start_service(
        "gamma", ["sh", "-c", "cat /etc/racklab/gamma.conf; exec sleep 300"], {"ROLE": "g"}
    )
    assert info["log"] == "/srv/node/logs/gamma.log" and info["container"]
    deadline = time.monotonic() + 10
    while "port=9" not in pod.service_logs("gamma") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "port=9" in pod.service_logs("gamma")
    assert "gamma | port=9" in pod.logs()
    assert pod.service_running("gamma", info)
    pod.stop_service("gamma", info, timeout=1)
    assert not pod.service_running("gamma", info)
    time.sleep(1)
    assert pod.services()["gamma"].restart_count == 0
