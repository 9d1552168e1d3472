"""The order Apache ZooKeeper lists children and ephemerals in: Java's HashSet order.

A znode's children are a java.util.HashSet<String> (DataNode.addChild makes it with
room for 8), and a session's ephemerals one with Java's default 16; getChildren,
getEphemerals and the deletion of a closed session's ephemerals iterate them. A
HashSet iterates its table bucket by bucket (bucket = String.hashCode spread by
HashMap.hash, masked by the table size), and each bucket in the order its names went
in (a resize splits buckets keeping that order; the table never shrinks). So the
order follows from the names in insertion order and the table's size, which
HashSet doubles whenever it holds more than 3/4 of it. (A bucket of 8 or more names
in a table of 64 or more becomes a tree, which iterates otherwise; that takes names
whose hashes collide on purpose, and is not followed here.)
"""

from __future__ import annotations

from functools import lru_cache

CHILDREN_CAPACITY = 8  # DataNode.addChild: new HashSet<String>(8)
DEFAULT_CAPACITY = 16  # new HashSet<String>()


def _string_hash(s: str) -> int:
    """String.hashCode over UTF-16 code units, as an unsigned 32-bit value."""
    h = 0
    for ch in s:
        c = ord(ch)
        if c > 0xFFFF:  # a surrogate pair in Java
            c -= 0x10000
            h = (31 * h + (0xD800 | c >> 10)) & 0xFFFFFFFF
            c = 0xDC00 | c & 0x3FF
        h = (31 * h + c) & 0xFFFFFFFF
    return h


@lru_cache(maxsize=65536)
def _spread_hash(s: str) -> int:
    """HashMap.hash(s): h ^ (h >>> 16)."""
    h = _string_hash(s)
    return h ^ (h >> 16)


def auth_order(ids: list) -> list:
    """A connection's authenticated ids in the order Apache lists them (whoAmI, the
    ids an "auth" ACL expands to): its authInfo is a set backed by a 16-bucket
    ConcurrentHashMap, keyed by the jute Id's hashCode (37 * (37 * 17 + scheme's) +
    id's)."""

    def bucket(i) -> int:
        h = ((17 * 37 + _string_hash(i.scheme)) * 37 + _string_hash(i.id or "")) & 0xFFFFFFFF
        return (h ^ (h >> 16)) & (DEFAULT_CAPACITY - 1)

    return sorted(ids, key=bucket)


class HashSetOrder(dict):
    """A set of names (dict keys, kept in insertion order) that knows the size its
    Java HashSet's table would have, and so the order Java iterates it in."""

    __slots__ = ("capacity",)

    def __init__(self, capacity: int = CHILDREN_CAPACITY):
        super().__init__()
        self.capacity = capacity

    def add(self, name: str) -> None:
        self[name] = None
        if len(self) > self.capacity * 3 // 4:  # HashMap.putVal: ++size > threshold
            self.capacity *= 2

    def discard(self, name: str) -> None:
        self.pop(name, None)

    def java_order(self, capacity: int | None = None) -> list[str]:
        mask = (capacity or self.capacity) - 1
        return sorted(self, key=lambda s: _spread_hash(s) & mask)

    def clone_order(self) -> list[str]:
        """The order of this set's clone (DataTree.getEphemerals returns one): a
        table sized for its size (HashMap.putMapEntries), filled in this set's order."""
        t = int(len(self) / 0.75 + 1.0)
        return sorted(self.java_order(), key=lambda s: _spread_hash(s) & (_table_size(t) - 1))


def _table_size(n: int) -> int:
    """HashMap.tableSizeFor: the power of two at or above n."""
    return 1 << max(n - 1, 0).bit_length()


__all__ = ["CHILDREN_CAPACITY", "DEFAULT_CAPACITY", "HashSetOrder", "auth_order"]
