"""The in-memory znode tree, the committed sessions, and the watches on it.

Only committed transactions change it (apply); reads look at it directly. Applying
a transaction fires the watches it triggers, before its reply is sent, as in
ZooKeeper's DataTree.processTxn.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from .acl import allows
from .javaorder import DEFAULT_CAPACITY, HashSetOrder
from .proto import ACL, CONTAINER_OWNER, Err, EventType, Id, Op, Perms, Stat, ttl_of
from .quotas import Quotas
from .txn import (
    CreateTxn,
    MultiTxn,
    SetDataTxn,
    Txn,
    decode_sub,
)

OPEN_ACL_UNSAFE = (ACL(Perms.ALL, Id("world", "anyone")),)
READ_ACL_UNSAFE = (ACL(Perms.READ, Id("world", "anyone")),)

# Nodes every ZooKeeper has; they can be neither deleted nor created.
CONFIG_NODE = "/zookeeper/config"  # the ensemble's membership (reconfig.py)
SYSTEM_PATHS = ("/zookeeper", "/zookeeper/quota", CONFIG_NODE)


class Watcher(Protocol):
    def send_event(self, type_: int, path: str, zxid: int) -> None: ...


class Node:
    __slots__ = (
        "data",
        "acl",
        "czxid",
        "mzxid",
        "ctime",
        "mtime",
        "version",
        "cversion",
        "aversion",
        "owner",
        "pzxid",
        "children",
    )

    def __init__(self, data, acl, zxid=0, time=0, owner=0):
        self.data = data
        self.acl = tuple(acl)
        self.czxid = self.mzxid = self.pzxid = zxid
        self.ctime = self.mtime = time
        self.version = self.cversion = self.aversion = 0
        self.owner = owner
        # insertion-ordered, so getChildren can list them in Java's HashSet order
        self.children = HashSetOrder()

    def stat(self) -> Stat:
        return Stat(
            self.czxid,
            self.mzxid,
            self.ctime,
            self.mtime,
            self.version,
            # cversion is kept as the count of child creations (it names sequential
            # children); the reported one counts deletions too, which is the creations
            # not still present: ZooKeeper's DataNode.copyStat does the same.
            2 * self.cversion - len(self.children),
            self.aversion,
            # DataNode.copyStat shows clients a session's id only: a container's or
            # TTL node's owner (its mode, kept in logs and snapshots) reads as 0.
            self.owner if self.owner != CONTAINER_OWNER and not ttl_of(self.owner) else 0,
            len(self.data) if self.data else 0,
            len(self.children),
            self.pzxid,
        )


def may_read(watcher, acl) -> bool:
    """Apache sends a watch event only to a client that may read the znode it is
    about (the fix of CVE-2024-23944, in Debian's 3.8): a watch on a node the client
    cannot read is used up without a word. Server-side watchers have no auth."""
    auth = getattr(watcher, "auth", None)
    return auth is None or allows(acl, Perms.READ, auth)


def parent_of(path: str) -> str:
    i = path.rfind("/")
    return path[:i] if i > 0 else "/"


def name_of(path: str) -> str:
    return path[path.rfind("/") + 1 :]


class WatchTable:
    """path -> watchers; one-shot: triggering removes them."""

    def __init__(self):
        self.by_path: dict[str, set] = {}
        self.by_watcher: dict[object, set[str]] = {}
        # The other modes of the same watch manager: Apache keeps one mode per
        # (watcher, path) in a manager, the last one set, so adding a watch here
        # takes the watcher's watch on that path out of these.
        self.siblings: tuple[WatchTable, ...] = ()

    def add(self, path: str, watcher) -> None:
        for other in self.siblings:
            if watcher in other.by_path.get(path, ()):
                other.remove(path, watcher)
        self.by_path.setdefault(path, set()).add(watcher)
        self.by_watcher.setdefault(watcher, set()).add(path)

    def trigger(self, path: str, type_: int, zxid: int, suppress: set | None = None, acl=()) -> set:
        watchers = self.by_path.pop(path, None)
        if not watchers:
            return set()
        for w in watchers:
            paths = self.by_watcher.get(w)
            if paths is not None:
                paths.discard(path)
                if not paths:
                    del self.by_watcher[w]
            if (suppress is None or w not in suppress) and may_read(w, acl):
                w.send_event(type_, path, zxid)
        return watchers

    def remove(self, path: str, watcher) -> None:
        ws = self.by_path.get(path)
        if ws is not None:
            ws.discard(watcher)
            if not ws:
                del self.by_path[path]
        paths = self.by_watcher.get(watcher)
        if paths is not None:
            paths.discard(path)
            if not paths:
                del self.by_watcher[watcher]

    def remove_watcher(self, watcher) -> None:
        for path in self.by_watcher.pop(watcher, ()):
            ws = self.by_path.get(path)
            if ws is not None:
                ws.discard(watcher)
                if not ws:
                    del self.by_path[path]

    def count(self) -> int:
        return sum(len(ws) for ws in self.by_path.values())


class Result:
    """What applying one (sub-)transaction produced, for the reply."""

    __slots__ = ("op", "err", "path", "stat", "subs", "data")

    def __init__(self, op, err=0, path=None, stat=None, subs=None, data=None):
        self.op = op
        self.err = err
        self.path = path
        self.stat = stat
        self.subs = subs
        self.data = data


class DataTree:
    def __init__(self):
        self.nodes: dict[str, Node] = {"/": Node(b"", OPEN_ACL_UNSAFE)}
        # session -> its ephemerals; as in Apache, a session's set (and the size its
        # HashSet grew to, which orders it) stays until the session closes
        self.ephemerals: dict[int, HashSetOrder] = {}
        self.containers: set[str] = set()
        self.ttls: set[str] = set()  # TTL nodes, for the container manager's reaping
        self.sessions: dict[int, int] = {}  # committed session id -> timeout (ms)
        self.last_zxid = 0
        self.data_watches = WatchTable()
        self.child_watches = WatchTable()
        # addWatch (3.6+), not removed by firing. As in ZooKeeper 3.8 (DataTree.addWatch),
        # persistent and recursive watches sit in both the data and the child manager
        # (and can be removed from each separately). A manager keeps one mode per
        # watcher and path, the last one set: a recursive addWatch replaces the
        # session's one-shot child watch on that path. In the child manager a
        # recursive watch hears of no child-list change, only of deletions below it.
        self.persistent_data = WatchTable()
        self.persistent_child = WatchTable()
        self.recursive_watches = WatchTable()
        self.recursive_child = WatchTable()
        self.data_manager = (self.data_watches, self.persistent_data, self.recursive_watches)
        self.child_manager = (self.child_watches, self.persistent_child, self.recursive_child)
        for group in (self.data_manager, self.child_manager):
            for t in group:
                t.siblings = tuple(x for x in group if x is not t)
        for path in SYSTEM_PATHS:
            self._add_system(path)
        self.quotas = Quotas(self)

    def _add_system(self, path: str) -> None:
        acl = READ_ACL_UNSAFE if path == "/zookeeper/config" else OPEN_ACL_UNSAFE
        self.nodes[path] = node = Node(b"", acl)
        if path == "/zookeeper/config":
            node.aversion = -1  # as ZooKeeper's DataTree.addConfigNode leaves it
        self.nodes[parent_of(path)].children.add(name_of(path))

    # --- reads -----------------------------------------------------------------

    def get(self, path: str) -> Node | None:
        return self.nodes.get(path)

    def remove_watcher(self, watcher) -> None:
        for t in (*self.data_manager, *self.child_manager):
            t.remove_watcher(watcher)

    @staticmethod
    def watches_of(manager: tuple) -> dict[object, set[str]]:
        """watcher -> paths of one manager (its one-shot, persistent and recursive
        tables together: a watcher has one mode per path in a manager), as Apache's
        watch2Paths of that manager."""
        out: dict[object, set[str]] = {}
        for t in manager:
            for w, paths in t.by_watcher.items():
                out.setdefault(w, set()).update(paths)
        return out

    def _fire(self, table: WatchTable, path: str, type_: int, zxid: int, acl, suppress=None) -> set:
        """One-shot watches of `table` on path, then the persistent ones of the same
        manager (on the path, or recursive on it or an ancestor: in the child manager
        not for a child-list change); each watcher hears of the event once."""
        fired = table.trigger(path, type_, zxid, suppress, acl)
        if table is self.data_watches:
            persistent, recursive = self.persistent_data, self.recursive_watches
        else:
            persistent, recursive = self.persistent_child, self.recursive_child
        extra = set(persistent.by_path.get(path, ()))
        if recursive.by_path and type_ != EventType.NODE_CHILDREN_CHANGED:
            p = path
            while True:
                extra |= recursive.by_path.get(p, set())
                if p == "/":
                    break
                p = parent_of(p)
        if not extra:
            return fired
        done = fired | (suppress or set())
        for w in extra - done:
            if may_read(w, acl):
                w.send_event(type_, path, zxid)
        return fired | extra

    def node_count(self) -> int:
        # as Apache's DataTree.getNodeCount: it keeps the root under "" and "/" both
        return len(self.nodes) + 1

    def approximate_data_size(self) -> int:
        return sum(len(p) + (len(n.data) if n.data else 0) for p, n in self.nodes.items())

    # --- writes ----------------------------------------------------------------

    def apply(self, txn: Txn) -> Result:
        hdr = txn.hdr
        if hdr.zxid > self.last_zxid:
            self.last_zxid = hdr.zxid
        return self._apply(hdr.type, txn.body, hdr.clientId, hdr.zxid, hdr.time)

    def _apply(self, op: int, body, session: int, zxid: int, time: int) -> Result:
        if op in (Op.CREATE, Op.CREATE2, Op.CREATE_CONTAINER, Op.CREATE_TTL):
            return self._create(op, body, zxid, time)
        if op == Op.DELETE:
            return self._delete(body.path, zxid)
        if op == Op.SET_DATA:
            return self._set_data(body, zxid, time)
        if op == Op.RECONFIG:
            result = self._set_data(body, zxid, time)
            result.op, result.data = op, body.data
            return result
        if op == Op.SET_ACL:
            node = self.nodes.get(body.path)
            if node is None:
                return Result(op, Err.NO_NODE)
            node.acl = tuple(body.acl)
            node.aversion = body.version
            return Result(op, stat=node.stat())
        if op == Op.CHECK:
            return Result(op)
        if op == Op.ERROR:
            return Result(op, body.err)
        if op == Op.CREATE_SESSION:
            self.sessions[session] = body.timeOut
            return Result(op)
        if op == Op.CLOSE_SESSION:
            owned = self.ephemerals.pop(session, None)
            # in the order of Apache's CloseSessionTxn: a clone of the session's set
            for path in owned.clone_order() if owned else ():
                self._delete(path, zxid)
            self.sessions.pop(session, None)
            return Result(op)
        if op == Op.MULTI:
            return self._multi(body, session, zxid, time)
        return Result(op, Err.UNIMPLEMENTED)

    def _create(self, op: int, t: CreateTxn, zxid: int, time: int) -> Result:
        path = t.path
        parent = self.nodes.get(parent_of(path))
        if parent is None:
            return Result(op, Err.NO_NODE)
        if path in self.nodes:
            return Result(op, Err.NODE_EXISTS)
        node = Node(t.data, t.acl or OPEN_ACL_UNSAFE, zxid, time, t.ephemeralOwner)
        self.nodes[path] = node
        parent.children.add(name_of(path))
        parent.cversion = t.parentCVersion if t.parentCVersion >= 0 else parent.cversion + 1
        parent.pzxid = zxid
        if t.ephemeralOwner == CONTAINER_OWNER:
            self.containers.add(path)
        elif ttl_of(t.ephemeralOwner):
            self.ttls.add(path)
        elif t.ephemeralOwner:
            self._owned(t.ephemeralOwner).add(path)
        self.quotas.created(path, t.data)
        self._fire(self.data_watches, path, EventType.NODE_CREATED, zxid, node.acl)
        self._fire(
            self.child_watches, parent_of(path), EventType.NODE_CHILDREN_CHANGED, zxid, parent.acl
        )
        return Result(op, path=path, stat=node.stat())

    def _delete(self, path: str, zxid: int) -> Result:
        node = self.nodes.pop(path, None)
        if node is None:
            return Result(Op.DELETE, Err.NO_NODE)
        parent_path = parent_of(path)
        parent = self.nodes.get(parent_path)
        if parent is not None:
            parent.children.discard(name_of(path))
            if zxid > parent.pzxid:
                parent.pzxid = zxid
        if node.owner == CONTAINER_OWNER:
            self.containers.discard(path)
        elif ttl_of(node.owner):
            self.ttls.discard(path)
        elif node.owner:
            owned = self.ephemerals.get(node.owner)
            if owned is not None:
                owned.discard(path)
        self.quotas.deleted(path, node.data)
        fired = self._fire(self.data_watches, path, EventType.NODE_DELETED, zxid, node.acl)
        self._fire(self.child_watches, path, EventType.NODE_DELETED, zxid, node.acl, fired)
        self._fire(
            self.child_watches,
            parent_path,
            EventType.NODE_CHILDREN_CHANGED,
            zxid,
            parent.acl if parent is not None else (),
        )
        return Result(Op.DELETE)

    def _set_data(self, t: SetDataTxn, zxid: int, time: int) -> Result:
        node = self.nodes.get(t.path)
        if node is None:
            return Result(Op.SET_DATA, Err.NO_NODE)
        old, node.data = node.data, t.data
        self.quotas.data_changed(t.path, old, t.data)
        node.version = t.version
        node.mzxid = zxid
        node.mtime = time
        self._fire(self.data_watches, t.path, EventType.NODE_DATA_CHANGED, zxid, node.acl)
        return Result(Op.SET_DATA, stat=node.stat())

    def _multi(self, t: MultiTxn, session: int, zxid: int, time: int) -> Result:
        subs = [decode_sub(s) for s in t.txns]
        failed = any(op == Op.ERROR for op, _ in subs)
        results = []
        if failed:
            # As DataTree.processTxn: ops before the failing one report OK (rolled
            # back), the failing one its error, the ones after RuntimeInconsistency.
            after = False
            for op, body in subs:
                if op == Op.ERROR:
                    after = True
                    results.append(Result(Op.ERROR, body.err))
                else:
                    code = Err.RUNTIME_INCONSISTENCY if after else Err.OK
                    results.append(Result(Op.ERROR, code))
        else:
            for op, body in subs:
                results.append(self._apply(op, body, session, zxid, time))
        return Result(Op.MULTI, subs=results)

    # --- snapshots ---------------------------------------------------------------

    def iter_nodes(self) -> Iterable[tuple[str, Node]]:
        """Every node, parents before their children (a snapshot restores in one
        pass): depth first, each node's children in Java's HashSet order, as Apache's
        DataTree.serializeNode writes them, so a tree loaded back (a restart, a
        follower's SNAP) lists children and ephemerals as a restarted Apache does."""
        out: list[tuple[str, Node]] = []
        stack = ["/"]
        while stack:
            path = stack.pop()
            node = self.nodes[path]
            out.append((path, node))
            base = "" if path == "/" else path
            stack.extend(f"{base}/{c}" for c in reversed(node.children.java_order()))
        if len(out) != len(self.nodes):  # never expected: keep any orphan all the same
            seen = {p for p, _ in out}
            out += sorted((p, n) for p, n in self.nodes.items() if p not in seen)
        return out

    def load_node(self, path: str, node: Node) -> None:
        self.nodes[path] = node
        if path != "/":
            parent = self.nodes.get(parent_of(path))
            if parent is not None:
                parent.children.add(name_of(path))
        if node.owner == CONTAINER_OWNER:
            self.containers.add(path)
        elif ttl_of(node.owner):
            self.ttls.add(path)
        elif node.owner:
            self._owned(node.owner).add(path)

    def _owned(self, session: int) -> HashSetOrder:
        owned = self.ephemerals.get(session)
        if owned is None:
            owned = self.ephemerals[session] = HashSetOrder(DEFAULT_CAPACITY)
        return owned


__all__ = [
    "DataTree",
    "Node",
    "Result",
    "WatchTable",
    "parent_of",
    "name_of",
    "OPEN_ACL_UNSAFE",
    "SYSTEM_PATHS",
]
