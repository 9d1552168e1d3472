"""The NameNode's WebHDFS front door (Hadoop's NamenodeWebHdfsMethods): one method per
operation, looked up in a table; metadata operations answer here, data operations get a
307 to a DataNode chosen for the caller. The namespace itself is the NameNode's."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from ..hadoop import errors
from ..hadoop.errors import FileNotFoundException, IOException
from ..hadoop.http import Request, Response
from . import acl, quota, snapshotdiff, webhdfs
from .blockmanager import DatanodeDescriptor
from .namespace import EXECUTE, READ, WRITE, INodeFile, normalize


class NamenodeWebHdfsMethods:
    def __init__(self, nn) -> None:
        self.nn = nn
        self.ops = {
            "GETFILESTATUS": self.get_file_status,
            "LISTSTATUS": self.list_status,
            "GETCONTENTSUMMARY": self.get_content_summary,
            "MKDIRS": self.mkdirs,
            "RENAME": self.rename,
            "DELETE": self.delete,
            "SETREPLICATION": self.set_replication,
            "SETPERMISSION": self.set_permission,
            "SETOWNER": self.set_owner,
            "SETTIMES": self.set_times,
            "CREATE": self.create,
            "APPEND": self.append,
            "OPEN": self.open,
            "GETFILEBLOCKLOCATIONS": self.block_locations,
            "GETBLOCKLOCATIONS": self.block_locations,
            "GETFILECHECKSUM": self.file_checksum,
            "GETSERVERDEFAULTS": self.get_server_defaults,
            "GETSNAPSHOTTABLEDIRECTORYLIST": self.snapshottable_list,
            "GETSNAPSHOTDIFF": self.snapshot_diff,
            "ALLOWSNAPSHOT": self.snapshot_op,
            "DISALLOWSNAPSHOT": self.snapshot_op,
            "CREATESNAPSHOT": self.snapshot_op,
            "RENAMESNAPSHOT": self.snapshot_op,
            "DELETESNAPSHOT": self.snapshot_op,
            "SETQUOTA": self.set_quota,
            "GETACLSTATUS": self.get_acl_status,
            "SETACL": self.set_acl,
            "MODIFYACLENTRIES": self.set_acl,
            "REMOVEACLENTRIES": self.set_acl,
            "REMOVEDEFAULTACL": self.remove_acl,
            "REMOVEACL": self.remove_acl,
        }

    def user(self, req: Request) -> str:
        return webhdfs.get_user(req.query, self.nn.conf.get("hadoop.http.staticuser.user"))

    async def handle(self, req: Request) -> Response:
        op = webhdfs.parse_op(req.method, req.query)
        path = webhdfs.hdfs_path(req.path)
        user = self.user(req)
        if op in ("GETHOMEDIRECTORY", "GETTRASHROOT"):
            home = f"/user/{user}"
            return Response.json({"Path": home if op == "GETHOMEDIRECTORY" else home + "/.Trash"})
        path = normalize(path)
        method = self.ops.get(op)
        if method is None:
            raise errors.UnsupportedOperationException(
                f"{op} is not supported by racklab's WebHDFS"
            )
        return method(req, op, path, req.query, user)

    def redirect(
        self, req: Request, d: DatanodeDescriptor, op: str, path: str, params: dict
    ) -> Response:
        rpc = self.nn.rpc_address
        q = {"op": op, "user.name": self.user(req), "namenoderpcaddress": f"{rpc[0]}:{rpc[1]}"}
        q.update({k: v for k, v in params.items() if v is not None})
        url = f"http://{d.ip}:{d.info_port}{webhdfs.PREFIX}{quote(path)}?{urlencode(q)}"
        if webhdfs.get_bool(req.query, "noredirect", False):
            return Response.json({"Location": url})
        return Response(307, {"Location": url, "Content-Type": "application/octet-stream"})

    # ------------------------------------------------------------ metadata
    def get_file_status(self, req, op, path, q, user) -> Response:
        self.nn.perm(path, user)
        return Response.json({"FileStatus": webhdfs.file_status(self.nn.ns.get(path), "")})

    def list_status(self, req, op, path, q, user) -> Response:
        nn = self.nn
        nn.perm(path, user, target=READ | EXECUTE)
        node = nn.ns.lookup(path)
        if node is None:
            raise FileNotFoundException(f"File {path} does not exist.")
        if node.is_dir:
            items = [webhdfs.file_status(c) for _, c in sorted(node.children.items())]
        else:
            items = [webhdfs.file_status(node, "")]
        return Response.json({"FileStatuses": {"FileStatus": items}})

    def get_content_summary(self, req, op, path, q, user) -> Response:
        return Response.json(self.nn.content_summary(path, user))

    def mkdirs(self, req, op, path, q, user) -> Response:
        unmasked = webhdfs.get_permission(q, None, "unmaskedpermission")
        made = self.nn.mkdirs(path, user, webhdfs.get_permission(q, None), unmasked)
        return Response.json({"boolean": made})

    def snapshot_diff(self, req, op, path, q, user) -> Response:
        """JsonUtil.toJsonString(SnapshotDiffReport): oldsnapshotname to snapshotname."""
        old, new = q.get("oldsnapshotname", ""), q.get("snapshotname", "")
        entries = []
        for label, source, target in self.nn.snapshot_diff(path, old, new, user):
            entry = {"sourcePath": source, "type": snapshotdiff.TYPES[label]}
            if target is not None:
                entry["targetPath"] = target
            entries.append(entry)
        report = {"snapshotRoot": path, "fromSnapshot": old, "toSnapshot": new}
        return Response.json({"SnapshotDiffReport": dict(report, diffList=entries)})

    def snapshottable_list(self, req, op, path, q, user) -> Response:
        """JsonUtil.toJsonString(SnapshottableDirectoryStatus[]): null when there is none."""
        dirs = self.nn.snapshottable_dirs(user)
        listing = [
            {
                "dirStatus": webhdfs.file_status(d),
                "parentFullPath": d.parent.path() if d.parent else "",
                "snapshotNumber": len(d.snapshot_dir.children),
                "snapshotQuota": 1 << 16,
            }
            for d in dirs
        ]
        return Response.json({"SnapshottableDirectoryList": listing or None})

    def snapshot_op(self, req, op, path, q, user) -> Response:
        """ALLOWSNAPSHOT, DISALLOWSNAPSHOT, CREATESNAPSHOT ({"Path": ...}), RENAMESNAPSHOT
        (oldsnapshotname, snapshotname), DELETESNAPSHOT (snapshotname)."""
        nn = self.nn
        if op == "ALLOWSNAPSHOT":
            nn.allow_snapshot(path, user)
        elif op == "DISALLOWSNAPSHOT":
            nn.disallow_snapshot(path, user)
        elif op == "CREATESNAPSHOT":
            made = nn.create_snapshot(path, q.get("snapshotname") or None, user)
            return Response.json({"Path": made})
        elif op == "RENAMESNAPSHOT":
            old = webhdfs.get_required(q, "oldsnapshotname")
            nn.rename_snapshot(path, old, webhdfs.get_required(q, "snapshotname"), user)
        else:
            nn.delete_snapshot(path, webhdfs.get_required(q, "snapshotname"), user)
        return Response(200)

    def get_server_defaults(self, req, op, path, q, user) -> Response:
        """JsonUtil.toJsonString(FsServerDefaults): the checksum type by its id."""
        d = dict(self.nn.server_defaults(), checksumType=2)  # DataChecksum.Type.CRC32C
        d.update(keyProviderUri="", defaultStoragePolicyId=7)  # no KMS; HOT
        return Response.json({"FsServerDefaults": d})

    def set_quota(self, req, op, path, q, user) -> Response:
        """SETQUOTA (Hadoop 3.3): namespacequota and storagespacequota, each left as it
        is when absent (Long.MAX_VALUE, QUOTA_DONT_SET)."""
        ns = webhdfs.get_long(q, "namespacequota", quota.QUOTA_DONT_SET, -1)
        ss = webhdfs.get_long(q, "storagespacequota", quota.QUOTA_DONT_SET, -1)
        self.nn.set_quota(path, ns, ss, user)
        return Response(200)

    # ------------------------------------------------------------ ACLs
    def get_acl_status(self, req, op, path, q, user) -> Response:
        """JsonUtil.toJsonString(AclStatus): entries as their stable strings, the
        permission in octal."""
        st = self.nn.get_acl_status(path, user)
        return Response.json(
            {
                "AclStatus": {
                    "entries": [str(e) for e in st["entries"]],
                    "group": st["group"],
                    "owner": st["owner"],
                    "permission": format(st["permission"], "o"),
                    "stickyBit": st["sticky"],
                }
            }
        )

    def set_acl(self, req, op, path, q, user) -> Response:
        """SETACL, MODIFYACLENTRIES (entries with permissions) and REMOVEACLENTRIES
        (without), each from the aclspec parameter."""
        spec = acl.parse_spec(q.get("aclspec", ""), with_perm=op != "REMOVEACLENTRIES")
        {
            "SETACL": self.nn.set_acl,
            "MODIFYACLENTRIES": self.nn.modify_acl_entries,
            "REMOVEACLENTRIES": self.nn.remove_acl_entries,
        }[op](path, spec, user)
        return Response(200)

    def remove_acl(self, req, op, path, q, user) -> Response:
        if op == "REMOVEACL":
            self.nn.remove_acl(path, user)
        else:
            self.nn.remove_default_acl(path, user)
        return Response(200)

    def rename(self, req, op, path, q, user) -> Response:
        dst = webhdfs.get_required(q, "destination")
        return Response.json({"boolean": self.nn.rename(path, dst, user)})

    def delete(self, req, op, path, q, user) -> Response:
        recursive = webhdfs.get_bool(q, "recursive", False)
        return Response.json({"boolean": self.nn.delete(path, recursive, user)})

    def set_replication(self, req, op, path, q, user) -> Response:
        rep = webhdfs.get_long(q, "replication", self.nn.default_replication, 1, 32767)
        return Response.json({"boolean": self.nn.set_replication(path, rep, user)})

    def set_permission(self, req, op, path, q, user) -> Response:
        self.nn.set_permission(path, webhdfs.get_permission(q, 0o755), user)
        return Response(200)

    def set_owner(self, req, op, path, q, user) -> Response:
        self.nn.set_owner(path, q.get("owner") or None, q.get("group") or None, user)
        return Response(200)

    def set_times(self, req, op, path, q, user) -> Response:
        mtime = webhdfs.get_long(q, "modificationtime", -1, -1)
        atime = webhdfs.get_long(q, "accesstime", -1, -1)
        self.nn.set_times(path, mtime, atime, user)
        return Response(200)

    def block_locations(self, req, op, path, q, user) -> Response:
        offset = webhdfs.get_long(q, "offset", 0, 0)
        length = webhdfs.get_long(q, "length", 1 << 62, 0)
        located = self.nn.located_blocks(path, user, offset, length, req.peer)
        pool = self.nn.version.get("blockpoolID")
        return Response.json(webhdfs.block_locations(located, op, pool))

    # ------------------------------------------------------------ data: redirects
    def create(self, req, op, path, q, user) -> Response:
        nn = self.nn
        overwrite = webhdfs.get_bool(q, "overwrite", False)
        params = {
            "overwrite": str(overwrite).lower(),
            "replication": webhdfs.get_long(q, "replication", None, 1, 32767),
            "blocksize": webhdfs.get_long(q, "blocksize", None, 1),
            "permission": q.get("permission")
            if webhdfs.get_permission(q, None) is not None
            else None,
            "unmaskedpermission": q.get("unmaskedpermission")
            if webhdfs.get_permission(q, None, "unmaskedpermission") is not None
            else None,
            "buffersize": webhdfs.get_long(q, "buffersize", None, 1),
        }
        # Check what the DataNode's create would refuse now, so the client hears it first.
        nn.check_not_safemode(f"Cannot create file{path}")
        existing = nn.ns.check_create(path, True)
        if existing is not None and not overwrite and not existing.client_name:
            nn.ns.check_create(path, overwrite, req.peer)  # refused now
        # A file still being written is left to the DataNode's create, which the NameNode
        # refuses or lets take the file over (the writer's soft limit), as Hadoop's does.
        nn.perm(path, user, ancestor=WRITE, target=WRITE if existing else 0)
        return self.redirect(req, nn.choose_datanode(op, path, req.peer), op, path, params)

    def append(self, req, op, path, q, user) -> Response:
        nn = self.nn
        node = nn.ns.lookup(path)
        if node is None:
            raise FileNotFoundException(
                f"Failed to append to non-existent file {path} for client {req.peer}"
            )
        if node.is_dir:
            raise FileNotFoundException(f"Failed to append to non-file {path}: it is a directory")
        nn.check_not_safemode(f"Cannot append to file{path}")
        nn.perm(path, user, target=WRITE)
        params = {"buffersize": webhdfs.get_long(q, "buffersize", None, 1)}
        return self.redirect(req, nn.choose_datanode(op, path, req.peer), op, path, params)

    def open(self, req, op, path, q, user) -> Response:
        nn = self.nn
        offset = webhdfs.get_long(q, "offset", 0, 0)
        length = webhdfs.get_long(q, "length", None, 0)
        nn.perm(path, user, target=READ)
        f = nn.ns.get(path)
        if not isinstance(f, INodeFile):
            raise FileNotFoundException(f"Path is not a file: {path}")
        if offset > f.length:
            raise IOException(
                f"Offset={offset} out of the range [0, {f.length}); OPEN, path={path}"
            )
        params = {
            "offset": offset,
            "length": length,
            "buffersize": webhdfs.get_long(q, "buffersize", None, 1),
        }
        d = nn.choose_datanode(op, path, req.peer, offset)
        return self.redirect(req, d, op, path, params)

    def file_checksum(self, req, op, path, q, user) -> Response:
        nn = self.nn
        nn.perm(path, user, target=READ)
        if not isinstance(nn.ns.get(path), INodeFile):
            raise FileNotFoundException(f"Path is not a file: {path}")
        return self.redirect(req, nn.choose_datanode(op, path, req.peer), op, path, {})
