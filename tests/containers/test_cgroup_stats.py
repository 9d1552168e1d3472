"""Reading a container's cgroup on both hierarchies. This machine runs v1, most users'
hosts run v2 only: the v2 reader is checked on a file tree shaped like the kernel's."""

from __future__ import annotations

import os

from lab.cgroups import Cgroup
from lab.cgroups import pid_paths as cgroup_of


def read_cgroup_stats(paths, root):
    """A container's stats as its node reports them, from a tree laid out at ``root``."""
    return Cgroup(paths.get("memory") or paths[""], root=root, paths=paths).summary()


def test_v2_unified_hierarchy(tmp_path, monkeypatch):
    cg = tmp_path / "system.slice" / "docker-abc.scope"
    cg.mkdir(parents=True)
    (cg / "cpu.stat").write_text("usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n")
    (cg / "memory.current").write_text("4096000\n")
    (cg / "memory.max").write_text("67108864\n")
    (cg / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\n")
    (cg / "pids.current").write_text("7\n")
    (cg / "io.stat").write_text(
        "8:0 rbytes=1000 wbytes=2000 rios=1 wios=2 dbytes=0 dios=0\n254:0 rbytes=10 wbytes=20 rios=1 wios=1\n"
    )
    s = read_cgroup_stats({"": "/system.slice/docker-abc.scope"}, tmp_path)
    assert (s.cpu_usec, s.memory_bytes, s.memory_max, s.oom_kills, s.pids) == (
        123456,
        4096000,
        67108864,
        2,
        7,
    )
    assert (s.io_read_bytes, s.io_write_bytes) == (1010, 2020)
    (cg / "memory.max").write_text("max\n")
    assert read_cgroup_stats({"": "/system.slice/docker-abc.scope"}, tmp_path).memory_max is None


def test_v1_controllers(tmp_path, monkeypatch):
    for ctl, files in {
        "memory": {
            "memory.usage_in_bytes": "2048\n",
            "memory.limit_in_bytes": "9223372036854771712\n",  # v1's "no limit"
            "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        },
        "cpuacct": {"cpuacct.usage": "5000000\n"},
        "pids": {"pids.current": "4\n"},
        "blkio": {
            "blkio.throttle.io_service_bytes": "254:0 Read 100\n254:0 Write 300\n254:0 Total 400\nTotal 400\n"
        },
    }.items():
        d = tmp_path / ctl / "docker" / "abc"
        d.mkdir(parents=True)
        for name, text in files.items():
            (d / name).write_text(text)
    paths = {c: "/docker/abc" for c in ("memory", "cpuacct", "cpu", "pids", "blkio")}
    s = read_cgroup_stats(paths, tmp_path)
    assert (s.cpu_usec, s.memory_bytes, s.memory_max, s.oom_kills, s.pids) == (
        5000,
        2048,
        None,
        3,
        4,
    )
    assert (s.io_read_bytes, s.io_write_bytes) == (100, 300)


def test_cgroup_of_this_process_names_every_controller():
    paths = cgroup_of(os.getpid())
    assert paths  # every Linux process is in some cgroup
    assert all(p.startswith("/") for p in paths.values())
