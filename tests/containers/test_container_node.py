"""The container node behind the common node interface: commands, files, limits,
lifecycle, describe/attach, and cleanup leaving nothing labelled behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

MiB = 1 << 20


@pytest.fixture
def node(container_backend, lab_name, tmp_path, make_spec):
    spec = make_spec(
        lab_name,
        "n1",
        cpus=0.5,
        memory=96 * MiB,
        pids=64,
        hosts={"n1": "10.99.1.10/24", "n2": "10.99.2.10/24"},
        state_dir=tmp_path / "n1",
    )
    return container_backend.create(spec)


def test_identity_hosts_and_python(node):
    assert node.exec(["hostname"]).check().stdout.strip() == "n1"
    hosts = node.exec(["cat", "/etc/hosts"]).check().stdout
    assert "10.99.1.10\tn1" in hosts and "10.99.2.10\tn2" in hosts
    # the orchestrator's "{python}" placeholder becomes the image's interpreter
    r = node.exec(["{python}", "-c", "import lab, sys; print(sys.executable)"]).check()
    assert r.stdout.strip() == "/usr/bin/python3"


def test_network_is_none_until_the_rack_plugs_it_in(node):
    links = node.exec(["ip", "-o", "link"]).check().stdout.splitlines()
    assert [line.split(":")[1].strip() for line in links] == ["lo"]
    path = node.netns()
    assert os.stat(path).st_ino != os.stat("/proc/self/ns/net").st_ino


def test_exec_env_stdin_exit_code(node):
    r = node.exec(
        ["sh", "-c", 'read x; echo "$x-$GREETING"; exit 3'], input="hi\n", env={"GREETING": "there"}
    )
    assert r.returncode == 3
    assert r.stdout.strip() == "hi-there"


def test_exec_timeout_kills_the_command_inside(node):
    r = node.exec(["sleep", "300"], timeout=1)
    assert r.returncode == 124
    ps = node.exec(["ps", "-eo", "args"]).check().stdout
    assert "sleep 300" not in ps


def test_popen_streams_and_kill_reaches_inside(node):
    proc = node.popen(["sh", "-c", "echo ready; exec sleep 300"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    assert "sleep 300" in node.exec(["ps", "-eo", "args"]).check().stdout
    proc.terminate()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while "sleep 300" in node.exec(["ps", "-eo", "args"]).stdout and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "sleep 300" not in node.exec(["ps", "-eo", "args"]).stdout


def test_files_round_trip_and_data_dir_is_the_state_dir(node, tmp_path):
    node.put_file("/etc/racklab/zk.json", b'{"tickTime": 2000}', mode=0o600)
    assert node.get_file("/etc/racklab/zk.json") == b'{"tickTime": 2000}'
    assert node.exec(["stat", "-c", "%a", "/etc/racklab/zk.json"]).check().stdout.strip() == "600"
    with pytest.raises(FileNotFoundError):
        node.get_file("/etc/racklab/missing")
    node.exec(["sh", "-c", "echo block > /srv/node/blk_1"]).check()
    assert (tmp_path / "n1" / "data" / "blk_1").read_text() == "block\n"


def test_limits_are_dockers_and_visible_in_stats(node, docker_engine):
    host = docker_engine.api.inspect_container(node.container_id)["HostConfig"]
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == 96 * MiB
    assert host["PidsLimit"] == 64
    s = node.stats()
    assert s.memory_max == 96 * MiB
    assert s.pids and s.pids >= 1  # tini (its sleep may still be starting)
    assert s.cpu_usec is not None


def test_pids_limit_is_enforced(node):
    r = node.exec(["sh", "-c", "for i in $(seq 100); do sleep 3 & done; wait"], timeout=60)
    assert "fork" in r.stderr.lower() or "resource temporarily unavailable" in r.stderr.lower()


def test_oom_kill_shows_in_stats_and_status(node):
    assert node.stats().oom_kills == 0
    r = node.exec(["python3", "-c", "b = bytearray(400 * 1024 * 1024); print('not killed')"])
    assert r.returncode == 137  # SIGKILL from the kernel's OOM killer
    assert "not killed" not in r.stdout
    assert node.stats().oom_kills >= 1
    assert node.describe()["oom_kills"] >= 1
    assert node.describe()["running"]  # the node itself survives its command's OOM


def test_pause_resume_kill_start(node):
    node.pause()
    assert node.describe()["paused"]
    node.resume()
    assert node.exec(["true"]).ok
    node.kill(signal.SIGKILL)
    d = node.describe()
    assert not d["running"] and d["exit_code"] == 137
    node.start()
    assert node.exec(["true"]).ok
    node.stop(timeout=2)
    assert not node.describe()["running"]


def test_describe_attach_round_trip(node, container_backend):
    saved = node.describe()
    again = container_backend.attach(node.spec, saved)
    assert again.describe()["container"] == saved["container"]
    assert again.exec(["hostname"]).check().stdout.strip() == "n1"


def test_cleanup_leaves_nothing_labelled(
    container_backend, docker_engine, lab_name, make_spec, labelled
):
    # no state dir: the data dir is a named volume, which cleanup must remove too
    a = container_backend.create(make_spec(lab_name, "a"))
    container_backend.create(make_spec(lab_name, "b", memory=64 * MiB))
    assert a.volume
    left = labelled(docker_engine, lab_name)
    assert len(left["containers"]) == 2 and len(left["volumes"]) == 2
    cgroup = (
        "/sys/fs/cgroup/memory/" + a.cgroup() if os.path.isdir("/sys/fs/cgroup/memory") else None
    )
    removed = container_backend.cleanup(lab_name, lab_name[-6:])
    # two containers and two volumes, and each node's own cgroup where Docker nests
    # containers under cgroups of racklab's (its cgroupfs driver)
    assert len([r for r in removed if not r.startswith("cgroup ")]) == 4, removed
    assert labelled(docker_engine, lab_name) == {"containers": [], "volumes": [], "networks": []}
    if cgroup:
        assert not os.path.exists(cgroup)


def test_services_run_detached_with_a_log(node):
    info = node.start_service(
        "echo", ["sh", "-c", 'echo "up $ROLE"; exec sleep 300'], {"ROLE": "server"}
    )
    assert info["pid"] and info["log"] == "/srv/node/logs/echo.log"
    assert node.service_running("echo", info)
    deadline = time.monotonic() + 10
    while b"up server" not in _log(node) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _log(node) == b"up server\n"
    assert "echo | up server" in node.logs()
    node.stop_service("echo", info, timeout=2)
    assert not node.service_running("echo", info)
    assert "sleep 300" not in node.exec(["ps", "-eo", "args"]).check().stdout


def _log(node) -> bytes:
    try:
        return node.get_file("/srv/node/logs/echo.log")
    except FileNotFoundError:
        return b""


def test_io_limit_reaches_the_data_disk(
    container_backend, lab_name, make_spec, tmp_path, docker_engine
):
    from lab.backends.docker_engine import _block_device

    disk = _block_device(tmp_path)
    if disk is None:
        pytest.skip("the test's directory is on no block device (tmpfs, overlay)")
    node = container_backend.create(
        make_spec(lab_name, "io", io_bps=8 * MiB, state_dir=tmp_path / "io")
    )
    host = docker_engine.api.inspect_container(node.container_id)["HostConfig"]
    assert host["BlkioDeviceReadBps"] == [{"Path": disk, "Rate": 8 * MiB}]
    assert host["BlkioDeviceWriteBps"] == [{"Path": disk, "Rate": 8 * MiB}]


def test_stop_gives_services_their_sigterm(node):
    # a service that writes a line when it gets SIGTERM, as servers flush on shutdown
    script = (
        "import signal, sys, time\n"
        "def bye(*_):\n    open('/srv/node/bye', 'w').write('flushed'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\nopen('/srv/node/up', 'w').write('1')\n"
        "while True: time.sleep(0.1)\n"
    )
    node.start_service("graceful", ["{python}", "-c", script])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and node.exec(["test", "-e", "/srv/node/up"]).returncode:
        time.sleep(0.1)
    node.stop(timeout=5)
    assert not node.describe()["running"]
    node.start()
    assert node.get_file("/srv/node/bye") == b"flushed"


def test_a_container_removed_behind_the_labs_back_shows_as_missing(node, docker_engine):
    docker_engine.api.remove_container(node.container_id, force=True)
    d = node.describe()
    assert d["status"] == "missing" and not d["running"]
    assert node.stats().pids == 0


def test_recreating_after_a_crash_replaces_the_stale_node(
    container_backend, lab_name, make_spec, labelled, docker_engine
):
    spec = make_spec(lab_name, "again")  # named data volume
    old = container_backend.create(spec)
    old.exec(["sh", "-c", "echo stale > /srv/node/f"]).check()
    # `lab up` crashed before `lab down`: the next create must not clash with or reuse it
    new = container_backend.create(spec)
    assert new.container_id != old.container_id
    assert new.exec(["test", "-e", "/srv/node/f"]).returncode == 1
    assert len(labelled(docker_engine, lab_name)["containers"]) == 1


def test_cleanup_without_an_engine_is_a_no_op(monkeypatch):
    from lab.backends.container import ContainerBackend
    from lab.backends.pod import PodBackend

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert ContainerBackend().cleanup("any", "x") == []
    assert PodBackend().cleanup("any", "x") == []
