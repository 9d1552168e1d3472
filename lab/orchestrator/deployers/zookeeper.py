"""Deploys racklab's ZooKeeper from the topology's `services: zookeeper:` section:

    zookeeper: {nodes: [n1, n4, n5], tickTime: 2000, initLimit: 10, syncLimit: 5}

Each node gets <data>/zookeeper/zoo.cfg in Apache ZooKeeper's own format and a
myid file; the server listens for clients on the node's address, port 2181, and for
its peers on 2888 (quorum) and 3888 (election). Any other ZooKeeper key in the
section (snapCount, maxSessionTimeout, ...) goes into zoo.cfg unchanged.
"""

from __future__ import annotations

import socket

from lab.backends.base import NODE_DATA_DIR
from lab.orchestrator.deployers.base import PYTHON, ServiceDeployer, ServiceProcess, config_value

CLIENT_PORT = 2181
SERVING = ("leader", "follower", "standalone", "observer")
PEER_PORT = 2888
ELECTION_PORT = 3888
# A lab is for looking inside: its zoo.cfg whitelists every four-letter word (Apache
# 3.5+ answers only `srvr` without the key); the topology can set it narrower.
DEFAULTS = {"tickTime": 2000, "initLimit": 10, "syncLimit": 5, "4lw.commands.whitelist": "*"}
# keys that describe the deployment rather than a zoo.cfg setting
ROLE_KEYS = {"nodes"}
# keys racklab decides per node; a section cannot override them
OWN_KEYS = {"dataDir", "dataLogDir", "clientPort", "clientPortAddress"}


def _ip(address: str) -> str:
    return address.split("/")[0]


class ZooKeeperDeployer(ServiceDeployer):
    name = "zookeeper"

    def plan(
        self, section: dict, addresses: dict[str, str], racks: dict[str, str]
    ) -> list[ServiceProcess]:
        nodes = list(section.get("nodes", []))
        if not nodes:
            raise ValueError("services.zookeeper.nodes must list at least one node")
        for n in nodes:
            if n not in addresses:
                raise ValueError(f"services.zookeeper names node {n!r}, which is not in the lab")
        if len(nodes) % 2 == 0:
            raise ValueError("a ZooKeeper ensemble needs an odd number of servers (1, 3 or 5)")
        for k in section:
            if k in OWN_KEYS:
                raise ValueError(f"services.zookeeper.{k} is set by racklab for each node")
        settings = dict(DEFAULTS)
        settings.update({k: v for k, v in section.items() if k not in ROLE_KEYS})
        data_dir = f"{NODE_DATA_DIR}/zookeeper"
        servers = {}
        if len(nodes) > 1:
            for i, node in enumerate(nodes, 1):
                servers[f"server.{i}"] = f"{_ip(addresses[node])}:{PEER_PORT}:{ELECTION_PORT}"
        procs = []
        for i, node in enumerate(nodes, 1):
            cfg = {
                **settings,
                "dataDir": data_dir,
                "clientPort": CLIENT_PORT,
                "clientPortAddress": _ip(addresses[node]),
                **servers,
            }
            text = (
                "# written by racklab from the topology's services.zookeeper section\n"
                + "".join(f"{k}={config_value(v)}\n" for k, v in cfg.items())
            )
            conf = f"{data_dir}/zoo.cfg"
            procs.append(
                ServiceProcess(
                    service="zookeeper",
                    role="server",
                    node=node,
                    argv=[PYTHON, "-m", "lab.services.zookeeper", conf],
                    files={conf: text, f"{data_dir}/myid": f"{i}\n"},
                    ports=[CLIENT_PORT],
                )
            )
        return procs

    def start_order(self, procs: list[ServiceProcess]) -> list[ServiceProcess]:
        """The highest myid first. FastLeaderElection settles on the best vote it hears
        before finalizeWait runs out, and with equal zxids that is the highest id: when
        that server starts last and late (a loaded machine), the first ones may agree on
        a lower id that it then overrides, and a server left following a leader that
        never leads waits initLimit x tickTime (20 s by default) before it looks again.
        Started first, it is heard by the others from their first round."""
        return list(reversed(procs))

    def unready(self, procs: list[ServiceProcess], addresses: dict[str, str]) -> str | None:
        """Every server serving (leader, follower or standalone): a port that accepts is
        not yet an ensemble that has elected a leader and can open sessions."""
        for p in procs:
            role = self.status(p, addresses[p.node]).get("role")
            if role not in SERVING:
                return f"the server on {p.node} is not serving yet ({role or 'no answer'})"
        return None

    def status(self, proc: ServiceProcess, address: str) -> dict:
        """Role and last zxid from the server's `srvr` four-letter word."""
        try:
            text = four_letter(_ip(address), proc.ports[0] if proc.ports else CLIENT_PORT, "srvr")
        except OSError as e:
            return {"error": str(e)}
        facts = {}
        for line in text.splitlines():
            if line.startswith("Mode: "):
                facts["role"] = line[6:]
            elif line.startswith("Zxid: "):
                facts["zxid"] = line[6:]
            elif line.startswith("Connections: "):
                facts["connections"] = int(line.split(": ", 1)[1])
            elif line.startswith("Node count: "):
                facts["znodes"] = int(line.split(": ", 1)[1])
        if not facts:
            facts["role"] = "not serving" if "not currently serving" in text else "unknown"
        return facts


def four_letter(host: str, port: int, word: str, timeout: float = 3.0) -> str:
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(word.encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.decode("utf-8", "replace")
