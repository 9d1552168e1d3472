"""Turning a write request into a transaction (ZooKeeper's PrepRequestProcessor).

Validation runs against the committed tree plus the changes of transactions that are
prepared but not yet applied ("outstanding changes"), so several writes can be in the
log's fsync or the ensemble's quorum round at once and still be validated in order.
"""

from __future__ import annotations

from collections import deque

from . import acl as acls
from .datatree import SYSTEM_PATHS, DataTree, parent_of
from .proto import (
    CONTAINER_OWNER,
    MULTI_OPS,
    CreateMode,
    Err,
    Id,
    Op,
    Perms,
    ZKError,
    ttl_of,
    ttl_owner,
)
from .txn import (
    CheckVersionTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    encode_sub,
)

MAX_SEQUENCE = 2**31 - 1
_MODES = frozenset(range(7))  # CreateMode.fromFlag: 0..6


def validate_path(path: str | None, sequential: bool = False) -> None:
    """PathUtils.validatePath; BadArguments on anything it refuses. A sequential
    create may end in "/" (the suffix completes the name)."""
    if path is None or not path.startswith("/"):
        raise ZKError(Err.BAD_ARGUMENTS, f"path must start with /: {path!r}")
    if path == "/":
        return
    body = path[1:-1] if sequential and path.endswith("/") else path[1:]
    if path.endswith("/") and not sequential:
        raise ZKError(Err.BAD_ARGUMENTS, "path must not end with /")
    for part in body.split("/"):
        if part in ("", ".", ".."):
            raise ZKError(Err.BAD_ARGUMENTS, f"invalid path {path!r}")
    for ch in path:
        if (
            ch == "\0"
            or "\u0001" <= ch <= "\u001f"
            or "\u007f" <= ch <= "\u009f"
            or "\ud800" <= ch <= "\uf8ff"
            or "\ufff0" <= ch <= "\uffff"
            # Java checks UTF-16 units: a character beyond the BMP is a surrogate pair
            or ch > "\uffff"
        ):
            raise ZKError(Err.BAD_ARGUMENTS, f"invalid character in path {path!r}")


class Change:
    """The would-be state of one path once outstanding transactions apply.
    exists=False records a pending delete."""

    __slots__ = ("zxid", "exists", "version", "cversion", "aversion", "owner", "children", "acl")

    def __init__(
        self, zxid, exists, version=0, cversion=0, aversion=0, owner=0, children=0, acl=()
    ):
        self.zxid = zxid
        self.exists = exists
        self.version = version
        self.cversion = cversion
        self.aversion = aversion
        self.owner = owner
        self.children = children
        self.acl = acl

    def copy(self, zxid: int) -> Change:
        return Change(
            zxid,
            self.exists,
            self.version,
            self.cversion,
            self.aversion,
            self.owner,
            self.children,
            self.acl,
        )


def _next_version(current: int, expected: int, path: str) -> int:
    if expected != -1 and expected != current:
        raise ZKError(Err.BAD_VERSION, path)
    return current + 1 if current < 2**31 - 1 else -(2**31)


class Preparer:
    def __init__(
        self,
        tree: DataTree,
        maxbuffer: int,
        extended_types: bool = False,
        enforce_quota: bool = False,
    ):
        self.tree = tree
        self.enforce_quota = enforce_quota  # zookeeper.enforceQuota
        self.maxbuffer = maxbuffer
        self.extended_types = extended_types  # zookeeper.extendedTypesEnabled: TTL nodes
        self.pending: dict[str, Change] = {}
        self.order: deque[tuple[int, str]] = deque()

    # --- outstanding changes ---------------------------------------------------------

    def record(self, path: str) -> Change:
        ch = self.pending.get(path)
        if ch is not None:
            if not ch.exists:
                raise ZKError(Err.NO_NODE, path)
            return ch
        node = self.tree.get(path)
        if node is None:
            raise ZKError(Err.NO_NODE, path)
        return Change(
            -1,
            True,
            node.version,
            node.cversion,
            node.aversion,
            node.owner,
            len(node.children),
            node.acl,
        )

    def _put(self, path: str, ch: Change) -> None:
        self.pending[path] = ch
        self.order.append((ch.zxid, path))

    def applied(self, zxid: int) -> None:
        """Forget changes now visible in the tree (called after applying zxid)."""
        while self.order and self.order[0][0] <= zxid:
            z, path = self.order.popleft()
            ch = self.pending.get(path)
            if ch is not None and ch.zxid == z:
                del self.pending[path]

    def reset(self) -> None:
        self.pending.clear()
        self.order.clear()

    # --- requests -> txns --------------------------------------------------------------

    def prepare(self, op: int, req, session: int, auth: list[Id], zxid: int):
        """Return (txn type, txn body) or raise ZKError."""
        if op in (Op.CREATE, Op.CREATE2, Op.CREATE_CONTAINER, Op.CREATE_TTL):
            return op, self._create(op, req, session, auth, zxid)
        if op == Op.DELETE:
            return op, self._delete(req, auth, zxid)
        if op == Op.SET_DATA:
            return op, self._set_data(req, auth, zxid)
        if op == Op.SET_ACL:
            return op, self._set_acl(req, auth, zxid)
        if op == Op.CHECK:
            validate_path(req.path)
            rec = self.record(req.path)
            acls.check(rec.acl, Perms.READ, auth)
            return op, CheckVersionTxn(req.path, _next_version(rec.version, req.version, req.path))
        if op == Op.MULTI:
            return op, self._multi(req, session, auth, zxid)
        raise ZKError(Err.UNIMPLEMENTED)

    def _create(self, op, req, session, auth, zxid) -> CreateTxn:
        # As PrepRequestProcessor.pRequest2TxnCreate: the flags name the mode for every
        # create opcode (an unknown one is BadArguments), a TTL mode needs
        # zookeeper.extendedTypesEnabled, and a TTL goes with TTL modes only.
        flags = req.flags
        ttl = req.ttl if op == Op.CREATE_TTL else -1
        if flags not in _MODES:
            raise ZKError(Err.BAD_ARGUMENTS, f"unsupported create flags {flags}")
        is_ttl = flags in (
            CreateMode.PERSISTENT_WITH_TTL,
            CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL,
        )
        if is_ttl and not self.extended_types:
            raise ZKError(Err.UNIMPLEMENTED)
        if is_ttl:
            try:
                ttl_owner(ttl)
            except ValueError:
                raise ZKError(Err.BAD_ARGUMENTS, str(req.path)) from None
        elif ttl >= 0 or op == Op.CREATE_TTL:
            # Apache lets createTTL with a negative TTL and another mode through to
            # the apply step, which then cannot encode it; refused here instead.
            raise ZKError(Err.BAD_ARGUMENTS, f"ttl not valid for mode {flags}")
        sequential = flags in (
            CreateMode.PERSISTENT_SEQUENTIAL,
            CreateMode.EPHEMERAL_SEQUENTIAL,
            CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL,
        )
        ephemeral = flags in (CreateMode.EPHEMERAL, CreateMode.EPHEMERAL_SEQUENTIAL)
        path = req.path
        if path is None:
            raise ZKError(Err.MARSHALLING_ERROR, "null path")  # Apache's NPE, caught
        # validatePathForCreate: only a "/" somewhere and no NUL before the sequence
        # suffix is added; the full path is validated after (so "/p/." sequential
        # becomes "/p/.0000000001", and "/" sequential a child of the root).
        i = path.rfind("/")
        if i < 0 or "\0" in path:
            raise ZKError(Err.BAD_ARGUMENTS, f"invalid path {path!r}")
        parent_path = path[:i] if i > 0 else "/"
        if req.data is not None and len(req.data) > self.maxbuffer:
            raise ZKError(Err.BAD_ARGUMENTS, "data exceeds jute.maxbuffer")
        acl = acls.fixup(req.acl, auth)
        parent = self.record(parent_path)
        acls.check(parent.acl, Perms.CREATE, auth)
        if sequential:
            path = f"{path}{parent.cversion:010d}"
        validate_path(path)
        try:
            self.record(path)
            raise ZKError(Err.NODE_EXISTS, path)
        except ZKError as e:
            if e.code != Err.NO_NODE:
                raise
        if parent.owner and parent.owner != CONTAINER_OWNER and not ttl_of(parent.owner):
            raise ZKError(Err.NO_CHILDREN_FOR_EPHEMERALS, path)
        new_cversion = parent.cversion + 1
        if self.enforce_quota:
            self.tree.quotas.check(path, len(req.data) if req.data else 0, 1)
        # The opcode, not the flags, makes the node (Apache's DataTree applies each
        # txn type so): create and create2 carry only "ephemeral or not", so flags=4
        # there makes a plain persistent node; createContainer always a container.
        if op == Op.CREATE_CONTAINER:
            owner = CONTAINER_OWNER
        elif op == Op.CREATE_TTL:
            owner = ttl_owner(ttl)
        else:
            owner = session if ephemeral else 0
        p = parent.copy(zxid)
        p.cversion = new_cversion
        p.children += 1
        self._put(parent_path, p)
        self._put(path, Change(zxid, True, owner=owner, acl=tuple(acl)))
        return CreateTxn(path, req.data, acl, owner, new_cversion)

    def _delete(self, req, auth, zxid) -> DeleteTxn:
        path = req.path
        if path is None:
            raise ZKError(Err.MARSHALLING_ERROR, "null path")  # Apache's NPE, caught
        # getParentPathAndValidate: a "/" somewhere, no NUL, not a system node; the
        # rest of the path is not validated (a malformed one is simply not there).
        if path.rfind("/") < 0 or "\0" in path or path == "/" or path in SYSTEM_PATHS:
            raise ZKError(Err.BAD_ARGUMENTS, str(path))
        parent_path = parent_of(path)
        parent = self.record(parent_path)
        acls.check(parent.acl, Perms.DELETE, auth)
        node = self.record(path)
        _next_version(node.version, req.version, path)
        if node.children > 0:
            raise ZKError(Err.NOT_EMPTY, path)
        p = parent.copy(zxid)
        p.children -= 1
        self._put(parent_path, p)
        self._put(path, Change(zxid, False))
        return DeleteTxn(path)

    def delete_container(self, path: str, zxid: int):
        """The container manager's delete (Apache's deleteContainer): no ACL check,
        NotEmpty while it has children, BadVersion for a session's ephemeral. The txn
        is an ordinary delete, which every server applies alike."""
        node = self.record(path)
        if node.children > 0:
            raise ZKError(Err.NOT_EMPTY, path)
        if node.owner and node.owner != CONTAINER_OWNER and not ttl_of(node.owner):
            raise ZKError(Err.BAD_VERSION, path)
        parent_path = parent_of(path)
        p = self.record(parent_path).copy(zxid)
        p.children -= 1
        self._put(parent_path, p)
        self._put(path, Change(zxid, False))
        return Op.DELETE, DeleteTxn(path)

    def _set_data(self, req, auth, zxid) -> SetDataTxn:
        validate_path(req.path)
        if req.data is not None and len(req.data) > self.maxbuffer:
            raise ZKError(Err.BAD_ARGUMENTS, "data exceeds jute.maxbuffer")
        node = self.record(req.path)
        acls.check(node.acl, Perms.WRITE, auth)
        if self.enforce_quota:
            # Apache takes the old size from its outstanding change record; the
            # applied node's is used here (the same unless a write to it is in flight).
            old = self.tree.get(req.path)
            old_size = len(old.data) if old is not None and old.data else 0
            new_size = len(req.data) if req.data else 0
            self.tree.quotas.check(req.path, new_size - old_size, 0)
        version = _next_version(node.version, req.version, req.path)
        n = node.copy(zxid)
        n.version = version
        self._put(req.path, n)
        return SetDataTxn(req.path, req.data, version)

    def _set_acl(self, req, auth, zxid) -> SetACLTxn:
        validate_path(req.path)
        acl = acls.fixup(req.acl, auth)
        node = self.record(req.path)
        acls.check(node.acl, Perms.ADMIN, auth)
        version = _next_version(node.aversion, req.version, req.path)
        n = node.copy(zxid)
        n.aversion = version
        n.acl = tuple(acl)
        self._put(req.path, n)
        return SetACLTxn(req.path, acl, version)

    def _multi(self, ops, session, auth, zxid) -> MultiTxn:
        # Remember what the outstanding changes were so a failing op rolls them back.
        saved_pending = dict(self.pending)
        saved_len = len(self.order)
        subs = []
        failed = False
        for op, req in ops:
            if failed:
                subs.append(encode_sub(Op.ERROR, ErrorTxn(Err.RUNTIME_INCONSISTENCY)))
                continue
            try:
                if op not in MULTI_OPS:
                    raise ZKError(Err.BAD_ARGUMENTS, f"op {op} not allowed in multi")
                t_op, body = self.prepare(op, req, session, auth, zxid)
                subs.append(encode_sub(t_op, body))
            except ZKError as e:
                failed = True
                subs.append(encode_sub(Op.ERROR, ErrorTxn(e.code)))
                self.pending = saved_pending
                while len(self.order) > saved_len:
                    self.order.pop()
        return MultiTxn(subs)


__all__ = ["Preparer", "validate_path"]
