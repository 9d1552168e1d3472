"""The `lab zk` shell against racklab's server."""

from __future__ import annotations

import io
import subprocess
import sys

from lab.services.zookeeper.shell import run_command


def run(zk, line: str) -> tuple[int, str]:
    out = io.StringIO()
    rc = run_command(zk, line.split(), out)
    return rc, out.getvalue()


def test_shell_commands(zk):
    assert run(zk, "create /sh hello") == (0, "Created /sh\n")
    rc, text = run(zk, "get -s /sh")
    assert rc == 0 and text.startswith("hello\n") and "dataVersion = 0" in text
    assert run(zk, "set /sh world")[0] == 0
    assert zk.get("/sh")[0] == b"world"
    run(zk, "create -s /sh/q- x")
    assert run(zk, "ls /sh") == (0, "[q-0000000000]\n")
    assert run(zk, "delete /sh") == (1, "Node not empty: /sh\n")
    assert run(zk, "stat /nope") == (1, "Node does not exist: /nope\n")
    assert run(zk, "deleteall /sh")[0] == 0
    assert zk.exists("/sh") is None


def test_shell_one_shot_process(zk_server, zk):
    zk.create("/proc", b"p")
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "lab.services.zookeeper.shell",
            "--server",
            zk_server.hosts,
            "get",
            "/proc",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0 and p.stdout == "p\n"
