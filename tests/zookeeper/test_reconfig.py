"""reconfig with reconfigEnabled=true, differentially: the same kazoo `reconfig` calls
(incremental leave and join, a member's client port moved without a restart, a no-op
leave, bad specs, a version that is not the current one, non-incremental, a new
config without a quorum, an observer) through a follower of a 3-server Apache
ZooKeeper ensemble and of a racklab one, comparing replies, errors, /zookeeper/config
and its Stat, which servers serve and on which client ports, and the dynamic config
files both write. Addresses differ, so each ensemble's are replaced by the server's
number before comparing (same digit counts, so same lengths)."""

from __future__ import annotations

import os
import re
import time

import pytest
from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

from lab.services.ports import free_port, port_answers
from lab.services.zookeeper.acl import digest
from lab.services.zookeeper.config import load
from lab.services.zookeeper.minicluster import Ensemble, ThreadedServer, four_letter
from lab.testing import apache_zookeeper as apache

pytestmark = pytest.mark.skipif(not apache.available(), reason="Apache ZooKeeper not installed")

SUPER = "super:reconfig-test"
SETTINGS = {
    "reconfigEnabled": "true",
    # Apache reads unknown zoo.cfg keys as zookeeper.<key> system properties
    "DigestAuthenticationProvider.superDigest": digest(SUPER),
}
UNREACHABLE = "127.0.0.99:2888:3888"
# while the ensemble elects: bounded (about 20 s), so a hang fails the test
retry = KazooRetry(max_tries=40, delay=0.2, max_delay=1.0)


class Names:
    """What differs between two ensembles, replaced by what is the same: each server's
    addresses and number by its role at the start (L leader, F the client's follower,
    O the other), and a zxid's epoch by its distance from the first one seen (Apache
    may start a new epoch just after its first election)."""

    def __init__(self, ens: Ensemble, roles: dict[int, str]):
        self.ens = ens
        self.roles = roles
        self.first_epoch: int | None = None

    def zxid(self, z: int) -> str:
        if z == 0:
            return "0"
        if self.first_epoch is None:
            self.first_epoch = z >> 32
        return f"e{(z >> 32) - self.first_epoch}:{z & 0xFFFFFFFF:x}"

    def text(self, text: str) -> str:
        for i, s in self.ens.servers.items():
            role = self.roles[i]
            text = text.replace(self.ens.peers[i], f"<peers{role}>")
            text = text.replace(s.hosts, f"<client{role}>")
            text = text.replace(f"server.{i}=", f"server.{role}=")
        return re.sub(r"version=([0-9a-f]+)", lambda m: "version=" + self.zxid(int(m[1], 16)), text)

    def stat(self, st) -> tuple:
        # times differ between any two runs; everything else must match
        z = self.zxid
        return (z(st.czxid), z(st.mzxid), st.version, st.cversion, st.aversion, st.dataLength)

    def reply(self, fn) -> tuple:
        try:
            data, st = fn()
        except Exception as e:  # noqa: BLE001 - the error is the reply being compared
            return ("error", type(e).__name__)
        return ("ok", sorted(self.text(data.decode()).splitlines()), self.stat(st))


def _settled_leader(ens: Ensemble) -> int:
    """The leader, once it has stayed the same for a second."""
    leader = ens.wait_leader(60)
    for _ in range(20):
        time.sleep(1)
        again = ens.wait_leader(60)
        if again == leader:
            return leader
        leader = again
    return leader


def scenario(ens: Ensemble) -> list:
    leader = _settled_leader(ens)
    follower = ens.follower(60)
    other = next(i for i in ens.servers if i not in (leader, follower))
    names = Names(ens, {leader: "L", follower: "F", other: "O"})
    out: list = []
    zk = KazooClient(ens.servers[follower].hosts, auth_data=[("digest", SUPER)], timeout=10)
    plain = KazooClient(ens.servers[follower].hosts, timeout=10)
    zk.start(30)
    plain.start(30)

    def step(label, fn):
        out.append((label, names.reply(fn)))

    def config():
        return zk.get("/zookeeper/config")

    def reconfig(joining=None, leaving=None, new_members=None, from_config=-1):
        return lambda: zk.reconfig(joining, leaving, new_members, from_config)

    def spec(i: int) -> str:
        return f"server.{i}={ens.peers[i]};{ens.servers[i].hosts}"

    hosts = {i: s.host for i, s in ens.servers.items()}

    def move_client_port(i: int):
        def move():
            new = free_port(hosts[i])
            result = zk.reconfig(f"server.{i}={ens.peers[i]};{hosts[i]}:{new}", None, None)
            ens.servers[i].port = new  # so names.text and spec() know it
            return result

        return move

    def new_client_get(i: int):
        c = KazooClient(ens.servers[i].hosts, timeout=10)
        c.start(30)  # retries until the member listens there
        try:
            return c.get("/zookeeper/config")
        finally:
            c.stop()
            c.close()

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
        # A member's client address moves without a restart: it listens on the new
        # one at once, no longer on the old, and keeps the clients it had.
        before = KazooClient(ens.servers[other].hosts, timeout=10)
        before.start(30)
        try:
            old_port = ens.servers[other].port
            step("move a client port", move_client_port(other))
            step("a new client on the new port", lambda: new_client_get(other))
            out.append(("the old port takes clients", port_answers(hosts[other], old_port)))
            conf = four_letter(hosts[other], ens.servers[other].port, "conf")
            out.append(("conf names the new port", f"clientPort={ens.servers[other].port}" in conf))
            step("a client from before the move", lambda: before.get("/zookeeper/config"))
        finally:
            before.stop()
            before.close()
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
        # The leader leaves: it steps down at once, the others elect in a new epoch,
        # and it follows without a vote. Whether the reply reaches the client before
        # its server starts electing is a race on both, so it is not compared.
        step("join again", reconfig(joining=spec(other)))
        try:
            zk.reconfig(None, str(leader), None)
        except Exception:  # noqa: BLE001 - ConnectionLoss or not, see above
            pass
        step("config after the leader left", lambda: retry(zk.get, "/zookeeper/config"))
        step("a write in the new epoch", lambda: (b"", retry(zk.set, "/zookeeper", b"")))
        deadline = time.monotonic() + 20
        while sorted(ens.mode(i) for i in ens.servers) != ["follower", "follower", "leader"]:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        out.append(("roles after the leader left", sorted(ens.mode(i) for i in ens.servers)))
        out.append(("the old leader", ens.mode(leader)))
    finally:
        for c in (zk, plain):
            c.stop()
            c.close()
    # What each member keeps on disk: the dynamic file zoo.cfg names, and its lines.
    for i in (leader, follower):
        cfg_path = ens.servers[i].conf_path
        text = open(cfg_path).read()
        dynamic = re.search(r"^dynamicConfigFile=(.*)$", text, re.M).group(1)
        files = sorted(
            names.zxid(int(n.rsplit(".", 1)[1], 16))
            for n in os.listdir(os.path.dirname(cfg_path))
            if n.startswith("zoo.cfg.dynamic.")
        )
        body = names.text(open(dynamic).read()).splitlines()
        out.append((f"files of server {names.roles[i]}", files))
        last = names.zxid(int(dynamic.rsplit(".", 1)[1], 16))
        out.append(("dynamic file", last, sorted(body)))
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
    seen = dict((t[0], t[1]) for t in theirs)
    last = seen["config at the end"]
    # and the moved member took clients on its new port only, and kept its old ones
    assert seen["a new client on the new port"][0] == "ok"
    assert seen["the old port takes clients"] is False
    assert seen["a client from before the move"][0] == "ok"
    assert seen["conf names the new port"] is True
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
