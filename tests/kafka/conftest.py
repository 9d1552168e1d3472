from __future__ import annotations

import functools

import pytest

from lab.bench.reference import apache_zk_argv, apache_zk_available
from lab.services.kafka.minicluster import KafkaMiniCluster, StandaloneZooKeeper


@pytest.fixture(scope="session")
def apache_zk(tmp_path_factory):
    if not apache_zk_available():
        pytest.skip("Debian's zookeeper package (Java) is not installed")
    zk = StandaloneZooKeeper(tmp_path_factory.mktemp("zk"), argv=apache_zk_argv).start()
    yield zk
    zk.stop()


@pytest.fixture(scope="session")
def racklab_zk(tmp_path_factory):
    zk = StandaloneZooKeeper(tmp_path_factory.mktemp("rzk")).start()
    yield zk
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
    cluster = KafkaMiniCluster(tmp_path, zk_server.connect)
    make = functools.partial(cluster.add_broker)
    make.zk_connect = cluster.zk_connect
    yield make
    cluster.stop()


@pytest.fixture
def broker(make_broker):
    return make_broker(0)
