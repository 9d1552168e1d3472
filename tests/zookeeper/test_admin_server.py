"""The AdminServer (GET /commands/<name>, JSON) against Debian's Apache 3.8's Jetty
one: the same state on both, then a sample of commands compared by shape (command
and error fields, keys) and by the values that do not depend on timing."""

from __future__ import annotations

import json
import os
import urllib.request

import pytest
from kazoo.client import KazooClient

from lab.services.ports import free_port
from lab.services.zookeeper.minicluster import ThreadedServer
from lab.testing import apache_zookeeper as apache

SERVLET_API = "/usr/share/java/servlet-api.jar"  # Debian's libservlet-api-java
pytestmark = pytest.mark.skipif(
    not apache.available() or not os.path.exists(SERVLET_API),
    reason="Debian's zookeeper and libservlet-api-java packages are not both installed",
)

SAMPLE = (
    "ruok", "srvr", "server_stats", "stat", "conf", "cons", "mntr", "wchs", "wchc", "wchp",
    "dump", "isro", "dirs", "gtmk", "hash", "leader", "nope", "commands_of_nobody",
)  # fmt: skip


def admin_config(port: int) -> dict:
    return {
        "admin.enableServer": "true",
        "admin.serverAddress": "127.0.0.1",
        "admin.serverPort": str(port),
    }


def get(port: int, path: str) -> tuple[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.headers.get("Content-Type") or "", r.read().decode()


def answers(hosts: str, admin_port: int) -> dict:
    zk = KazooClient(hosts=hosts, timeout=5)
    zk.start(10)
    try:
        zk.create("/a", b"xyz")
        zk.create("/a/e", b"", ephemeral=True)
        zk.get("/a", watch=lambda e: None)
        zk.exists("/a/e", watch=lambda e: None)
        me = zk.client_id[0]
        me = me - (1 << 64) if me >> 63 else me
        out = {}
        for name in SAMPLE:
            ctype, text = get(admin_port, f"/commands/{name}")
            assert ctype.startswith("application/json"), (name, ctype)
            # the session id as a key ("123") and as a value (123) both become "ME"
            text = text.replace(f'"{me}"', '"ME"').replace(str(me), '"ME"')
            out[name] = json.loads(text)
        _, out["index"] = get(admin_port, "/commands")
        return out
    finally:
        zk.stop()
        zk.close()


def test_admin_commands_as_apache(tmp_path, monkeypatch):
    # Debian's jar names Jetty in its Class-Path but not the servlet API it needs
    monkeypatch.setattr(apache, "SLF4J_SIMPLE", f"{apache.SLF4J_SIMPLE}:{SERVLET_API}")
    port = free_port()
    ref = apache.ApacheZooKeeper(
        str(tmp_path / "apache"), free_port(), extra=admin_config(port), log_binding=True
    ).start()
    try:
        theirs = answers(ref.hosts, port)
    finally:
        ref.stop()
    port = free_port()
    ours_server = ThreadedServer(str(tmp_path / "racklab"), tick_time=200, **admin_config(port))
    try:
        ours = answers(ours_server.hosts, port)
    finally:
        ours_server.stop()

    for name in SAMPLE:
        a, b = theirs[name], ours[name]
        assert (b["command"], b["error"]) == (a["command"], a["error"]), name
        assert set(b) <= set(a), (name, set(b) - set(a))
    for name in ("srvr", "stat"):
        assert set(ours[name]["server_stats"]) == set(theirs[name]["server_stats"])
        assert ours[name]["node_count"] == theirs[name]["node_count"]
        assert ours[name]["server_stats"]["server_state"] == "standalone"
    assert set(ours["conf"]) == set(theirs["conf"])
    for name in ("wchs", "wchc", "wchp", "isro", "hash", "ruok", "nope", "leader"):
        assert ours[name] == theirs[name], name
    assert ours["dump"]["session_id_to_ephemeral_paths"] == {"ME": ["/a/e"]}
    assert (
        ours["dump"]["session_id_to_ephemeral_paths"]
        == (theirs["dump"]["session_id_to_ephemeral_paths"])
    )
    same = ("server_state", "znode_count", "watch_count", "ephemerals_count", "global_sessions")
    assert {k: ours["mntr"][k] for k in same} == {k: theirs["mntr"][k] for k in same}
    assert set(ours["cons"]["connections"][0]) <= set(theirs["cons"]["connections"][0])
    assert all(f'href="/commands/{n}"' in theirs["index"] for n in ("stats", "monitor"))
    names = {line.split('"')[1] for line in ours["index"].splitlines() if "href" in line}
    assert names <= {line.split('"')[1] for line in theirs["index"].splitlines() if "href" in line}
