"""The NameNode's metadata over ClientNamenodeProtocol (Hadoop IPC on fs.defaultFS), the
way Hadoop's `hdfs dfs` reaches it, behind the interface of WebHdfsClient so the shell
prints the same either way: status, listings (paged), mkdirs, delete, rename, replication,
permission, owner and content summary answer in WebHDFS's JSON shapes and raise the same
Hadoop exceptions with the NameNode's own words. File data (read, write) and the HTTP
pages (fsck, jmx) are the WebHDFS client's: `hdfs fsck` and `dfsadmin -report` are HTTP
in Hadoop too.

Reads go to the DataNodes as Hadoop's client reads: getBlockLocations, then OP_READ_BLOCK
from each block's nearest replica (the NameNode sorts them), the next one when a replica
fails, chunk checksums verified."""

from __future__ import annotations

from collections.abc import Iterator

from ..hadoop import errors
from ..hadoop.conf import split_hostport
from ..hadoop.ipc.client import IpcClient, RemoteError
from ..hadoop.webclient import WebHdfsClient
from .blockreader import read_block

PROTOCOL = "org.apache.hadoop.hdfs.protocol.ClientProtocol"
SERVICE = "hadoop.hdfs.ClientNamenodeProtocol"
DIR_MODE = 0o755  # what `hdfs dfs -mkdir` asks for: 777 under the client's umask 022


def file_status(st: dict) -> dict:
    """WebHDFS's FileStatus of an HdfsFileStatusProto."""
    is_dir = st["fileType"] == "IS_DIR"
    return {
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


class NativeClient:
    """Metadata over Hadoop IPC; everything else delegated to `web`."""

    def __init__(self, rpc: str, web: WebHdfsClient, timeout: float = 60.0) -> None:
        self.address, self.timeout = split_hostport(rpc, 8020), timeout
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

    def content_summary(self, path: str) -> dict:
        s = self._call("getContentSummary", path=path)["summary"]
        return {
            "directoryCount": s["directoryCount"],
            "fileCount": s["fileCount"],
            "length": s["length"],
            "quota": s["quota"],
            "spaceConsumed": s["spaceConsumed"],
            "spaceQuota": s["spaceQuota"],
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

    def close(self) -> None:
        if self.ipc is not None:
            self.ipc.close()
        self.web.close()
