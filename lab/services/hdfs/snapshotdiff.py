"""The difference between two snapshots of a directory, or a snapshot and the directory
as it is now, as Hadoop's SnapshotDiffReport lists it: "M" a file or directory whose
content or attributes changed (a directory whose children changed among them), "+" the
top of what was created, "-" the top of what was deleted, "R" a file or directory that
moved within the snapshot root (old path, new path). Paths are relative to the root
("" for the root itself). Inodes keep their ids in a snapshot's frozen copy
(snapshot.py), so the two trees are matched by id."""

from __future__ import annotations

MODIFY, CREATE, DELETE, RENAME = "M", "+", "-", "R"
TYPES = {MODIFY: "MODIFY", CREATE: "CREATE", DELETE: "DELETE", RENAME: "RENAME"}


def _index(root) -> dict[int, tuple[str, object, int | None]]:
    """inode id -> (path relative to the root, inode, parent's id)."""
    found = {root.inode_id: ("", root, None)}
    stack = [(root, "")]
    while stack:
        node, rel = stack.pop()
        for name, child in node.children.items() if node.is_dir else ():
            path = f"{rel}/{name}" if rel else name
            found[child.inode_id] = (path, child, node.inode_id)
            stack.append((child, path))
    return found


def _state(node) -> tuple:
    """What makes an inode "modified" when it differs."""
    common = (node.mode, node.owner, node.group, tuple(node.acl or ()))
    if node.is_dir:
        return (*common, tuple(sorted((n, c.inode_id) for n, c in node.children.items())))
    blocks = tuple((b.block_id, b.gen_stamp, b.num_bytes) for b in node.blocks)
    return (*common, node.replication, blocks)


def diff(old_root, new_root) -> list[tuple[str, str, str | None]]:
    """-> [(label, path, target path for a rename)], in path order."""
    old, new = _index(old_root), _index(new_root)
    entries: list[tuple[str, str, str | None]] = []
    for ident, (path, node, parent) in new.items():
        if ident not in old:
            if parent in old:  # only the top of a created subtree
                entries.append((CREATE, path, None))
            continue
        old_path, old_node, old_parent = old[ident]
        if node.is_dir != old_node.is_dir:
            entries += [(DELETE, old_path, None), (CREATE, path, None)]
            continue
        if ident != new_root.inode_id and (old_parent, old_path.rsplit("/", 1)[-1]) != (
            parent,
            path.rsplit("/", 1)[-1],
        ):
            entries.append((RENAME, old_path, path))
        if _state(node) != _state(old_node):
            entries.append((MODIFY, path, None))
    for ident, (path, _node, parent) in old.items():
        if ident not in new and parent in new:  # only the top of a deleted subtree
            entries.append((DELETE, path, None))
    order = {MODIFY: 0, RENAME: 1, DELETE: 2, CREATE: 3}
    return sorted(entries, key=lambda e: (e[1].split("/") if e[1] else [], order[e[0]]))
