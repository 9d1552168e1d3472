"""The NameNode's snapshot operations, as FSNamesystem and SnapshotManager do them:
allowSnapshot and disallowSnapshot for the superuser, createSnapshot, renameSnapshot and
deleteSnapshot for the directory's owner, each logged; nothing is written under a
.snapshot path; the blocks a deleted file leaves to a snapshot stay until no snapshot
names them. A mixin of NameNode, used by both front doors."""

from __future__ import annotations

import time

from ..hadoop.errors import (
    HadoopIllegalArgumentException,
    SnapshotAccessControlException,
    SnapshotException,
)
from . import snapshot, snapshotdiff
from .blockmanager import BlockInfo
from .namespace import READ, normalize, split_path


class SnapshotOps:
    def _snapshottable(self, path: str, user: str, safemode: str):
        path = normalize(path)
        self.check_not_safemode(f"{safemode} {path}")
        self.perm(path, user)
        d = self.ns.get(path)
        if d.snapshot_dir is None:
            raise SnapshotException(f"Directory is not a snapshottable directory: {path}")
        self.ns.check_owner(path, user, self.groups_of(user))
        return path, d

    def allow_snapshot(self, path: str, user: str) -> None:
        path, d = self.superuser_directory(path, user, "Cannot allow snapshot for")
        if d.snapshot_dir is None:
            self.log_apply({"op": "OP_ALLOW_SNAPSHOT", "path": path})

    def disallow_snapshot(self, path: str, user: str) -> None:
        path, d = self.superuser_directory(path, user, "Cannot disallow snapshot for")
        if d.snapshot_dir is not None and d.snapshot_dir.children:
            raise SnapshotException(
                f"The directory {path} has snapshot(s). Please redo the operation after "
                "removing all the snapshots."
            )
        if d.snapshot_dir is not None:
            self.log_apply({"op": "OP_DISALLOW_SNAPSHOT", "path": path})

    def create_snapshot(self, path: str, name: str | None, user: str) -> str:
        path, d = self._snapshottable(path, user, "Cannot create snapshot for")
        name = name or snapshot.default_name()
        snapshot.check_name(name)
        if name in d.snapshot_dir.children:
            raise SnapshotException(
                f'Failed to add snapshot: there is already a snapshot with the same name "{name}".'
            )
        op = {"op": "OP_CREATE_SNAPSHOT", "path": path, "name": name}
        self.log_apply(dict(op, mtime=int(time.time() * 1000)))
        return f"{path.rstrip('/')}/{snapshot.DOT_SNAPSHOT}/{name}"

    def rename_snapshot(self, path: str, old: str, new: str, user: str) -> None:
        path, d = self._snapshottable(path, user, "Cannot rename snapshot for")
        if old not in d.snapshot_dir.children:
            raise SnapshotException(f"The snapshot {old} does not exist for directory {path}")
        if old == new:
            return
        snapshot.check_name(new)
        if new in d.snapshot_dir.children:
            raise SnapshotException(f"The snapshot {new} already exists for directory {path}")
        op = {"op": "OP_RENAME_SNAPSHOT", "path": path, "oldName": old, "newName": new}
        self.log_apply(op)

    def delete_snapshot(self, path: str, name: str, user: str) -> None:
        path, d = self._snapshottable(path, user, "Cannot delete snapshot for")
        gone = d.snapshot_dir.children.get(name)
        if gone is None:
            raise SnapshotException(
                f"Cannot delete snapshot {name} from path {path}: the snapshot does not exist."
            )
        blocks = [b for f in snapshot.all_files(gone) for b in f.blocks]
        self.log_apply({"op": "OP_DELETE_SNAPSHOT", "path": path, "name": name})
        self._release(blocks)

    def snapshot_diff(self, path: str, old: str, new: str, user: str) -> list:
        """SnapshotManager.diff: between two snapshots of a directory ("" or "." for the
        directory as it is now), as snapshotdiff.diff lists it."""
        path = normalize(path)
        self.perm(path, user, target=READ)
        d = self.ns.get(path)
        if d.snapshot_dir is None:
            raise SnapshotException(f"Directory is not a snapshottable directory: {path}")

        def tree(name: str):
            if name in ("", "."):
                return d
            found = d.snapshot_dir.children.get(name)
            if found is None:
                raise SnapshotException(
                    f"Cannot find the snapshot of directory {path} with name {name}"
                )
            return found

        return snapshotdiff.diff(tree(old), tree(new))

    def snapshottable_dirs(self, user: str) -> list:
        """SnapshotManager.getSnapshottableDirListing: the snapshottable directories the
        user owns (all of them for the superuser), by path."""
        groups = self.groups_of(user)
        everyone = user == self.superuser or self.supergroup in groups
        found, stack = [], [self.ns.root]
        while stack:
            n = stack.pop()
            if not n.is_dir:
                continue
            if n.snapshot_dir is not None and (everyone or n.owner == user):
                found.append(n)
            stack.extend(n.children.values())
        return sorted(found, key=lambda d: d.path())

    # ------------------------------------------------------------ for the rest
    def _read_only(self, op: dict) -> None:
        """No change goes under a .snapshot path (SnapshotAccessControlException)."""
        if op["op"].endswith("_SNAPSHOT"):
            return
        for key in ("path", "src", "dst"):
            p = op.get(key)
            parts = split_path(p) if isinstance(p, str) else []
            if snapshot.DOT_SNAPSHOT not in parts:
                continue
            above = "/" + "/".join(parts[: parts.index(snapshot.DOT_SNAPSHOT)])
            d = self.ns.lookup(above)
            if d is not None and d.is_dir and d.snapshot_dir is not None:
                raise SnapshotAccessControlException(
                    "Modification on a read-only snapshot is disallowed"
                )
            # FSDirectory.verifyINodeName: the name is Hadoop's everywhere.
            raise HadoopIllegalArgumentException('".snapshot" is a reserved name.')

    def _release(self, blocks) -> None:
        """Blocks the live tree no longer names: forgotten (their replicas deleted) unless
        a snapshot still names them, in which case the snapshot's file now owns them."""
        if not self.ns.snapshottable:
            self.bm.remove_blocks(blocks)
            return
        live = {b.block_id for f in self.ns.walk_files() for b in f.blocks}
        kept = {}
        for f in snapshot.all_files(self.ns.root):
            for b in f.blocks:
                if b.block_id not in live:
                    kept.setdefault(b.block_id, (b, f))
        free = []
        for b in blocks:
            if b.block_id in live:
                continue
            if b.block_id in kept:
                info = self.bm.blocks.get(b.block_id)
                if info is not None:
                    info.block, info.file = kept[b.block_id]
                    info.complete = True
                continue
            free.append(b)
        self.bm.remove_blocks(free)

    def _register_snapshot_blocks(self) -> None:
        """At start-up: blocks only snapshots name are blocks the NameNode knows."""
        for f in snapshot.all_files(self.ns.root):
            for b in f.blocks:
                if b.block_id not in self.bm.blocks:
                    self.bm.blocks[b.block_id] = BlockInfo(b, f, True)
