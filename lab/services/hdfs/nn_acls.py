"""The NameNode's ACL operations, as FSNamesystem and FSDirAclOp do them: safe mode, then
dfs.namenode.acls.enabled (Hadoop 3's default is true), the path walked (execute on
every directory), the caller must own the inode (or be the superuser), the new ACL made
from the inode's whole ACL (acl.py) and logged as OP_SET_ACL with every entry, so replay
and the checkpoint keep it. A mixin of NameNode, used by both front doors."""

from __future__ import annotations

from ..hadoop.errors import AclException
from . import acl
from .namespace import normalize


class AclOps:
    def _acls_enabled(self) -> None:
        if not self.acls_enabled:
            raise AclException(
                "The ACL operation has been rejected.  Support for ACLs has been disabled "
                f"by setting {acl.ACLS_KEY} to false."
            )

    def _owned(self, path: str, user: str, safemode: str):
        path = normalize(path)
        self.check_not_safemode(f"{safemode} {path}")
        self._acls_enabled()
        self.perm(path, user)
        node = self.ns.get(path)
        self.ns.check_owner(path, user, self.groups_of(user))
        return path, node

    def _log_acl(self, path: str, entries: list[acl.AclEntry]) -> None:
        self.log_apply({"op": "OP_SET_ACL", "src": path, "aclEntries": [str(e) for e in entries]})

    def get_acl_status(self, path: str, user: str) -> dict:
        """FSDirAclOp.getAclStatus: owner, group, sticky bit, the permission, and the
        entries the inode's ACL feature holds (not the ones its bits carry)."""
        self._acls_enabled()
        path = normalize(path)
        self.perm(path, user)
        node = self.ns.get(path)
        return {
            "owner": node.owner,
            "group": node.group,
            "sticky": bool(node.mode & 0o1000),
            "permission": node.mode,
            "entries": list(node.acl or []),
        }

    def modify_acl_entries(self, path: str, spec: list[acl.AclEntry], user: str) -> None:
        path, node = self._owned(path, user, "Cannot modify ACL entries on")
        self._set(path, node, acl.merge_entries(acl.logical(node.mode, node.acl), spec))

    def remove_acl_entries(self, path: str, spec: list[acl.AclEntry], user: str) -> None:
        path, node = self._owned(path, user, "Cannot remove ACL entries on")
        self._set(path, node, acl.filter_by_spec(acl.logical(node.mode, node.acl), spec))

    def remove_default_acl(self, path: str, user: str) -> None:
        path, node = self._owned(path, user, "Cannot remove default ACL entries on")
        self._set(path, node, acl.filter_default(acl.logical(node.mode, node.acl)))

    def remove_acl(self, path: str, user: str) -> None:
        path, node = self._owned(path, user, "Cannot remove ACL on")
        self._log_acl(path, [])

    def set_acl(self, path: str, spec: list[acl.AclEntry], user: str) -> None:
        path, node = self._owned(path, user, "Cannot set ACL on")
        self._set(path, node, acl.replace_entries(acl.logical(node.mode, node.acl), spec))

    def _set(self, path: str, node, new: list[acl.AclEntry]) -> None:
        acl.stored(node.mode, new, node.is_dir)  # refused before anything is logged
        self._log_acl(path, new)
