"""Creating topics, as Kafka's AdminZkClient does for a ZooKeeper-era broker: every
check before anything is written (the name, partitions and replicas, a manual
assignment, each config), then one write of the assignment to ZooKeeper. The
controller and the brokers' watches do the rest."""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

from . import topicconfig as tc
from .protocol.errors import Error
from .topicnames import validate_topic_name

if TYPE_CHECKING:
    from .broker import Broker

log = logging.getLogger("lab.kafka.topics")

MAX_PARTITIONS_PER_TOPIC = 1000


def assign_replicas(b: Broker, partitions: int, rf: int) -> dict[int, list[int]]:
    """Round-robin from a random start, as Kafka's AdminUtils does (no racks)."""
    brokers = sorted(b.live_brokers)
    start = random.randrange(len(brokers))
    shift = random.randrange(len(brokers))
    out = {}
    for p in range(partitions):
        first = (start + p) % len(brokers)
        reps = [brokers[first]]
        for j in range(rf - 1):
            reps.append(brokers[(first + 1 + (shift + j) % (len(brokers) - 1)) % len(brokers)])
        out[p] = reps
    return out


async def create_topic(
    b: Broker,
    name: str,
    partitions: int,
    rf: int,
    config: dict[str, str],
    assignment: dict[int, list[int]] | None = None,
    validate_only: bool = False,
) -> tuple[Error, str | None]:
    """Everything is checked before anything is written to ZooKeeper (Kafka's
    AdminZkClient.validateTopicCreate): the name, the partitions and replicas, and
    every config against LogConfig's types and ranges."""
    err = validate_topic_name(name)
    if err:
        return Error.INVALID_TOPIC_EXCEPTION, err
    # ZooKeeper decides, not this broker's cache: right after a deletion the cache may
    # still hold the old topic for a moment (Kafka's AdminZkClient asks ZooKeeper too)
    if await b.in_thread(b.zk.topic_exists, name):
        return Error.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists."
    if await b.in_thread(b.zk.delete_pending, name):
        return Error.TOPIC_ALREADY_EXISTS, f"Topic '{name}' is marked for deletion."
    if assignment is None:
        if partitions <= 0:
            return Error.INVALID_PARTITIONS, "Number of partitions must be larger than 0."
        if partitions > MAX_PARTITIONS_PER_TOPIC:
            # Kafka would try and run out of memory assigning 2^31 partitions; a lab
            # broker refuses what it could not open (two files per partition)
            return (
                Error.INVALID_PARTITIONS,
                f"Number of partitions {partitions} is above this broker's limit of "
                f"{MAX_PARTITIONS_PER_TOPIC} per topic.",
            )
        if rf <= 0:
            return Error.INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0."
        if rf > len(b.live_brokers):
            return (
                Error.INVALID_REPLICATION_FACTOR,
                f"Replication factor: {rf} larger than available brokers: {len(b.live_brokers)}.",
            )
    else:
        if len(assignment) > MAX_PARTITIONS_PER_TOPIC:
            return (
                Error.INVALID_PARTITIONS,
                f"Number of partitions {len(assignment)} is above this broker's limit of "
                f"{MAX_PARTITIONS_PER_TOPIC} per topic.",
            )
        why = assignment_error(b, assignment)
        if why:
            return Error.INVALID_REPLICA_ASSIGNMENT, why
    try:
        tc.validate(config)
    except tc.ConfigValueError as e:
        return Error.INVALID_CONFIG, str(e)
    if validate_only:
        return Error.NONE, None
    if assignment is None:
        assignment = assign_replicas(b, partitions, rf)
    ok = await b.in_thread(b.zk.create_topic, name, assignment, config)
    if not ok:
        return Error.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists."
    log.info("created topic %s %s", name, assignment)
    return Error.NONE, None


def assignment_error(b: Broker, assignment: dict[int, list[int]]) -> str | None:
    """A manual assignment that would make a partition with no possible leader, as
    Kafka's controller refuses it (ReplicationControlManager's messages)."""
    rf = None
    for p in sorted(assignment):
        reps = assignment[p]
        if not reps:
            return "The manual partition assignment includes an empty replica list."
        for bid in sorted(reps):
            if bid not in b.known_brokers and not any(
                bid in r for a in b.assignments.values() for r in a.values()
            ):
                return (
                    f"The manual partition assignment includes broker {bid}, but no such "
                    "broker is registered."
                )
        if len(set(reps)) != len(reps):
            dup = next(r for r in reps if reps.count(r) > 1)
            return f"The manual partition assignment includes the broker {dup} more than once."
        if not any(bid in b.live_brokers for bid in reps):
            return (
                f"All brokers specified in the manual partition assignment for partition "
                f"{p} are offline, so it could have no leader."
            )
        if rf is not None and len(reps) != rf:
            return (
                f"The manual partition assignment includes a partition with {len(reps)} "
                "replica(s), but this is not consistent with previous partitions, which "
                f"have {rf} replica(s)."
            )
        rf = len(reps)
    if sorted(assignment) != list(range(len(assignment))):
        return "partitions should be a consecutive 0-based integer sequence"
    return None


async def ensure_internal_topic(
    b: Broker, name: str, partitions: int, rf: int, what: str, config: dict, said
) -> Error:
    """An internal topic (__consumer_offsets, __transaction_state) made on first use,
    as KafkaApis.createInternalTopic does: COORDINATOR_NOT_AVAILABLE while too few
    brokers are alive for its replication factor, and Kafka's log line saying so."""
    if name in b.assignments:
        return Error.NONE
    if len(b.live_brokers) < rf:
        if said.due(("internal topic replication factor", name)):
            # Kafka's words, so a search finds them
            log.error(
                "Number of alive brokers '%d' does not meet the required replication "
                "factor '%d' for %s. This error can be ignored if the cluster is starting "
                "up and not all brokers are up yet.",
                len(b.live_brokers),
                rf,
                what,
            )
        return Error.COORDINATOR_NOT_AVAILABLE
    err, _ = await create_topic(b, name, partitions, rf, config)
    if err not in (Error.NONE, Error.TOPIC_ALREADY_EXISTS):
        return Error.COORDINATOR_NOT_AVAILABLE
    return Error.NONE
