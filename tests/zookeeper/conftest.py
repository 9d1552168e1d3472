"""Fixtures: racklab's ZooKeeper in a background thread (fast, port 0) or as a real
subprocess (for kill -9 and restarts), and kazoo clients against it; the servers
themselves are lab.services.zookeeper.minicluster's."""

from __future__ import annotations

import pytest
from kazoo.client import KazooClient

from lab.services.zookeeper.minicluster import ServerProcess, ThreadedServer, standalone


@pytest.fixture
def zk_server(tmp_path):
    s = ThreadedServer(str(tmp_path / "data"))
    yield s
    s.stop()


@pytest.fixture
def make_client(zk_server):
    clients = []

    def make(hosts=None, **kw):
        kw.setdefault("timeout", 5)
        c = KazooClient(hosts=hosts or zk_server.hosts, **kw)
        c.start(timeout=10)
        clients.append(c)
        return c

    yield make
    for c in clients:
        try:
            c.stop()
            c.close()
        except Exception:
            pass


@pytest.fixture
def zk(make_client):
    return make_client()


@pytest.fixture
def process_server(tmp_path):
    """Factory for subprocess servers; every one started is killed at the end."""
    started: list[ServerProcess] = []

    def make(data_dir=None, tick_time=200, **extra):
        data_dir = data_dir or str(tmp_path / f"data{len(started)}")
        s = standalone(data_dir, tick_time=tick_time, **extra)
        started.append(s)
        return s

    yield make
    for s in started:
        s.kill()
