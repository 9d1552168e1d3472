"""HDFS snapshots as the NameNode keeps them: a directory the superuser made
snapshottable (allowSnapshot) holds read-only copies of its subtree taken at a moment
(createSnapshot), reached as DIR/.snapshot/NAME/..., renamed and deleted by the
directory's owner. racklab keeps each snapshot as a frozen copy of the subtree's inodes
(Hadoop keeps diffs against the live tree: the same view, more memory here); the blocks
a snapshot's files name stay on the DataNodes while any snapshot or the live tree names
them. Errors in Hadoop's words (SnapshotException, SnapshotAccessControlException)."""

from __future__ import annotations

import copy
import time

from ..hadoop.errors import SnapshotException
from ..hadoop.fields import FieldError

DOT_SNAPSHOT = ".snapshot"


def default_name(now: float | None = None) -> str:
    """Snapshot.generateDefaultSnapshotName: "s" + yyyyMMdd-HHmmss.SSS."""
    now = time.time() if now is None else now
    millis = int(now * 1000) % 1000
    return "s" + time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f".{millis:03d}"


def check_name(name: str) -> None:
    """The names Hadoop refuses for a snapshot."""
    if "/" in name:
        raise SnapshotException(f'Snapshot name cannot contain "/": {name}')
    if name in ("", ".", "..", DOT_SNAPSHOT):
        raise SnapshotException(f'"{name}" is a reserved name.')


def frozen(node, parent):
    """A copy of a subtree as it is now: its own inodes (the same ids), files with copies
    of their blocks as they stand (a later append does not change the snapshot's
    length), not under construction."""
    top = copy.copy(node)
    top.parent = parent
    top.acl = list(node.acl) if node.acl else None
    if node.is_dir:
        top.snapshot_dir = None  # snapshots are not nested in the copy
        top.children = {name: frozen(child, top) for name, child in node.children.items()}
    else:
        top.blocks = [copy.copy(b) for b in node.blocks]
        top.client_name = top.client_machine = None
    return top


def all_files(root):
    """Every file under `root`: the tree's own and those of the snapshots of its
    snapshottable directories."""
    stack = [root]
    while stack:
        n = stack.pop()
        if n.is_dir:
            if n.snapshot_dir is not None:
                stack.extend(n.snapshot_dir.children.values())
            stack.extend(n.children.values())
        else:
            yield n


def in_snapshot(node) -> bool:
    while node is not None:
        if node.name == DOT_SNAPSHOT and node.parent is not None:
            if node.parent.snapshot_dir is node:
                return True
        node = node.parent
    return False


def has_snapshots(node) -> str | None:
    """The path of the first directory under `node` (itself included) that has
    snapshots, if any: such a tree cannot be deleted."""
    stack = [node]
    while stack:
        n = stack.pop()
        if n.is_dir:
            if n.snapshot_dir is not None and n.snapshot_dir.children:
                return n.path()
            stack.extend(n.children.values())
    return None


def image_entries(root, records) -> list[dict]:
    """The fsimage's "snapshots": each snapshottable directory with its snapshots, each
    snapshot's tree as records."""
    out = []
    stack = [root]
    while stack:
        n = stack.pop()
        if not n.is_dir:
            continue
        if n.snapshot_dir is not None:
            out.append(
                {
                    "dir": n.inode_id,
                    "snapshots": [
                        {"name": name, "inodes": records(s)}
                        for name, s in sorted(n.snapshot_dir.children.items())
                    ],
                }
            )
        stack.extend(n.children.values())
    return out


def load_entries(entries: list, inodes: dict, tree) -> None:
    for i, entry in enumerate(entries):
        where = f"fsimage.snapshots[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("snapshots"), list):
            raise FieldError(where, "is not a snapshottable directory's record")
        d = inodes.get(entry.get("dir"))
        if d is None or not d.is_dir:
            raise FieldError(where, "names no directory of the image")
        allow(d)
        for j, snap in enumerate(entry["snapshots"]):
            if not isinstance(snap, dict) or not isinstance(snap.get("name"), str):
                raise FieldError(f"{where}.snapshots[{j}]", "has no name")
            root, _ = tree(snap.get("inodes") or [], f"{where}.snapshots[{j}].inodes")
            attach(d, snap["name"], root)


def allow(d) -> None:
    if d.snapshot_dir is None:
        sd = copy.copy(d)
        sd.name, sd.parent, sd.children, sd.acl = DOT_SNAPSHOT, d, {}, None
        sd.snapshot_dir = None
        d.snapshot_dir = sd


def attach(d, name: str, root) -> None:
    root.name, root.parent = name, d.snapshot_dir
    d.snapshot_dir.children[name] = root
