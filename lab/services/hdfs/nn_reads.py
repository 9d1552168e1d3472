"""What the NameNode answers about files without changing them: a file's located blocks
(getBlockLocations: replicas nearest the client first, a block being written at its
pipeline), a content summary, and the DataNode a WebHDFS request is redirected to
(NamenodeWebHdfsMethods.chooseDatanode). A mixin of NameNode."""

from __future__ import annotations

from ..hadoop.errors import FileNotFoundException, IOException
from .blockmanager import DatanodeDescriptor
from .namespace import EXECUTE, READ, INodeDirectory, INodeFile, normalize
from .trash import trash_minutes


class NamespaceReads:
    def located_blocks(
        self, path: str, user: str, offset: int, length: int, client_ip: str
    ) -> dict:
        path = normalize(path)
        self.perm(path, user, target=READ)
        f = self.ns.get(path)
        if not isinstance(f, INodeFile):
            raise FileNotFoundException(f"Path is not a file: {path}")
        if offset > f.length:
            raise IOException(f"Offset: {offset} exceeds file length: {f.length}")
        out, pos = [], 0
        end = offset + length
        for b in f.blocks:
            b_end = pos + b.num_bytes
            if b_end > offset and pos < end:
                info = self.bm.blocks.get(b.block_id)
                live = self.bm.live_replicas(info) if info else []
                corrupt = not live and bool(info and info.corrupt)
                nodes = live or [
                    self.bm.datanodes[u]
                    for u in (info.corrupt if info else [])
                    if u in self.bm.datanodes and self.bm.datanodes[u].alive
                ]
                nodes = self.bm.sort_by_distance(client_ip, nodes)
                if not nodes and info is not None and not info.complete:
                    # A block being written is where its pipeline is (the expected
                    # locations of Hadoop's BlockUnderConstructionFeature), in pipeline order.
                    nodes = [
                        self.bm.datanodes[u]
                        for u in info.expected_uc
                        if u in self.bm.datanodes and self.bm.datanodes[u].alive
                    ]
                out.append(
                    {
                        "block": b.to_json(),
                        "offset": pos,
                        "corrupt": corrupt,
                        "locations": [d.info() for d in nodes],
                    }
                )
            pos = b_end
        uc = f.client_name is not None
        return {
            "fileLength": f.length,
            "lengthNotIncludingLastUcBlock": f.length
            - (f.blocks[-1].num_bytes if uc and f.blocks else 0),
            "blockSize": f.block_size,
            "blocks": out,
            "underConstruction": f.client_name is not None,
        }

    def server_defaults(self) -> dict:
        """FsServerDefaults (FsServerDefaultsProto's fields), for getServerDefaults and
        WebHDFS's GETSERVERDEFAULTS."""
        return {
            "blockSize": self.default_blocksize,
            "bytesPerChecksum": self.bpc,
            "writePacketSize": self.conf.get_size("dfs.client-write-packet-size"),
            "replication": self.default_replication,
            "fileBufferSize": self.conf.get_int("io.file.buffer.size", 4096),
            "encryptDataTransfer": False,
            # fs.trash.interval, in whole minutes (FsServerDefaults reads a long).
            "trashInterval": int(trash_minutes(self.conf)),
            "checksumType": "CHECKSUM_CRC32C",
        }

    def content_summary(self, path: str, user: str) -> dict:
        node = self.ns.get(normalize(path))
        self.perm(normalize(path), user, subtree=READ | EXECUTE if node.is_dir else 0)
        dirs = files = length = consumed = 0
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, INodeDirectory):
                dirs += 1
                stack.extend(n.children.values())
            else:
                files += 1
                length += n.length
                consumed += n.length * n.replication
        return {
            "ContentSummary": {
                "directoryCount": dirs,
                "fileCount": files,
                "length": length,
                "quota": node.ns_quota if node.is_dir else -1,
                "spaceConsumed": consumed,
                "spaceQuota": node.ds_quota if node.is_dir else -1,
                "typeQuota": {},
            }
        }

    def choose_datanode(
        self, op: str, path: str, client_ip: str, offset: int = 0
    ) -> DatanodeDescriptor:
        live = [d for d in self.bm.live_nodes()]
        if not live:
            raise IOException(
                "Failed to find datanode, suggest to check cluster health. excludeDatanodes=null"
            )
        if op == "CREATE":
            client = self.bm.node_by_ip(client_ip)
            if client is not None:
                targets = self.bm.choose_target(1, client, [], set())
                if targets:
                    return targets[0]
        elif op in ("OPEN", "GETFILECHECKSUM", "APPEND"):
            f = self.ns.lookup(normalize(path))
            if isinstance(f, INodeFile) and f.blocks:
                pos, chosen = 0, f.blocks[0]
                target_off = offset if op == "OPEN" else (f.length - 1 if op == "APPEND" else 0)
                for b in f.blocks:
                    if pos <= target_off < pos + b.num_bytes:
                        chosen = b
                        break
                    pos += b.num_bytes
                info = self.bm.blocks.get(chosen.block_id)
                nodes = self.bm.live_replicas(info) if info else []
                if nodes:
                    return self.bm.sort_by_distance(client_ip, nodes)[0]
        return self.bm.rng.choice(live)
