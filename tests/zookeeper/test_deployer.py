"""The orchestrator's ZooKeeper deployer: the zoo.cfg and myid it renders are what
our server (and Apache ZooKeeper's parser) expects, and a rendered 3-node plan
runs as a real ensemble on loopback addresses."""

from __future__ import annotations

import os

import pytest

from lab.orchestrator.deployers.zookeeper import ZooKeeperDeployer
from lab.services.zookeeper.config import parse


def test_plan_renders_zoo_cfg_and_myid():
    addrs = {"n1": "10.10.1.2/24", "n4": "10.10.2.2/24", "n5": "10.10.2.3/24"}
    procs = ZooKeeperDeployer().plan(
        {"nodes": ["n1", "n4", "n5"], "tickTime": 500, "snapCount": 1000}, addrs, {}
    )
    assert [p.node for p in procs] == ["n1", "n4", "n5"]
    for i, p in enumerate(procs, 1):
        assert p.ports == [2181] and p.service == "zookeeper" and p.role == "server"
        cfg_path = next(k for k in p.files if k.endswith("zoo.cfg"))
        myid_path = next(k for k in p.files if k.endswith("myid"))
        assert p.files[myid_path] == f"{i}\n"
        assert p.argv[-1] == cfg_path
        text = p.files[cfg_path]
        assert "tickTime=500\n" in text and "snapCount=1000\n" in text
        assert f"clientPortAddress={addrs[p.node].split('/')[0]}\n" in text
        assert "server.2=10.10.2.2:2888:3888\n" in text


def test_single_node_is_standalone():
    (p,) = ZooKeeperDeployer().plan({"nodes": ["n1"]}, {"n1": "10.0.0.2"}, {})
    assert "server." not in next(v for k, v in p.files.items() if k.endswith("zoo.cfg"))


@pytest.mark.parametrize(
    "section, message",
    [
        ({"nodes": []}, "at least one node"),
        ({"nodes": ["n1", "n2"]}, "odd number"),
        ({"nodes": ["nX"]}, "not in the lab"),
        ({"nodes": ["n1"], "clientPort": 1}, "set by racklab"),
    ],
)
def test_plan_refuses_bad_sections(section, message):
    with pytest.raises(ValueError, match=message):
        ZooKeeperDeployer().plan(section, {"n1": "10.0.0.2", "n2": "10.0.0.3"}, {})


def test_rendered_plan_runs_as_an_ensemble(tmp_path, process_server):
    """Render for three loopback 'nodes', rewrite only the node-local paths and ports,
    and check the three servers elect a leader that the deployer's status() reports."""
    from lab.services.ports import free_port
    from lab.services.zookeeper.minicluster import ServerProcess, four_letter, wait_ruok

    hosts = {"a": "127.0.0.91", "b": "127.0.0.92", "c": "127.0.0.93"}
    procs = ZooKeeperDeployer().plan({"nodes": list(hosts), "tickTime": 200}, hosts, {})
    servers = []
    ports = {n: {k: free_port(h) for k in ("client", "peer", "election")} for n, h in hosts.items()}
    for p in procs:
        d = tmp_path / p.node
        d.mkdir()
        text = next(v for k, v in p.files.items() if k.endswith("zoo.cfg"))
        text = text.replace("/srv/node/zookeeper", str(d)).replace(
            "clientPort=2181", f"clientPort={ports[p.node]['client']}"
        )
        for n, h in hosts.items():
            text = text.replace(f"{h}:2888:3888", f"{h}:{ports[n]['peer']}:{ports[n]['election']}")
        (d / "zoo.cfg").write_text(text)
        (d / "myid").write_text(next(v for k, v in p.files.items() if k.endswith("myid")))
        assert parse(text).servers[1].host == "127.0.0.91"
        s = ServerProcess(
            str(d / "zoo.cfg"), hosts[p.node], ports[p.node]["client"], str(d / "log")
        )
        servers.append(s.start(wait=False))
    try:
        for s in servers:
            wait_ruok(s.host, s.port, proc=s.proc)
        import time

        deadline = time.monotonic() + 30
        modes = []
        while time.monotonic() < deadline:
            modes = sorted(
                line[6:]
                for s in servers
                for line in four_letter(s.host, s.port, "srvr").splitlines()
                if line.startswith("Mode: ")
            )
            if modes == ["follower", "follower", "leader"]:
                break
            time.sleep(0.1)
        assert modes == ["follower", "follower", "leader"]
        # a lab's zoo.cfg whitelists every four-letter word (Apache's default is srvr)
        zoo = next(v for k, v in procs[0].files.items() if k.endswith("zoo.cfg"))
        assert "4lw.commands.whitelist=*\n" in zoo
        mntr = four_letter(servers[0].host, servers[0].port, "mntr")
        assert "zk_server_state\t" in mntr
        dep = ZooKeeperDeployer()
        roles = []
        for p, s in zip(procs, servers, strict=True):
            p.ports = [s.port]
            facts = dep.status(p, s.host)
            roles.append(facts["role"])
            assert facts["zxid"].startswith("0x")
        assert sorted(roles) == ["follower", "follower", "leader"]
        assert os.path.exists(tmp_path / "a" / "acceptedEpoch")
    finally:
        for s in servers:
            s.kill()
