"""Reads a client connection runs against the data tree, in its order of requests:
getData, exists, getChildren(2), getACL, sync, ping, getEphemerals,
getAllChildrenNumber, multiRead, the watch operations (addWatch, checkWatches,
removeWatches, setWatches on reconnection) and whoAmI, answered as Apache ZooKeeper
3.8 answers them. A mixin of ClientConnection (connection.py), which frames and sends.
"""

from __future__ import annotations

from . import acl as acls
from .jute import Writer
from .proto import (
    ACL,
    ClientInfo,
    Err,
    ErrorResponse,
    EventType,
    ExistsResponse,
    GetACLResponse,
    GetAllChildrenNumberResponse,
    GetChildren2Response,
    GetChildrenResponse,
    GetDataResponse,
    GetEphemeralsResponse,
    Id,
    MultiHeader,
    Op,
    Perms,
    SaslResponse,
    SetWatches,
    SyncResponse,
    WhoAmIResponse,
    Xid,
    ZKError,
)


class ReadRequests:
    def run_read(self, xid, op, req) -> None:
        server = self.server
        tree = server.tree
        zxid = tree.last_zxid
        try:
            body = self._read_body(op, req, tree)
        except ZKError as e:
            self.send_reply(xid, zxid, e.code)
            return
        if op == Op.PING:
            xid = Xid.PING
        elif op == Op.SET_WATCHES:
            xid = Xid.SET_WATCHES
        self.send_reply(xid, zxid, 0, body)

    def _read_body(self, op, req, tree) -> bytes:
        if op in (Op.GET_DATA, Op.EXISTS, Op.GET_CHILDREN, Op.GET_CHILDREN2, Op.GET_ACL):
            # Apache: a null path is a NullPointerException, answered MarshallingError;
            # its DataTree also holds the root under "" (so "" reads as the root).
            if req.path is None:
                raise ZKError(Err.MARSHALLING_ERROR)
        if op == Op.GET_DATA:
            node = _lookup(tree, req.path)
            if node is None:
                raise ZKError(Err.NO_NODE)
            acls.check(node.acl, Perms.READ, self.auth)
            if req.watch:
                tree.data_watches.add(req.path, self)
            return GetDataResponse(node.data, node.stat()).serialize()
        if op == Op.EXISTS:
            path = req.path
            if "\0" in path:
                raise ZKError(Err.BAD_ARGUMENTS)
            node = _lookup(tree, path)
            if req.watch:
                tree.data_watches.add(path, self)
            if node is None:
                raise ZKError(Err.NO_NODE)
            return ExistsResponse(node.stat()).serialize()
        if op in (Op.GET_CHILDREN, Op.GET_CHILDREN2):
            node = _lookup(tree, req.path)
            if node is None:
                raise ZKError(Err.NO_NODE)
            acls.check(node.acl, Perms.READ, self.auth)
            if req.watch:
                tree.child_watches.add(req.path, self)
            children = node.children.java_order()
            if op == Op.GET_CHILDREN:
                return GetChildrenResponse(children).serialize()
            return GetChildren2Response(children, node.stat()).serialize()
        if op == Op.PING:
            return b""
        if op == Op.SASL:
            # No SASL configured: Apache answers an empty (null) token, and the client
            # goes on unauthenticated.
            return SaslResponse(None).serialize()
        if op == Op.SYNC:
            return SyncResponse(req.path).serialize()
        if op == Op.GET_ACL:
            node = _lookup(tree, req.path)
            if node is None:
                raise ZKError(Err.NO_NODE)
            acls.check(node.acl, Perms.READ | Perms.ADMIN, self.auth)
            acl = list(node.acl)
            try:
                acls.check(node.acl, Perms.ADMIN, self.auth)
            except ZKError:
                # Without ADMIN, digest hashes are hidden as ZooKeeper does.
                acl = [
                    ACL(a.perms, Id(a.id.scheme, a.id.id.split(":", 1)[0] + ":x"))
                    if a.id.scheme == "digest"
                    else a
                    for a in acl
                ]
            return GetACLResponse(acl, node.stat()).serialize()
        if op == Op.SET_WATCHES:
            self._set_watches(req, tree)
            return b""
        if op == Op.GET_EPHEMERALS:
            prefix = req.prefixPath or "/"
            mine = tree.ephemerals.get(self.session.id)
            # FinalRequestProcessor lists a clone of the session's HashSet
            mine = mine.clone_order() if mine else []
            return GetEphemeralsResponse(
                [p for p in mine if prefix == "/" or p.startswith(prefix)]
            ).serialize()
        if op == Op.GET_ALL_CHILDREN_NUMBER:
            if req.path is None:
                raise ZKError(Err.MARSHALLING_ERROR)
            node = _lookup(tree, req.path)
            if node is None:
                raise ZKError(Err.NO_NODE)
            acls.check(node.acl, Perms.READ, self.auth)
            base = "" if req.path in ("/", "") else req.path
            n = sum(1 for p in tree.nodes if p.startswith(base + "/") and p != "/")
            if req.path == "":
                # Apache counts the keys under "" + "/", and its root's own key "/"
                # is one of them
                n += 1
            return GetAllChildrenNumberResponse(n).serialize()
        if op == Op.MULTI_READ:
            return self._multi_read(req, tree)
        if op == Op.ADD_WATCH:
            # Apache registers the watch on whatever path comes, unvalidated (a null
            # one fails only where a recursive watch walks its parents).
            if req.path is None and req.mode == 1:
                raise ZKError(Err.MARSHALLING_ERROR)
            if req.mode not in (0, 1):
                # AddWatchMode.fromInt throws; Apache answers that as MarshallingError
                raise ZKError(Err.MARSHALLING_ERROR)
            if req.mode == 1:
                tree.recursive_watches.add(req.path, self)
                tree.recursive_child.add(req.path, self)
            else:
                tree.persistent_data.add(req.path, self)
                tree.persistent_child.add(req.path, self)
            return ErrorResponse(0).serialize()  # what the Java client decodes it as
        if op in (Op.CHECK_WATCHES, Op.REMOVE_WATCHES):
            self._check_watches(op, req, tree)
            return b""
        if op == Op.WHO_AM_I:
            return WhoAmIResponse(
                [
                    ClientInfo(a.scheme, a.id.split(":", 1)[0] if a.scheme == "digest" else a.id)
                    for a in self.auth
                ]
            ).serialize()
        raise ZKError(Err.UNIMPLEMENTED)

    def _multi_read(self, ops, tree) -> bytes:
        """multiRead: each read on its own, failures reported per op, nothing rolled back."""
        w = Writer()
        for op, req in ops:
            try:
                body = self._read_body(op, req, tree)
            except ZKError as e:
                MultiHeader(Op.ERROR, False, e.code).write(w)
                ErrorResponse(e.code).write(w)
                continue
            MultiHeader(op, False, 0).write(w)
            w.buf += body
        MultiHeader(-1, True, -1).write(w)
        return w.getvalue()

    def _check_watches(self, op, req, tree) -> None:
        """checkWatches / removeWatches for this connection's watches on a path."""
        # WatcherType on the wire: 1 children, 2 data, 3 any. (Persistent watches are
        # found through the manager they sit in; 4 and 5 fail as in ZooKeeper 3.8.)
        if op == Op.CHECK_WATCHES and (
            req.path is None or (req.path and not req.path.startswith("/"))
        ):
            raise ZKError(Err.MARSHALLING_ERROR)  # as Apache 3.8 answers these
        if req.type == 1:
            tables = tree.child_manager
        elif req.type == 2:
            tables = tree.data_manager
        elif req.type == 3:
            tables = (*tree.child_manager, *tree.data_manager)
        else:
            raise ZKError(Err.MARSHALLING_ERROR)
        if op == Op.CHECK_WATCHES:
            # Apache 3.6-3.8's WatchManager.containsWatcher answers whether the manager
            # holds any watch on the path, whoever set it (it never compares the
            # watcher), so checkWatches succeeds on another session's watch as well.
            if not any(t.by_path.get(req.path) for t in tables):
                raise ZKError(Err.NO_WATCHER)
            return
        found = [t for t in tables if self in t.by_path.get(req.path, ())]
        if not found:
            raise ZKError(Err.NO_WATCHER)
        for t in found:
            t.remove(req.path, self)

    def _set_watches(self, req: SetWatches, tree) -> None:
        """Re-arm a reconnecting client's watches, firing at once those whose node
        changed after the last zxid it saw (ZooKeeper's DataTree.setWatches)."""
        rel = req.relativeZxid
        zxid = tree.last_zxid

        def rearm(paths, changed, event, table) -> None:
            # a watched node gone or changed since `rel` fires now; else it is watched again
            for path in paths or ():
                node = tree.nodes.get(path)
                if node is None:
                    self.send_event(EventType.NODE_DELETED, path, zxid)
                elif changed(node) > rel:
                    self.send_event(event, path, zxid)
                else:
                    table.add(path, self)

        rearm(req.dataWatches, lambda n: n.mzxid, EventType.NODE_DATA_CHANGED, tree.data_watches)
        for path in req.existWatches or ():
            if path in tree.nodes:
                self.send_event(EventType.NODE_CREATED, path, zxid)
            else:
                tree.data_watches.add(path, self)
        rearm(
            req.childWatches, lambda n: n.pzxid, EventType.NODE_CHILDREN_CHANGED, tree.child_watches
        )
        # setWatches2: persistent watches come back as they were, without events.
        for path in getattr(req, "persistentWatches", None) or ():
            tree.persistent_data.add(path, self)
            tree.persistent_child.add(path, self)
        for path in getattr(req, "persistentRecursiveWatches", None) or ():
            tree.recursive_watches.add(path, self)
            tree.recursive_child.add(path, self)


def _lookup(tree, path):
    """The node at path; "" is the root, as in Apache's DataTree."""
    return tree.nodes.get(path or "/")
