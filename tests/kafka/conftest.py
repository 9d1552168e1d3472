from __future__ import annotations

import functools

import pytest

from lab.services.kafka.minicluster import KafkaMiniCluster
from lab.services.ports import free_port
from lab.services.zookeeper.minicluster import standalone
from lab.testing.apache_zookeeper import ApacheZooKeeper, available

# What the brokers' ZooKeeper is told, Apache's and racklab's alike.
ZK_TICK = 500
ZK_SETTINGS = {"minSessionTimeout": 1000, "maxSessionTimeout": 60000}


@pytest.fixture(scope="package")
def apache_zk(tmp_path_factory):
    if not available():
        pytest.skip("Debian's zookeeper package (Java) is not installed")
    zk = ApacheZooKeeper(
        str(tmp_path_factory.mktemp("zk")), free_port(), tick_time=ZK_TICK, extra=ZK_SETTINGS
    ).start()
    yield zk
    zk.stop()


@pytest.fixture(scope="package")
def racklab_zk(tmp_path_factory):
    zk = standalone(str(tmp_path_factory.mktemp("rzk")), tick_time=ZK_TICK, **ZK_SETTINGS)
    yield zk.start()
    zk.stop()


@pytest.fixture(params=["apache"])
def zk_server(request):
    """The ZooKeeper a test's brokers use; tests that parametrize this with
    "racklab" run against racklab's own ZooKeeper as well."""
    return request.getfixturevalue("apache_zk" if request.param == "apache" else "racklab_zk")


@pytest.fixture
def make_broker(tmp_path, zk_server):
    """Factory: make_broker(id, host=..., **props) -> started BrokerProcess; all
    brokers of one test share a ZooKeeper chroot and are killed afterwards."""
    cluster = KafkaMiniCluster(tmp_path, zk_server.hosts)
    make = functools.partial(cluster.add_broker)
    make.zk_connect = cluster.zk_connect
    yield make
    cluster.stop()


@pytest.fixture
def broker(make_broker):
    return make_broker(0)


@pytest.fixture(scope="package")
def three_brokers(tmp_path_factory, racklab_zk):
    """One 3-broker cluster the admin-API and client-feature tests share (each test on
    topics and groups of its own names): started once, stopped after the last Kafka
    test (package scope: its brokers and log cleaner do not idle through the rest of
    the suite, nor do the ZooKeepers above)."""
    # the log cleaner every 0.3 s, for the compaction test
    c = KafkaMiniCluster(
        tmp_path_factory.mktemp("three"), racklab_zk.hosts, **{"log.cleaner.backoff.ms": 300}
    )
    try:
        c.start(["127.0.0.1"] * 3)
        yield c
    finally:
        c.stop()
