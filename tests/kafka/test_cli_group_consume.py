"""`lab kafka consume TOPIC --group G` as kafka-console-consumer.sh --group: it joins the
group, reads from the group's committed offsets (auto.offset.reset where none), commits
what it printed and leaves; a kafka-python member of the same group then goes on from
those commits."""

from __future__ import annotations

from lab.services.kafka import admin
from lab.services.kafka.cli_support import kafka_command
from lab.services.kafka.groupconsume import assigned, assignment, range_assign, subscription

from .clients import group_consumer, poll_until


def test_range_assignor_split_and_consumer_protocol_round_trip():
    members = [
        {"member_id": "b", "metadata": subscription(["t"])},
        {"member_id": "a", "metadata": subscription(["t", "u"])},
    ]
    split = range_assign(members, {"t": [0, 1, 2], "u": [0, 1]})
    assert split == {"a": {"t": [0, 1], "u": [0, 1]}, "b": {"t": [2]}}
    assert assigned(assignment(split["a"])) == {"t": [0, 1], "u": [0, 1]}
    assert assigned(b"") == {}


def test_consume_with_a_group_commits_and_resumes(broker):
    bs = broker.bootstrap
    admin.run(admin.create_topic(bs, "gc", partitions=3, replication_factor=1))
    for p in range(3):
        admin.run(admin.produce(bs, "gc", [f"p{p}-{i}".encode() for i in range(2)], partition=p))
    out: list[str] = []
    args = ["consume", "gc", "--group", "cli", "--timeout", "10"]
    kafka_command([*args, "--from-beginning", "--max-messages", "4"], bs, write=out.append)
    first = out[0].splitlines()
    assert len(first) == 4
    lag = admin.run(admin.group_lag(bs, "cli"))
    assert lag["state"] == "Empty" and lag["members"] == 0  # it left the group
    committed = {r["partition"]: r["committed"] for r in lag["partitions"]}
    assert sum(committed.values()) == 4

    # Without --from-beginning: committed partitions go on from their commits, a partition
    # with none starts at its end (auto.offset.reset=latest), so nothing is printed twice.
    admin.run(admin.produce(bs, "gc", [b"late"], partition=0))
    out.clear()
    kafka_command([*args, "--max-messages", "10", "--timeout", "3"], bs, write=out.append)
    second = out[0].splitlines() if out and out[0] else []
    assert not set(first) & set(second)
    assert "late" in second

    # A kafka-python member of the group starts from what lab kafka committed, and
    # (auto.offset.reset=earliest) from the start where nothing is: it gets exactly the
    # records lab kafka did not print.
    everything = {f"p{p}-{i}" for p in range(3) for i in range(2)} | {"late"}
    left = everything - set(first) - set(second)
    c = group_consumer(bs, "gc", "cli")
    try:
        rest = [r.value.decode() for r in poll_until(c, len(left), 30)]
    finally:
        c.close()
    assert sorted(rest) == sorted(left)
