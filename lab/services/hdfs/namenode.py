"""The NameNode: namespace + edit log + block manager, WebHDFS on its HTTP address, the
daemon RPC on the fs.defaultFS address, image transfer for the secondary, /jmx and /fsck."""

from __future__ import annotations

import asyncio
import getpass
import grp
import logging
import pwd
import time

from ..hadoop import errors, http
from ..hadoop.conf import split_hostport
from ..hadoop.errors import (
    FileAlreadyExistsException,
    FileNotFoundException,
    HadoopException,
    IllegalArgumentException,
    IOException,
    SnapshotException,
)
from ..hadoop.http import BadRequest, Request, Response, serve
from ..hadoop.ipc.server import IpcServer
from ..hadoop.ipc.sniff import serve_sniffing
from . import quota, snapshot, webhdfs
from .acl import ACLS_KEY, INHERITANCE_KEY
from .blockmanager import BlockInfo, BlockManager
from .config import Configuration
from .leasemanager import LeaseManager
from .leaserecovery import LeaseRecovery
from .namespace import (
    EXECUTE,
    READ,
    WRITE,
    Block,
    INodeFile,
    Namespace,
    normalize,
    now_ms,
    split_path,
)
from .nn_acls import AclOps
from .nn_clientprotocol import PROTOCOL as CLIENT_PROTOCOL
from .nn_clientprotocol import ClientNamenodeProtocol
from .nn_imageservlet import ImageServlet
from .nn_reads import NamespaceReads
from .nn_rpc import NameNodeRpcServer
from .nn_snapshots import SnapshotOps
from .nn_status import StatusPages
from .nn_webhdfs import NamenodeWebHdfsMethods
from .safemode import SafeMode
from .storage import EditLog, NNStorage
from .trash import TrashEmptier

log = logging.getLogger("hdfs.namenode")


_groups_cache: dict[str, list[str]] = {}


def user_groups(user: str) -> list[str]:
    """ShellBasedUnixGroupsMapping, read from the NameNode host's user database."""
    if user not in _groups_cache:
        if len(_groups_cache) > 4096:  # a bounded cache, as Hadoop's Groups expires entries
            _groups_cache.clear()
        groups = []
        try:
            pw = pwd.getpwnam(user)
            groups.append(grp.getgrgid(pw.pw_gid).gr_name)
        except (KeyError, ValueError):  # no such user, or a name no user database holds (NUL)
            pass
        groups += [
            g.gr_name for g in grp.getgrall() if user in g.gr_mem and g.gr_name not in groups
        ]
        _groups_cache[user] = groups
    return _groups_cache[user]


def _common_ancestor(a, b):
    """The deepest directory both are under (or are)."""
    seen = set()
    while a is not None:
        seen.add(id(a))
        a = a.parent
    while b is not None and id(b) not in seen:
        b = b.parent
    return b


class NameNode(SafeMode, LeaseManager, NamespaceReads, AclOps, SnapshotOps):
    """The namespace and its logged changes, start-up from the image and edits, the
    monitor, and the front doors over them; safe mode (safemode.py), leases
    (leasemanager.py), reads (nn_reads.py), ACLs (nn_acls.py) and snapshots
    (nn_snapshots.py) are its mixins."""

    def __init__(self, conf: Configuration) -> None:
        self.conf = conf
        self.superuser = getpass.getuser()
        self.supergroup = conf.get("dfs.permissions.superusergroup")
        self.ns = Namespace(
            self.superuser, self.supergroup, conf.get_bool("dfs.permissions.enabled")
        )
        self.acls_enabled = conf.get_bool(ACLS_KEY)
        self.ns.acl_inheritance = conf.get_bool(INHERITANCE_KEY)
        self.bm = BlockManager(conf, conf.rack_table())
        self.storage = NNStorage(conf.name_dir())
        self.editlog: EditLog | None = None
        self.umask = int(conf.get("fs.permissions.umask-mode"), 8)
        self.default_replication = conf.get_int("dfs.replication")
        self.max_replication = conf.get_int("dfs.replication.max")
        self.default_blocksize = conf.get_size("dfs.blocksize")
        self.min_blocksize = conf.get_size("dfs.namenode.fs-limits.min-block-size", 1048576)
        self.bpc = conf.get_int("dfs.bytes-per-checksum")
        self.safemode_pct = conf.get_float("dfs.namenode.safemode.threshold-pct")
        self.safemode_extension = conf.get_seconds("dfs.namenode.safemode.extension", "ms")
        self.safemode_min_dn = conf.get_int("dfs.namenode.safemode.min.datanodes")
        self.safemode_on = True
        self.safemode_reached: float | None = None
        self.safemode_manual = False
        self.started = time.monotonic()
        self.version: dict = {}
        self.servers: list[asyncio.AbstractServer] = []
        self.tasks: list[asyncio.Task] = []
        self.http_address = ("", 0)
        self.rpc_address = ("", 0)
        self.last_checkpoint_time = time.time()
        self.leases: dict[int, dict] = {}  # inode id of a file under construction -> lease
        self.lease_recovery = LeaseRecovery(self)
        self.trash = TrashEmptier(self)
        # dfs.namenode.lease-hard-limit-sec (Hadoop 3.3+, 20 min; a fixed hour before): a
        # writer silent that long loses the file, which lease recovery closes with what its
        # replicas hold.
        self.lease_hard_limit = conf.get_seconds("dfs.namenode.lease-hard-limit-sec", "s")
        # A writer silent past the soft limit loses the file to another client's create or
        # append, which recovers the lease first (leaserecovery.recover_lease_internal).
        self.lease_soft_limit = conf.get_seconds("racklab.namenode.lease-soft-limit-sec", "s")
        # The front doors, each over this namespace (as Hadoop's NameNode holds its
        # NameNodeRpcServer and HTTP servlets over one FSNamesystem).
        self.webhdfs = NamenodeWebHdfsMethods(self)
        self.rpc = NameNodeRpcServer(self)
        # Hadoop IPC for native clients, on the same address as the daemon RPC.
        self.ipc = IpcServer.configured(conf, {CLIENT_PROTOCOL: ClientNamenodeProtocol(self)})
        self.image_servlet = ImageServlet(self)
        self.status = StatusPages(self)

    # ------------------------------------------------------------ start-up
    def load(self) -> None:
        if not self.storage.is_formatted():
            log.info("formatting %s", self.storage.root)
            self.version = self.storage.format(self.ns.to_image())
        self.version = self.storage.read_version()
        image_txid, ops, last = self._load_newest_good_image()
        log.info("loaded fsimage txid %d and %d edits up to txid %d", image_txid, len(ops), last)
        self.image_txid = image_txid
        for f in self.ns.walk_files():
            self.bm.add_file_blocks(f)
            if f.client_name:  # its writer may be gone: the hard limit applies from now
                self.leases[f.inode_id] = {"renewed": time.monotonic(), "beforeAppend": None}
        self._register_snapshot_blocks()
        self.editlog = EditLog(self.storage, last)
        self.editlog.open_segment()
        self.storage.write_seen_txid(self.editlog.last_txid)

    def _load_newest_good_image(self) -> tuple[int, list[dict], int]:
        """FSImage.loadFSImage: the newest image that loads, then every edit after it. An
        image that does not load is set aside and the next older one tried, as Hadoop does;
        the edits since that one are still there (dfs.namenode.num.checkpoints.retained)."""
        problems = []
        for image_txid in reversed(self.storage.images()):
            self.ns = Namespace(self.superuser, self.supergroup, self.ns.permissions)
            try:
                self.ns.load_image(self.storage.read_image(image_txid))
            except ValueError as exc:
                log.error(
                    "Failed to load image for txid %d: %s; trying an older one", image_txid, exc
                )
                problems.append(str(exc))
                self.storage.set_aside(image_txid)
                continue
            ops = self.storage.read_ops(image_txid)
            last = image_txid
            for op in ops:
                if op["txid"] != last + 1:
                    raise RuntimeError(
                        f"edit log gap: expected txid {last + 1}, found {op['txid']}"
                    )
                self.ns.apply(op)
                last = op["txid"]
            return image_txid, ops, last
        raise RuntimeError(
            f"Failed to load an FSImage file from {self.storage.current}: {'; '.join(problems)}"
        )

    async def start(self) -> None:
        self.load()
        host, port = split_hostport(self.conf.get("dfs.namenode.http-address"), 9870)
        rpc_host, rpc_port = self.conf.namenode_rpc_address()
        # The *-bind-host keys say where to listen; the addresses keep naming the host
        # clients connect to.
        bind_rpc = self.conf.get("dfs.namenode.rpc-bind-host") or rpc_host
        bind_http = self.conf.get("dfs.namenode.http-bind-host") or host
        idle = self.conf.get_seconds("hadoop.http.idle_timeout.ms", "ms")
        http_srv = await serve(bind_http, port, self.handle_http, idle_timeout=idle)
        # One port, two protocols: "hrpc" opens Hadoop IPC, anything else is the HTTP of
        # racklab's daemon RPC (DataNodes, the secondary, the WebHDFS writer).
        rpc_srv = await serve_sniffing(
            bind_rpc,
            rpc_port,
            {b"hrpc": self.ipc.handle},
            http.connection_handler(self.rpc.handle, idle_timeout=idle),
            idle,
        )
        self.servers = [http_srv, rpc_srv]
        self.http_address = (host, http_srv.sockets[0].getsockname()[1])
        self.rpc_address = (rpc_host, rpc_srv.sockets[0].getsockname()[1])
        self.tasks = [asyncio.create_task(self._monitor(), name="nn-monitor")]
        log.info("NameNode up: http %s rpc %s (safe mode ON)", self.http_address, self.rpc_address)

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        for s in self.servers:
            s.close()
        if self.editlog:
            self.editlog.close()

    async def _monitor(self) -> None:
        redundancy_every = self.conf.get_seconds("dfs.namenode.redundancy.interval.seconds", "s")
        last_redundancy = 0.0
        while True:
            await asyncio.sleep(min(0.5, redundancy_every))
            try:
                for d in self.bm.check_heartbeats():
                    log.warning(
                        "DataNode %s (%s) is dead: no heartbeat for %.1fs",
                        d.ip,
                        d.rack,
                        self.bm.expire_interval,
                    )
                if self.safemode_on:
                    self._check_safemode()
                    continue
                self.check_leases()
                self.trash.tick()
                if time.monotonic() - last_redundancy >= redundancy_every:
                    last_redundancy = time.monotonic()
                    n = self.bm.compute_replication_work()
                    if n:
                        log.info("scheduled replication of %d blocks", n)
            except Exception:
                log.exception("monitor pass failed")

    # ------------------------------------------------------------ logged changes
    def log_apply(self, op: dict):
        self._read_only(op)
        self.editlog.log(op)
        return self.ns.apply(op)

    def perm(self, path: str, user: str, **bits) -> None:
        self.ns.check_access(path, user, user_groups(user), **bits)

    def groups_of(self, user: str) -> list[str]:
        return user_groups(user)

    def mkdirs(self, path: str, user: str, mode: int | None, unmasked: int | None = None) -> bool:
        """`unmasked`: the mode the client asked for before its umask, which a directory
        with a default ACL uses instead (HDFS-6962)."""
        path = normalize(path)
        node = self.ns.lookup(path)
        if node is not None:
            if not node.is_dir:
                raise FileAlreadyExistsException(f"Path is not a directory: {path}")
            self.perm(path, user, target=0)
            return True
        self.check_not_safemode(f"Cannot create directory {path}")
        self.perm(path, user, ancestor=WRITE)
        parent, missing = self.ns.parent_for_create(path)
        quota.verify(parent, len(missing), 0)
        ids = [self.ns.last_inode_id + 1 + i for i in range(len(missing))]
        mode = (0o777 & ~self.umask) if mode is None else mode
        op = {
            "op": "OP_MKDIR",
            "path": path,
            "inodeIds": ids,
            "owner": user,
            "group": parent.group,
            "mode": mode,
            "mtime": now_ms(),
        }
        if unmasked is not None:
            op["unmasked"] = unmasked
        self.log_apply(op)
        return True

    def create(
        self,
        path: str,
        user: str,
        client: str,
        overwrite: bool,
        replication: int | None,
        block_size: int | None,
        mode: int | None,
        client_machine: str = "",
        unmasked: int | None = None,
    ) -> dict:
        path = normalize(path)
        self.check_not_safemode(f"Cannot create file{path}")
        replication = self.default_replication if replication is None else replication
        block_size = self.default_blocksize if block_size is None else block_size
        self.verify_replication(path, replication)
        if block_size < self.min_blocksize:
            raise IOException(
                f"Specified block size is less than configured minimum value "
                f"(dfs.namenode.fs-limits.min-block-size): {block_size} < {self.min_blocksize}"
            )
        if block_size % self.bpc:
            raise IOException(
                f"io.bytes.per.checksum({self.bpc}) and blockSize({block_size}) do not match. "
                "blockSize should be a multiple of io.bytes.per.checksum"
            )
        existing = self.ns.check_create(path, True)
        self.perm(path, user, ancestor=WRITE, target=WRITE if existing else 0)
        if existing is not None and not overwrite:
            # FSDirWriteFileOp.startFile: a file still being written whose writer went
            # silent past the soft limit is recovered first (or the caller is told why
            # not), and the create is refused either way. With overwrite it is replaced,
            # whoever writes it, as Hadoop 3 deletes it.
            self.lease_recovery.recover_lease_internal(
                "CREATE_FILE", existing, path, client, client_machine, force=False
            )
            self.ns.check_create(path, overwrite, client_machine)
        parent, missing = self.ns.parent_for_create(path)
        if len(missing) > 1:
            ppath = "/" + "/".join(split_path(path)[:-1])
            self.mkdirs(ppath, user, None)
            parent, missing = self.ns.parent_for_create(path)
        quota.verify(parent, 0 if existing else 1, 0)
        mode = (0o666 & ~self.umask) if mode is None else mode
        op = {
            "op": "OP_ADD",
            "path": path,
            "inodeId": self.ns.last_inode_id + 1,
            "owner": user,
            "group": parent.group,
            "mode": mode,
            "mtime": now_ms(),
            "replication": replication,
            "blockSize": block_size,
            "clientName": client,
            "clientMachine": client_machine,
        }
        if unmasked is not None:
            op["unmasked"] = unmasked
        removed = self.log_apply(op)
        self._release(removed or [])
        self._renew(self.ns.lookup(path))
        return {"fileId": self.ns.last_inode_id}

    def verify_replication(self, path: str, replication: int) -> None:
        if replication < self.bm.min_replication:
            raise IOException(
                f"Requested replication factor of {replication} is less than the required "
                f"minimum of {self.bm.min_replication} for {path}"
            )
        if replication > self.max_replication:
            raise IOException(
                f"Requested replication factor of {replication} exceeds maximum of "
                f"{self.max_replication} for {path}"
            )

    def _commit(self, f: INodeFile, last: dict | None) -> None:
        if last is None or not f.blocks:
            return
        blk = f.blocks[-1]
        if blk.block_id != int(last["blockId"]):
            raise IOException(
                f"Trying to commit block {last['blockId']} but the last block of "
                f"{f.path()} is {blk.name}"
            )
        blk.num_bytes = int(last["numBytes"])
        blk.gen_stamp = int(last.get("genStamp", blk.gen_stamp))

    def add_block(
        self, path: str, client: str, previous: dict | None, exclude: list[str], client_ip: str
    ) -> dict:
        path = normalize(path)
        self.check_not_safemode(f"Cannot add block to {path}")
        f = self._uc_file(path, client)
        self._commit(f, previous)
        quota.verify(f.parent, 0, f.block_size * f.replication)
        writer = self.bm.node_by_ip(client_ip)
        targets = self.bm.choose_target(
            f.replication, writer, [], set(exclude), block_size=f.block_size
        )
        if len(targets) < self.bm.min_replication:
            live = len(self.bm.live_nodes())
            raise IOException(
                f"File {path} could only be written to {len(targets)} of the "
                f"{self.bm.min_replication} minReplication nodes. There are {live} datanode(s) "
                f"running and {len(exclude)} node(s) are excluded in this operation."
            )
        blk = Block(self.ns.last_block_id + 1, self.ns.gen_stamp + 1, 0)
        blocks = [b.to_json() for b in f.blocks] + [blk.to_json()]
        self.log_apply({"op": "OP_ADD_BLOCK", "path": path, "blocks": blocks})
        self.bm.add_file_blocks(f)
        for info in self._infos(f)[:-1]:
            info.complete = True
            self.bm.update_needed(info)
        self.bm.blocks[blk.block_id].expected_uc = [t.uuid for t in targets]
        return {
            "block": blk.to_json(),
            "offset": f.length,
            "locations": [t.info() for t in targets],
        }

    def fsync(self, path: str, client: str, last_block_length: int) -> None:
        """FSNamesystem.fsync (a writer's hsync): the lease checked and renewed, and, when
        the writer says how long its last block now is, that length recorded and logged
        (persistBlocks), so getFileInfo and getBlockLocations show readers those bytes
        while the block is still being written."""
        f = self._uc_file(path, client)
        if last_block_length > 0 and f.blocks:
            blocks = [b.to_json() for b in f.blocks]
            blocks[-1]["numBytes"] = last_block_length
            self.log_apply({"op": "OP_UPDATE_BLOCKS", "path": f.path(), "blocks": blocks})
            self.bm.add_file_blocks(f)

    def abandon_block(self, path: str, client: str, block: dict) -> None:
        f = self._uc_file(normalize(path), client)
        if f.blocks and f.blocks[-1].block_id == int(block["blockId"]):
            removed = f.blocks[-1]
            self.log_apply(
                {
                    "op": "OP_UPDATE_BLOCKS",
                    "path": f.path(),
                    "blocks": [b.to_json() for b in f.blocks[:-1]],
                }
            )
            self._release([removed])

    def complete(self, path: str, client: str, last: dict | None) -> bool:
        path = normalize(path)
        f = self._uc_file(path, client)
        self._commit(f, last)
        infos = self._infos(f)
        if infos and len(self.bm.live_replicas(infos[-1])) < self.bm.min_replication:
            return False  # DataNodes have not reported the last block yet: the client retries
        self.close_file(f, None)
        return True

    def append(self, path: str, user: str, client: str, client_ip: str) -> dict:
        path = normalize(path)
        self.check_not_safemode(f"Cannot append to file{path}")
        node = self.ns.lookup(path)
        if node is None:
            raise FileNotFoundException(
                f"Failed to append to non-existent file {path} for client {client_ip}"
            )
        if node.is_dir:
            raise FileNotFoundException(f"Path is not a file: {path}")
        self.perm(path, user, target=WRITE)
        # FSDirAppendOp.appendFile: a file still being written is taken over only from a
        # writer silent past the soft limit, once its lease is recovered (at once when its
        # blocks are complete); otherwise the caller is told who holds it.
        self.lease_recovery.recover_lease_internal(
            "APPEND_FILE", node, path, client, client_ip, force=False
        )
        last = node.blocks[-1] if node.blocks else None
        result = {
            "blockSize": node.block_size,
            "fileLength": node.length,
            "replication": node.replication,
            "lastBlock": None,
        }
        op = {"op": "OP_APPEND", "path": path, "clientName": client, "clientMachine": client_ip}
        if last is not None and last.num_bytes < node.block_size:
            info = self.bm.blocks.get(last.block_id)
            live = self.bm.sort_by_distance(client_ip, self.bm.live_replicas(info)) if info else []
            if live:
                old = last.to_json()
                op["newGenStamp"] = self.ns.gen_stamp + 1
                self.log_apply(op)
                self.leases.pop(node.inode_id, None)
                self._renew(node, before_append=old)
                info.complete = False
                result["lastBlock"] = {
                    "block": old,
                    "newGenStamp": op["newGenStamp"],
                    "offset": node.length - last.num_bytes,
                    "locations": [d.info() for d in live],
                }
                return result
        self.log_apply(op)
        self.leases.pop(node.inode_id, None)
        self._renew(node)
        return result

    def _infos(self, f: INodeFile) -> list[BlockInfo]:
        return [self.bm.blocks[b.block_id] for b in f.blocks if b.block_id in self.bm.blocks]

    def rename(self, src: str, dst: str, user: str) -> bool:
        src, dst = normalize(src), normalize(dst)
        self.check_not_safemode(f"Cannot rename {src}")
        checked = self.ns.check_rename(src, dst)
        if checked is None:
            return False
        self.perm(src, user, parent=WRITE)
        self.perm(dst, user, ancestor=WRITE)
        node, new_parent, _ = checked
        names, space = quota.usage(node)
        quota.verify(new_parent, names, space, skip=_common_ancestor(node.parent, new_parent))
        self.log_apply({"op": "OP_RENAME_OLD", "src": src, "dst": dst, "timestamp": now_ms()})
        return True

    def superuser_directory(self, path: str, user: str, safemode: str):
        """-> (path, directory) for an operation only the superuser may do on a directory
        (setQuota, allowSnapshot...): safe mode ("{safemode} {path}"), the superuser
        check, then the directory, in Hadoop's words."""
        path = normalize(path)
        self.check_not_safemode(f"{safemode} {path}")
        groups = user_groups(user)
        if self.ns.permissions and not (user == self.superuser or self.supergroup in groups):
            raise errors.AccessControlException(
                f"Access denied for user {user}. Superuser privilege is required"
            )
        node = self.ns.lookup(path)
        if node is None:
            raise FileNotFoundException(f"Directory does not exist: {path}")
        if not node.is_dir:
            raise FileNotFoundException(f"Path is not a directory: {path}")
        return path, node

    def set_quota(self, path: str, ns_quota: int, ds_quota: int, user: str) -> None:
        """FSNamesystem.setQuota / FSDirAttrOp.unprotectedSetQuota: the superuser's; -1
        clears a quota, QUOTA_DONT_SET leaves it as it is."""
        path, node = self.superuser_directory(path, user, "Cannot set quota on")
        for q in (ns_quota, ds_quota):
            if q < 0 and q not in (quota.QUOTA_DONT_SET, quota.QUOTA_RESET):
                raise IllegalArgumentException(
                    f"Illegal value for nsQuota or ssQuota : {ns_quota} and {ds_quota}"
                )
        if node is self.ns.root and ns_quota == quota.QUOTA_RESET:
            raise IllegalArgumentException("Cannot clear namespace quota on root.")
        ns_quota = node.ns_quota if ns_quota == quota.QUOTA_DONT_SET else ns_quota
        ds_quota = node.ds_quota if ds_quota == quota.QUOTA_DONT_SET else ds_quota
        self.log_apply(
            {"op": "OP_SET_QUOTA", "src": path, "nsQuota": ns_quota, "dsQuota": ds_quota}
        )

    def delete(self, path: str, recursive: bool, user: str) -> bool:
        path = normalize(path)
        self.check_not_safemode(f"Cannot delete {path}")
        node = self.ns.check_delete(path, recursive)
        if node is None:
            return False
        self.perm(
            path,
            user,
            parent=WRITE,
            subtree=READ | WRITE | EXECUTE if node.is_dir and node.children else 0,
        )
        held = snapshot.has_snapshots(node)
        if held is not None:
            raise SnapshotException(
                f"The directory {path} cannot be deleted since {held} is snapshottable and "
                "already has snapshots"
            )
        removed = self.log_apply({"op": "OP_DELETE", "path": path, "timestamp": now_ms()})
        self._release(removed)
        return True

    def set_replication(self, path: str, replication: int, user: str) -> bool:
        path = normalize(path)
        self.check_not_safemode(f"Cannot set replication for {path}")
        self.verify_replication(path, replication)
        node = self.ns.get(path)
        if node.is_dir:
            return False
        self.perm(path, user, target=WRITE)
        self.log_apply({"op": "OP_SET_REPLICATION", "path": path, "replication": replication})
        for info in self._infos(node):
            self.bm.update_needed(info)
        return True

    def set_permission(self, path: str, mode: int, user: str) -> None:
        path = normalize(path)
        self.check_not_safemode(f"Cannot set permission for {path}")
        self.ns.get(path)
        self.ns.check_owner(path, user, user_groups(user))
        self.log_apply({"op": "OP_SET_PERMISSIONS", "src": path, "mode": mode})

    def set_owner(self, path: str, owner: str | None, group: str | None, user: str) -> None:
        path = normalize(path)
        if not owner and not group:
            raise IllegalArgumentException("Both owner and group are empty.")
        self.check_not_safemode(f"Cannot set owner for {path}")
        self.ns.get(path)
        groups = user_groups(user)
        self.ns.check_owner(path, user, groups)
        is_super = user == self.superuser or self.supergroup in groups
        if self.ns.permissions and not is_super:
            if owner and owner != user:
                raise errors.AccessControlException(
                    "User " + user + " is not a super user (non-super user cannot change owner)."
                )
            if group and group not in groups:
                raise errors.AccessControlException(f"User {user} does not belong to {group}")
        self.log_apply({"op": "OP_SET_OWNER", "src": path, "username": owner, "groupname": group})

    def set_times(self, path: str, mtime: int, atime: int, user: str) -> None:
        path = normalize(path)
        self.check_not_safemode(f"Cannot set times {path}")
        self.ns.get(path)
        self.perm(path, user, target=WRITE)
        self.log_apply({"op": "OP_TIMES", "path": path, "mtime": mtime, "atime": atime})

    # ------------------------------------------------------------ HTTP front door
    async def handle_http(self, req: Request) -> Response:
        try:
            if req.path.startswith(webhdfs.PREFIX):
                return await self.webhdfs.handle(req)
            if req.path == "/imagetransfer":
                return await self.image_servlet.handle(req)
            if req.path == "/jmx":
                return Response.json(self.status.jmx(req.query.get("qry")))
            if req.path == "/fsck":
                return self.status.fsck_http(req)
            if req.path in ("/", "/isActive"):
                return Response(200, {"Content-Type": "text/plain"}, b"NameNode is running\n")
            raise FileNotFoundException(f"no such resource {req.path}")
        except HadoopException as exc:
            return Response.json(exc.to_json(), exc.status)
        except (BadRequest, ConnectionError):
            raise  # the server answers these itself, or the client is gone
        except Exception as exc:
            log.exception("internal error on %s %s", req.method, req.target)
            return Response.json(
                {
                    "RemoteException": {
                        "exception": "RuntimeException",
                        "javaClassName": "java.lang.RuntimeException",
                        "message": repr(exc),
                    }
                },
                500,
            )
