"""Workloads by name (imported on use: each pulls in its own client library)."""

from __future__ import annotations

import importlib

from lab.chaos.labctx import ChaosError

WORKLOADS = {
    "zk-register": "lab.chaos.workloads.zk:ZkRegister",
    "zk-lock": "lab.chaos.workloads.zk:ZkLock",
    "kafka-queue": "lab.chaos.workloads.kafka:KafkaQueue",
    "hdfs-files": "lab.chaos.workloads.hdfs:HdfsFiles",
    "yarn-jobs": "lab.chaos.workloads.yarn:YarnJobs",
}


def get(name: str):
    if name not in WORKLOADS:
        raise ChaosError(f"unknown workload {name!r} (known: {', '.join(sorted(WORKLOADS))})")
    mod, _, cls = WORKLOADS[name].partition(":")
    return getattr(importlib.import_module(mod), cls)
