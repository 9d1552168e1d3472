"""reconfig with reconfigEnabled=true, differentially: the same kazoo `reconfig` calls
(incremental leave and join, a no-op leave, bad specs, a version that is not the
current one, non-incremental, a new config without a quorum, an observer) through a
follower of a 3-server Apache ZooKeeper ensemble and of a racklab one, comparing
replies, errors, /zookeeper/config and its Stat, which servers serve, and the
dynamic config files both write. Addresses differ, so each ensemble's are replaced
by the server's number before comparing (same digit counts, so same lengths)."""

from __future__ import annotations

import os
import re
import time

import pytest
from kazoo.client import KazooClient

from lab.services.zookeeper.acl import digest
from lab.services.zookeeper.config import load
from lab.services.zookeeper.minicluster import Ensemble, ThreadedServer
from lab.testing import apache_zookeeper as apache

pytestmark = pytest.mark.skipif(not apache.available(), reason="Apache ZooKeeper not installed")

SUPER = "super:reconfig-test"
SETTINGS = {
    "reconfigEnabled": "true",
    # Apache reads unknown zoo.cfg keys as zookeeper.<key> system properties
    "DigestAuthenticationProvider.superDigest": digest(SUPER),
}
UNREACHABLE = "127.0.0.99:2888:3888"


def _normalise(ens: Ensemble, text: str) -> str:
    for i, s in ens.servers.items():
        text = text.replace(ens.peers[i], f"<peers{i}>").replace(s.hosts, f"<client{i}>")
    return text


def _stat(st) -> tuple:
    # times differ between any two runs; everything else must match
    return (st.czxid, st.mzxid, st.version, st.cversion, st.aversion, st.dataLength)


def _reply(ens: Ensemble, fn) -> tuple:
    try:
        data, st = fn()
    except Exception as e:  # noqa: BLE001 - the error is the reply being compared
        return ("error", type(e).__name__)
    lines = _normalise(ens, data.decode()).splitlines()
    return ("ok", sorted(lines), _stat(st))


def scenario(ens: Ensemble) -> list:
    leader = ens.wait_leader(60)
    follower = ens.follower(60)
    other = next(i for i in ens.servers if i not in (leader, follower))
    out: list = []
    zk = KazooClient(ens.servers[follower].hosts, auth_data=[("digest", SUPER)], timeout=10)
    plain = KazooClient(ens.servers[follower].hosts, timeout=10)
    zk.start(30)
    plain.start(30)

    def step(label, fn):
        out.append((label, _reply(ens, fn)))

    def config():
        return zk.get("/zookeeper/config")

    def reconfig(joining=None, leaving=None, new_members=None, from_config=-1):
        return lambda: zk.reconfig(joining, leaving, new_members, from_config)

    def spec(i: int) -> str:
        return f"server.{i}={ens.peers[i]};{ens.servers[i].hosts}"

    def modes(label):
        # a removed or re-added member settles within a few ticks
        deadline = time.monotonic() + 20
        while True:
            seen = {i: ens.mode(i) for i in (leader, follower, other)}
            if all(m in ("leader", "follower") for m in seen.values()):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        out.append((label, [seen[leader], seen[follower], seen[other]]))

    try:
        step("config", config)
        version = int(config()[0].decode().rsplit("version=", 1)[1], 16)
        step("not super", lambda: plain.reconfig(None, str(other), None))
        step("stale version", reconfig(leaving=str(other), from_config=version + 1))
        step("leave", reconfig(leaving=str(other), from_config=version))
        step("config after leave", config)
        modes("modes after leave")
        step("join", reconfig(joining=spec(other)))
        modes("modes after join")
        step("leave everyone", reconfig(leaving=",".join(map(str, ens.servers))))
        step("leave unknown id", reconfig(leaving="9"))
        step("join without ports", reconfig(joining="server.4=bad"))
        step("join bad id", reconfig(joining="server.x=bad"))
        step("join and leave one", reconfig(joining=spec(other), leaving=str(other)))
        step("new members", reconfig(new_members=f"{spec(leader)},{spec(follower)}"))
        step("both kinds", reconfig(joining=spec(other), new_members=spec(leader)))
        step(
            "no quorum",
            reconfig(
                new_members=f"server.4={UNREACHABLE}:participant;127.0.0.99:2181,"
                f"server.5={UNREACHABLE}:participant;127.0.0.98:2181,{spec(leader)}"
            ),
        )
        step("nothing", reconfig())
        step("join, no client address", reconfig(joining=f"server.4={UNREACHABLE}:participant"))
        step("join unreachable", reconfig(joining=f"server.4={UNREACHABLE}:participant;2181"))
        step("join observer", reconfig(joining=f"server.4={UNREACHABLE}:observer;2181"))
        step("config at the end", config)
        modes("modes at the end")
    finally:
        for c in (zk, plain):
            c.stop()
            c.close()
    # What each member keeps on disk: the dynamic file zoo.cfg names, and its lines.
    for i in (leader, follower):
        cfg_path = ens.servers[i].conf_path
        text = open(cfg_path).read()
        dynamic = re.search(r"^dynamicConfigFile=(.*)$", text, re.M).group(1)
        names = sorted(n[len("zoo.cfg.") :] for n in os.listdir(os.path.dirname(cfg_path)))
        names = [n for n in names if n.startswith("dynamic.")]
        body = _normalise(ens, open(dynamic).read()).splitlines()
        out.append((f"files of server {'leader' if i == leader else 'follower'}", names))
        out.append(("dynamic file", os.path.basename(dynamic), sorted(body)))
    return out


def test_reconfig_same_as_apache_zookeeper(tmp_path):
    theirs_ens = apache.apache_ensemble(str(tmp_path / "apache"), 3, 220, **SETTINGS)
    ours_ens = Ensemble(str(tmp_path / "racklab"), 3, 230, **SETTINGS)
    try:
        theirs_ens.start(timeout=60)
        ours_ens.start()
        theirs = scenario(theirs_ens)
        ours = scenario(ours_ens)
        # a voting member restarted from the zoo.cfg it rewrote comes back with the
        # membership of the last reconfig
        leader = ours_ens.wait_leader()
        voters = load(ours_ens.servers[leader].conf_path).servers
        follower = next(i for i in voters if i != leader and i in ours_ens.servers)
        ours_ens.kill(follower)
        ours_ens.start(follower)
        ours_ens.wait_serving(follower)
        restarted = load(ours_ens.servers[follower].conf_path)
    finally:
        ours_ens.stop_all()
        theirs_ens.stop_all()
    diffs = apache.differences(theirs, ours)
    assert not diffs, "\n".join(diffs)
    # the sequence did change the membership: the last one has an observer
    last = dict((t[0], t[1]) for t in theirs)["config at the end"]
    assert f"server.4={UNREACHABLE}:observer;0.0.0.0:2181" in last[1]
    assert restarted.servers[4].role == "observer"
    assert restarted.config_version == int(
        os.path.basename(restarted.raw["dynamicConfigFile"]).rsplit(".", 1)[1], 16
    )


def test_reconfig_of_a_standalone_server(tmp_path):
    """Apache 3.8's standalone server with reconfigEnabled: Unimplemented for the super
    user (checked against it: UnimplementedError through kazoo), NoAuth before that
    for anyone else; and /zookeeper/config stays empty, as Apache's."""
    srv = ThreadedServer(str(tmp_path / "d"), **SETTINGS)
    zk = KazooClient(srv.hosts, auth_data=[("digest", SUPER)])
    plain = KazooClient(srv.hosts)
    try:
        zk.start(10)
        plain.start(10)
        with pytest.raises(Exception) as e:
            zk.reconfig(None, "3", None)
        assert type(e.value).__name__ == "UnimplementedError"
        with pytest.raises(Exception) as e:
            plain.reconfig(None, "3", None)
        assert type(e.value).__name__ == "NoAuthError"
        data, st = zk.get("/zookeeper/config")
        assert (data, st.version, st.aversion) == (b"", 0, -1)
    finally:
        for c in (zk, plain):
            c.stop()
            c.close()
        srv.stop()
