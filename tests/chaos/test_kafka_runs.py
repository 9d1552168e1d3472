"""kafka-queue runs: safe settings under leader kills lose nothing; and the anomaly the
chaos layer exists to find: acks=1 with unclean leader election, under partitions of
the leader, loses acknowledged messages, while the safe settings under the very same
seeded schedule lose none."""

from __future__ import annotations

import json

import pytest

from lab.chaos import runner
from lab.chaos.workloads.kafka_clients import kafka_threads

LAB = """
name: chaoskafka
defaults: {kind: process, cpus: 0.5, memory: 512Mi, pids: 1024}
network: {supernet: auto, inter_rack: {delay: 2ms, jitter: 0.2ms}}
racks:
  r1: {nodes: [n1, n2, n3]}
  r2: {nodes: [n4, n5, n6]}
services:
  zookeeper: {nodes: [n1, n2, n4], tickTime: 500}
  kafka: {nodes: [n1, n3, n5], zookeeper.session.timeout.ms: 3000, replica.lag.time.max.ms: 3000}
"""


@pytest.fixture(scope="module")
def lab(module_lab):
    return module_lab[0]


def verdict(d):
    return json.loads((d / "verdict.json").read_text())


def test_kafka_queue_under_leader_kills_loses_nothing(lab, tmp_path):
    d = runner.run(lab, "kafka-queue", "kill-leader", time_s=24, rate=30, seed=3, interval=5,
                   recover_s=25, runs_dir=tmp_path)  # fmt: skip
    v = verdict(d)
    [c] = v["checkers"]
    assert c["checker"] == "kafka-queue"
    assert c["stats"]["acknowledged"] > 50 and c["stats"]["final_read"] is True
    assert v["valid"] is True, c["reason"]
    kills = [json.loads(x) for x in (d / "history.jsonl").read_text().splitlines()]
    assert any(op["process"] == "nemesis" and op["f"] == "start" for op in kills)
    # every client the workload made is closed, its network thread with it
    assert kafka_threads() == []


@pytest.mark.slow
def test_unsafe_settings_lose_acknowledged_messages_and_safe_ones_do_not(lab, tmp_path):
    args = dict(time_s=40, rate=60, seed=5, interval=8, concurrency=6, recover_s=25,
                runs_dir=tmp_path)  # fmt: skip
    unsafe = verdict(runner.run(lab, "kafka-queue", "partition-leader",
                                options={"acks": 1, "unclean": True}, **args))  # fmt: skip
    safe = verdict(runner.run(lab, "kafka-queue", "partition-leader", **args))
    assert unsafe["valid"] is False
    assert unsafe["checkers"][0]["stats"]["anomaly_counts"].get("lost", 0) > 0
    assert safe["valid"] is True, safe["checkers"][0]["reason"]
