"""Apache ZooKeeper's own Java CLI (zkCli.sh from Debian's zookeeper package) against
racklab's server: create, get, set, ls, stat, delete, and a watch firing."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from lab.testing import apache_zookeeper as apache

pytestmark = pytest.mark.skipif(
    not (apache.available() and os.path.exists(apache.ZKCLI)),
    reason="Debian's zookeeper package is not installed",
)


def cli(server, *args, timeout=60) -> str:
    p = subprocess.run(
        [apache.ZKCLI, "-server", server.hosts, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return p.stdout + p.stderr


def stat_fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if " = " in line:
            k, v = line.split(" = ", 1)
            out[k.strip()] = v.strip()
    return out


def test_cli_create_get_set_ls_stat_delete(zk_server, zk):
    assert "Created /cli" in cli(zk_server, "create", "/cli", "hello")
    assert zk.get("/cli")[0] == b"hello"
    out = cli(zk_server, "get", "-s", "/cli")
    assert "hello" in out
    f = stat_fields(out)
    stat = zk.exists("/cli")
    assert int(f["cZxid"], 16) == stat.czxid
    assert f["dataVersion"] == "0" and f["dataLength"] == "5" and f["numChildren"] == "0"
    cli(zk_server, "set", "/cli", "world")
    assert zk.get("/cli") == (b"world", zk.exists("/cli"))
    assert zk.exists("/cli").version == 1
    cli(zk_server, "create", "/cli/kid", "k")
    cli(zk_server, "create", "-e", "-s", "/cli/eph-", "e")
    # zkCli exits without closing its session, so the ephemeral lives until the
    # session times out (30 s asked, capped at 20 * tickTime by the server).
    assert "[eph-0000000001, kid]" in cli(zk_server, "ls", "/cli")
    deadline = time.monotonic() + 15
    while zk.exists("/cli/eph-0000000001") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "[kid]" in cli(zk_server, "ls", "/cli")
    f = stat_fields(cli(zk_server, "stat", "/cli"))
    assert f["numChildren"] == "1" and f["dataVersion"] == "1"
    assert int(f["cversion"]) == zk.exists("/cli").cversion
    out = cli(zk_server, "delete", "/cli")
    assert "Node not empty: /cli" in out
    cli(zk_server, "deleteall", "/cli")
    assert zk.exists("/cli") is None
    assert "Node does not exist: /cli" in cli(zk_server, "get", "/cli")


def test_cli_watch_fires(zk_server, zk):
    zk.create("/watched", b"v0")
    proc = subprocess.Popen(
        [apache.ZKCLI, "-server", zk_server.hosts],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []

    def reader():
        for line in proc.stdout:
            lines.append(line)

    t = threading.Thread(target=reader, daemon=True)
    t.start()

    def wait_for(text, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in lines):
                return True
            time.sleep(0.05)
        return False

    try:
        assert wait_for("SyncConnected"), "".join(lines)
        proc.stdin.write("get -w /watched\n")
        proc.stdin.flush()
        assert wait_for("v0"), "".join(lines)
        zk.set("/watched", b"v1")
        assert wait_for("type:NodeDataChanged path:/watched"), "".join(lines)
        proc.stdin.write("ls -w /watched\n")
        proc.stdin.flush()
        time.sleep(0.5)
        zk.create("/watched/child")
        assert wait_for("type:NodeChildrenChanged path:/watched"), "".join(lines)
        proc.stdin.write("addWatch -m PERSISTENT_RECURSIVE /tree\n")
        proc.stdin.flush()
        time.sleep(0.5)
        zk.create("/tree/a/b", b"", makepath=True)
        assert wait_for("type:NodeCreated path:/tree/a/b"), "".join(lines)
        assert any(
            "type:NodeCreated path:/tree/a" in line and "/tree/a/b" not in line for line in lines
        )
        zk.set("/tree/a/b", b"again")  # persistent: fires again
        assert wait_for("type:NodeDataChanged path:/tree/a/b"), "".join(lines)
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
