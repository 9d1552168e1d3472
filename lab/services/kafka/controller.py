"""The controller's one job, done the same way whatever triggered it (a broker
came or went, a topic was created or deleted, this broker just won the
/controller election): read the partition states from ZooKeeper and fix every
one whose leader is gone or that has no state yet.

Runs on a worker thread (kazoo calls block); writes are conditional on the
znode version, so a stale controller cannot overwrite a newer decision.
"""

from __future__ import annotations

import json
import logging

from kazoo.exceptions import NoNodeError

from .zk import ZkCluster

log = logging.getLogger("lab.kafka.controller")


def reconcile(
    zk: ZkCluster,
    live: set[int],
    unclean_default: bool,
    preferred: bool = False,
    controller_id: int = -1,
) -> list[str]:
    """One pass over all partitions; returns what it changed (for the log).
    preferred: also hand leadership back to each partition's preferred replica
    (the first of its assignment) where that replica is alive and in the ISR,
    as Kafka's auto.leader.rebalance.enable does every
    leader.imbalance.check.interval.seconds."""
    changes = []
    epoch = zk.controller_epoch()
    try:
        deleting = set(zk.zk.get_children("/admin/delete_topics"))
    except NoNodeError:
        deleting = set()
    for topic in deleting:
        zk.delete_topic_nodes(topic)
        changes.append(f"deleted topic {topic}")
    try:
        topics = zk.zk.get_children("/brokers/topics")
    except NoNodeError:
        topics = []
    for topic in topics:
        try:
            assignment = json.loads(zk.zk.get(f"/brokers/topics/{topic}")[0])["partitions"]
        except NoNodeError:
            continue
        unclean = zk.topic_config(topic).get("unclean.leader.election.enable")
        unclean = unclean_default if unclean is None else unclean == "true"
        for p_str, replicas in assignment.items():
            p = int(p_str)
            state, version = zk.get_partition_state(topic, p)
            if state is None:
                live_reps = [r for r in replicas if r in live]
                new = {
                    "controller_epoch": epoch,
                    "leader": live_reps[0] if live_reps else -1,
                    "version": 1,
                    "leader_epoch": 0,
                    "isr": live_reps or list(replicas),
                }
                if zk.create_partition_state(topic, p, new):
                    changes.append(f"{topic}-{p}: new, leader {new['leader']} isr {new['isr']}")
                continue
            leader, isr = state["leader"], state["isr"]
            live_isr = [r for r in isr if r in live]
            if leader in live:
                if live_isr != isr:
                    new = dict(state, isr=live_isr, controller_epoch=epoch)
                    if zk.set_partition_state(topic, p, new, version) is not None:
                        changes.append(f"{topic}-{p}: isr {isr} -> {live_isr} (brokers gone)")
                elif preferred and replicas and leader != replicas[0] and replicas[0] in live_isr:
                    new = dict(
                        state,
                        leader=replicas[0],
                        leader_epoch=state["leader_epoch"] + 1,
                        controller_epoch=epoch,
                    )
                    if zk.set_partition_state(topic, p, new, version) is not None:
                        changes.append(
                            f"{topic}-{p}: leader {leader} -> {replicas[0]} (preferred replica)"
                        )
                continue
            candidates = [r for r in replicas if r in live_isr]
            if candidates:
                new_leader, new_isr = candidates[0], live_isr
            elif unclean and any(r in live for r in replicas):
                new_leader = next(r for r in replicas if r in live)
                new_isr = [new_leader]
                log.warning("%s-%d: unclean leader election of %d", topic, p, new_leader)
            else:
                new_leader, new_isr = -1, isr  # offline until an ISR member returns
                _election_failed(controller_id, epoch, topic, p, unclean, replicas, isr, live)
            if new_leader == leader:
                continue
            new = dict(
                state,
                leader=new_leader,
                isr=new_isr,
                leader_epoch=state["leader_epoch"] + 1,
                controller_epoch=epoch,
            )
            if zk.set_partition_state(topic, p, new, version) is not None:
                changes.append(f"{topic}-{p}: leader {leader} -> {new_leader}, isr {new_isr}")
    return changes


def _election_failed(
    cid: int, epoch: int, topic: str, p: int, unclean: bool, replicas, isr, live
) -> None:
    """Kafka's state-change log line for an offline partition it cannot elect a leader
    for (logged on every attempt, as Kafka's controller does on each broker change),
    and why, in words a user can act on."""
    alive = [r for r in replicas if r in live]
    if alive and not unclean:
        why = (
            f"no replica in the ISR {isr} is alive; replicas {alive} are alive but not in "
            "the ISR and unclean.leader.election.enable is false"
        )
    else:
        why = f"no replica of {list(replicas)} is alive"
    log.error(
        "Controller %d epoch %d failed to change state for partition %s-%d from "
        "OfflinePartition to OnlinePartition: kafka.common.StateChangeFailedException: "
        "Failed to elect leader for partition %s-%d under strategy "
        "OfflinePartitionLeaderElectionStrategy(%s) (%s)",
        cid,
        epoch,
        topic,
        p,
        topic,
        p,
        "true" if unclean else "false",
        why,
    )


def elect(
    zk: ZkCluster, topic: str, p: int, live: set[int], unclean: bool
) -> tuple[str, int | None]:
    """ElectLeaders for one partition, as the controller runs it: PREFERRED makes the
    first replica leader when it is alive and in the ISR; UNCLEAN elects a live replica
    only when the partition has no live leader. -> ("elected", leader), ("not needed",
    None), ("failed", None) or ("unknown", None)."""
    try:
        replicas = json.loads(zk.zk.get(f"/brokers/topics/{topic}")[0])["partitions"][str(p)]
    except (NoNodeError, KeyError):
        return "unknown", None
    state, version = zk.get_partition_state(topic, p)
    if state is None:
        return "unknown", None
    leader, isr = state["leader"], state["isr"]
    if unclean:
        if leader in live:
            return "not needed", None
        alive = [r for r in replicas if r in live]
        if not alive:
            return "failed", None
        new_leader, new_isr = alive[0], [alive[0]]
    else:
        if replicas and leader == replicas[0]:
            return "not needed", None
        if not replicas or replicas[0] not in live or replicas[0] not in isr:
            return "failed", None
        new_leader, new_isr = replicas[0], isr
    new = dict(
        state,
        leader=new_leader,
        isr=new_isr,
        leader_epoch=state["leader_epoch"] + 1,
        controller_epoch=zk.controller_epoch(),
    )
    if zk.set_partition_state(topic, p, new, version) is None:
        return "failed", None
    log.info("%s-%d: leader %d -> %d (ElectLeaders)", topic, p, leader, new_leader)
    return "elected", new_leader
