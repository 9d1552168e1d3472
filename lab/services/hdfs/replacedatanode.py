"""When a writer whose pipeline lost a DataNode asks the NameNode for a replacement:
Hadoop's ReplaceDatanodeOnFailure (dfs.client.block.write.replace-datanode-on-failure.*),
for racklab's own writer (blockwriter.py)."""

from __future__ import annotations

POLICY_KEY = "dfs.client.block.write.replace-datanode-on-failure.policy"
ENABLE_KEY = "dfs.client.block.write.replace-datanode-on-failure.enable"
BEST_EFFORT_KEY = "dfs.client.block.write.replace-datanode-on-failure.best-effort"
POLICIES = ("NEVER", "DEFAULT", "ALWAYS")


def replacement_wanted(
    policy: str, replication: int, remaining: int, is_append: bool, hflushed: bool
) -> bool:
    """ReplaceDatanodeOnFailure.satisfy: never with no node left or already enough; else
    DEFAULT asks only at replication 3 or more, when at most half the replicas are left, or
    when the block holds data a reader may already have seen (an append, an hflush) and
    would otherwise be left with fewer copies than the file asks for."""
    if policy not in POLICIES:
        raise ValueError(f"{POLICY_KEY}: {policy!r} is none of {', '.join(POLICIES)}")
    if remaining == 0 or remaining >= replication:
        return False
    if policy == "NEVER":
        return False
    if policy == "ALWAYS":
        return True
    if replication < 3:
        return False
    return remaining <= replication // 2 or is_append or hflushed
