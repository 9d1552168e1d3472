"""Quotas as Apache ZooKeeper 3.8 keeps them (Quotas, StatsTrack, DataTree, ZooKeeperServer).

A quota on /a is two ordinary znodes a client makes (zkCli's setquota does):
/zookeeper/quota/a/zookeeper_limits holds the limits and
/zookeeper/quota/a/zookeeper_stats the subtree's node count and data bytes. The server
keeps the stats current while applying every create, delete and setData under a quota
root, so they change only through applied transactions and agree on every member and
after a restart. Limits are soft (a warning in the log) unless zookeeper.enforceQuota
is on, and then the hard ones (countHardLimit, byteHardLimit) refuse the write with
QuotaExceeded. As in 3.8, nothing is checked, and so nothing logged, while
enforceQuota is off.
"""

from __future__ import annotations

import logging
import re
import time

from .proto import Err, ZKError

QUOTA_ROOT = "/zookeeper/quota"
LIMIT_NODE = "zookeeper_limits"
STAT_NODE = "zookeeper_stats"

log = logging.getLogger("zookeeper.server")

_SEPARATORS = re.compile(r"[,;]+")


class StatsTrack:
    """The `count=N,bytes=M` string of a limits or stats node; 3.7+ appends the hard
    limits after an extra "=" (`count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=5`)
    so that 3.6's parser, which splits on "," and "=", ignores them."""

    def __init__(self, data: bytes | str | None = None):
        self.stats: dict[str, int] = {}
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        if not text:
            return
        for pair in _SEPARATORS.split(text):
            kv = pair.split("=")
            # Java's String.split drops trailing empty strings: "bytes=5=" is bytes 5.
            while kv and kv[-1] == "":
                kv.pop()
            if not kv:
                continue
            try:
                self.stats[kv[0]] = int(kv[1]) if len(kv) > 1 else -1
            except ValueError:
                # Apache fails the whole apply on a malformed value; racklab keeps
                # the rest of the string and reads that key as unset.
                self.stats[kv[0]] = -1

    def get(self, key: str) -> int:
        return self.stats.get(key, -1)

    @property
    def count(self) -> int:
        return self.get("count")

    @property
    def bytes(self) -> int:
        return self.get("bytes")

    def __str__(self) -> str:
        out = f"count={self.count},bytes={self.bytes}"
        rest = sorted(k for k in self.stats if k not in ("count", "bytes"))
        if rest:
            out += "=" + "".join(f";{k}={self.stats[k]}" for k in rest)
        return out

    def encode(self) -> bytes:
        return str(self).encode()


def limit_path(root: str) -> str:
    return f"{QUOTA_ROOT}{root}/{LIMIT_NODE}"


def stat_path(root: str) -> str:
    return f"{QUOTA_ROOT}{root}/{STAT_NODE}"


class Quotas:
    """The quota roots of one tree (Apache's PathTrie) and the upkeep of their stats."""

    def __init__(self, tree):
        self.tree = tree
        self.roots: set[str] = set()

    def root_of(self, path: str) -> str | None:
        """The deepest quota root at or above path (getMaxPrefixWithQuota); none for
        "/" (a quota on the root is not kept, as in Apache)."""
        if not self.roots:
            return None
        p = path
        while p and p != "/":
            if p in self.roots:
                return p
            p = p[: p.rfind("/")]
        return None

    def _add_to_stats(self, root: str, bytes_diff: int, count_diff: int) -> None:
        node = self.tree.nodes.get(stat_path(root))
        if node is None:
            return  # Apache logs "Missing node for stat" and carries on
        st = StatsTrack(node.data)
        st.stats["count"] = st.count + count_diff
        st.stats["bytes"] = st.bytes + bytes_diff
        node.data = st.encode()

    def _recount(self, root: str) -> None:
        """Set root's stats to its subtree as it is (updateQuotaForPath)."""
        node = self.tree.nodes.get(stat_path(root))
        if node is None:
            return
        count = size = 0
        stack = [root]
        while stack:
            p = stack.pop()
            n = self.tree.nodes.get(p)
            if n is None:
                continue
            count += 1
            size += len(n.data) if n.data else 0
            base = "" if p == "/" else p
            stack.extend(f"{base}/{c}" for c in n.children)
        node.data = f"count={count},bytes={size}".encode()

    # --- called by DataTree while applying ----------------------------------------

    def created(self, path: str, data: bytes | None) -> None:
        parent, _, name = path.rpartition("/")
        if parent.startswith(QUOTA_ROOT):
            if name == LIMIT_NODE:
                self.roots.add(parent[len(QUOTA_ROOT) :])
            if name == STAT_NODE:
                self._recount(parent[len(QUOTA_ROOT) :])
        root = self.root_of(path)
        if root is not None:
            self._add_to_stats(root, len(data) if data else 0, 1)

    def deleted(self, path: str, data: bytes | None) -> None:
        parent, _, name = path.rpartition("/")
        if parent.startswith(QUOTA_ROOT) and name == LIMIT_NODE:
            self.roots.discard(parent[len(QUOTA_ROOT) :])
        root = self.root_of(path)
        if root is not None:
            self._add_to_stats(root, -(len(data) if data else 0), -1)

    def data_changed(self, path: str, old: bytes | None, new: bytes | None) -> None:
        root = self.root_of(path)
        if root is not None:
            self._add_to_stats(root, (len(new) if new else 0) - (len(old) if old else 0), 0)

    def rebuild(self) -> None:
        """After loading a snapshot: find every limits node and recount its subtree
        (Apache's setupQuota), so the stats are right whatever the snapshot held."""
        self.roots.clear()
        suffix = "/" + LIMIT_NODE
        for path in list(self.tree.nodes):
            if path.startswith(QUOTA_ROOT + "/") and path.endswith(suffix):
                node = self.tree.nodes[path]
                if node.children:
                    continue  # Apache takes only a leaf limits node
                root = path[len(QUOTA_ROOT) : -len(suffix)]
                if root:
                    self.roots.add(root)
                    self._recount(root)

    # --- called by the preparer ---------------------------------------------------

    def check(self, path: str, bytes_diff: int, count_diff: int) -> None:
        """ZooKeeperServer.checkQuota with enforceQuota on: warn past a soft limit,
        refuse past a hard one. Measured against the applied tree, as Apache does."""
        root = self.root_of(path)
        if root is None:
            return
        limits_node = self.tree.nodes.get(limit_path(root))
        stats_node = self.tree.nodes.get(stat_path(root))
        if limits_node is None or stats_node is None:
            return
        limits = StatsTrack(limits_node.data)
        current = StatsTrack(stats_node.data)
        hard_count = limits.get("countHardLimit")
        if count_diff and (limits.count > -1 or hard_count > -1):
            new = current.count + count_diff
            hard = hard_count > -1
            limit = hard_count if hard else limits.count
            if new > limit:
                kind = "hard" if hard else "soft"
                _warn(f"Quota exceeded: {root} [current count={new}, {kind}CountLimit={limit}]")
                if hard:
                    raise ZKError(Err.QUOTA_EXCEEDED, root)
        hard_bytes = limits.get("byteHardLimit")
        if bytes_diff and (limits.bytes > -1 or hard_bytes > -1):
            new = current.bytes + bytes_diff
            hard = hard_bytes > -1
            limit = hard_bytes if hard else limits.bytes
            if new > limit:
                kind = "hard" if hard else "soft"
                _warn(f"Quota exceeded: {root} [current bytes={new}, {kind}ByteLimit={limit}]")
                if hard:
                    raise ZKError(Err.QUOTA_EXCEEDED, root)


class RateLogger:
    """Apache's RateLogger (100 ms): a new message is logged at once as
    "Message:<msg> Value:null"; the same message again within the interval is only
    counted, and the count comes out as "[N times] Message: <msg>" when the interval
    has passed or another message arrives. A client retrying a refused write in a
    loop so fills the log no faster than Apache's does."""

    def __init__(self, interval: float = 0.1, clock=time.monotonic):
        self.interval = interval
        self.clock = clock
        self.msg: str | None = None
        self.stamp = 0.0
        self.count = 0

    def flush(self) -> None:
        if self.msg is not None and self.count > 0:
            times = f"[{self.count} times] " if self.count > 1 else ""
            log.warning("%sMessage: %s", times, self.msg)
        self.msg = None
        self.count = 0

    def log(self, msg: str) -> None:
        now = self.clock()
        if msg == self.msg:
            self.count += 1
            if now - self.stamp >= self.interval:
                self.flush()
                self.msg = msg
                self.stamp = now
        else:
            self.flush()
            self.msg = msg
            self.stamp = now
            log.warning("Message:%s Value:null", msg)


# One per process, as Apache's is static in ZooKeeperServer.
_rate_logger = RateLogger()


def _warn(msg: str) -> None:
    _rate_logger.log(msg)


__all__ = ["Quotas", "RateLogger", "StatsTrack", "QUOTA_ROOT", "LIMIT_NODE", "STAT_NODE"]
