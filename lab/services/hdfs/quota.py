"""Directory quotas as Hadoop's NameNode keeps them (DirectoryWithQuotaFeature): a
namespace quota (how many directories and files a directory may hold, itself included)
and a storage-space quota (bytes, every replica counted), set by the superuser
(setQuota; `hdfs dfsadmin -setQuota/-setSpaceQuota`, WebHDFS SETQUOTA), checked on every
change that adds names or blocks below them, deepest directory first, with Hadoop's
NSQuotaExceededException and DSQuotaExceededException words.

Usage is counted from the tree when a change is checked (Hadoop caches it per
directory); a block being written counts what its writer has committed so far, and a new
block a whole preferred block size times the file's replication, as addBlock charges it."""

from __future__ import annotations

from ..hadoop.errors import DSQuotaExceededException, NSQuotaExceededException

QUOTA_DONT_SET = (1 << 63) - 1  # HdfsConstants.QUOTA_DONT_SET (Long.MAX_VALUE)
QUOTA_RESET = -1
_PREFIXES = "KMGTPE"


def usage(node) -> tuple[int, int]:
    """(names, bytes with replicas) under a node, the node itself counted."""
    names = space = 0
    stack = [node]
    while stack:
        n = stack.pop()
        names += 1
        if n.is_dir:
            stack.extend(n.children.values())
        else:
            space += n.length * n.replication
    return names, space


def long2string(n: int) -> str:
    """StringUtils.TraditionalBinaryPrefix.long2String(n, "B", 2)."""
    if n < 1024:
        return f"{n} B"
    i = 0
    while i + 1 < len(_PREFIXES) and n >= 1024 ** (i + 2):
        i += 1
    value = 1024 ** (i + 1)
    if n % value == 0:
        return f"{n // value} {_PREFIXES[i]}B"
    text = f"{n / value:.2f}"
    if text.startswith("1024") and i + 1 < len(_PREFIXES):
        i += 1
        text = f"{n / 1024 ** (i + 1):.2f}"
    return f"{text} {_PREFIXES[i]}B"


def verify(directory, names: int, space: int, skip=None) -> None:
    """FSDirectory.verifyQuota: adding `names` and `space` below `directory` must fit
    every quota on it and its ancestors (the deepest first); `skip`, a directory whose
    quotas the change does not cross (a rename's common ancestor and above)."""
    node = directory
    while node is not None and node is not skip:
        ns_quota, ds_quota = node.ns_quota, node.ds_quota
        if ns_quota >= 0 or ds_quota >= 0:
            used_names, used_space = usage(node)
            if ns_quota >= 0 and names > 0 and used_names + names > ns_quota:
                raise NSQuotaExceededException(
                    f"The NameSpace quota (directories and files) of directory {node.path()} "
                    f"is exceeded: quota={ns_quota} file count={used_names + names}"
                )
            if ds_quota >= 0 and space > 0 and used_space + space > ds_quota:
                raise DSQuotaExceededException(
                    f"The DiskSpace quota of {node.path()} is exceeded: quota = {ds_quota} B "
                    f"= {long2string(ds_quota)} but diskspace consumed = "
                    f"{used_space + space} B = {long2string(used_space + space)}"
                )
        node = node.parent
