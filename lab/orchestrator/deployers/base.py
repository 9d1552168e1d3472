"""How the orchestrator deploys a service: each service module turns its section of
the topology into ServiceProcess records (what to run on which node, which config
files to write there, which ports answer when it is healthy).

A service package under lab/services/ never imports this: it is a server you can
run alone. This layer only renders its config and starts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lab.topology.services import SERVICES

# argv[0] placeholder: the node backend replaces it with the node's own Python
# (the venv's interpreter on process nodes, /usr/bin/python3 in images).
PYTHON = "{python}"


@dataclass
class ServiceProcess:
    service: str  # "zookeeper", "kafka", "hdfs", "yarn"
    role: str  # "server", "broker", "namenode", "datanode", "resourcemanager", ...
    node: str
    argv: list[str]
    files: dict[str, str] = field(default_factory=dict)  # path inside the node -> content
    ports: list[int] = field(default_factory=list)  # TCP ports that accept when healthy
    env: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.service}-{self.role}-{self.node}"

    @property
    def start_after(self) -> list[str]:
        """What must be up before this process, from the service registry: the service
        its service requires, and its own service's master role if it is a worker."""
        kind = SERVICES[self.service]
        after = [kind.requires] if kind.requires else []
        if kind.master and self.role != kind.master:
            after.append(f"{self.service}-{kind.master}")
        return after


def config_value(value: object) -> str:
    """A topology setting as the real system's config files spell it (YAML's true is
    Hadoop's and Kafka's "true", not Python's "True")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ServiceDeployer:
    """Base for one service's deployment logic (lab/orchestrator/deployers/<name>.py)."""

    name = "?"

    def plan(
        self, section: dict, addresses: dict[str, str], racks: dict[str, str]
    ) -> list[ServiceProcess]:
        """section: the service's topology section (already validated);
        addresses: node name -> IPv4 address; racks: node name -> rack name."""
        raise NotImplementedError

    def plan_for_lab(
        self, services: dict, addresses: dict[str, str], racks: dict[str, str]
    ) -> list[ServiceProcess]:
        """Given every service section of the lab (a service that needs another, like
        Kafka needing ZooKeeper, overrides this to find it); by default its own section."""
        return self.plan(services[self.name], addresses, racks)

    def start_order(self, procs: list[ServiceProcess]) -> list[ServiceProcess]:
        """The order to start the processes ``plan`` made in (by default the same)."""
        return procs

    def unready(self, procs: list[ServiceProcess], addresses: dict[str, str]) -> str | None:
        """After every port answers: what still keeps the service from being usable
        (e.g. "2 of 4 DataNodes registered"), or None when it is ready. Must not raise."""
        return None

    def status(self, proc: ServiceProcess, address: str) -> dict:
        """Extra facts for `lab status` (role, zxid, ...). Must not raise."""
        return {}
