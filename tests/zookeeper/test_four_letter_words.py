"""The four-letter words Apache 3.8 answers with 4lw.commands.whitelist=* (crst dump
wchc wchp dirs srst gtmk hash) give the same text as Debian's Apache ZooKeeper once
session ids, dates, ports and sizes are masked."""

from __future__ import annotations

import re
import socket

import pytest
from kazoo.client import KazooClient

from lab.services.ports import free_port
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


def answers(host: str, port: int) -> dict[str, str]:
    zk = KazooClient(hosts=f"{host}:{port}", timeout=5)
    zk.start(10)
    try:
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
    finally:
        zk.stop()
        zk.close()


def test_four_letter_words_as_apache(tmp_path, zk_server):
    ref = apache.ApacheZooKeeper(str(tmp_path / "apache"), free_port()).start()
    try:
        theirs = answers(ref.host, ref.port)
    finally:
        ref.stop()
    ours = answers("127.0.0.1", zk_server.port)
    assert ours == theirs
    assert "Sessions with Ephemerals (1):" in ours["dump"]
    assert "\t/eph" in ours["dump"]
    assert ours["wchp"] == "/x\n\tSID\n\n"
