"""Lease recovery: a file whose writer is gone is closed with what its replicas hold —
when another client asks (recoverLease), or when the writer's lease passes its hard limit
(dfs.namenode.lease-hard-limit-sec; the NameNode's LeaseManager.Monitor), whichever first.

Hadoop's FSNamesystem.internalReleaseLease: a file whose blocks are all complete is closed
at once; an empty last block nobody was writing is dropped and the file closed; otherwise
the last block is recovered — a new generation stamp (the recovery id), the lease
reassigned to the NameNode so the old writer is fenced off, every replica asked what it
holds (initReplicaRecovery, which stops its writer), all cut to the length they share
(updateReplicaUnderRecovery: finalized replicas win, else the shortest RBW, else the
shortest RWR), and the file closed with that block (commitBlockSynchronization).
recoverLease answers false while that runs and true once the file is closed; the client
asks again until then. The DataNodes keep an unfinished replica however long its writer
has been gone, and across their own restarts (as RWR, reported in their block reports),
so bytes a writer's hsync had acknowledged are in the file once it is closed.

Hadoop gives the recovery to a primary DataNode (DNA_RECOVERBLOCK) which talks to the
others over InterDatanodeProtocol; here the NameNode drives the same two calls itself,
over the DataNodes' own data-transfer protocol. What a client sees is the same.

The soft limit (FSNamesystem.recoverLeaseInternal): another client's create (without
overwrite) or append of a file whose writer has been silent longer than it (60 s,
racklab.namenode.lease-soft-limit-sec) starts the same recovery, and goes on once the file
is closed; until then it is refused with Hadoop's AlreadyBeingCreatedException or
RecoveryInProgressException and their words. recoverLease does not wait for it.

Not as Hadoop: zero-length replicas are not dropped from a recovery; the writer's address
in a refusal is not kept across a NameNode restart."""

from __future__ import annotations

import asyncio
import logging
import time

from ..hadoop.errors import (
    AlreadyBeingCreatedException,
    FileNotFoundException,
    RecoveryInProgressException,
)
from .blockmanager import BlockInfo, DatanodeDescriptor
from .datatransfer import recv_msg, send_msg
from .namespace import WRITE, INodeFile, normalize

log = logging.getLogger("hdfs.namenode")

RETRY_AFTER = 30.0  # a recovery not finished by then is started again on the next call


class LeaseRecovery:
    def __init__(self, nn) -> None:
        self.nn = nn
        self.running: dict[int, tuple[float, asyncio.Task]] = {}  # block id -> started, task

    def recover_lease(self, path: str, holder: str, user: str, machine: str = "") -> bool:
        nn = self.nn
        path = normalize(path)
        node = nn.ns.lookup(path)
        if node is None:
            raise FileNotFoundException(f"File does not exist: {path}")
        if not isinstance(node, INodeFile):
            raise FileNotFoundException(f"Path is not a file: {path}")
        if node.client_name is None:
            return True
        nn.check_not_safemode(f"Cannot recover the lease of {path}")
        nn.perm(path, user, target=WRITE)
        return self.recover_lease_internal("RECOVER_LEASE", node, path, holder, machine, True)

    def recover_lease_internal(
        self, op: str, f: INodeFile, path: str, holder: str, machine: str, force: bool
    ) -> bool:
        """FSNamesystem.recoverLeaseInternal for `op` (CREATE_FILE, APPEND_FILE,
        RECOVER_LEASE) by `holder` on `machine`: True when the file is not (or no longer)
        under construction. recoverLease forces a release; a create or an append releases
        only a lease past its soft limit, and raises Hadoop's exception otherwise."""
        if f.client_name is None:
            return True

        def refusal(reason: str) -> str:
            return f"Failed to {op} {path} for {holder} on {machine} because {reason}"

        nn = self.nn
        if not force and f.client_name == holder:
            raise AlreadyBeingCreatedException(
                refusal(f"{holder} is already the current lease holder.")
            )
        lease = nn.leases.get(f.inode_id)
        if lease is None:
            raise AlreadyBeingCreatedException(
                refusal("the file is under construction but no leases found.")
            )
        if force:
            log.info("recoverLease: holder %s, src=%s from client %s", f.client_name, path, holder)
            return self.release(f)
        if time.monotonic() - lease["renewed"] > nn.lease_soft_limit:
            log.info(
                "startFile: recover lease of %s, src=%s client %s", f.client_name, path, holder
            )
            if self.release(f):
                return True
            raise RecoveryInProgressException(
                refusal("lease recovery is in progress. Try again later.")
            )
        owner = f"{f.client_name} on {f.client_machine or ''}"
        infos = nn._infos(f)
        if infos and self._recovering(infos[-1].block.block_id):
            raise RecoveryInProgressException(
                refusal(f"another recovery is in progress by {owner}")
            )
        raise AlreadyBeingCreatedException(
            refusal(f"this file lease is currently owned by {owner}")
        )

    def _recovering(self, block_id: int) -> bool:
        """Whether the block is UNDER_RECOVERY: a recovery of it started and not finished."""
        started = self.running.get(block_id)
        return started is not None and not started[1].done()

    def release(self, f: INodeFile) -> bool:
        """-> True when the file is closed now, False while its last block is recovered."""
        nn = self.nn
        infos = nn._infos(f)
        last = infos[-1] if infos else None
        if last is None or last.complete:
            nn.close_file(f, None)
            return True
        nodes = self._holders(last)
        if not nodes:
            if not last.expected_uc and not last.locations:
                # Allotted, never written: Hadoop drops such a block and closes the file.
                nn.close_file(f, None, drop_last=True)
                return True
            return False  # its DataNodes are down: nothing can be recovered yet
        bid = last.block.block_id
        started = self.running.get(bid)
        if started and not started[1].done() and time.monotonic() - started[0] < RETRY_AFTER:
            return False
        recovery_id = nn.ns.gen_stamp + 1
        nn.log_apply({"op": "OP_SET_GENSTAMP_V2", "genStamp": recovery_id})
        nn.log_apply(
            {
                "op": "OP_REASSIGN_LEASE",
                "path": f.path(),
                "leaseHolder": f.client_name,
                "newHolder": f"HDFS_NameNode-{int(time.time() * 1000)}",
            }
        )
        # The reassigned lease starts afresh (LeaseManager.reassignLease): a soft limit is
        # counted from here, and another client is told a recovery is in progress.
        nn._renew(f)
        task = asyncio.get_running_loop().create_task(
            self._recover_block(f.inode_id, last, recovery_id, nodes)
        )
        self.running[bid] = (time.monotonic(), task)
        task.add_done_callback(lambda t, bid=bid: self._done(bid, t))
        return False

    def _done(self, bid: int, task: asyncio.Task) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.warning("recovery of blk_%d failed: %r", bid, exc)

    def _holders(self, info: BlockInfo) -> list[DatanodeDescriptor]:
        bm = self.nn.bm
        uuids = list(dict.fromkeys(list(info.expected_uc) + sorted(info.locations)))
        return [bm.datanodes[u] for u in uuids if u in bm.datanodes and bm.datanodes[u].alive]

    async def _recover_block(
        self, inode_id: int, info: BlockInfo, recovery_id: int, nodes: list[DatanodeDescriptor]
    ) -> None:
        blk = info.block.to_json()
        replicas = []
        for d in nodes:
            res = await self._call(
                d, {"op": "INIT_REPLICA_RECOVERY", "block": blk, "recoveryId": recovery_id}
            )
            if res.get("status") == "SUCCESS":
                replicas.append((d, res))
            else:
                log.info("blk_%d on %s: %s", blk["blockId"], d.ip, res.get("message"))
        if not replicas:
            log.warning("no replica of blk_%d could be recovered", blk["blockId"])
            return
        length, chosen = sync_length(replicas)
        synced = []
        for d, _ in chosen:
            res = await self._call(
                d,
                {
                    "op": "UPDATE_REPLICA_UNDER_RECOVERY",
                    "block": blk,
                    "recoveryId": recovery_id,
                    "newLength": length,
                },
            )
            if res.get("status") == "SUCCESS":
                synced.append(d)
        if not synced:
            log.warning("no replica of blk_%d took the recovered length", blk["blockId"])
            return
        self._commit(inode_id, blk["blockId"], recovery_id, length, synced)

    def _commit(self, inode_id: int, bid: int, recovery_id: int, length: int, synced: list) -> None:
        """commitBlockSynchronization: the block at its new stamp and length, on the nodes
        that took it, and the file closed — unless it changed hands meanwhile."""
        nn = self.nn
        f = nn.ns.inodes.get(inode_id)
        if not isinstance(f, INodeFile) or not f.blocks or f.blocks[-1].block_id != bid:
            return
        if f.client_name is None or not f.client_name.startswith("HDFS_NameNode"):
            return
        nn.close_file(f, {"blockId": bid, "genStamp": recovery_id, "numBytes": length})
        info = nn.bm.blocks.get(bid)
        if info is not None:
            keep = {d.uuid for d in synced}
            # Replicas left at an older stamp (their node did not answer, or its replica
            # was not in the best state) go, so those nodes can take a good copy.
            stale = (info.locations | set(info.expected_uc)) - keep
            info.expected_uc = list(keep)
            for uuid in stale:
                if uuid in nn.bm.datanodes:
                    nn.bm.replica_deleted(nn.bm.datanodes[uuid], bid)
                    nn.bm.datanodes[uuid].invalidate_queue.add(bid)
        log.info(
            "commitBlockSynchronization: blk_%d_%d length %d on %s, %s closed",
            bid,
            recovery_id,
            length,
            [d.ip for d in synced],
            f.path(),
        )

    async def _call(self, d: DatanodeDescriptor, msg: dict) -> dict:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(d.ip, d.xfer_port), 10)
        except (TimeoutError, OSError) as exc:
            return {"status": "ERROR", "message": repr(exc)}
        try:
            await send_msg(writer, msg)
            return await asyncio.wait_for(recv_msg(reader), 30)
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError) as exc:
            return {"status": "ERROR", "message": repr(exc)}
        finally:
            writer.close()


def sync_length(replicas: list[tuple]) -> tuple[int, list[tuple]]:
    """BlockRecoveryWorker.syncBlock: the replicas in the best state take part (FINALIZED,
    then RBW, then RWR: a replica found on disk after its DataNode restarted may hold
    bytes nobody acknowledged, or miss some). Finalized replicas keep their length, and RBW
    ones of that same length join them; unfinished ones are cut to the shortest among
    them, which still holds every byte the whole pipeline acknowledged.
    -> (length, [(node, replica info), ...] taking part)."""
    final = [(d, r) for d, r in replicas if r["state"] == "finalized"]
    if final:
        length = final[0][1]["length"]
        return length, [
            (d, r)
            for d, r in replicas
            if r["length"] == length and r["state"] in ("finalized", "rbw")
        ]
    best = "rbw" if any(r["state"] == "rbw" for _, r in replicas) else "rwr"
    chosen = [(d, r) for d, r in replicas if r["state"] == best]
    return min(r["length"] for _, r in chosen), chosen
