"""Quotas: zkCli.sh's setquota / listquota / delquota answered as Debian's Apache
ZooKeeper 3.8 answers them, the subtree stats kept current by the server, the hard
limits of zookeeper.enforceQuota, and the stats surviving a restart and agreeing
across an ensemble."""

from __future__ import annotations

import logging
import os
import subprocess
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import QuotaExceededError

from lab.services.ports import free_port
from lab.services.zookeeper.minicluster import ThreadedServer
from lab.services.zookeeper.quotas import RateLogger, StatsTrack
from lab.testing import apache_zookeeper as apache

LIMITS = "/zookeeper/quota/q/zookeeper_limits"
STATS = "/zookeeper/quota/q/zookeeper_stats"

# One zkCli session, command by command: a soft count quota below the subtree's
# count (zkCli warns), zkCli's own refusals, hard count and byte limits refusing a
# create and a setData, then delquota.
SESSION = """create /q a
create /q/a 12345
setquota -n 1 /q
listquota /q
setquota -n 5 /q/a
setquota -n 5 /nonexistent
setquota -n 0 /q
setquota -b -3 /q
setquota -n x /q
setquota -n 5 /zookeeper/quota/q
create /q/b xy
setquota -B 8 /q
set /q/b xyz
create /q/c
listquota /q
listquota /q/a
create /r
setquota -N 2 /r
setquota -B 12 /r
create /r/x 0123456789
create /r/y
set /r/x 0123456789abc
listquota /r
delquota -n /q
listquota /q
delquota /q
listquota /q
delquota /q
quit
"""


def zkcli_session(hosts: str, commands: str) -> list[str]:
    p = subprocess.run(
        [apache.ZKCLI, "-server", hosts],
        input=commands,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # What differs between any two servers: the address, and SLF4J's notice.
    return [
        line
        for line in (p.stdout + p.stderr).splitlines()
        if not line.startswith(("Connecting to", "SLF4J:"))
    ]


def stats(zk) -> str:
    return zk.get(STATS)[0].decode()


def set_quota(zk, limits: bytes) -> None:
    """What zkCli's setquota sends: the quota parents, limits, then stats at zero."""
    zk.ensure_path("/zookeeper/quota/q")
    zk.create(LIMITS, limits)
    zk.create(STATS, b"count=0,bytes=0")


@pytest.mark.skipif(
    not (apache.available() and os.path.exists(apache.ZKCLI)),
    reason="Debian's zookeeper package is not installed",
)
def test_zkcli_quotas_same_as_apache(tmp_path, caplog):
    logs = os.path.exists(apache.SLF4J_SIMPLE)  # Debian's libslf4j-java ships it
    ref = apache.ApacheZooKeeper(
        str(tmp_path / "apache"), free_port(), extra={"enforceQuota": "true"}, log_binding=logs
    ).start()
    ours = ThreadedServer(str(tmp_path / "racklab"), enforceQuota="true")
    try:
        expected = zkcli_session(ref.hosts, SESSION)
        with caplog.at_level(logging.WARNING, logger="zookeeper.server"):
            got = zkcli_session(ours.hosts, SESSION)
    finally:
        ours.stop()
        ref.stop()
    assert got == expected
    # What a user sees (Apache's answers, checked above to be the same):
    assert "[Warning]: the count quota you create is less than the existing count:2" in got
    assert "Output stat for /q count=2,bytes=6" in got
    assert "Quota has exceeded : /q/b" in got
    assert "Output quota for /q count=1,bytes=-1=;byteHardLimit=8;countHardLimit=-1" in got
    assert "Output stat for /q count=4,bytes=8" in got
    assert "/q/a has a parent /q which has a quota" in got
    assert "Quota has exceeded : /r/y" in got and "Quota has exceeded : /r/x" in got
    assert "Output stat for /r count=2,bytes=10" in got
    assert "Quota does not exist for /q" in got
    # The server logs, in Apache's words, a soft limit passed and a hard one refused.
    with open(os.path.join(ref.data_dir, "apache-zk.log")) as f:
        apache_log = f.read()
    warnings = [
        "Message:Quota exceeded: /q [current count=3, softCountLimit=1] Value:null",
        "Message:Quota exceeded: /q [current bytes=9, hardByteLimit=8] Value:null",
        "Message:Quota exceeded: /r [current count=3, hardCountLimit=2] Value:null",
        "Message:Quota exceeded: /r [current bytes=13, hardByteLimit=12] Value:null",
    ]
    for w in warnings:
        assert w in caplog.text
        if logs:
            assert w in apache_log


def test_stats_follow_creates_deletes_and_sets(zk):
    zk.create("/q", b"abc")
    zk.create("/q/x", b"12345")
    zk.create("/outside", b"zzzz")
    set_quota(zk, b"count=10,bytes=-1")
    assert stats(zk) == "count=2,bytes=8"  # counted when the stats node appears
    zk.create("/q/x/y", b"1")
    zk.create("/q/e", b"22", ephemeral=True)
    zk.create("/q/s-", b"", sequence=True)
    assert stats(zk) == "count=5,bytes=11"
    zk.set("/q/x", b"")
    zk.delete("/q/x/y")
    assert stats(zk) == "count=4,bytes=5"
    zk.set("/outside", b"more data")  # outside the quota root: not counted
    tx = zk.transaction()
    tx.create("/q/m", b"mm")
    tx.delete("/q/e")
    tx.commit()
    assert stats(zk) == "count=4,bytes=5"
    zk.delete(LIMITS)  # the root is no longer tracked; stats stay as they were
    zk.create("/q/after", b"zz")
    assert stats(zk) == "count=4,bytes=5"


def test_enforce_quota_refuses_past_hard_limits(tmp_path):
    srv = ThreadedServer(str(tmp_path / "data"), enforceQuota="true")
    zk = KazooClient(hosts=srv.hosts, timeout=5)
    zk.start(timeout=10)
    try:
        zk.create("/q", b"")
        set_quota(zk, b"count=-1,bytes=-1=;byteHardLimit=6;countHardLimit=3")
        zk.create("/q/a", b"1234")
        zk.create("/q/b", b"")
        with pytest.raises(QuotaExceededError):
            zk.create("/q/c", b"")  # a 4th node
        with pytest.raises(QuotaExceededError):
            zk.set("/q/a", b"1234567")  # 7 bytes
        zk.set("/q/a", b"123456")  # exactly at the limit is allowed
        tx = zk.transaction()
        tx.create("/q/d", b"")
        results = tx.commit()
        assert isinstance(results[0], QuotaExceededError)
        assert stats(zk) == "count=3,bytes=6"
        assert zk.exists("/q/c") is None and zk.exists("/q/d") is None
    finally:
        zk.stop()
        zk.close()
        srv.stop()


def test_quota_stats_survive_restart(tmp_path):
    data = str(tmp_path / "data")

    def run(fn):
        srv = ThreadedServer(data, snapCount=4)
        zk = KazooClient(hosts=srv.hosts, timeout=5)
        zk.start(timeout=10)
        try:
            return fn(zk)
        finally:
            zk.stop()
            zk.close()
            srv.stop()

    def first(zk):
        zk.create("/q", b"a")
        set_quota(zk, b"count=100,bytes=-1")
        for i in range(6):  # past snapCount: a snapshot, then more log to replay
            zk.create(f"/q/n{i}", b"xy")
        zk.delete("/q/n0")
        zk.set("/q/n1", b"wxyz")
        return stats(zk)

    before = run(first)
    assert before == "count=6,bytes=13"
    assert run(stats) == before

    def more(zk):
        zk.create("/q/later", b"123")
        return stats(zk)

    assert run(more) == "count=7,bytes=16"


def test_ensemble_members_agree_on_stats(tmp_path):
    from lab.services.zookeeper.minicluster import Ensemble

    ens = Ensemble(str(tmp_path), n=3, base=190, enforceQuota="true")
    clients = []
    try:
        ens.start()
        leader = ens.wait_leader()
        for i in ens.servers:
            ens.wait_serving(i)
        follower = next(i for i in ens.servers if i != leader)
        zk = ens.client(follower)
        clients.append(zk)
        zk.create("/q", b"abc")
        set_quota(zk, b"count=-1,bytes=-1=;countHardLimit=3")
        zk.create("/q/a", b"12")
        zk.create("/q/b", b"")
        with pytest.raises(QuotaExceededError):
            zk.create("/q/c", b"")
        for i in ens.servers:
            c = ens.client(i)
            clients.append(c)
            c.sync("/")
            assert stats(c) == "count=3,bytes=5", f"server {i}"
        # The leader prepares every write, so its log says why /q/c was refused.
        log_path = ens.servers[leader].log_path
        want = "Quota exceeded: /q [current count=4, hardCountLimit=3]"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(log_path) as f:
                if want in f.read():
                    break
            time.sleep(0.1)
        with open(log_path) as f:
            assert want in f.read()
    finally:
        for c in clients:
            c.stop()
            c.close()
        ens.stop_all()


def test_stats_track_strings():
    """The 3.6 form, 3.7+'s with hard limits after an extra "=", and back."""
    old = StatsTrack(b"count=5,bytes=10")
    assert (old.count, old.bytes, old.get("countHardLimit")) == (5, 10, -1)
    assert str(old) == "count=5,bytes=10"
    new = StatsTrack("count=-1,bytes=-1=;byteHardLimit=8;countHardLimit=2")
    assert (new.count, new.bytes, new.get("byteHardLimit"), new.get("countHardLimit")) == (
        -1,
        -1,
        8,
        2,
    )
    assert str(new) == "count=-1,bytes=-1=;byteHardLimit=8;countHardLimit=2"
    assert str(StatsTrack(b"")) == "count=-1,bytes=-1"


def test_repeated_warnings_are_rate_limited(caplog):
    """As Apache's RateLogger: the same line again within 100 ms is counted, and the
    count is logged once the interval has passed (a clock the test steps)."""
    now = [0.0]
    rl = RateLogger(clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="zookeeper.server"):
        for _ in range(3):
            rl.log("Quota exceeded: /q [current count=4, hardCountLimit=3]")
        now[0] = 0.2
        rl.log("Quota exceeded: /q [current count=4, hardCountLimit=3]")
        rl.log("Quota exceeded: /r [current bytes=9, softByteLimit=8]")
    assert caplog.messages == [
        "Message:Quota exceeded: /q [current count=4, hardCountLimit=3] Value:null",
        "[3 times] Message: Quota exceeded: /q [current count=4, hardCountLimit=3]",
        "Message:Quota exceeded: /r [current bytes=9, softByteLimit=8] Value:null",
    ]


def test_limits_are_not_checked_without_enforce_quota(zk, caplog):
    """As 3.8 with zookeeper.enforceQuota off (its default): the stats are kept, but
    no limit refuses a write and nothing is logged."""
    zk.create("/q", b"")
    set_quota(zk, b"count=1,bytes=-1=;byteHardLimit=1;countHardLimit=1")
    with caplog.at_level(logging.WARNING, logger="zookeeper.server"):
        zk.create("/q/a", b"1234")
        zk.set("/q/a", b"123456")
    assert stats(zk) == "count=2,bytes=6"
    assert "Quota exceeded" not in caplog.text
