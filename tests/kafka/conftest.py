from __future__ import annotations

import pytest

from lab.bench.reference import apache_zk_available

from .kafka_harness import ApacheZooKeeper, BrokerProcess, RacklabZooKeeper, chroot


@pytest.fixture(scope="session")
def apache_zk(tmp_path_factory):
    if not apache_zk_available():
        pytest.skip("Debian's zookeeper package (Java) is not installed")
    zk = ApacheZooKeeper(tmp_path_factory.mktemp("zk"))
    zk.start()
    yield zk
    zk.stop()


@pytest.fixture(scope="session")
def racklab_zk(tmp_path_factory):
    zk = RacklabZooKeeper(tmp_path_factory.mktemp("rzk"))
    zk.start()
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
    made = []
    root = chroot(zk_server)

    def make(broker_id: int = 0, host: str = "127.0.0.1", start: bool = True, **props):
        b = BrokerProcess(tmp_path, broker_id, root, host, **props)
        made.append(b)
        if start:
            b.start()
        return b

    make.zk_connect = root
    yield make
    for b in made:
        b.stop()


@pytest.fixture
def broker(make_broker):
    return make_broker(0)
