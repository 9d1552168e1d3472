"""Validation of the services section: which roles each service has and which
settings look like the real system's keys. Rendering configs is the orchestrator's job."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .suggest import did_you_mean


@dataclass(frozen=True)
class ServiceKind:
    """One service racklab can deploy, described once: the topology check reads its
    roles, the deploy order and chaos (which restarts a node's services in order) read
    what it requires, the orchestrator finds its deployer by its name
    (lab/orchestrator/deployers/<name>.py), and chaos workloads name it as their
    `service`."""

    # role key -> "one" (a node name) or "many" (a list of node names), and whether required
    roles: dict[str, tuple[str, bool]]
    requires: str | None = None  # a service that must be ready before this one starts
    master: str | None = None  # the role the others of this service register with


SERVICES: dict[str, ServiceKind] = {
    "zookeeper": ServiceKind({"nodes": ("many", True)}),
    "kafka": ServiceKind({"nodes": ("many", True)}, requires="zookeeper"),
    "hdfs": ServiceKind(
        {
            "namenode": ("one", True),
            "secondarynamenode": ("one", False),
            "datanodes": ("many", True),
        },
        master="namenode",
    ),
    "yarn": ServiceKind(
        {"resourcemanager": ("one", True), "nodemanagers": ("many", True)},
        requires="hdfs",
        master="resourcemanager",
    ),
}
ROLES = {name: kind.roles for name, kind in SERVICES.items()}
REQUIRES = {name: kind.requires for name, kind in SERVICES.items() if kind.requires}


def start_order(names: Iterable[str]) -> list[str]:
    """The services among `names` in an order where each comes after what it requires."""
    wanted, done = set(names), []

    def visit(name: str) -> None:
        if name in done or name not in wanted:
            return
        if SERVICES[name].requires:
            visit(SERVICES[name].requires)
        done.append(name)

    for name in SERVICES:
        visit(name)
    return done


# ZooKeeper's own keys are camelCase without dots; everything else uses dotted keys.
ZOOKEEPER_KEYS = {
    "tickTime", "initLimit", "syncLimit", "maxClientCnxns", "minSessionTimeout",
    "maxSessionTimeout", "globalOutstandingLimit", "preAllocSize", "snapCount",
    "autopurge.snapRetainCount", "autopurge.purgeInterval", "jute.maxbuffer",
    "4lw.commands.whitelist", "forceSync", "electionAlg", "leaderServes",
}  # fmt: skip

_SETTING = re.compile(r"^[a-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+$")


def check_services(services: dict, node_names: set[str], error) -> None:
    """error(path, message) builds the exception to raise (with the file's line)."""
    for svc, section in services.items():
        if svc not in ROLES:
            raise error(
                ("services", svc),
                f"unknown service (known: {', '.join(ROLES)})" + did_you_mean(svc, ROLES),
            )
        if not isinstance(section, dict):
            raise error(("services", svc), "must be a mapping of roles and settings")
        need = REQUIRES.get(svc)
        if need and need not in services:
            raise error(("services", svc), f"{svc} needs a {need} service in the same lab")
        roles = ROLES[svc]
        for role, (arity, required) in roles.items():
            if role not in section:
                if required:
                    raise error(("services", svc), f"missing required field '{role}'")
                continue
            value = section[role]
            names = [value] if arity == "one" else value
            if arity == "one" and not isinstance(value, str):
                raise error(("services", svc, role), "must be one node name")
            if arity == "many" and (not isinstance(value, list) or not value):
                raise error(("services", svc, role), "must be a non-empty list of node names")
            for i, n in enumerate(names):
                path = ("services", svc, role) + (() if arity == "one" else (i,))
                if n not in node_names:
                    raise error(path, f"unknown node {n!r} (not in any rack)")
            if arity == "many" and len(set(names)) != len(names):
                raise error(("services", svc, role), "names a node twice")
        for key, value in section.items():
            if key in roles:
                continue
            known = svc == "zookeeper" and key in ZOOKEEPER_KEYS
            if not known and not _SETTING.match(key):
                raise error(
                    ("services", svc, key),
                    f"unknown field (roles: {', '.join(roles)}; settings use the real "
                    f"system's key names, like {_example(svc)})"
                    + did_you_mean(key, [*roles, *(ZOOKEEPER_KEYS if svc == "zookeeper" else ())]),
                )
            if isinstance(value, dict | list):
                raise error(("services", svc, key), "a setting must be a single value")
        if svc == "zookeeper" and len(section["nodes"]) % 2 == 0:
            raise error(
                ("services", svc, "nodes"),
                "a ZooKeeper ensemble needs an odd number of servers (1, 3 or 5)",
            )


def _example(svc: str) -> str:
    return {
        "zookeeper": "tickTime",
        "kafka": "num.partitions",
        "hdfs": "dfs.replication",
        "yarn": "yarn.nodemanager.resource.memory-mb",
    }[svc]
