"""The NameNode's leases (Hadoop's LeaseManager and FSNamesystem's lease checks): one per
file under construction, renewed by its writer's calls; a writer's calls checked against
it; files closed for whoever holds them (lease recovery's commitBlockSynchronization, a
failed WebHDFS upload given back); and the monitor's hard limit, past which a file's lease
is recovered (leaserecovery.py) as recoverLease would. A mixin of NameNode."""

from __future__ import annotations

import logging
import time

from ..hadoop.errors import LeaseExpiredException
from .namespace import INodeFile, now_ms

log = logging.getLogger("hdfs.namenode")


class LeaseManager:
    def _renew(self, f: INodeFile, before_append: dict | None = None) -> None:
        lease = self.leases.setdefault(f.inode_id, {"beforeAppend": before_append})
        lease["renewed"] = time.monotonic()

    def _uc_file(self, path: str, client: str) -> INodeFile:
        node = self.ns.lookup(path)
        if isinstance(node, INodeFile) and node.client_name == client:
            self._renew(node)
        if not isinstance(node, INodeFile) or node.client_name != client:
            holder = node.client_name if isinstance(node, INodeFile) else None
            raise LeaseExpiredException(
                f"No lease on {path}: File is not open for writing. "
                f"Holder {client} does not have any open files (lease holder: {holder})."
            )
        return node

    def abandon_file(self, f: INodeFile, last: dict | None, reason: str) -> None:
        """A WebHDFS upload that failed, given back by the DataNode that wrote it (racklab's
        abandonFile, after its abort packet rolled the replicas back): keep every block the
        writer saw acknowledged, drop an unfinished new last block, and put back a last
        block reopened by the failed append. Then close the file. (A writer that is simply
        gone is lease recovery's: check_leases.)"""
        lease = self.leases.pop(f.inode_id, {})
        before = lease.get("beforeAppend")
        if last is not None and f.blocks and int(last["blockId"]) == f.blocks[-1].block_id:
            self._commit(f, last)
            before = None
        elif f.blocks:
            info = self.bm.blocks.get(f.blocks[-1].block_id)
            if info is not None and not info.complete:
                if before is not None and before["blockId"] == f.blocks[-1].block_id:
                    f.blocks[-1].gen_stamp, f.blocks[-1].num_bytes = (
                        before["genStamp"],
                        before["numBytes"],
                    )
                else:
                    self._release([f.blocks.pop()])
        self.close_file(f, None)
        log.warning("closed %s for its lost writer (%s), length now %d", f.path(), reason, f.length)

    def close_file(self, f: INodeFile, last: dict | None, drop_last: bool = False) -> None:
        """Close a file under construction for whoever holds it: its last block as `last`
        says (lease recovery's commitBlockSynchronization), or dropped, or as it is (its
        writer's complete)."""
        if drop_last and f.blocks:
            self._release([f.blocks.pop()])
        blocks = [b.to_json() for b in f.blocks]
        if last is not None and blocks and blocks[-1]["blockId"] == last["blockId"]:
            blocks[-1] = dict(last)
        self.log_apply(
            {
                "op": "OP_CLOSE",
                "path": f.path(),
                "blocks": blocks,
                "mtime": now_ms(),
                "atime": now_ms(),
            }
        )
        self.leases.pop(f.inode_id, None)
        self.bm.add_file_blocks(f)
        for info in self._infos(f):
            info.complete = True
            self.bm.update_needed(info)

    def check_leases(self) -> None:
        """LeaseManager.Monitor: a lease past its hard limit is released as recoverLease
        releases it (internalReleaseLease: closed now, or its last block recovered and then
        closed). The lease counts as renewed then, so a recovery that cannot finish (its
        DataNodes down) is tried again one hard limit later, as Hadoop's reassigned lease is."""
        now = time.monotonic()
        for inode_id, lease in list(self.leases.items()):
            f = self.ns.inodes.get(inode_id)
            if not isinstance(f, INodeFile) or f.client_name is None:
                self.leases.pop(inode_id, None)
            elif now - lease["renewed"] > self.lease_hard_limit:
                log.info(
                    "Lease [Holder: %s] has expired hard limit; recovering %s",
                    f.client_name,
                    f.path(),
                )
                lease["renewed"] = now
                self.lease_recovery.release(f)
