"""Settings that parse but cannot work as written. They are warnings, not errors: the
real HDFS and Kafka accept them too and only complain once data is written, which is
what `lab validate` and `lab up` are there to say before anything is made."""

from __future__ import annotations

from .model import Topology
from .services import SERVICES
from .suggest import did_you_mean


def _int(value) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None  # not a number: the service itself refuses it, with its own message


def warnings(topo: Topology) -> list[str]:
    """One line per setting that cannot work: 'file:line: field: what happens'."""
    out: list[str] = []

    def warn(path: tuple, message: str) -> None:
        out.append(str(topo.error(path, message)))

    hdfs = topo.services.get("hdfs") or {}
    if "dfs.replication" in hdfs:
        rep, dns = _int(hdfs["dfs.replication"]), len(hdfs.get("datanodes") or [])
        if rep is not None and rep > dns:
            warn(
                ("services", "hdfs", "dfs.replication"),
                f"{rep} replicas cannot be placed on {dns} DataNode{'s' * (dns != 1)}: "
                "every block would stay under-replicated",
            )
    kafka = topo.services.get("kafka") or {}
    brokers = len(kafka.get("nodes") or [])
    rf = _int(kafka.get("default.replication.factor", 1))
    if "default.replication.factor" in kafka and rf is not None and rf > brokers:
        warn(
            ("services", "kafka", "default.replication.factor"),
            f"{rf} replicas need {rf} brokers and the lab has {brokers}: "
            "creating a topic would fail",
        )
    isr = _int(kafka.get("min.insync.replicas"))
    if isr is not None and isr > brokers:
        warn(
            ("services", "kafka", "min.insync.replicas"),
            f"{isr} in-sync replicas need {isr} brokers and the lab has {brokers}: "
            "every write with acks=all would be refused",
        )
    elif isr is not None and rf is not None and isr > rf:
        warn(
            ("services", "kafka", "min.insync.replicas"),
            f"{isr} is above the default replication factor {rf}: topics made with "
            "it would refuse every write with acks=all",
        )
    out += _misspelt_settings(topo)
    return out


def _known_settings(service: str) -> set[str]:
    """The keys racklab's own server for ``service`` reads (its defaults)."""
    if service == "hdfs":
        from lab.services.hdfs.config import DEFAULTS

        return set(DEFAULTS)
    if service == "yarn":
        from lab.services.yarn.conf import Configuration

        return set(Configuration.DEFAULTS)
    if service == "kafka":
        from lab.services.kafka import config, topicconfig

        return set(config.KNOWN_KEYS) | set(topicconfig.TOPIC_CONFIGS)
    return set()  # zookeeper: its keys are checked as errors (services.ZOOKEEPER_KEYS)


def _misspelt_settings(topo: Topology) -> list[str]:
    """A setting no server reads but close to one it does: most likely a typo (a key
    nobody reads is passed on as the real systems do, so this is a warning)."""
    out = []
    for svc, section in topo.services.items():
        roles = SERVICES[svc].roles if svc in SERVICES else {}
        known = _known_settings(svc)
        for key in section:
            if key in roles or key in known or not known:
                continue
            hint = did_you_mean(key, known)
            if hint:
                out.append(str(topo.error(("services", svc, key), f"not a key {svc} reads{hint}")))
    return out
