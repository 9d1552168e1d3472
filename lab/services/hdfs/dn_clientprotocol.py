"""ClientDatanodeProtocol over Hadoop IPC, on a DataNode's dfs.datanode.ipc.address (9867),
as Hadoop's DataNode serves it through ClientDatanodeProtocolServerSideTranslatorPB: what a
client asks one DataNode directly rather than the NameNode.

- getReplicaVisibleLength: how many bytes of a replica readers may see. Java's
  DFSInputStream asks it for a file's last block while the file is still being written
  (the NameNode only knows the length last hsync'd); FsDatasetImpl answers a finalized
  replica's length, a replica being written's acknowledged bytes, and -1 ("no bytes are
  visible") for one waiting to be recovered or still arriving from another DataNode.
- getBlockLocalPathInfo: the legacy short-circuit read's question (where are the block and
  meta files on this machine). Hadoop answers it only to users named in
  dfs.block.local-path-access.user (empty by default, i.e. short-circuit off) and refuses
  everyone else with AccessControlException.
- getDatanodeInfo (`hdfs dfsadmin -getDatanodeInfo`).

Other methods of the service are refused with RpcNoSuchMethodException by the IPC server.
Block tokens are off (dfs.block.access.token.enable=false, Hadoop's default), so the token
a request carries is not checked, as Hadoop does not check it then."""

from __future__ import annotations

import time

from ..hadoop.errors import AccessControlException, IOException, ReplicaNotFoundException
from ..hadoop.ipc.server import CallContext

PROTOCOL = "org.apache.hadoop.hdfs.protocol.ClientDatanodeProtocol"
LOCAL_PATH_USERS = "dfs.block.local-path-access.user"
VERSION = "3.3.6-racklab"  # as the YARN daemons report theirs


class ClientDatanodeProtocol:
    service = "hadoop.hdfs.ClientDatanodeProtocolService"

    def __init__(self, dn) -> None:
        self.dn = dn
        self.started = time.monotonic()
        users = dn.conf.get(LOCAL_PATH_USERS, "") or ""
        self.local_path_users = {u.strip() for u in users.split(",") if u.strip()}

    def _replica(self, block: dict):
        """FsDatasetImpl.getReplicaInfo, then its generation-stamp check: the replica of
        the request's block, not older than the block the client knows."""
        name = f"{block['poolId']}:blk_{block['blockId']}_{block['generationStamp']}"
        rep = self.dn.store.get(block["blockId"])
        if rep is None:
            raise ReplicaNotFoundException(
                f"Replica does not exist {block['poolId']}:{block['blockId']}"
            )
        if rep.gen_stamp < block["generationStamp"]:
            raise IOException(
                "replica.getGenerationStamp() < block.getGenerationStamp(), "
                f"block={name}, replica={rep.state.upper()} blk_{rep.block_id}_{rep.gen_stamp}"
            )
        return rep

    def getReplicaVisibleLength(self, req: dict, ctx: CallContext) -> dict:
        rep = self._replica(req["block"])
        if rep.state == "finalized":
            length = rep.length
        elif rep.state == "rbw":
            # ReplicaBeingWritten.getVisibleLength: the bytes acknowledged downstream (a
            # writer that went away leaves what was on disk when it stopped).
            writer = self.dn.writers.get(rep.block_id)
            length = min(writer.acked, rep.length) if writer is not None else rep.length
        else:
            length = -1  # RWR and TEMPORARY replicas show no bytes
        return {"length": length}

    def getBlockLocalPathInfo(self, req: dict, ctx: CallContext) -> dict:
        # DataNode.checkBlockLocalPathAccess (security off: only the user list counts).
        if ctx.user.split("@")[0].split("/")[0] not in self.local_path_users:
            raise AccessControlException(
                "Can't continue with getBlockLocalPathInfo() authorization. The user "
                f"{ctx.user} is not configured in {LOCAL_PATH_USERS}"
            )
        block = dict(req["block"])
        rep = self._replica(block)
        if rep.state != "finalized":
            raise ReplicaNotFoundException(
                f"Replica not found for {block['poolId']}:blk_{block['blockId']}_"
                f"{block['generationStamp']}"
            )
        block["generationStamp"] = rep.gen_stamp  # Hadoop answers with the replica's stamp
        return {
            "block": block,
            "localPath": str(rep.data_path.absolute()),
            "localMetaPath": str(rep.meta_path.absolute()),
        }

    def getDatanodeInfo(self, req: dict, ctx: CallContext) -> dict:
        return {
            "localInfo": {
                "softwareVersion": VERSION,
                "configVersion": "core-3.0.0,hdfs-1",
                "uptime": int(time.monotonic() - self.started),
            }
        }
