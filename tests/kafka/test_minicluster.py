"""The minicluster as the benchmark and demos start it: brokers on their own loopback
addresses, one after another, on racklab's ZooKeeper; and a broker whose port was taken."""

import socket

from lab.services.kafka import admin
from lab.services.kafka.minicluster import KafkaMiniCluster


def test_brokers_on_their_addresses_form_one_cluster(racklab_zk, tmp_path):
    with KafkaMiniCluster(tmp_path, racklab_zk.hosts) as cluster:
        cluster.start(["127.0.0.31", "127.0.0.32"])
        assert [b.bootstrap.rsplit(":", 1)[0] for b in cluster.brokers] == [
            "127.0.0.31",
            "127.0.0.32",
        ]
        # a topic replicated on both: each broker registered under the cluster's chroot
        made = admin.run(
            admin.create_topic(cluster.bootstrap, "both", partitions=2, replication_factor=2)
        )
        assert made == {"topic": "both", "partitions": 2, "replication_factor": 2}
        first = cluster.brokers[0]
        status = admin.run(admin.broker_status(first.host, first.port))
    assert status["brokers"] == 2 and status["topics"] == 1
    assert all(b.proc.poll() is not None for b in cluster.brokers)  # stopped on the way out


def test_a_port_taken_before_the_first_start_is_replaced(racklab_zk, tmp_path):
    """Other suites share this machine's loopback: a free port picked for a broker can be
    taken before the broker binds it. A broker that never ran takes another port."""
    cluster = KafkaMiniCluster(tmp_path, racklab_zk.hosts)
    b = cluster.add_broker(7, start=False)
    with socket.socket() as thief:
        thief.bind((b.host, b.port))
        thief.listen()
        taken = b.port
        try:
            b.start()
            assert b.port != taken and f"{b.host}:{b.port}" in b.config.read_text()
            assert "address already in use" in b.log_text()
            made = admin.run(admin.create_topic(b.bootstrap, "moved", partitions=1))
            assert made["topic"] == "moved"
        finally:
            cluster.stop()
