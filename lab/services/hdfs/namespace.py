"""The NameNode's namespace: a tree of directories and files with HDFS permissions,
changed only by applying edit-log operations, so that the live path and replay after a
restart run the same code.

Every operation is a dict {"op": "OP_...", ...}; `check_*` methods validate a request
and raise the Hadoop exception a real NameNode would, `apply` performs a logged op.
"""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass, field

from ..hadoop.errors import (
    AccessControlException,
    FileAlreadyExistsException,
    FileNotFoundException,
    HadoopIllegalArgumentException,
    InvalidPathException,
    IOException,
    ParentNotDirectoryException,
    PathIsNotEmptyDirectoryException,
)
from ..hadoop.fields import Any_, FieldError, Int, List, Str, Struct
from . import acl, snapshot

READ, WRITE, EXECUTE = 4, 2, 1  # permission bits, as checks name them
# Hadoop's FsAction names, which its permission errors use (access=WRITE).
FS_ACTION = {
    0: "NONE", 1: "EXECUTE", 2: "WRITE", 3: "WRITE_EXECUTE",
    4: "READ", 5: "READ_EXECUTE", 6: "READ_WRITE", 7: "ALL",
}  # fmt: skip
ROOT_INODE_ID = 16385  # as in Hadoop's INodeId
FIRST_BLOCK_ID = 1 << 30  # Hadoop's SequentialBlockIdGenerator starts at 2^30 + 1
FIRST_GENSTAMP = 1000


def now_ms() -> int:
    """The clock of inode times (mtime, atime), in milliseconds as Hadoop's."""
    return int(time.time() * 1000)


@dataclass
class Block:
    block_id: int
    gen_stamp: int
    num_bytes: int = 0

    def to_json(self) -> dict:
        return {"blockId": self.block_id, "genStamp": self.gen_stamp, "numBytes": self.num_bytes}

    @classmethod
    def from_json(cls, obj: dict) -> Block:
        return cls(int(obj["blockId"]), int(obj["genStamp"]), int(obj.get("numBytes", 0)))

    @property
    def name(self) -> str:
        return f"blk_{self.block_id}_{self.gen_stamp}"


# Block's JSON form, as requests, reports and images carry it.
BLOCK_JSON = Struct(blockId=Int(0), genStamp=Int(0), numBytes=Int(0, default=0))
_INODE_FIELDS = dict(
    id=Int(1),
    parent=Int(1, default=None),
    name=Str(),
    owner=Str(),
    group=Str(),
    mode=Int(0, 0o7777),
    mtime=Int(),
    atime=Int(),
    acl=List(Str(max_len=1024), max_len=acl.MAX_ENTRIES * 2, default=None),
)
IMAGE_RECORDS = {
    "DIRECTORY": Struct(
        type=Str(), nsQuota=Int(-1, default=-1), dsQuota=Int(-1, default=-1), **_INODE_FIELDS
    ),
    "FILE": Struct(
        type=Str(),
        replication=Int(1, 32767),
        blockSize=Int(1),
        blocks=List(BLOCK_JSON, max_len=10**7),
        clientName=Str(default=None),
        clientMachine=Str(default=None),
        **_INODE_FIELDS,
    ),
}
IMAGE = Struct(
    _extra=True,
    txid=Int(0),
    lastInodeId=Int(0),
    lastBlockId=Int(0),
    genStamp=Int(0),
    inodes=List(Any_(), max_len=10**9),
)


@dataclass(eq=False)
class INode:
    inode_id: int
    name: str
    owner: str
    group: str
    mode: int
    mtime: int
    atime: int
    parent: INodeDirectory | None = field(default=None, repr=False)
    # The ACL feature: named entries, the owning group's entry and the default ACL (the
    # rest of the ACL is the permission bits), or None; not a dataclass field, so the
    # subclasses' positional fields stay where they were.
    acl = None

    def path(self) -> str:
        parts, node = [], self
        while node.parent is not None:
            parts.append(node.name)
            node = node.parent
        return "/" + "/".join(reversed(parts))


@dataclass(eq=False)
class INodeDirectory(INode):
    children: dict[str, INode] = field(default_factory=dict)
    is_dir = True
    # Quotas (quota.py): names and bytes with replicas, -1 for none; not dataclass fields.
    ns_quota = -1
    ds_quota = -1
    # A snapshottable directory's DIR/.snapshot (snapshot.py): its children are the
    # snapshots' frozen roots; None when snapshots are not allowed here.
    snapshot_dir = None


@dataclass(eq=False)
class INodeFile(INode):
    replication: int = 3
    block_size: int = 134217728
    blocks: list[Block] = field(default_factory=list)
    client_name: str | None = None  # set while under construction (the lease holder)
    # The writer's address while under construction, kept with the holder as Hadoop's
    # FileUnderConstructionFeature keeps it (OP_ADD, OP_APPEND, the fsimage), so a refusal
    # after a restart still says "owned by <holder> on <machine>".
    client_machine: str | None = None
    is_dir = False

    @property
    def length(self) -> int:
        return sum(b.num_bytes for b in self.blocks)


def child(node: INode, part: str) -> INode | None:
    """A directory's child by name; DIR/.snapshot of a snapshottable directory too."""
    if not isinstance(node, INodeDirectory):
        return None
    found = node.children.get(part)
    if found is None and part == snapshot.DOT_SNAPSHOT:
        return node.snapshot_dir
    return found


def split_path(path: str) -> list[str]:
    """Components of an absolute HDFS path; rejects what DFSUtil.isValidName rejects."""
    if not path.startswith("/"):
        raise InvalidPathException(f"Invalid path name Path is not absolute: {path}")
    parts = [p for p in path.split("/") if p]
    for p in parts:
        if p in (".", "..") or ":" in p:
            raise InvalidPathException(f"Invalid path name Invalid file name: {path}")
    return parts


def normalize(path: str) -> str:
    return "/" + "/".join(split_path(path))


class Namespace:
    def __init__(self, superuser: str, supergroup: str, permissions: bool = True) -> None:
        self.superuser = superuser
        self.supergroup = supergroup
        self.permissions = permissions
        # dfs.namenode.posix.acl.inheritance.enabled: a child of a directory with a
        # default ACL starts from the mode the client asked for before its umask.
        self.acl_inheritance = True
        # Ids of directories snapshots were allowed on (a hint: empty, no snapshot
        # anywhere, so a deleted file's blocks go at once).
        self.snapshottable: set[int] = set()
        self.root = INodeDirectory(ROOT_INODE_ID, "", superuser, supergroup, 0o755, 0, 0)
        self.last_inode_id = ROOT_INODE_ID
        self.last_block_id = FIRST_BLOCK_ID
        self.gen_stamp = FIRST_GENSTAMP
        self.inodes: dict[int, INode] = {ROOT_INODE_ID: self.root}

    # ------------------------------------------------------------ lookup
    def lookup(self, path: str) -> INode | None:
        node: INode = self.root
        for part in split_path(path):
            node = child(node, part)
            if node is None:
                return None
        return node

    def get(self, path: str) -> INode:
        node = self.lookup(path)
        if node is None:
            raise FileNotFoundException(f"File does not exist: {path}")
        return node

    def get_file(self, path: str) -> INodeFile:
        node = self.get(path)
        if not isinstance(node, INodeFile):
            raise FileNotFoundException(f"Path is not a file: {path}")
        return node

    def walk_files(self, node: INode | None = None):
        stack = [node or self.root]
        while stack:
            n = stack.pop()
            if isinstance(n, INodeFile):
                yield n
            elif isinstance(n, INodeDirectory):
                stack.extend(n.children.values())

    # ------------------------------------------------------------ permissions
    def _is_super(self, user: str, groups: list[str]) -> bool:
        return user == self.superuser or self.supergroup in groups

    def check_access(
        self,
        path: str,
        user: str,
        groups: list[str],
        parent: int = 0,
        target: int = 0,
        ancestor: int = 0,
        subtree: int = 0,
    ) -> None:
        """FSPermissionChecker: x on every directory walked, then the requested bits
        (4 read, 2 write, 1 execute) on the parent, the target, the nearest existing
        ancestor, or every node of the subtree."""
        if not self.permissions or self._is_super(user, groups):
            return
        parts = split_path(path)
        node: INode = self.root
        chain: list[INode] = [node]
        for part in parts:
            nxt = child(node, part)
            if nxt is None:
                break
            node = nxt
            chain.append(node)
        exists = len(chain) == len(parts) + 1
        walked = chain[:-1] if exists else chain
        for d in walked:
            if isinstance(d, INodeDirectory):
                self._require(d, user, groups, 1, path)
        if ancestor:
            anc = chain[-2] if exists and len(chain) > 1 else chain[-1]
            self._require(anc, user, groups, ancestor, path)
        if parent and exists and len(chain) > 1:
            self._require(chain[-2], user, groups, parent, path)
        if target and exists:
            self._require(chain[-1], user, groups, target, path)
        if subtree and exists:
            stack = [chain[-1]]
            while stack:
                n = stack.pop()
                if isinstance(n, INodeDirectory):
                    self._require(n, user, groups, subtree, path)
                    stack.extend(n.children.values())

    def _require(self, node: INode, user: str, groups: list[str], bits: int, path: str) -> None:
        """FSPermissionChecker.check: through the ACL when the inode has access entries
        (a denial then ends in "+", as Hadoop marks it), else the owner, group or other
        bits."""
        by_acl = bool(node.acl) and node.acl[0].scope == acl.ACCESS
        if by_acl:
            allowed = acl.check_access(
                node.acl, node.mode, node.owner, node.group, user, groups, bits
            )
        else:
            if user == node.owner:
                granted = (node.mode >> 6) & 7
            elif node.group in groups:
                granted = (node.mode >> 3) & 7
            else:
                granted = node.mode & 7
            allowed = granted & bits == bits
        if not allowed:
            access = FS_ACTION[bits]
            kind = "d" if isinstance(node, INodeDirectory) else "-"
            raise AccessControlException(
                f'Permission denied: user={user}, access={access}, inode="{node.path()}":'
                f"{node.owner}:{node.group}:{kind}{mode_string(node.mode)}"
                + ("+" if by_acl else "")
            )

    def check_owner(self, path: str, user: str, groups: list[str]) -> None:
        if not self.permissions or self._is_super(user, groups):
            return
        node = self.get(path)
        if node.owner != user:
            raise AccessControlException(
                f"Permission denied. user={user} is not the owner of inode={path}"
            )

    # ------------------------------------------------------------ checks for writes
    def parent_for_create(self, path: str) -> tuple[INodeDirectory | None, list[str]]:
        """Deepest existing directory on the path and the missing components below it."""
        parts = split_path(path)
        node: INode = self.root
        for i, part in enumerate(parts[:-1] if parts else []):
            child = node.children.get(part)
            if child is None:
                return node, parts[i:]
            if not isinstance(child, INodeDirectory):
                raise ParentNotDirectoryException(
                    f"{posixpath.join('/', *parts[: i + 1])} (is not a directory)"
                )
            node = child
        return node, parts[-1:] if parts else []

    def check_create(self, path: str, overwrite: bool, machine: str = "") -> INodeFile | None:
        """-> the existing file this create would replace, if any. `machine`: the client's
        address, which Hadoop's refusal names."""
        if not split_path(path):
            raise FileAlreadyExistsException("/ already exists as a directory")
        self.parent_for_create(path)
        node = self.lookup(path)
        if isinstance(node, INodeDirectory):
            raise FileAlreadyExistsException(f"{path} already exists as a directory")
        if node is not None and not overwrite:
            raise FileAlreadyExistsException(f"{path} for client {machine} already exists")
        return node

    def check_rename(self, src: str, dst: str) -> tuple[INode, INodeDirectory, str] | None:
        """Hadoop's rename (old API): None when it would return false."""
        node = self.lookup(src)
        if node is None or node is self.root:
            return None
        dst_node = self.lookup(dst)
        if isinstance(dst_node, INodeDirectory):
            parent, name = dst_node, node.name
            if name in parent.children:
                return None
        else:
            if dst_node is not None:
                return None
            ppath = posixpath.dirname(normalize(dst))
            parent = self.lookup(ppath)
            if not isinstance(parent, INodeDirectory):
                return None
            name = split_path(dst)[-1]
        # A directory cannot move under itself.
        p = parent
        while p is not None:
            if p is node:
                return None
            p = p.parent
        return node, parent, name

    def check_delete(self, path: str, recursive: bool) -> INode | None:
        node = self.lookup(path)
        if node is None:
            return None
        if node is self.root:
            raise IOException("Cannot delete root directory")
        if isinstance(node, INodeDirectory) and node.children and not recursive:
            raise PathIsNotEmptyDirectoryException(f"`{path} is non empty': Directory is not empty")
        return node

    # ------------------------------------------------------------ apply (live and replay)
    def apply(self, op: dict):
        handler = getattr(self, "_" + op["op"].lower(), None)
        if handler is None:
            raise ValueError(f"unknown edit op {op['op']}")
        return handler(op)

    def _new_id(self, op: dict) -> int:
        self.last_inode_id = max(self.last_inode_id, int(op["inodeId"]))
        return int(op["inodeId"])

    def _op_mkdir(self, op: dict) -> None:
        parent, missing = self.parent_for_create(op["path"])
        for i, part in enumerate(missing):
            # One OP_MKDIR per missing level, each with its own id; replay gives the same tree.
            if part in parent.children:
                parent = parent.children[part]
                continue
            # Ancestors made on the way get u+wx, so their maker can go on below them
            # (FSDirMkdirOp.addImplicitUwx); the last level gets the mode asked for.
            mode = op["mode"] | (0o300 if i < len(missing) - 1 else 0)
            d = INodeDirectory(
                self._new_id({"inodeId": op["inodeIds"][i]}),
                part,
                op["owner"],
                op["group"],
                mode,
                op["mtime"],
                op["mtime"],
                parent,
            )
            self._inherit_acl(parent, d, op.get("unmasked"))
            parent.children[part] = d
            self.inodes[d.inode_id] = d
            parent.mtime = op["mtime"]
            parent = d

    def _op_add(self, op: dict) -> list[Block]:
        """Create (or overwrite) a file under construction; -> blocks of a replaced file."""
        removed: list[Block] = []
        parent, missing = self.parent_for_create(op["path"])
        old = parent.children.get(missing[-1]) if len(missing) == 1 else None
        if old is not None:
            removed = self._remove(old)
        if len(missing) > 1:
            raise FileNotFoundException(
                f"Parent directory doesn't exist: {posixpath.dirname(op['path'])}"
            )
        f = INodeFile(
            self._new_id(op),
            missing[-1],
            op["owner"],
            op["group"],
            op["mode"],
            op["mtime"],
            op["mtime"],
            parent,
            replication=op["replication"],
            block_size=op["blockSize"],
            client_name=op["clientName"],
            client_machine=op.get("clientMachine"),  # absent from logs written before it was
        )
        self._inherit_acl(parent, f, op.get("unmasked"))
        parent.children[f.name] = f
        parent.mtime = op["mtime"]
        self.inodes[f.inode_id] = f
        return removed

    def _op_add_block(self, op: dict) -> None:
        f = self.get_file(op["path"])
        blocks = [Block.from_json(b) for b in op["blocks"]]
        f.blocks = blocks
        last = blocks[-1]
        self.last_block_id = max(self.last_block_id, last.block_id)
        self.gen_stamp = max(self.gen_stamp, last.gen_stamp)

    def _op_update_blocks(self, op: dict) -> None:
        f = self.get_file(op["path"])
        f.blocks = [Block.from_json(b) for b in op["blocks"]]
        for b in f.blocks:
            self.gen_stamp = max(self.gen_stamp, b.gen_stamp)

    def _op_close(self, op: dict) -> None:
        f = self.get_file(op["path"])
        f.blocks = [Block.from_json(b) for b in op["blocks"]]
        f.mtime, f.atime = op["mtime"], op.get("atime", f.atime)
        f.client_name = f.client_machine = None

    def _op_append(self, op: dict) -> None:
        f = self.get_file(op["path"])
        f.client_name, f.client_machine = op["clientName"], op.get("clientMachine")
        if op.get("newGenStamp") and f.blocks:
            f.blocks[-1].gen_stamp = op["newGenStamp"]
            self.gen_stamp = max(self.gen_stamp, op["newGenStamp"])

    def _op_set_genstamp_v2(self, op: dict) -> None:
        self.gen_stamp = max(self.gen_stamp, op["genStamp"])

    def _op_reassign_lease(self, op: dict) -> None:
        f = self.get_file(op["path"])
        f.client_name = op["newHolder"]

    def _op_rename_old(self, op: dict) -> None:
        node = self.get(op["src"])
        checked = self.check_rename(op["src"], op["dst"])
        if checked is None:
            raise ValueError(f"replayed rename {op['src']} -> {op['dst']} is not possible")
        _, parent, name = checked
        del node.parent.children[node.name]
        node.parent.mtime = op["timestamp"]
        node.name, node.parent = name, parent
        parent.children[name] = node
        parent.mtime = op["timestamp"]

    def _op_delete(self, op: dict) -> list[Block]:
        node = self.get(op["path"])
        node.parent.mtime = op["timestamp"]
        return self._remove(node)

    def _remove(self, node: INode) -> list[Block]:
        del node.parent.children[node.name]
        removed: list[Block] = []
        stack = [node]
        while stack:
            n = stack.pop()
            self.inodes.pop(n.inode_id, None)
            if isinstance(n, INodeFile):
                removed.extend(n.blocks)
            elif isinstance(n, INodeDirectory):
                stack.extend(n.children.values())
        return removed

    def _inherit_acl(self, parent: INodeDirectory, child: INode, unmasked: int | None) -> None:
        """FSDirectory.copyINodeDefaultAcl: with inheritance on and the mode the client
        asked for before its umask (`unmasked`), a child of a directory with a default
        ACL starts from that mode, and from its umasked mode otherwise."""
        if self.acl_inheritance and unmasked is not None:
            got = acl.inherited(parent.acl, unmasked, child.is_dir)
        else:
            got = acl.inherited(parent.acl, child.mode, child.is_dir)
        if got is not None:
            child.mode, child.acl = got

    def _op_set_acl(self, op: dict) -> None:
        """OP_SET_ACL: the whole new ACL (FSDirAclOp.unprotectedSetAcl from the edits); an
        empty one removes the ACL."""
        node = self.get(op["src"])
        entries = [acl.parse_entry(e) for e in op["aclEntries"]]
        if not entries:
            node.mode, node.acl = acl.removed(node.mode, node.acl), None
        else:
            node.mode, node.acl = acl.stored(node.mode, entries, node.is_dir)

    def _op_allow_snapshot(self, op: dict) -> None:
        d = self.get(op["path"])
        snapshot.allow(d)
        self.snapshottable.add(d.inode_id)

    def _op_disallow_snapshot(self, op: dict) -> None:
        self.get(op["path"]).snapshot_dir = None

    def _op_create_snapshot(self, op: dict) -> None:
        d = self.get(op["path"])
        root = snapshot.frozen(d, None)
        root.mtime = op["mtime"]  # a snapshot's root shows when it was taken
        snapshot.attach(d, op["name"], root)

    def _op_delete_snapshot(self, op: dict) -> None:
        del self.get(op["path"]).snapshot_dir.children[op["name"]]

    def _op_rename_snapshot(self, op: dict) -> None:
        d = self.get(op["path"])
        snapshot.attach(d, op["newName"], d.snapshot_dir.children.pop(op["oldName"]))

    def _op_set_quota(self, op: dict) -> None:
        node = self.get(op["src"])
        node.ns_quota, node.ds_quota = op["nsQuota"], op["dsQuota"]

    def _op_set_permissions(self, op: dict) -> None:
        self.get(op["src"]).mode = op["mode"]

    def _op_set_owner(self, op: dict) -> None:
        node = self.get(op["src"])
        if op.get("username"):
            node.owner = op["username"]
        if op.get("groupname"):
            node.group = op["groupname"]

    def _op_set_replication(self, op: dict) -> None:
        self.get_file(op["path"]).replication = op["replication"]

    def _op_times(self, op: dict) -> None:
        node = self.get(op["path"])
        if op.get("mtime", -1) >= 0:
            node.mtime = op["mtime"]
        if op.get("atime", -1) >= 0:
            node.atime = op["atime"]

    def _op_start_log_segment(self, op: dict) -> None:
        pass

    def _op_end_log_segment(self, op: dict) -> None:
        pass

    # ------------------------------------------------------------ fsimage (de)serialisation
    def to_image(self) -> dict:
        image = {
            "lastInodeId": self.last_inode_id,
            "lastBlockId": self.last_block_id,
            "genStamp": self.gen_stamp,
            "inodes": _records(self.root),
        }
        snapshots = snapshot.image_entries(self.root, _records)
        if snapshots:
            image["snapshots"] = snapshots
        return image

    def load_image(self, image: dict) -> None:
        """Replace the namespace with an fsimage's; a damaged or made-up image raises
        FieldError (ValueError) and leaves nothing half loaded that anybody uses."""
        image = IMAGE.check(image, "fsimage")
        root, inodes = _tree(image["inodes"], "fsimage.inodes")
        entries = image.get("snapshots") or []
        snapshot.load_entries(entries, inodes, _tree)
        self.root, self.inodes = root, inodes
        self.snapshottable = {e["dir"] for e in entries}
        self.last_inode_id = image["lastInodeId"]
        self.last_block_id = image["lastBlockId"]
        self.gen_stamp = image["genStamp"]


def _records(top: INode) -> list[dict]:
    """fsimage records of a tree, parents before children (the root's parent None)."""
    inodes = []
    stack: list[INode] = [top]
    while stack:
        n = stack.pop()
        rec = {
            "id": n.inode_id,
            "parent": n.parent.inode_id if n.parent and n is not top else None,
            "name": n.name,
            "owner": n.owner,
            "group": n.group,
            "mode": n.mode,
            "mtime": n.mtime,
            "atime": n.atime,
        }
        if n.acl:
            rec["acl"] = [str(e) for e in n.acl]
        if isinstance(n, INodeDirectory) and (n.ns_quota >= 0 or n.ds_quota >= 0):
            rec.update(nsQuota=n.ns_quota, dsQuota=n.ds_quota)
        if isinstance(n, INodeFile):
            rec.update(
                type="FILE",
                replication=n.replication,
                blockSize=n.block_size,
                blocks=[b.to_json() for b in n.blocks],
                clientName=n.client_name,
                clientMachine=n.client_machine,
            )
        else:
            rec["type"] = "DIRECTORY"
            stack.extend(sorted(n.children.values(), key=lambda c: c.name, reverse=True))
        inodes.append(rec)
    return inodes


def _tree(records: list, where: str) -> tuple[INodeDirectory, dict[int, INode]]:
    """The tree of fsimage records (its root, and its inodes by id); a damaged or made-up
    record raises FieldError."""
    inodes: dict[int, INode] = {}
    root = None
    for i, rec in enumerate(records):
        spec = IMAGE_RECORDS.get(rec.get("type")) if isinstance(rec, dict) else None
        if spec is None:
            raise FieldError(f"{where}[{i}]", "is not a FILE or DIRECTORY record")
        rec = spec.check(rec, f"{where}[{i}]")
        common = [rec[k] for k in ("id", "name", "owner", "group", "mode", "mtime", "atime")]
        if rec["type"] == "FILE":
            n: INode = INodeFile(
                *common,
                None,
                rec["replication"],
                rec["blockSize"],
                [Block.from_json(b) for b in rec["blocks"]],
                rec.get("clientName"),
                rec.get("clientMachine"),
            )
        else:
            n = INodeDirectory(*common)
            n.ns_quota, n.ds_quota = rec["nsQuota"], rec["dsQuota"]
        if rec.get("acl"):
            try:
                n.acl = [acl.parse_entry(e) for e in rec["acl"]]
            except HadoopIllegalArgumentException as exc:
                raise FieldError(f"{where}[{i}].acl", str(exc)) from None
        if rec["parent"] is None:
            if root is not None or not isinstance(n, INodeDirectory):
                raise FieldError(f"{where}[{i}]", "a second root, or a root file")
            root = n
        else:
            parent = inodes.get(rec["parent"])
            if not isinstance(parent, INodeDirectory) or n.inode_id in inodes:
                raise FieldError(f"{where}[{i}]", "parent is not a directory before it")
            n.parent = parent
            parent.children[n.name] = n
        inodes[n.inode_id] = n
    if root is None:
        raise FieldError(where, "has no root directory")
    return root, inodes


def mode_string(mode: int) -> str:
    return "".join((c if mode & (1 << (8 - i)) else "-") for i, c in enumerate("rwxrwxrwx"))
