"""The four-letter words Apache 3.8 answers with 4lw.commands.whitelist=* (crst dump
wchc wchp dirs srst gtmk hash) give the same text as Debian's Apache ZooKeeper once
session ids, dates, ports and sizes are masked."""

from __future__ import annotations

import re
import socket
from contextlib import contextmanager

import pytest
from kazoo.client import KazooClient

from lab.services.ports import free_port
from lab.services.zookeeper.minicluster import ThreadedServer
from lab.testing import apache_zookeeper as apache

pytestmark = pytest.mark.skipif(
    not apache.available(), reason="Debian's zookeeper package is not installed"
)

WORDS = ("crst", "dump", "wchc", "wchp", "dirs", "srst", "gtmk", "hash")


def word(host: str, port: int, w: str) -> str:
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(w.encode())
        out = b""
        for _ in range(1000):
            b = s.recv(65536)
            if not b:
                break
            out += b
    return out.decode()


def masked(text: str) -> str:
    text = re.sub(r"0x[0-9a-f]+", "SID", text)
    text = re.sub(r"\w{3} \w{3} \d\d \d\d:\d\d:\d\d \w+ \d{4}", "DATE", text)
    text = re.sub(r"/127\.0\.0\.1:\d+", "ADDR", text)
    return re.sub(r"_size: \d+", "_size: N", text)


@contextmanager
def kazoo(host: str, port: int):
    zk = KazooClient(hosts=f"{host}:{port}", timeout=5)
    zk.start(10)
    try:
        yield zk
    finally:
        zk.stop()
        zk.close()


def side_by_side(tmp_path, zk_server, ask) -> tuple[dict, dict]:
    """What `ask(host, port)` gets from Debian's Apache, then from racklab's."""
    ref = apache.ApacheZooKeeper(str(tmp_path / "apache"), free_port()).start()
    try:
        theirs = ask(ref.host, ref.port)
    finally:
        ref.stop()
    return theirs, ask("127.0.0.1", zk_server.port)


def answers(host: str, port: int) -> dict[str, str]:
    with kazoo(host, port) as zk:
        zk.create("/x", b"abc")
        zk.create("/eph", b"", ephemeral=True)
        zk.get("/x", watch=lambda e: None)
        out = {w: masked(word(host, port, w)) for w in WORDS}
        # How entries fall into expiry buckets depends on when each was last touched:
        # compare the dump's entries and totals, not its grouping or order.
        dump = re.sub(r"Sets \(\d+\)/", "Sets (n)/", out["dump"])
        dump = re.sub(r"\d+ expire at DATE:\n", "", dump)
        out["dump"] = sorted(dump.splitlines())
        return out


def test_four_letter_words_as_apache(tmp_path, zk_server):
    theirs, ours = side_by_side(tmp_path, zk_server, answers)
    assert ours == theirs
    assert "Sessions with Ephemerals (1):" in ours["dump"]
    assert "\t/eph" in ours["dump"]
    assert ours["wchp"] == "/x\n\tSID\n\n"


# mntr keys monitoring tools read (the Prometheus exporter's, zktop's); Apache 3.8 has
# some 480 keys, most of them its own processors' timings
MNTR_CORE = {
    "zk_version", "zk_server_state", "zk_avg_latency", "zk_max_latency", "zk_min_latency",
    "zk_packets_received", "zk_packets_sent", "zk_num_alive_connections",
    "zk_outstanding_requests", "zk_znode_count", "zk_watch_count", "zk_ephemerals_count",
    "zk_approximate_data_size", "zk_open_file_descriptor_count",
    "zk_max_file_descriptor_count", "zk_global_sessions", "zk_local_sessions", "zk_uptime",
}  # fmt: skip
SAME_VALUE = ("zk_server_state", "zk_znode_count", "zk_watch_count", "zk_ephemerals_count")


def status(host: str, port: int) -> dict:
    """What conf, srvr, stat and mntr say, as shapes (keys, line heads) and the values
    that do not depend on timing."""
    with kazoo(host, port) as zk:
        zk.create("/s", b"abc")
        zk.create("/s/e", b"", ephemeral=True)
        zk.get("/s", watch=lambda e: None)
        zk.get_children("/s", watch=lambda e: None)
        out = {"conf": [line.split("=")[0] for line in word(host, port, "conf").splitlines()]}
        for w in ("srvr", "stat"):
            text = word(host, port, w)
            out[w] = [line.split(":")[0] for line in text.splitlines() if not line[:2] == " /"]
            out[w + " nodes"] = re.search(r"Node count: (\d+)", text).group(1)
            out[w + " latency"] = bool(
                re.search(r"Latency min/avg/max: \d+/\d+\.\d+(E-\d+)?/\d+\n", text)
            )
        mntr = dict(line.split("\t", 1) for line in word(host, port, "mntr").splitlines())
        out["mntr"] = set(mntr)
        out["mntr values"] = {k: mntr[k] for k in SAME_VALUE}
        return out


def test_status_words_shaped_as_apache(tmp_path, zk_server):
    theirs, ours = side_by_side(tmp_path, zk_server, status)
    assert ours["mntr"] <= theirs["mntr"], ours["mntr"] - theirs["mntr"]
    assert MNTR_CORE <= ours["mntr"], MNTR_CORE - ours["mntr"]
    theirs["mntr"] = ours["mntr"] = None
    assert ours == theirs


def test_whitelist_as_apache(tmp_path):
    """4lw.commands.whitelist given: the words left out answer Apache's refusal."""
    wl = {"4lw.commands.whitelist": "srvr, ruok"}
    ref = apache.ApacheZooKeeper(str(tmp_path / "apache"), free_port(), extra=wl).start()
    try:
        theirs = {w: word(ref.host, ref.port, w)[:25] for w in ("ruok", "srvr", "stat", "mntr")}
    finally:
        ref.stop()
    ours_server = ThreadedServer(str(tmp_path / "racklab"), **wl)
    try:
        ours = {w: word("127.0.0.1", ours_server.port, w)[:25] for w in theirs}
    finally:
        ours_server.stop()
    assert ours["stat"] == "stat is not executed beca"  # the refusal (25 characters)
    assert ours == theirs
