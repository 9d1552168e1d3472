"""An HDFS client for racklab's tools that talks as Hadoop's `hdfs dfs` does, behind the
interface of WebHdfsClient so the shell prints the same either way: metadata over
ClientNamenodeProtocol (Hadoop IPC on fs.defaultFS) in WebHDFS's JSON shapes, raising the
same Hadoop exceptions with the NameNode's own words; file contents from and to the
DataNodes over DataTransferProtocol (blockreader.py, blockwriter.py). The HTTP pages
(fsck, jmx) stay the WebHDFS client's: `hdfs fsck` and `dfsadmin -report` are HTTP in
Hadoop too.

Reads: getBlockLocations, then OP_READ_BLOCK from each block's first listed replica (the
NameNode sorts them by distance), the next one from where a failed one stopped. Writes:
create or append, then addBlock and a pipeline per block (recovered as DataStreamer
recovers it when a DataNode fails mid-block; abandoned and asked for again without the bad
DataNode when it cannot be set up), then complete."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..hadoop import errors
from ..hadoop.conf import split_hostport
from ..hadoop.ipc.client import IpcClient, RemoteError
from ..hadoop.webclient import WebHdfsClient
from . import acl
from .blockreader import read_block
from .blockwriter import BlockWriter, PipelineFailed, SetupFailed

log = logging.getLogger(__name__)

PROTOCOL = "org.apache.hadoop.hdfs.protocol.ClientProtocol"
SERVICE = "hadoop.hdfs.ClientNamenodeProtocol"
CREATE, OVERWRITE = 0x01, 0x02  # CreateFlagProto
FILE_MODE = 0o644  # what `hdfs dfs -put` asks for: 666 under the client's umask 022
DIR_MODE = 0o755  # what `hdfs dfs -mkdir` asks for: 777 under the client's umask 022
BLOCK_WRITE_RETRIES = 3  # dfs.client.block.write.retries
ACL_CALLS = {
    "SETACL": "setAcl",
    "MODIFYACLENTRIES": "modifyAclEntries",
    "REMOVEACLENTRIES": "removeAclEntries",
    "REMOVEDEFAULTACL": "removeDefaultAcl",
    "REMOVEACL": "removeAcl",
}


def file_status(st: dict) -> dict:
    """WebHDFS's FileStatus of an HdfsFileStatusProto."""
    is_dir = st["fileType"] == "IS_DIR"
    out = {
        "accessTime": st["access_time"],
        "blockSize": st["blocksize"],
        "childrenNum": st["childrenNum"],
        "fileId": st["fileId"],
        "group": st["group"],
        "length": st["length"],
        "modificationTime": st["modification_time"],
        "owner": st["owner"],
        "pathSuffix": bytes(st["path"]).decode(),
        "permission": format(st["permission"]["perm"] & 0o7777, "o"),
        "replication": st["block_replication"],
        "storagePolicy": st["storagePolicy"],
        "type": "DIRECTORY" if is_dir else "FILE",
    }
    if st.get("flags", 0) & acl.HAS_ACL:
        out["aclBit"] = True
    return out


def _signed(value: int) -> int:
    """A Java long sent as uint64 (a quota's -1 arrives as 2^64 - 1)."""
    return value - (1 << 64) if value >= 1 << 63 else value


class NativeClient:
    """Metadata over Hadoop IPC; everything else delegated to `web`."""

    def __init__(
        self, rpc: str, web: WebHdfsClient, timeout: float = 60.0, replace_policy: str = "DEFAULT"
    ) -> None:
        """`replace_policy`: dfs.client.block.write.replace-datanode-on-failure.policy
        (`replace_best_effort`, its best-effort key, may be set after)."""
        self.address, self.timeout = split_hostport(rpc, 8020), timeout
        self.replace_policy, self.replace_best_effort = replace_policy, False
        self.web, self.user = web, web.user
        self.ipc: IpcClient | None = None  # connected at the first call: fsck needs none

    def __getattr__(self, name: str):
        return getattr(self.web, name)  # read, write, fsck, jmx, ...

    def _call(self, method: str, **request) -> dict:
        if self.ipc is None:
            self.ipc = IpcClient(*self.address, self.user, PROTOCOL, SERVICE, self.timeout)
        try:
            return self.ipc.call(method, request)
        except RemoteError as exc:
            cls = errors.BY_NAME.get(exc.java.rsplit(".", 1)[-1], errors.IOException)
            raise cls(str(exc)) from None

    def status(self, path: str, strict: bool = True) -> dict | None:
        st = self._call("getFileInfo", src=path).get("fs")
        if st is None:
            if strict:
                raise errors.FileNotFoundException(f"File does not exist: {path}")
            return None
        return file_status(st)

    def list(self, path: str) -> list[dict]:
        items, after = [], b""
        while True:
            listing = self._call("getListing", src=path, startAfter=after, needLocation=False).get(
                "dirList"
            )
            if listing is None:
                raise errors.FileNotFoundException(f"File {path} does not exist.")
            page = listing["partialListing"]
            items += [file_status(st) for st in page]
            if not listing["remainingEntries"] or not page:
                return items
            after = bytes(page[-1]["path"])

    def mkdirs(self, path: str, permission: str | None = None) -> bool:
        mode = DIR_MODE if permission is None else int(permission, 8)
        return self._call("mkdirs", src=path, masked={"perm": mode}, createParent=True)["result"]

    def delete(self, path: str, recursive: bool = False) -> bool:
        return self._call("delete", src=path, recursive=recursive)["result"]

    def rename(self, src: str, dst: str) -> bool:
        return self._call("rename", src=src, dst=dst)["result"]

    def set_replication(self, path: str, replication: int) -> bool:
        return self._call("setReplication", src=path, replication=replication)["result"]

    def set_permission(self, path: str, permission: str) -> None:
        self._call("setPermission", src=path, permission={"perm": int(permission, 8)})

    def set_owner(self, path: str, owner: str | None = None, group: str | None = None) -> None:
        self._call("setOwner", src=path, username=owner or "", groupname=group or "")

    @property
    def uri(self) -> str:
        return f"hdfs://{self.address[0]}:{self.address[1]}"

    def trash_interval(self) -> int:
        """The NameNode's fs.trash.interval in minutes (0: no trash)."""
        return self._call("getServerDefaults")["serverDefaults"]["trashInterval"]

    def set_quota(self, path: str, namespace: int | None, space: int | None) -> None:
        """setQuota, as dfsadmin sends it: -1 clears, None leaves as is (Long.MAX_VALUE)."""
        keep = (1 << 63) - 1
        self._call(
            "setQuota",
            path=path,
            namespaceQuota=keep if namespace is None else namespace,
            storagespaceQuota=keep if space is None else space,
        )

    def snapshot_op(self, op: str, path: str, **params) -> dict:
        """The WebHDFS snapshot operation's ClientNamenodeProtocol call, its answer in
        WebHDFS's shape."""
        if op == "CREATESNAPSHOT":
            made = self._call(
                "createSnapshot", snapshotRoot=path, snapshotName=params.get("snapshotname")
            )
            return {"Path": made["snapshotPath"]}
        if op == "RENAMESNAPSHOT":
            self._call(
                "renameSnapshot",
                snapshotRoot=path,
                snapshotOldName=params["oldsnapshotname"],
                snapshotNewName=params["snapshotname"],
            )
        elif op == "DELETESNAPSHOT":
            self._call("deleteSnapshot", snapshotRoot=path, snapshotName=params["snapshotname"])
        else:
            method = "allowSnapshot" if op == "ALLOWSNAPSHOT" else "disallowSnapshot"
            self._call(method, snapshotRoot=path)
        return {}

    def acl_status(self, path: str) -> dict:
        """getAclStatus, in WebHDFS's AclStatus shape."""
        st = self._call("getAclStatus", src=path)["result"]
        return {
            "entries": [str(acl.from_proto(e)) for e in st["entries"]],
            "group": st["group"],
            "owner": st["owner"],
            "permission": format(st["permission"]["perm"] & 0o7777, "o"),
            "stickyBit": st["sticky"],
        }

    def acl_change(self, path: str, op: str, spec: str | None = None) -> None:
        """The WebHDFS operation's ClientNamenodeProtocol call."""
        method = ACL_CALLS[op]
        if spec is None:
            self._call(method, src=path)
            return
        entries = acl.parse_spec(spec, with_perm=op != "REMOVEACLENTRIES")
        self._call(method, src=path, aclSpec=[acl.to_proto(e) for e in entries])

    def content_summary(self, path: str) -> dict:
        s = self._call("getContentSummary", path=path)["summary"]
        return {
            "directoryCount": s["directoryCount"],
            "fileCount": s["fileCount"],
            "length": s["length"],
            "quota": _signed(s["quota"]),
            "spaceConsumed": s["spaceConsumed"],
            "spaceQuota": _signed(s["spaceQuota"]),
            "typeQuota": {},
        }

    def read(self, path: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        want = (1 << 62) if length is None else length
        located = self._call("getBlockLocations", src=path, offset=offset, length=want)
        blocks = located["locations"]["blocks"] if located.get("locations") else []
        end = offset + want
        for lb in blocks:
            blk, start = lb["b"], lb["offset"]
            pos, stop = max(offset, start) - start, min(end, start + blk["numBytes"]) - start
            tried = []
            for loc in lb["locs"] if pos < stop else []:
                address = (loc["id"]["ipAddr"], loc["id"]["xferPort"])
                tried.append(address[0])
                try:
                    for piece in read_block(self.ipc.schema, address, blk, pos, stop - pos):
                        pos += len(piece)
                        yield piece
                    break
                except OSError:  # DFSInputStream: the next replica, from where it stopped
                    continue
            if pos < stop:
                raise errors.BlockMissingException(
                    f"Could not obtain block: {blk['poolId']}:blk_{blk['blockId']}_"
                    f"{blk['generationStamp']} file={path} No live nodes contain current "
                    f"block; tried {tried}"
                )

    def write(
        self,
        path: str,
        data: bytes | Iterable[bytes] | Path,
        overwrite: bool = False,
        replication: int | None = None,
        blocksize: int | None = None,
        append: bool = False,
        length: int | None = None,
    ) -> None:
        """A new file written as DFSOutputStream writes it: create, then for each block
        addBlock and OP_WRITE_BLOCK down its pipeline, then complete; an append first
        writes on in the file's last block if it has room. A DataNode failing mid-write
        is recovered from as DataStreamer does (blockwriter.py)."""
        defaults = self._call("getServerDefaults")["serverDefaults"]
        block_size = blocksize or defaults["blockSize"]
        client = f"DFSClient_NONMAPREDUCE_{os.getpid()}_{os.urandom(4).hex()}"
        writer = None
        if append:
            # DFSClient.append: the last block, if it has room, is reopened under a new
            # generation stamp and written on from its length down its own pipeline.
            opened = self._call("append", src=path, clientName=client)
            fs, lb = opened["stat"], opened.get("block")
            block_size = fs["blocksize"]
        else:
            fs = self._call(
                "create",
                src=path,
                masked={"perm": FILE_MODE},
                clientName=client,
                createFlag=CREATE | (OVERWRITE if overwrite else 0),
                createParent=True,
                replication=replication or defaults["replication"],
                blockSize=block_size,
            )["fs"]
        # What DataStreamer keeps for the whole stream.
        stream = {
            "path": path,
            "fileId": fs["fileId"],
            "replication": fs["block_replication"],
            "append": append,
            "defaults": defaults,
            "excluded": [],
        }
        if append and lb and lb["b"]["numBytes"] < block_size:
            writer = self._pipeline(lb, client, stream, append=True)
        if isinstance(data, Path):
            with open(data, "rb") as f:
                return self._write_blocks(
                    client, iter(lambda: f.read(1 << 20), b""), block_size, stream, writer
                )
        pieces = [data] if isinstance(data, bytes | bytearray | memoryview) else data
        return self._write_blocks(client, pieces, block_size, stream, writer)

    def _pipeline(self, lb: dict, client: str, stream: dict, append: bool = False):
        return BlockWriter(
            self.ipc.schema,
            lb,
            client,
            stream["defaults"]["bytesPerChecksum"],
            stream["defaults"]["writePacketSize"],
            append=append,
            namenode=self._call,
            src=stream["path"],
            file_id=stream["fileId"],
            replication=stream["replication"],
            policy=self.replace_policy,
            best_effort=self.replace_best_effort,
            appending=stream["append"],
        )

    def _next_block(self, client: str, last: dict | None, stream: dict) -> BlockWriter:
        """DataStreamer.nextBlockOutputStream: addBlock, then its pipeline; a pipeline
        that cannot be set up is abandoned and its bad DataNode excluded from the next
        addBlock of this stream, dfs.client.block.write.retries (3) more times."""
        for _ in range(1 + BLOCK_WRITE_RETRIES):
            lb = self._call(
                "addBlock",
                src=stream["path"],
                clientName=client,
                previous=last,
                fileId=stream["fileId"],
                excludeNodes=stream["excluded"],
            )["block"]
            try:
                return self._pipeline(lb, client, stream)
            except SetupFailed as exc:
                log.warning("Abandoning %s: %s", lb["b"]["blockId"], exc)
                self._call(
                    "abandonBlock",
                    b=lb["b"],
                    src=stream["path"],
                    holder=client,
                    fileId=stream["fileId"],
                )
                stream["excluded"].append(lb["locs"][exc.bad])
        raise errors.IOException("Unable to create new block.")

    def _write_blocks(self, client, pieces, block_size, stream, writer) -> None:
        path, last = stream["path"], None
        try:
            for piece in pieces:
                view = memoryview(piece)
                while len(view):
                    if writer is None:
                        writer = self._next_block(client, last, stream)
                    room = block_size - (writer.offset + len(writer.pending))
                    writer.write(view[:room])
                    view = view[room:]
                    if writer.offset + len(writer.pending) >= block_size:
                        last, writer = writer.close(), None
            if writer is not None:
                last, writer = writer.close(), None
        except PipelineFailed as exc:
            raise errors.IOException(str(exc)) from None
        finally:
            if writer is not None:
                writer.abort()
        # complete answers false until the last block has its minimum replicas reported.
        for attempt in range(20):
            if self._call(
                "complete", src=path, clientName=client, last=last, fileId=stream["fileId"]
            )["result"]:
                return None
            time.sleep(min(0.05 * 2**attempt, 2.0))
        raise errors.IOException(f"Unable to close file {path}: the last block never completed")

    def close(self) -> None:
        if self.ipc is not None:
            self.ipc.close()
        self.web.close()
