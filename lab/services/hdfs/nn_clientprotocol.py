"""ClientNamenodeProtocol over Hadoop IPC (Hadoop's ClientNamenodeProtocolServerSideTranslatorPB
and the ClientProtocol half of NameNodeRpcServer): the calls native clients make, each
answered from the NameNode's one namespace, so WebHDFS and native clients see the same
files, permissions and leases. Requests and responses are the protobuf messages of
ClientNamenodeProtocol.proto as dicts; errors are the NameNode's own Hadoop exceptions,
which the IPC server reports by their Java class names."""

from __future__ import annotations

import logging
import posixpath
import time

from ..hadoop import errors
from ..hadoop.errors import FileAlreadyExistsException, FileNotFoundException, IOException
from ..hadoop.ipc.server import CallContext
from . import acl
from .namespace import EXECUTE, READ, WRITE, INode, INodeFile, normalize

log = logging.getLogger("hdfs.namenode")

PROTOCOL = "org.apache.hadoop.hdfs.protocol.ClientProtocol"
LS_LIMIT = 1000  # dfs.ls.limit: entries per getListing answer
CREATE_OVERWRITE = 0x02  # CreateFlagProto: CREATE 1, OVERWRITE 2, APPEND 4


SNAPSHOT_QUOTA = 1 << 16  # DirectorySnapshottableFeature.SNAPSHOT_QUOTA_DEFAULT


def unmasked_mode(req) -> int | None:
    """A create's or mkdirs's `unmasked` permission, when the client sent one."""
    return req["unmasked"]["perm"] & 0o7777 if req.get("unmasked") else None


class ClientNamenodeProtocol:
    service = "hadoop.hdfs.ClientNamenodeProtocol"

    def __init__(self, nn) -> None:
        self.nn = nn
        self.ls_limit = nn.conf.get_int("dfs.ls.limit", LS_LIMIT)

    # ------------------------------------------------------------ messages
    def file_status(self, node: INode, name: bytes, ctx: CallContext, locations: bool) -> dict:
        """HdfsFileStatusProto of an inode; `name` is the path as the caller should see it
        (the child's name in a listing, empty for getFileInfo)."""
        is_dir = node.is_dir
        status = {
            "fileType": "IS_DIR" if is_dir else "IS_FILE",
            "path": name,
            "length": 0 if is_dir else node.length,
            "permission": {"perm": node.mode},
            "owner": node.owner,
            "group": node.group,
            "modification_time": node.mtime,
            "access_time": 0 if is_dir else node.atime,
            "block_replication": 0 if is_dir else node.replication,
            "blocksize": 0 if is_dir else node.block_size,
            "fileId": node.inode_id,
            "childrenNum": len(node.children) if is_dir else 0,
            "storagePolicy": 0,
        }
        if node.acl:
            # Hadoop 3 says so in the flags, and (FsPermissionExtension, for older
            # clients) in the permission's ACL bit.
            status["flags"] = acl.HAS_ACL
            status["permission"] = {"perm": node.mode | acl.ACL_BIT}
        if locations and isinstance(node, INodeFile):
            located = self.nn.located_blocks(node.path(), ctx.user, 0, 1 << 62, ctx.peer_ip)
            status["locations"] = self.located_blocks(located)
        return status

    def datanode_info(self, d: dict | object) -> dict:
        """DatanodeInfoProto of a DataNode (a DatanodeDescriptor or its info() dict)."""
        info = d if isinstance(d, dict) else d.info()
        out = {
            "id": {
                "ipAddr": info["ip"],
                "hostName": info["hostName"],
                "datanodeUuid": info["uuid"],
                "xferPort": info["xferPort"],
                "infoPort": info["infoPort"],
                "ipcPort": info.get("ipcPort", 0),
            },
            "location": info["rack"],
            "adminState": "NORMAL",
        }
        desc = self.nn.bm.datanodes.get(info["uuid"])
        if desc is not None:
            out.update(
                capacity=desc.capacity,
                dfsUsed=desc.dfs_used,
                remaining=desc.remaining,
                blockPoolUsed=desc.dfs_used,
                lastUpdate=int(desc.last_heartbeat_wall * 1000),
                xceiverCount=desc.xceivers,
                numBlocks=len(desc.blocks),
            )
        return out

    def extended_block(self, b: dict) -> dict:
        """ExtendedBlockProto of a block in racklab's JSON form."""
        return {
            "poolId": self.nn.version.get("blockpoolID", ""),
            "blockId": b["blockId"],
            "generationStamp": b["genStamp"],
            "numBytes": b["numBytes"],
        }

    @staticmethod
    def block_json(b: dict | None) -> dict | None:
        """racklab's JSON form of an ExtendedBlockProto."""
        if b is None:
            return None
        return {
            "blockId": b["blockId"],
            "genStamp": b["generationStamp"],
            "numBytes": b["numBytes"],
        }

    def located_block(self, lb: dict) -> dict:
        locs = lb["locations"]
        return {
            "b": self.extended_block(lb["block"]),
            "offset": lb["offset"] % (1 << 64),  # uint64: Java's -1 is 2^64 - 1
            "locs": [self.datanode_info(d) for d in locs],
            "corrupt": lb.get("corrupt", False),
            # Security is off: an empty token, as Hadoop sends then.
            "blockToken": {"identifier": b"", "password": b"", "kind": "", "service": ""},
            "isCached": [False] * len(locs),
            "storageTypes": ["DISK"] * len(locs),
            "storageIDs": [f"DS-{d['uuid']}" for d in locs],
        }

    def located_blocks(self, located: dict) -> dict:
        blocks = [self.located_block(lb) for lb in located["blocks"]]
        last_complete = not located["underConstruction"]
        out = {
            # Hadoop's LocatedBlocks length leaves out a last block still being written
            # (its client asks the DataNodes how much of it is readable).
            "fileLength": located["lengthNotIncludingLastUcBlock"],
            "blocks": blocks,
            "underConstruction": located["underConstruction"],
            "isLastBlockComplete": last_complete,
        }
        if blocks:
            out["lastBlock"] = blocks[-1]
        return out

    # ------------------------------------------------------------ reads
    def getServerDefaults(self, req, ctx: CallContext) -> dict:
        return {"serverDefaults": self.nn.server_defaults()}

    def getFileInfo(self, req, ctx: CallContext) -> dict:
        path = normalize(req["src"])
        self.nn.perm(path, ctx.user)
        node = self.nn.ns.lookup(path)
        # A missing path is no error here: the answer has no status, and the client
        # raises FileNotFoundException itself (as with Hadoop's NameNode).
        return {} if node is None else {"fs": self.file_status(node, b"", ctx, False)}

    def getListing(self, req, ctx: CallContext) -> dict:
        path = normalize(req["src"])
        self.nn.perm(path, ctx.user, target=READ | EXECUTE)
        node = self.nn.ns.lookup(path)
        if node is None:
            return {}
        need = req["needLocation"]
        if not node.is_dir:
            return {
                "dirList": {
                    "partialListing": [self.file_status(node, b"", ctx, need)],
                    "remainingEntries": 0,
                }
            }
        # Paging as FSDirStatAndListingOp: names in byte order, after startAfter.
        after = bytes(req["startAfter"])
        names = sorted(
            (n.encode() for n in node.children if n.encode() > after),
        )
        page = names[: self.ls_limit]
        items = [self.file_status(node.children[n.decode()], n, ctx, need) for n in page]
        return {"dirList": {"partialListing": items, "remainingEntries": len(names) - len(page)}}

    def getBlockLocations(self, req, ctx: CallContext) -> dict:
        path = normalize(req["src"])
        if self.nn.ns.lookup(path) is None:
            raise FileNotFoundException(f"File does not exist: {path}")
        located = self.nn.located_blocks(path, ctx.user, req["offset"], req["length"], ctx.peer_ip)
        return {"locations": self.located_blocks(located)}

    def getContentSummary(self, req, ctx: CallContext) -> dict:
        path = normalize(req["path"])
        if self.nn.ns.lookup(path) is None:
            raise FileNotFoundException(f"File does not exist: {path}")
        s = self.nn.content_summary(path, ctx.user)["ContentSummary"]
        return {
            "summary": {
                "length": s["length"],
                "fileCount": s["fileCount"],
                "directoryCount": s["directoryCount"],
                "quota": s["quota"],
                "spaceConsumed": s["spaceConsumed"],
                "spaceQuota": s["spaceQuota"],
            }
        }

    def getFsStats(self, req, ctx: CallContext) -> dict:
        bm = self.nn.bm
        live = bm.live_nodes()
        infos = bm.blocks.values()
        missing = sum(1 for i in infos if not bm.live_replicas(i))
        return {
            "capacity": sum(d.capacity for d in live),
            "used": sum(d.dfs_used for d in live),
            "remaining": sum(d.remaining for d in live),
            "under_replicated": sum(
                1 for i in infos if 0 < len(bm.live_replicas(i)) < i.file.replication
            ),
            "corrupt_blocks": sum(1 for i in infos if i.corrupt),
            "missing_blocks": missing,
        }

    def getDatanodeReport(self, req, ctx: CallContext) -> dict:
        kind = req["type"]
        nodes = [
            d
            for d in self.nn.bm.datanodes.values()
            if kind == "ALL" or (kind == "LIVE" and d.alive) or (kind == "DEAD" and not d.alive)
        ]
        return {"di": [self.datanode_info(d) for d in nodes]}

    def renewLease(self, req, ctx: CallContext) -> dict:
        # Leases are kept per open file here; renewing a client's lease renews every
        # file it holds open, as LeaseManager.renewLease does for its one lease.
        now = time.monotonic()
        for inode_id, lease in self.nn.leases.items():
            f = self.nn.ns.inodes.get(inode_id)
            if isinstance(f, INodeFile) and f.client_name == req["clientName"]:
                lease["renewed"] = now
        return {}

    # ------------------------------------------------------------ changes
    def _require_parent(self, path: str) -> None:
        """Without createParent, the parent must already be a directory."""
        parent = self.nn.ns.lookup(posixpath.dirname(path))
        if parent is None:
            raise FileNotFoundException(
                f"Parent directory doesn't exist: {posixpath.dirname(path)}"
            )
        if not parent.is_dir:
            raise errors.ParentNotDirectoryException(
                f"{posixpath.dirname(path)} (is not a directory)"
            )

    def mkdirs(self, req, ctx: CallContext) -> dict:
        path = normalize(req["src"])
        if not req["createParent"]:
            self._require_parent(path)
        # The client has applied its umask to `masked` already, as Hadoop's clients do;
        # `unmasked` is what it asked for before that (for a default ACL's inheritance).
        mode = req["masked"]["perm"] & 0o7777 if req["masked"] else None
        return {"result": self.nn.mkdirs(path, ctx.user, mode, unmasked_mode(req))}

    def delete(self, req, ctx: CallContext) -> dict:
        return {"result": self.nn.delete(req["src"], req["recursive"], ctx.user)}

    def rename(self, req, ctx: CallContext) -> dict:
        return {"result": self.nn.rename(req["src"], req["dst"], ctx.user)}

    def rename2(self, req, ctx: CallContext) -> dict:
        """FSDirRenameOp.renameTo with options: failures are exceptions, not false, and
        an existing destination is replaced only with OVERWRITE."""
        nn = self.nn
        src, dst = normalize(req["src"]), normalize(req["dst"])
        node = nn.ns.lookup(src)
        if node is None:
            raise FileNotFoundException(f"rename source {src} is not found.")
        if src == dst:
            raise FileAlreadyExistsException(f"The source {src} and destination {dst} are the same")
        if dst.startswith(src.rstrip("/") + "/"):
            raise IOException(f"Rename destination {dst} is a directory or file under source {src}")
        dst_parent = posixpath.dirname(dst)
        parent = nn.ns.lookup(dst_parent)
        if parent is None:
            raise FileNotFoundException(f"rename destination parent {dst_parent} not found.")
        if not parent.is_dir:
            raise errors.ParentNotDirectoryException(
                f"rename destination parent {dst_parent} is a file."
            )
        existing = nn.ns.lookup(dst)
        if existing is not None:
            if not req["overwriteDest"]:
                raise FileAlreadyExistsException(f"rename destination {dst} already exists.")
            if existing.is_dir != node.is_dir:
                both = "directories" if node.is_dir else "files"
                raise IOException(f"Source {src} and destination {dst} must both be {both}")
            if existing.is_dir and existing.children:
                raise IOException(f"rename destination directory is not empty: {dst}")
            nn.perm(src, ctx.user, parent=WRITE)
            nn.delete(dst, False, ctx.user)
        if not nn.rename(src, dst, ctx.user):
            raise IOException(f"Failed to rename {src} to {dst}")
        return {}

    def setPermission(self, req, ctx: CallContext) -> dict:
        self.nn.set_permission(req["src"], req["permission"]["perm"] & 0o7777, ctx.user)
        return {}

    def setOwner(self, req, ctx: CallContext) -> dict:
        self.nn.set_owner(req["src"], req["username"] or None, req["groupname"] or None, ctx.user)
        return {}

    def setTimes(self, req, ctx: CallContext) -> dict:
        # uint64 on the wire; the Java long -1 ("leave unchanged") arrives as 2^64 - 1.
        mtime, atime = (v - (1 << 64) if v >= 1 << 63 else v for v in (req["mtime"], req["atime"]))
        self.nn.set_times(req["src"], mtime, atime, ctx.user)
        return {}

    def setReplication(self, req, ctx: CallContext) -> dict:
        return {"result": self.nn.set_replication(req["src"], req["replication"], ctx.user)}

    # ------------------------------------------------------------ writing files
    def create(self, req, ctx: CallContext) -> dict:
        path = normalize(req["src"])
        if not req["createParent"]:
            self._require_parent(path)
        mode = req["masked"]["perm"] & 0o7777 if req["masked"] else None
        self.nn.create(
            path,
            ctx.user,
            req["clientName"],
            bool(req["createFlag"] & CREATE_OVERWRITE),
            req["replication"] or None,
            req["blockSize"] or None,
            mode,
            ctx.peer_ip,
            unmasked_mode(req),
        )
        return {"fs": self.file_status(self.nn.ns.get(path), b"", ctx, False)}

    def addBlock(self, req, ctx: CallContext) -> dict:
        exclude = [d["id"]["datanodeUuid"] for d in req["excludeNodes"]]
        lb = self.nn.add_block(
            req["src"], req["clientName"], self.block_json(req["previous"]), exclude, ctx.peer_ip
        )
        return {"block": self.located_block(lb)}

    def complete(self, req, ctx: CallContext) -> dict:
        done = self.nn.complete(req["src"], req["clientName"], self.block_json(req["last"]))
        return {"result": done}

    def abandonBlock(self, req, ctx: CallContext) -> dict:
        self.nn.abandon_block(req["src"], req["holder"], self.block_json(req["b"]))
        return {}

    def fsync(self, req, ctx: CallContext) -> dict:
        # The lease holder's hsync (hflush does not call it): the lease checked and renewed,
        # and the last block's length as the writer tells it, which readers then see.
        self.nn.fsync(normalize(req["src"]), req["client"], req["lastBlockLength"])
        return {}

    def append(self, req, ctx: CallContext) -> dict:
        path = normalize(req["src"])
        result = self.nn.append(path, ctx.user, req["clientName"], ctx.peer_ip)
        out = {"stat": self.file_status(self.nn.ns.get(path), b"", ctx, False)}
        last = result["lastBlock"]
        if last is not None:
            # The reopened last block under its new generation stamp, which the NameNode
            # has already allotted (the DataNodes reopen the replica from the old one).
            block = dict(last["block"], genStamp=last["newGenStamp"])
            out["block"] = self.located_block(dict(last, block=block))
        return out

    def updateBlockForPipeline(self, req, ctx: CallContext) -> dict:
        """The generation stamp a writer's new pipeline uses. After an append it is the one
        the append allotted; for a pipeline recovery a new one is allotted and logged, so
        replicas left on a failed DataNode are recognisably stale."""
        nn = self.nn
        asked = req["block"]
        info = nn.bm.blocks.get(asked["blockId"])
        if info is None:
            raise IOException(f"blk_{asked['blockId']} does not exist")
        f = nn._uc_file(info.file.path(), req["clientName"])
        current = f.blocks[-1] if f.blocks else None
        if current is None or current.block_id != asked["blockId"]:
            raise IOException(f"blk_{asked['blockId']} is not the last block of {f.path()}")
        if current.gen_stamp <= asked["generationStamp"]:
            blocks = [b.to_json() for b in f.blocks]
            blocks[-1]["genStamp"] = nn.ns.gen_stamp + 1
            nn.log_apply({"op": "OP_UPDATE_BLOCKS", "path": f.path(), "blocks": blocks})
            nn.bm.add_file_blocks(f)
        block = f.blocks[-1].to_json()
        block["numBytes"] = asked["numBytes"]
        return {"block": self.located_block({"block": block, "offset": 0, "locations": []})}

    def setQuota(self, req, ctx: CallContext) -> dict:
        # uint64 on the wire: Java's -1 (reset) arrives as 2^64 - 1.
        ns, ss = (
            v - (1 << 64) if v >= 1 << 63 else v
            for v in (req["namespaceQuota"], req["storagespaceQuota"])
        )
        self.nn.set_quota(req["path"], ns, ss, ctx.user)
        return {}

    # ------------------------------------------------------------ snapshots
    def allowSnapshot(self, req, ctx: CallContext) -> dict:
        self.nn.allow_snapshot(req["snapshotRoot"], ctx.user)
        return {}

    def disallowSnapshot(self, req, ctx: CallContext) -> dict:
        self.nn.disallow_snapshot(req["snapshotRoot"], ctx.user)
        return {}

    def createSnapshot(self, req, ctx: CallContext) -> dict:
        made = self.nn.create_snapshot(req["snapshotRoot"], req.get("snapshotName"), ctx.user)
        return {"snapshotPath": made}

    def renameSnapshot(self, req, ctx: CallContext) -> dict:
        self.nn.rename_snapshot(
            req["snapshotRoot"], req["snapshotOldName"], req["snapshotNewName"], ctx.user
        )
        return {}

    def getSnapshottableDirListing(self, req, ctx: CallContext) -> dict:
        dirs = self.nn.snapshottable_dirs(ctx.user)
        if not dirs:
            return {}  # Hadoop answers null when there is none
        return {
            "snapshottableDirList": {
                "snapshottableDirListing": [
                    {
                        "dirStatus": self.file_status(d, d.name.encode(), ctx, False),
                        "snapshot_quota": SNAPSHOT_QUOTA,
                        "snapshot_number": len(d.snapshot_dir.children),
                        "parent_fullpath": (d.parent.path() if d.parent else "").encode(),
                    }
                    for d in dirs
                ]
            }
        }

    def getSnapshotDiffReport(self, req, ctx: CallContext) -> dict:
        root, old, new = req["snapshotRoot"], req["fromSnapshot"], req["toSnapshot"]
        entries = self.nn.snapshot_diff(root, old, new, ctx.user)
        out = []
        for label, path, target in entries:
            entry = {"fullpath": path.encode(), "modificationLabel": label}
            if target is not None:
                entry["targetPath"] = target.encode()
            out.append(entry)
        report = {"snapshotRoot": root, "fromSnapshot": old, "toSnapshot": new}
        return {"diffReport": dict(report, diffReportEntries=out)}

    def deleteSnapshot(self, req, ctx: CallContext) -> dict:
        self.nn.delete_snapshot(req["snapshotRoot"], req["snapshotName"], ctx.user)
        return {}

    # ------------------------------------------------------------ ACLs (acl.proto)
    def getAclStatus(self, req, ctx: CallContext) -> dict:
        st = self.nn.get_acl_status(req["src"], ctx.user)
        return {
            "result": {
                "owner": st["owner"],
                "group": st["group"],
                "sticky": st["sticky"],
                "entries": [acl.to_proto(e) for e in st["entries"]],
                "permission": {"perm": st["permission"]},
            }
        }

    def setAcl(self, req, ctx: CallContext) -> dict:
        self.nn.set_acl(req["src"], [acl.from_proto(e) for e in req["aclSpec"]], ctx.user)
        return {}

    def modifyAclEntries(self, req, ctx: CallContext) -> dict:
        self.nn.modify_acl_entries(
            req["src"], [acl.from_proto(e) for e in req["aclSpec"]], ctx.user
        )
        return {}

    def removeAclEntries(self, req, ctx: CallContext) -> dict:
        self.nn.remove_acl_entries(
            req["src"], [acl.from_proto(e) for e in req["aclSpec"]], ctx.user
        )
        return {}

    def removeDefaultAcl(self, req, ctx: CallContext) -> dict:
        self.nn.remove_default_acl(req["src"], ctx.user)
        return {}

    def removeAcl(self, req, ctx: CallContext) -> dict:
        self.nn.remove_acl(req["src"], ctx.user)
        return {}

    def recoverLease(self, req, ctx: CallContext) -> dict:
        """True once the file is closed; false while its last block is being recovered
        (the caller asks again), as DistributedFileSystem.recoverLease returns it."""
        done = self.nn.lease_recovery.recover_lease(
            req["src"], req["clientName"], ctx.user, ctx.peer_ip
        )
        return {"result": done}

    def getAdditionalDatanode(self, req, ctx: CallContext) -> dict:
        """FSNamesystem.getAdditionalDatanode: a writer whose pipeline lost a node asks for
        a replacement (its policy decides when). Placement is the block's own, given the
        surviving nodes; the answer is survivors and new nodes in pipeline order, and fewer
        new nodes than asked when no more are good (the client decides what then, as
        Hadoop's chooseTarget4AdditionalDatanode leaves it to the client)."""
        nn = self.nn
        path = normalize(req["src"])
        blk = req["blk"]
        nn.check_not_safemode(f"Cannot add datanode; src={path}, blk={blk['blockId']}")
        f = nn._uc_file(path, req["clientName"])
        bm = nn.bm
        existing = []
        for d in req["existings"]:
            desc = bm.datanodes.get(d["id"]["datanodeUuid"])
            if desc is None:
                raise IOException(
                    f"Datanode {d['id']['ipAddr']}:{d['id']['xferPort']} is not found: "
                    f"src={path}, blk={blk['blockId']}, clientName={req['clientName']}"
                )
            existing.append(desc)
        excluded = {d["id"]["datanodeUuid"] for d in req["excludes"]}
        writer = bm.node_by_ip(ctx.peer_ip)
        new = bm.choose_target(
            req["numAdditionalNodes"],
            writer,
            existing,
            excluded,
            new_block=False,
            block_size=f.block_size,
        )
        if len(new) < req["numAdditionalNodes"]:
            log.warning(
                "Failed to place enough replicas for %s: %d of %d additional DataNodes",
                path,
                len(new),
                req["numAdditionalNodes"],
            )
        nodes = bm.pipeline_order(writer, existing + new)
        lb = {
            "block": self.block_json(blk),
            "offset": -1,  # as BlockManager.newLocatedBlock(blk, targets, -1, false)
            "locations": [d.info() for d in nodes],
        }
        return {"block": self.located_block(lb)}

    def updatePipeline(self, req, ctx: CallContext) -> dict:
        """The recovered pipeline: its DataNodes are the block's expected replicas, and a
        replica elsewhere (under the old generation stamp) is stale."""
        nn = self.nn
        new = req["newBlock"]
        info = nn.bm.blocks.get(new["blockId"])
        if info is None:
            raise IOException(f"blk_{new['blockId']} does not exist")
        nn._uc_file(info.file.path(), req["clientName"])
        nodes = [d["datanodeUuid"] for d in req["newNodes"]]
        info.expected_uc = nodes
        for uuid in list(info.locations - set(nodes)):
            nn.bm.replica_deleted(nn.bm.datanodes[uuid], info.block.block_id)
            nn.bm.datanodes[uuid].invalidate_queue.add(info.block.block_id)
        return {}
