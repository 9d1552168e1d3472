"""HDFS ACLs as Hadoop's NameNode keeps them: entries and their text form (AclEntry), the
four changes clients ask for (AclTransformation: replace, merge, filter by a spec, drop
the default entries; masks computed, default base entries copied from the access ones,
the result checked), how an inode stores an ACL (AclStorage: the owner, mask and other
entries live in the permission bits, the rest in the inode's ACL feature, the mask as the
group bits), what a new child inherits from its parent's default ACL, and the access
check through the entries (FSPermissionChecker.checkAccessAcl: named users and groups
limited by the mask)."""

from __future__ import annotations

from typing import NamedTuple

from ..hadoop.errors import AclException, HadoopIllegalArgumentException

ACCESS, DEFAULT = 0, 1
USER, GROUP, MASK, OTHER = 0, 1, 2, 3  # in the order entries sort
TYPES = ("USER", "GROUP", "MASK", "OTHER")
SCOPES = ("ACCESS", "DEFAULT")
SYMBOLS = ("---", "--x", "-w-", "-wx", "r--", "r-x", "rw-", "rwx")  # FsAction.SYMBOL
MAX_ENTRIES = 32
HAS_ACL = 0x01  # HdfsFileStatusProto.Flags
ACL_BIT = 1 << 12  # FsPermissionExtension's ACL bit in a status's permission
# acl.proto's FsActionProto names, by permission bits.
FS_ACTIONS = ("NONE", "EXECUTE", "WRITE", "WRITE_EXECUTE", "READ", "READ_EXECUTE",
              "READ_WRITE", "PERM_ALL")  # fmt: skip
ACLS_KEY = "dfs.namenode.acls.enabled"
INHERITANCE_KEY = "dfs.namenode.posix.acl.inheritance.enabled"


class AclEntry(NamedTuple):
    """One entry; the tuple order is the order an ACL is kept in (scope, then type, then
    name with the unnamed entry first, as AclTransformation's comparator)."""

    scope: int
    type: int
    name: str = ""
    perm: int = 0

    @property
    def key(self) -> tuple[int, int, str]:
        return self.scope, self.type, self.name

    def __str__(self) -> str:
        """AclEntry.toStringStable: [default:]type:name:perm."""
        scope = "default:" if self.scope == DEFAULT else ""
        return f"{scope}{TYPES[self.type].lower()}:{self.name}:{SYMBOLS[self.perm]}"

    def spec(self, with_perm: bool = True) -> str:
        return str(self) if with_perm else str(self)[:-3]


def parse_entry(text: str, with_perm: bool = True) -> AclEntry:
    """AclEntry.parseAclEntry, with Hadoop's words for what it refuses."""
    split = text.split(":")
    # Java's String.split drops trailing empty strings.
    while split and split[-1] == "":
        split.pop()
    i, scope = 0, ACCESS
    if split and split[0] == "default":
        i, scope = 1, DEFAULT
    if len(split) <= i:
        raise HadoopIllegalArgumentException(f"Invalid <aclSpec> : {text}")
    if split[i].upper() not in TYPES:
        raise HadoopIllegalArgumentException(f"Invalid type of acl in <aclSpec> :{text}")
    type_ = TYPES.index(split[i].upper())
    i += 1
    name = ""
    if len(split) > i:
        name = split[i]
        i += 1
    perm = 0
    if with_perm:
        if len(split) <= i:
            raise HadoopIllegalArgumentException(f"Invalid <aclSpec> : {text}")
        if split[i] not in SYMBOLS:
            raise HadoopIllegalArgumentException(f"Invalid permission in <aclSpec> : {text}")
        perm = SYMBOLS.index(split[i])
        i += 1
    if len(split) > i:
        raise HadoopIllegalArgumentException(f"Invalid <aclSpec> : {text}")
    return AclEntry(scope, type_, name, perm)


def parse_spec(text: str, with_perm: bool = True) -> list[AclEntry]:
    """AclEntry.parseAclSpec: comma-separated entries."""
    return [parse_entry(part.strip(), with_perm) for part in text.split(",") if part.strip()]


def to_proto(e: AclEntry) -> dict:
    """AclEntryProto."""
    out = {"type": TYPES[e.type], "scope": SCOPES[e.scope], "permissions": FS_ACTIONS[e.perm]}
    if e.name:
        out["name"] = e.name
    return out


def from_proto(p: dict) -> AclEntry:
    return AclEntry(
        SCOPES.index(p["scope"]),
        TYPES.index(p["type"]),
        p.get("name") or "",
        FS_ACTIONS.index(p["permissions"]),
    )


# ------------------------------------------------------------ AclTransformation
def _validated(spec: list[AclEntry]) -> dict[tuple, AclEntry]:
    if len(spec) > MAX_ENTRIES:
        raise AclException(
            f"Invalid ACL: ACL spec has {len(spec)} entries, which exceeds maximum of "
            f"{MAX_ENTRIES}."
        )
    return {e.key: e for e in sorted(spec)}


def replace_entries(existing: list[AclEntry], spec: list[AclEntry]) -> list[AclEntry]:
    """setAcl: each scope the spec names is replaced whole, the other kept."""
    wanted = _validated(spec)
    built, provided, mask_dirty, dirty = [], {}, set(), set()
    for e in wanted.values():
        dirty.add(e.scope)
        _take(e, built, provided, mask_dirty)
    for e in existing:
        if e.scope not in dirty:
            _take(e, built, provided)
    return _finish(built, provided, mask_dirty, dirty)


def merge_entries(existing: list[AclEntry], spec: list[AclEntry]) -> list[AclEntry]:
    """modifyAclEntries: the spec's entries replace those with their key, or are added."""
    wanted = _validated(spec)
    built, provided, mask_dirty, dirty, found = [], {}, set(), set(), set()
    for e in existing:
        new = wanted.get(e.key)
        if new is not None:
            found.add(new.key)
            dirty.add(new.scope)
            _take(new, built, provided, mask_dirty)
        else:
            _take(e, built, provided)
    for new in wanted.values():
        if new.key not in found:
            dirty.add(new.scope)
            _take(new, built, provided, mask_dirty)
    return _finish(built, provided, mask_dirty, dirty)


def filter_by_spec(existing: list[AclEntry], spec: list[AclEntry]) -> list[AclEntry]:
    """removeAclEntries: the entries whose keys the spec names are dropped."""
    wanted = _validated(spec)
    built, provided, mask_dirty, dirty = [], {}, set(), set()
    for e in existing:
        if e.key in wanted:
            dirty.add(e.scope)
            if e.type == MASK:
                mask_dirty.add(e.scope)
        else:
            _take(e, built, provided)
    return _finish(built, provided, mask_dirty, dirty)


def filter_default(existing: list[AclEntry]) -> list[AclEntry]:
    """removeDefaultAcl: the access entries alone."""
    return _build([e for e in existing if e.scope == ACCESS])


def _take(e: AclEntry, built: list, provided: dict, mask_dirty: set | None = None) -> None:
    """An entry into the ACL being built; a mask is set aside for _calculate_masks (and,
    when it comes from the spec, its scope's mask marked as changed)."""
    if e.type != MASK:
        built.append(e)
        return
    provided[e.scope] = e
    if mask_dirty is not None:
        mask_dirty.add(e.scope)


def _finish(built, provided, mask_dirty, dirty) -> list[AclEntry]:
    _copy_defaults_if_needed(built)
    _calculate_masks(built, provided, mask_dirty, dirty)
    return _build(built)


def _copy_defaults_if_needed(built: list[AclEntry]) -> None:
    """A default ACL missing its user, group or other entry takes the access one's bits."""
    if not any(e.scope == DEFAULT for e in built):
        return
    keys = {e.key: e for e in built}
    for type_ in (USER, GROUP, OTHER):
        access = keys.get((ACCESS, type_, ""))
        if (DEFAULT, type_, "") not in keys and access is not None:
            built.append(AclEntry(DEFAULT, type_, "", access.perm))


def _calculate_masks(built, provided, mask_dirty, dirty) -> None:
    """A scope with named entries needs a mask: the one given, else (when the scope
    changed) the union of the group class's permissions; refused if it was removed."""
    found, union, needed = set(), {}, set()
    for e in built:
        found.add(e.scope)
        if e.type == GROUP or e.name:
            union[e.scope] = union.get(e.scope, 0) | e.perm
        if e.name:
            needed.add(e.scope)
    for scope in sorted(found):
        if scope not in provided and scope in needed and scope in mask_dirty:
            raise AclException("Invalid ACL: mask is required, but it was deleted.")
        if scope in provided and (scope not in dirty or scope in mask_dirty):
            built.append(provided[scope])
        elif scope in needed:
            built.append(AclEntry(scope, MASK, "", union[scope]))


def _build(built: list[AclEntry]) -> list[AclEntry]:
    """buildAndValidateAcl: sorted, no duplicate keys, names only where they may be, and
    the base entries present in each scope there is."""
    if len(built) > MAX_ENTRIES:
        raise AclException(
            f"Invalid ACL: ACL has {len(built)} entries, which exceeds maximum of {MAX_ENTRIES}."
        )
    acl = sorted(built)
    for prev, e in zip([None, *acl], acl, strict=False):
        if prev is not None and prev.key == e.key:
            raise AclException("Invalid ACL: multiple entries with same scope, type and name.")
        if e.name and e.type in (MASK, OTHER):
            raise AclException(
                f"Invalid ACL: this entry type must not have a name: {_java_entry(e)}."
            )
    keys = {e.key for e in acl}
    has_default = any(e.scope == DEFAULT for e in acl)
    for type_ in (USER, GROUP, OTHER):
        if (ACCESS, type_, "") not in keys:
            raise AclException("Invalid ACL: the user, group and other entries are required.")
        if has_default and (DEFAULT, type_, "") not in keys:
            raise AclException(
                "Invalid default ACL: the user, group and other entries are required."
            )
    return acl


def _java_entry(e: AclEntry) -> str:
    """AclEntry.toString, as Hadoop's messages quote an entry."""
    scope = "default:" if e.scope == DEFAULT else ""
    return f"{scope}{TYPES[e.type].lower()}:{e.name}:{SYMBOLS[e.perm]}"


# ------------------------------------------------------------ AclStorage
def minimal(mode: int) -> list[AclEntry]:
    return [
        AclEntry(ACCESS, USER, "", (mode >> 6) & 7),
        AclEntry(ACCESS, GROUP, "", (mode >> 3) & 7),
        AclEntry(ACCESS, OTHER, "", mode & 7),
    ]


def is_minimal(entries: list[AclEntry]) -> bool:
    return len(entries) == 3


def logical(mode: int, feature: list[AclEntry] | None) -> list[AclEntry]:
    """readINodeLogicalAcl: the whole ACL of an inode, base entries from its bits."""
    if not feature:
        return minimal(mode)
    access = [e for e in feature if e.scope == ACCESS]
    default = [e for e in feature if e.scope == DEFAULT]
    if access:
        acl = [
            AclEntry(ACCESS, USER, "", (mode >> 6) & 7),
            *access,
            AclEntry(ACCESS, MASK, "", (mode >> 3) & 7),
            AclEntry(ACCESS, OTHER, "", mode & 7),
        ]
    else:
        acl = minimal(mode)
    return acl + default


def stored(mode: int, acl: list[AclEntry], is_dir: bool) -> tuple[int, list[AclEntry] | None]:
    """updateINodeAcl: -> the inode's new permission bits and ACL feature (None for a
    minimal ACL). The sticky bit is kept."""
    sticky = mode & 0o1000
    if is_minimal(acl):
        return sticky | acl[0].perm << 6 | acl[1].perm << 3 | acl[2].perm, None
    access = [e for e in acl if e.scope == ACCESS]
    default = [e for e in acl if e.scope == DEFAULT]
    if default and not is_dir:
        raise AclException("Invalid ACL: only directories may have a default ACL.")
    return _extended_mode(access, sticky), _feature(access, default)


def _feature(access: list[AclEntry], default: list[AclEntry]) -> list[AclEntry]:
    """createAclFeature: the named entries and the owning group's, and the default ACL."""
    return (access[1:-2] if not is_minimal(access) else []) + default


def _extended_mode(access: list[AclEntry], sticky: int) -> int:
    """The owner, mask (as the group bits) and other entries."""
    return sticky | access[0].perm << 6 | access[-2].perm << 3 | access[-1].perm


def removed(mode: int, feature: list[AclEntry] | None) -> int:
    """removeINodeAcl: the group bits come back from the owning group's entry."""
    if feature and feature[0].scope == ACCESS:
        group = next(e.perm for e in feature if e.key == (ACCESS, GROUP, ""))
        return (mode & ~0o070) | group << 3
    return mode


def inherited(
    parent_feature: list[AclEntry] | None, child_mode: int, is_dir: bool
) -> tuple[int, list[AclEntry] | None] | None:
    """copyINodeDefaultAcl: a new child's ACL from its parent's default ACL, the child's
    own mode filtering the owner, mask (or group, for a minimal default ACL) and other
    entries; a new directory also takes the default ACL itself. -> (mode, feature), or
    None when the parent has no default ACL."""
    default = [e for e in parent_feature or [] if e.scope == DEFAULT]
    if not default:
        return None
    minimal_default = is_minimal(default)
    user, group, other = (child_mode >> 6) & 7, (child_mode >> 3) & 7, child_mode & 7
    access = []
    for e in default:
        perm = e.perm
        if e.type == USER and not e.name:
            perm &= user
        elif e.type == GROUP and minimal_default:
            perm &= group
        elif e.type == MASK:
            perm &= group
        elif e.type == OTHER:
            perm &= other
        access.append(AclEntry(ACCESS, e.type, e.name, perm))
    kept_default = default if is_dir else []
    sticky = child_mode & 0o1000
    if not is_minimal(access) or kept_default:
        return _extended_mode(access, sticky), _feature(access, kept_default)
    return sticky | access[0].perm << 6 | access[1].perm << 3 | access[2].perm, None


# ------------------------------------------------------------ FSPermissionChecker
def check_access(
    feature: list[AclEntry], mode: int, owner: str, group: str, user: str, groups, bits: int
) -> bool:
    """checkAccessAcl: the owner by the owner bits; else the first named-user entry that
    names the user, or every group entry (owning group or named) of a group the user is
    in, each limited by the mask; else, if none of those matched, the other bits."""
    if user == owner:
        return (mode >> 6) & bits == bits
    mask = (mode >> 3) & 7
    matched = False
    for e in feature:
        if e.scope == DEFAULT:
            break
        if e.type == USER and e.name == user:
            return e.perm & mask & bits == bits
        if e.type == GROUP and (e.name or group) in groups:
            if e.perm & mask & bits == bits:
                return True
            matched = True
    return not matched and mode & bits == bits
