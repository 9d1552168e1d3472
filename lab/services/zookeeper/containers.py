"""The container manager (ZooKeeper's ContainerManager): reaps container nodes that
had children and have none left, and TTL nodes left unchanged for longer than
their TTL.

It runs only where transactions may start (a standalone server, an ensemble's
serving leader), every znode.container.checkIntervalMs, and deletes through the
ordinary write path (prepare, log, quorum), so every member of an ensemble applies
the same deletes in the same order. Deletes are spaced so that at most
znode.container.maxPerMinute happen in a minute, as Apache spaces them.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .datatree import DataTree
from .proto import ttl_of

log = logging.getLogger("lab.zookeeper.containers")


def now_ms() -> int:
    return int(time.time() * 1000)


def is_candidate(tree: DataTree, path: str, now: int, max_never_used_ms: int = 0) -> bool:
    """ContainerManager.getCandidates, for one path: an empty container whose cversion
    shows a child once existed (a fresh one is kept until used, unless unused for
    znode.container.maxNeverUsedIntervalMs), or a childless TTL node not modified for
    longer than its TTL (mtime is the clock, so setData renews it)."""
    node = tree.nodes.get(path)
    if node is None or node.children:
        return False
    if path in tree.containers:
        return node.cversion > 0 or bool(max_never_used_ms and now - node.mtime > max_never_used_ms)
    ttl = ttl_of(node.owner) if path in tree.ttls else 0
    return bool(ttl) and now - node.mtime > ttl


def candidates(tree: DataTree, now: int, max_never_used_ms: int = 0) -> list[str]:
    return sorted(
        p for p in (*tree.containers, *tree.ttls) if is_candidate(tree, p, now, max_never_used_ms)
    )


class ContainerManager:
    def __init__(self, server, check_interval_ms: int, max_per_minute: int, max_never_used_ms: int):
        self.server = server
        self.check_interval = max(check_interval_ms, 1) / 1000.0
        self.min_gap = 60.0 / max(max_per_minute, 1)
        self.max_never_used_ms = max_never_used_ms

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad pass must not end the reaping for good
                log.exception("container check failed")

    async def check(self) -> int:
        """One pass; returns how many deletes it proposed."""
        server = self.server
        if not server.may_originate_txns():
            return 0
        done = 0
        for path in candidates(server.tree, now_ms(), self.max_never_used_ms):
            started = time.monotonic()
            # The tree may have moved on while this pass slept between deletes (a
            # child created, a TTL node renewed, leadership lost): ask again.
            if not server.may_originate_txns():
                break
            if not is_candidate(server.tree, path, now_ms(), self.max_never_used_ms):
                continue
            log.info("Attempting to delete candidate container: %s", path)
            if server.delete_container(path):
                done += 1
            wait = self.min_gap - (time.monotonic() - started)
            if wait > 0:
                await asyncio.sleep(wait)
        return done


__all__ = ["ContainerManager", "candidates", "is_candidate"]
