"""Children come back in Apache ZooKeeper's order (its HashSet's), also after the
server restarts from its own files: the same seeded creates and deletes go to
Debian's Apache 3.8 and to racklab's (server processes), and getChildren must list
the same names in the same order before and after each of two restarts (the first
replays the log, the second loads the snapshot the first start took)."""

from __future__ import annotations

import random

import pytest
from kazoo.client import KazooClient

from lab.services.zookeeper.minicluster import standalone
from lab.testing import apache_zookeeper as apache

pytestmark = pytest.mark.skipif(
    not apache.available(), reason="Debian's zookeeper package is not installed"
)


def _apache_argv(cfg: str) -> list[str]:
    return apache.apache_zk_argv(cfg)


def _fill(hosts: str, seed: int) -> None:
    rng = random.Random(seed)
    zk = KazooClient(hosts)
    zk.start(timeout=30)
    try:
        zk.create("/o")
        names = []
        for _ in range(80):
            name = rng.choice(["n", "lock-", "é", "item", "x"]) + str(rng.randrange(10**6))
            names.append(zk.create(f"/o/{name}", sequence=rng.random() < 0.3).rsplit("/", 1)[1])
            if rng.random() < 0.3:
                zk.delete("/o/" + names.pop(rng.randrange(len(names))))
        # most of them go: the HashSet keeps the table it grew to, a reloaded one
        # is sized for what is left
        for _ in range(45):
            zk.delete("/o/" + names.pop(rng.randrange(len(names))))
        for i in range(5):
            zk.create(f"/o/{names[i]}/c{i}")
    finally:
        zk.stop()
        zk.close()


def _listing(hosts: str) -> list:
    zk = KazooClient(hosts)
    zk.start(timeout=30)
    try:
        top = zk.get_children("/o")
        return [top, zk.get_children("/")] + [zk.get_children(f"/o/{c}") for c in top[:5]]
    finally:
        zk.stop()
        zk.close()


def test_children_order_as_apache_across_restarts(tmp_path):
    servers = {
        "apache": standalone(str(tmp_path / "apache"), argv=_apache_argv, **apache.APACHE_DEFAULTS),
        "racklab": standalone(str(tmp_path / "racklab")),
    }
    seen: dict[str, list] = {}
    try:
        for name, s in servers.items():
            s.start()
            _fill(s.hosts, seed=7)
            seen[name] = [_listing(s.hosts)]
            for _ in range(2):
                s.kill()
                s.start()
                seen[name].append(_listing(s.hosts))
    finally:
        for s in servers.values():
            s.kill()
    for i, when in enumerate(("before", "after the first restart", "after the second")):
        assert seen["racklab"][i] == seen["apache"][i], when
