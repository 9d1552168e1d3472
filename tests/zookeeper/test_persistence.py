"""Transaction log and snapshots: acknowledged writes survive kill -9 and restarts,
a torn last record is cut off, and nothing is acknowledged before its fsync."""

from __future__ import annotations

import glob
import os
import threading
import time

from kazoo.client import KazooClient

from lab.services.zookeeper.proto import CreateRequest, Op, RequestHeader

from .rawclient import RawClient


def records_end(path: str) -> int:
    """Offset just past the last record (the log file is preallocated with zeros)."""
    data = open(path, "rb").read()
    pos = 8  # the file header
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        if length == 0:
            break
        pos += 8 + length
    return pos


def client(hosts, **kw):
    c = KazooClient(hosts=hosts, timeout=5, **kw)
    c.start(timeout=10)
    return c


def test_acked_writes_survive_kill9(process_server):
    srv = process_server().start()
    zk = client(srv.hosts)
    try:
        zk.create("/d", b"root")
        for i in range(100):
            zk.create(f"/d/n{i}", str(i).encode())
        for _ in range(3):
            zk.set("/d/n7", b"seven")
        zk.delete("/d/n99")
        t = zk.transaction()
        t.create("/d/tx1")
        t.create("/d/tx2")
        t.commit()
        before = zk.get("/d/n7")[1]
    finally:
        zk.stop()
        zk.close()
    srv.kill()
    srv.start()
    zk = client(srv.hosts)
    try:
        children = zk.get_children("/d")
        assert len(children) == 101
        assert "n99" not in children and "tx1" in children and "tx2" in children
        data, stat = zk.get("/d/n7")
        assert data == b"seven" and stat == before
        assert zk.get("/d/n42")[0] == b"42"
        # New writes continue the zxid sequence.
        zk.create("/after")
        assert zk.exists("/after").czxid > stat.mzxid
    finally:
        zk.stop()
        zk.close()


def test_snapshots_taken_and_recovered(process_server, tmp_path):
    data_dir = str(tmp_path / "snapdata")
    srv = process_server(data_dir=data_dir, snapCount=40).start()
    zk = client(srv.hosts)
    try:
        for i in range(200):
            zk.create(f"/s{i}", b"x" * 10)
        zk.set("/s5", b"changed")
    finally:
        zk.stop()
        zk.close()
    # Snapshots are saved and purged by a task while writes go on: the purge that
    # follows the newest one may still be running when the last reply arrives.
    deadline = time.monotonic() + 10
    while True:
        snaps = glob.glob(os.path.join(data_dir, "racklab-v1", "snapshot.*"))
        if (snaps and len(snaps) <= 3) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert snaps, "no snapshot written after 200 txns with snapCount=40"
    assert len(snaps) <= 3  # autopurge.snapRetainCount default
    srv.kill()
    srv.start()
    zk = client(srv.hosts)
    try:
        assert len([c for c in zk.get_children("/") if c.startswith("s")]) == 200
        assert zk.get("/s5")[0] == b"changed"
    finally:
        zk.stop()
        zk.close()


def test_torn_last_record_is_discarded(process_server, tmp_path):
    data_dir = str(tmp_path / "torn")
    srv = process_server(data_dir=data_dir).start()
    zk = client(srv.hosts)
    try:
        zk.create("/kept", b"k")
    finally:
        zk.stop()
        zk.close()
    srv.kill()
    logs = sorted(glob.glob(os.path.join(data_dir, "racklab-v1", "log.*")), key=os.path.getmtime)
    last = next(p for p in reversed(logs) if records_end(p) > 8)
    end = records_end(last)
    # A record header announcing 500 bytes, followed by only 20: a crash mid-append.
    with open(last, "r+b") as f:
        f.seek(end)
        f.write((500).to_bytes(4, "big") + (12345).to_bytes(4, "big") + b"\x01" * 20)
    srv.start()
    assert os.path.getsize(last) == end  # cut back to the last whole record
    zk = client(srv.hosts)
    try:
        assert zk.get("/kept")[0] == b"k"
        zk.create("/new")
    finally:
        zk.stop()
        zk.close()
    srv.kill()
    srv.start()
    zk = client(srv.hosts)
    try:
        assert zk.exists("/kept") and zk.exists("/new")
    finally:
        zk.stop()
        zk.close()


def test_corrupt_last_record_checksum_is_discarded(process_server, tmp_path):
    data_dir = str(tmp_path / "crc")
    srv = process_server(data_dir=data_dir).start()
    zk = client(srv.hosts)
    try:
        zk.create("/one")
        zk.create("/two")
        srv.kill()  # before the client's closeSession, so /two is the last record
    finally:
        zk.stop()
        zk.close()
    logs = sorted(glob.glob(os.path.join(data_dir, "racklab-v1", "log.*")), key=os.path.getmtime)
    last = next(p for p in reversed(logs) if records_end(p) > 8)
    with open(last, "r+b") as f:
        f.seek(records_end(last) - 3)
        f.write(b"\xff\xff\xff")  # flips bytes inside the last record: the /two create
    srv.start()
    zk = client(srv.hosts)
    try:
        assert zk.exists("/one") is not None
        assert zk.exists("/two") is None
    finally:
        zk.stop()
        zk.close()


def test_session_and_ephemerals_survive_restart(process_server):
    srv = process_server(tick_time=500).start()
    zk = client(srv.hosts)
    try:
        zk.create("/eph", ephemeral=True)
        sid = zk.client_id[0]
        srv.kill()
        srv.start()
        # kazoo reconnects to the restarted server with its session, which it restored.
        deadline = time.monotonic() + 10
        while not zk.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert zk.client_id[0] == sid
        assert zk.exists("/eph").ephemeralOwner == sid
    finally:
        zk.stop()
        zk.close()


def test_reply_waits_for_fsync(zk_server):
    """Nothing is acknowledged before its log record is on disk."""
    log = zk_server.server.txnlog
    gate = threading.Event()
    entered = threading.Event()
    real_sync = log.sync

    def slow_sync():
        entered.set()
        gate.wait(10)
        real_sync()

    c = RawClient("127.0.0.1", zk_server.port)
    c.connect()
    log.sync = slow_sync
    try:
        from lab.services.zookeeper.datatree import OPEN_ACL_UNSAFE

        body = CreateRequest("/durable", b"", list(OPEN_ACL_UNSAFE), 0).serialize()
        c.send_frame(RequestHeader(1, Op.CREATE).serialize() + body)
        assert entered.wait(5)
        c.sock.settimeout(0.5)
        try:
            early = c.sock.recv(1)
        except TimeoutError:
            early = b""
        assert early == b"", "reply sent before the fsync finished"
        gate.set()
        c.sock.settimeout(5)
        h, _ = c.reply()
        assert h.xid == 1 and h.err == 0
    finally:
        log.sync = real_sync
        gate.set()
