"""Deploys racklab's Kafka from the topology's `services: kafka:` section:

    kafka: {nodes: [n1, n2, n4], default.replication.factor: 3, min.insync.replicas: 2}

Every other key with a dot is a Kafka broker setting and goes into each node's
server.properties unchanged. Brokers listen on the node's address, port 9092, and
advertise that IP address (not the node name) so clients on the host, which do not
resolve lab node names, can connect. They coordinate through the lab's ZooKeeper:
the zookeeper section's nodes, port 2181.
"""

from __future__ import annotations

import asyncio

from lab.backends.base import NODE_DATA_DIR
from lab.orchestrator.deployers.base import PYTHON, ServiceDeployer, ServiceProcess, config_value

KAFKA_PORT = 9092
ZOOKEEPER_PORT = 2181
# keys that describe the deployment rather than a broker setting
ROLE_KEYS = {"nodes", "zookeeper_nodes"}


class KafkaDeployer(ServiceDeployer):
    name = "kafka"

    def plan(
        self, section: dict, addresses: dict[str, str], racks: dict[str, str]
    ) -> list[ServiceProcess]:
        nodes = list(section.get("nodes", []))
        if not nodes:
            raise ValueError("services.kafka.nodes must list at least one node")
        for n in nodes:
            if n not in addresses:
                raise ValueError(f"services.kafka names node {n!r}, which is not in the lab")
        zk_connect = section.get("zookeeper.connect")
        if not zk_connect:
            zk_nodes = section.get("zookeeper_nodes")
            if not zk_nodes:
                raise ValueError(
                    "services.kafka needs ZooKeeper: add a zookeeper service to the lab "
                    "(or set zookeeper.connect in services.kafka)"
                )
            zk_connect = ",".join(
                f"{addresses[z].split('/')[0]}:{ZOOKEEPER_PORT}"
                for z in zookeeper_nodes_checked(zk_nodes, addresses)
            )
        n = len(nodes)
        base = f"{NODE_DATA_DIR}/kafka"
        procs = []
        for i, node in enumerate(nodes):
            ip = addresses[node].split("/")[0]
            props = {
                "broker.id": str(i + 1),
                "listeners": f"PLAINTEXT://{ip}:{KAFKA_PORT}",
                "advertised.listeners": f"PLAINTEXT://{ip}:{KAFKA_PORT}",
                "log.dirs": f"{base}/logs",
                "zookeeper.connect": zk_connect,
                "broker.rack": racks.get(node, ""),
                "offsets.topic.replication.factor": str(min(3, n)),
                # transactions work in a lab of one or two brokers too (as the offsets topic;
                # Kafka's own server.properties does the same for its single-broker quickstart)
                "transaction.state.log.replication.factor": str(min(3, n)),
                "transaction.state.log.min.isr": str(min(2, n)),
                "default.replication.factor": "1",
                "min.insync.replicas": "1",
            }
            if not props["broker.rack"]:
                del props["broker.rack"]
            for k, v in section.items():
                if k not in ROLE_KEYS and "." in k:
                    props[k] = config_value(v)
            props["zookeeper.connect"] = zk_connect
            conf = f"{base}/server.properties"
            text = "# written by racklab from the topology's services.kafka section\n" + "".join(
                f"{k}={v}\n" for k, v in props.items()
            )
            procs.append(
                ServiceProcess(
                    service="kafka",
                    role="broker",
                    node=node,
                    argv=[PYTHON, "-m", "lab.services.kafka", conf],
                    files={conf: text},
                    ports=[KAFKA_PORT],
                )
            )
        return procs

    def plan_for_lab(
        self, services: dict, addresses: dict[str, str], racks: dict[str, str]
    ) -> list[ServiceProcess]:
        """Like plan(), given every service section: finds the lab's ZooKeeper nodes."""
        section = dict(services["kafka"])
        zk = services.get("zookeeper") or {}
        if "zookeeper.connect" not in section and zk.get("nodes"):
            section["zookeeper_nodes"] = list(zk["nodes"])
        return self.plan(section, addresses, racks)

    def status(self, proc: ServiceProcess, address: str) -> dict:
        try:
            from lab.services.kafka.admin import broker_status

            return asyncio.run(broker_status(address.split("/")[0], KAFKA_PORT, timeout=3))
        except Exception as e:  # noqa: BLE001 - status must not raise
            return {"error": str(e)}


def zookeeper_nodes_checked(zk_nodes: list[str], addresses: dict[str, str]) -> list[str]:
    for z in zk_nodes:
        if z not in addresses:
            raise ValueError(f"services.zookeeper names node {z!r}, which is not in the lab")
    return list(zk_nodes)
