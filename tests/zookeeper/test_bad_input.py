"""Malformed traffic: the offending connection is closed, everyone else keeps being
served, and the server's memory stays bounded."""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest

from lab.services.ports import free_port
from lab.services.zookeeper.minicluster import ThreadedServer
from lab.services.zookeeper.proto import (
    ACL,
    CreateRequest,
    Err,
    GetDataRequest,
    Id,
    Op,
    RequestHeader,
)

from .rawclient import RawClient


def healthy(zk) -> bool:
    zk.ensure_path("/alive")
    return zk.exists("/alive") is not None


def test_random_bytes_close_only_that_connection(zk_server, zk):
    rnd = os.urandom(4096)
    c = RawClient("127.0.0.1", zk_server.port)
    c.sock.sendall(rnd)
    assert c.closed_by_server()
    assert healthy(zk)


def test_length_beyond_jute_maxbuffer(zk_server, zk):
    c = RawClient("127.0.0.1", zk_server.port)
    c.sock.sendall(struct.pack(">i", 1024 * 1024 + 1) + b"x" * 100)
    assert c.closed_by_server()
    c = RawClient("127.0.0.1", zk_server.port)
    c.connect()
    c.sock.sendall(struct.pack(">i", 50 * 1024 * 1024))
    assert c.closed_by_server()
    assert healthy(zk)


def test_negative_length(zk_server, zk):
    c = RawClient("127.0.0.1", zk_server.port)
    c.sock.sendall(struct.pack(">i", -5))
    assert c.closed_by_server()
    assert healthy(zk)


def test_truncated_frames(zk_server, zk):
    # Half a connect request, then the client goes away.
    c = RawClient("127.0.0.1", zk_server.port)
    c.sock.sendall(struct.pack(">i", 45) + b"\0" * 10)
    c.close()
    # A frame whose declared length is right but whose record is cut short.
    c = RawClient("127.0.0.1", zk_server.port)
    c.connect()
    hdr = RequestHeader(1, Op.CREATE).serialize()
    c.send_frame(hdr + struct.pack(">i", 100) + b"/abc")
    assert c.closed_by_server()
    assert healthy(zk)


def test_unknown_opcode_gets_unimplemented_then_close(zk_server, zk):
    c = RawClient("127.0.0.1", zk_server.port)
    c.connect()
    h, _ = c.request(7, 777)
    assert h.xid == 7 and h.err == Err.UNIMPLEMENTED
    assert c.closed_by_server()
    assert healthy(zk)


def test_request_before_handshake(zk_server, zk):
    c = RawClient("127.0.0.1", zk_server.port)
    c.send_frame(RequestHeader(1, Op.GET_DATA).serialize() + GetDataRequest("/", False).serialize())
    assert c.closed_by_server()
    assert healthy(zk)


def test_lying_vector_count_allocates_nothing(zk_server, zk):
    c = RawClient("127.0.0.1", zk_server.port)
    c.connect()
    body = CreateRequest("/v", b"", [], 0).serialize()
    # Patch the ACL count (after path and data) to two billion.
    path_len = 4 + 2
    data_len = 4
    body = (
        body[: path_len + data_len]
        + struct.pack(">i", 2_000_000_000)
        + body[path_len + data_len + 4 :]
    )
    c.send_frame(RequestHeader(1, Op.CREATE).serialize() + body)
    assert c.closed_by_server()
    assert healthy(zk)


def test_empty_acl_is_invalid_acl_not_a_close(zk_server):
    c = RawClient("127.0.0.1", zk_server.port)
    c.connect()
    h, _ = c.request(1, Op.CREATE, CreateRequest("/noacl", b"", [], 0).serialize())
    assert h.err == Err.INVALID_ACL
    # Apache 3.8 checks only for a "/" before the ACL, so a null ACL is found first;
    # with an ACL the parent "bad/" is missing; no "/" at all is BadArguments.
    h, _ = c.request(2, Op.CREATE, CreateRequest("bad//path", b"", None, 0).serialize())
    assert h.err == Err.INVALID_ACL
    acl = [ACL(31, Id("world", "anyone"))]
    h, _ = c.request(3, Op.CREATE, CreateRequest("bad//path", b"", acl, 0).serialize())
    assert h.err == Err.NO_NODE
    h, _ = c.request(4, Op.CREATE, CreateRequest("bad", b"", acl, 0).serialize())
    assert h.err == Err.BAD_ARGUMENTS


def test_invalid_session_gets_timeout_zero(zk_server):
    c = RawClient("127.0.0.1", zk_server.port)
    resp = c.connect(session_id=0x1234, passwd=b"x" * 16)
    assert resp.timeOut == 0 and resp.sessionId == 0
    assert c.closed_by_server()
    good = RawClient("127.0.0.1", zk_server.port)
    r = good.connect()
    assert r.timeOut > 0 and r.sessionId != 0 and len(r.passwd) == 16
    # Right session id, wrong password.
    bad = RawClient("127.0.0.1", zk_server.port)
    assert bad.connect(session_id=r.sessionId, passwd=b"\1" * 16).timeOut == 0


def test_timeout_negotiated_within_ticktime_bounds(zk_server):
    tick = zk_server.cfg.tick_time
    c = RawClient("127.0.0.1", zk_server.port)
    assert c.connect(timeout_ms=1).timeOut == 2 * tick
    c = RawClient("127.0.0.1", zk_server.port)
    assert c.connect(timeout_ms=10**8).timeOut == 20 * tick
    c = RawClient("127.0.0.1", zk_server.port)
    assert c.connect(timeout_ms=5 * tick).timeOut == 5 * tick


def test_silent_session_expires_and_its_ephemerals_go(zk_server, zk):
    c = RawClient("127.0.0.1", zk_server.port)
    resp = c.connect(timeout_ms=1)  # clamped to 2 * tickTime
    from lab.services.zookeeper.datatree import OPEN_ACL_UNSAFE

    h, _ = c.request(
        1, Op.CREATE, CreateRequest("/silent", b"", list(OPEN_ACL_UNSAFE), 1).serialize()
    )
    assert h.err == 0
    assert zk.exists("/silent").ephemeralOwner == resp.sessionId
    # No pings from here on: the server expires the session and closes the socket.
    assert c.closed_by_server(timeout=10)
    deadline = time.monotonic() + 5
    while zk.exists("/silent") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert zk.exists("/silent") is None
    again = RawClient("127.0.0.1", zk_server.port)
    assert again.connect(session_id=resp.sessionId, passwd=resp.passwd).timeOut == 0


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def test_memory_bounded_under_abuse(process_server):
    from kazoo.client import KazooClient

    srv = process_server().start()
    zk = KazooClient(hosts=srv.hosts, timeout=5)
    zk.start(timeout=10)
    try:
        zk.create("/fat", b"z" * 200_000)
        base = _rss_kb(srv.proc.pid)
        # 1. Many connections sending garbage or half frames.
        for i in range(300):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            try:
                s.sendall(os.urandom(64) if i % 2 else struct.pack(">i", 1000) + b"\0" * 500)
            except (ConnectionResetError, BrokenPipeError):
                pass  # refused by maxClientCnxns while earlier ones are still closing
            s.close()
        # Every one of them is released again (kazoo's and the mntr one remain).
        deadline = time.monotonic() + 15
        alive = None
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as m:
                    m.sendall(b"mntr")
                    text = b""
                    while chunk := m.recv(65536):
                        text += chunk
            except ConnectionResetError:  # still at maxClientCnxns
                time.sleep(0.1)
                continue
            alive = int(
                dict(line.split("\t", 1) for line in text.decode().splitlines())[
                    "zk_num_alive_connections"
                ]
            )
            if alive <= 2:
                break
            time.sleep(0.1)
        assert alive <= 2
        # 2. A client that pipelines reads of a 200 kB node and never reads a reply:
        # unbounded buffering would need 5000 * 200 kB = 1 GB.
        c = RawClient("127.0.0.1", srv.port)
        c.connect()
        req = RequestHeader(1, Op.GET_DATA).serialize() + GetDataRequest("/fat", False).serialize()
        frame = struct.pack(">i", len(req)) + req
        c.sock.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 10
        while sent < 5000 and time.monotonic() < deadline:
            try:
                c.sock.send(frame)
                sent += 1
            except BlockingIOError:
                time.sleep(0.01)
        time.sleep(0.5)
        grown_mb = (_rss_kb(srv.proc.pid) - base) / 1024
        print(f"sent {sent} requests; server grew by {grown_mb:.0f} MB")
        assert grown_mb < 150, f"server grew by {grown_mb:.0f} MB"
        c.close()
        assert zk.get("/fat")[1].dataLength == 200_000
    finally:
        zk.stop()
        zk.close()


@pytest.mark.parametrize("word", ["ruok", "srvr", "stat", "mntr", "conf", "cons"])
def test_four_letter_words(zk_server, zk, word):
    zk.create("/fl", b"")
    with socket.create_connection(("127.0.0.1", zk_server.port), timeout=5) as s:
        s.sendall(word.encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    text = out.decode()
    if word == "ruok":
        assert text == "imok"
    elif word in ("srvr", "stat"):
        assert text.startswith("Zookeeper version: ")
        assert "Mode: standalone" in text
        # /, /zookeeper, quota, config, /fl, and the root counted twice, as Apache's
        assert "Node count: 6" in text
        if word == "stat":
            assert "Clients:" in text
    elif word == "mntr":
        kv = dict(line.split("\t", 1) for line in text.strip().splitlines())
        assert kv["zk_server_state"] == "standalone"
        assert int(kv["zk_znode_count"]) == 6
        assert int(kv["zk_num_alive_connections"]) >= 1
    elif word == "conf":
        # the port it listens on, as Apache's (zoo.cfg says 0 here: any free port)
        assert f"clientPort={zk_server.port}\n" in text
        assert "tickTime=100" in text
    elif word == "cons":
        assert "/127.0.0.1:" in text and "sid=0x" in text


def test_max_client_cnxns_per_address(process_server):
    srv = process_server(maxClientCnxns=4).start()
    held = []
    for _ in range(4):
        c = RawClient("127.0.0.1", srv.port)
        assert c.connect().timeOut > 0
        held.append(c)
    extra = RawClient("127.0.0.1", srv.port)
    assert extra.closed_by_server()
    held.pop().close()
    deadline = time.monotonic() + 5
    while True:
        again = RawClient("127.0.0.1", srv.port)
        try:
            assert again.connect().timeOut > 0
            break
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_admin_server_takes_garbage_and_goes_on(tmp_path):
    """Bad requests to the AdminServer's port get a 4xx (or a close) and it goes on
    answering, as do the clients' port."""

    port = free_port()
    s = ThreadedServer(
        str(tmp_path / "d"),
        **{
            "admin.enableServer": "true",
            "admin.serverAddress": "127.0.0.1",
            "admin.serverPort": port,
        },
    )
    try:
        for junk in (
            b"\x00\xff" * 50 + b"\r\n\r\n",
            b"GET /" + b"a" * 20000,
            b"DELETE /x HTTP/1.1\r\n\r\n",
            b"",
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                c.sendall(junk)
                c.shutdown(socket.SHUT_WR)
                head = c.recv(64)
            assert head == b"" or head.split(b" ")[1][:1] == b"4", (junk[:20], head)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(b"GET /commands/ruok HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b'"error": null' in c.recv(65536).split(b"\r\n\r\n", 1)[1]
        c = RawClient("127.0.0.1", s.port)
        c.connect()
        c.close()
    finally:
        s.stop()
