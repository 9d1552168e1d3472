"""The standalone server: one asyncio loop owning the tree, the request pipeline, the
transaction log and the sessions.

Pipeline (ZooKeeper's Prep -> Sync -> Final processors, in one thread):
  * a write is validated at once against the tree plus outstanding changes and
    becomes a txn with the next zxid; it joins the ordered queue and the log batch;
  * at the next turn of the event loop the batch is written and fsynced (one fsync
    for every txn that arrived meanwhile: group commit, as Apache's
    SyncRequestProcessor), then the queue drains in order: each txn is applied, its
    watches fire, its reply is sent. Requests that arrive during an fsync join the
    next batch;
  * a read runs immediately unless its own connection still has requests in the
    queue, in which case it waits there behind them (replies in request order);
  * replies leave through the Outbox: what one piece of work produced for a
    connection goes in one write, at the end of that work.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections import deque

from . import acl as acls
from .adminserver import AdminServer
from .config import Config
from .connection import ClientConnection
from .containers import ContainerManager
from .datatree import CONFIG_NODE, DataTree
from .outbox import Outbox
from .persistence import TxnLog, deserialize_tree, serialize_tree
from .prep import Preparer
from .proto import ConnectRequest, Err, Op, Perms, ZKError
from .sessions import Session, SessionIds, password_for
from .txn import CloseSessionTxn, CreateSessionTxn, Txn, TxnHeader

log = logging.getLogger("zookeeper.server")

# An fsync this quick runs on the loop itself: handing it to a worker thread and back
# costs two thread wake-ups, a large share of a synchronous client's write on a fast
# disk. A slower disk gets the worker thread, so reads and pings are not held up
# behind it for longer than this. The disk counts as slow when each of the last
# SYNC_SAMPLES fsyncs on the loop took longer (one slow fsync on a busy machine is
# not a slow disk); while it does, every PROBE_EVERY-th batch is fsynced on the loop
# again, to find out when it is fast again. (The rule before, a moving average that
# the fsyncs done in the thread fed too, measured their wait to be scheduled and to
# get the GIL back as well, and on a busy machine kept the server in thread mode:
# standalone sets had a p90 of 3.5 to 4.1 ms in the benchmark, 0.58 ms with this.)
INLINE_SYNC_S = 0.002
SYNC_SAMPLES = 3
PROBE_EVERY = 8


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Entry:
    """One request waiting in a connection-ordered queue. A write is pending until
    its transaction commits (locally or, in an ensemble, through the leader)."""

    __slots__ = (
        "conn",
        "xid",
        "op",
        "req",
        "zxid",
        "err",
        "callback",
        "start",
        "pending",
        "result",
    )

    def __init__(self, conn, xid, op, req=None, pending=False, err=0, callback=None):
        self.conn = conn
        self.xid = xid
        self.op = op
        self.req = req
        self.zxid = 0
        self.err = err
        self.callback = callback
        self.start = time.perf_counter()
        self.pending = pending
        self.result = None


class ZooKeeperServer:
    VERSION = "3.8.0-racklab"

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.tree = DataTree()
        self.preparer = Preparer(
            self.tree, cfg.jute_maxbuffer, cfg.extended_types, cfg.enforce_quota
        )
        self.txnlog = TxnLog(cfg.log_dir, cfg.prealloc_kb * 1024, cfg.force_sync)
        self.sessions: dict[int, Session] = {}
        self.session_ids = SessionIds(cfg.myid)
        self.queue: deque[Entry] = deque()
        self.waiting: dict[tuple[int, int], list[Entry]] = {}
        self.to_log: list[Txn] = []
        self._log_handle: asyncio.Handle | None = None
        self._syncing = False  # an fsync is running in the worker thread
        self._snapshotting = False
        self.outbox = Outbox()
        self.next_zxid = 1
        self.connections: set[ClientConnection] = set()
        self.connections_per_ip: dict[str, int] = {}
        self.packets_received = 0
        self.packets_sent = 0
        self.latency = [0.0, 0.0, 0]  # min/max/count in ms, plus a running total below
        self.latency_total = 0.0
        self.txns_since_snapshot = 0
        self.recent_syncs: deque[float] = deque([0.0] * SYNC_SAMPLES, maxlen=SYNC_SAMPLES)
        self._thread_batches = 0
        self.snap_threshold = self._next_snap_threshold()
        self.started = time.time()
        self._tasks: list[asyncio.Task] = []
        self._server: asyncio.AbstractServer | None = None
        self.listening: tuple[str, int] | None = None  # the client address, as configured
        self.admin: AdminServer | None = None
        self.mode = "standalone"
        self.serving = True
        self.last_logged = 0
        # Bumped whenever in-memory state is thrown away and reloaded from disk (an
        # ensemble member going back to LOOKING), so work begun before is dropped.
        self.generation = 0

    # --- lifecycle ---------------------------------------------------------------

    def recover(self) -> None:
        snap = self.txnlog.load_snapshot()
        if snap is not None:
            blob, zxid = snap
            self.tree = deserialize_tree(blob)
            log.info("loaded snapshot at zxid 0x%x (%d nodes)", zxid, self.tree.node_count())
        replay = self.txnlog.read(self.tree.last_zxid)
        for txn in replay:
            self.tree.apply(txn)
        if replay:
            log.info("replayed %d txns up to zxid 0x%x", len(replay), self.tree.last_zxid)
        self.replayed = len(replay)
        self.preparer = Preparer(
            self.tree, self.cfg.jute_maxbuffer, self.cfg.extended_types, self.cfg.enforce_quota
        )
        self.last_logged = self.tree.last_zxid
        self.next_zxid = self.tree.last_zxid + 1
        # Sessions that were open when we stopped get a full timeout to reconnect.
        self.sessions = {sid: Session(sid, t) for sid, t in self.tree.sessions.items()}
        self.txnlog.roll(self.next_zxid)

    async def start(self) -> None:
        self.recover()
        await self.listen(*self.client_address())
        await self.start_admin()
        self._tasks = [
            asyncio.create_task(self._expiry_loop(), name="zk-expiry"),
            asyncio.create_task(self.container_manager().run(), name="zk-containers"),
        ]
        if self.replayed:
            # As Apache's ZooKeeperServer.loadData, a standalone server snapshots what
            # it loaded: the next start reads the tree from that snapshot (so, as
            # Apache's, with each node's children in a HashSet sized for what is left).
            # recover() has rolled the log past it already.
            self._snapshotting = True
            blob = serialize_tree(self.tree)
            self._tasks.append(
                asyncio.create_task(self._save_snapshot(blob, self.tree.last_zxid), name="zk-snap")
            )
        log.info(
            "serving on %s:%d (dataDir %s, zxid 0x%x)",
            self.cfg.client_port_address,
            self.port,
            self.cfg.data_dir,
            self.tree.last_zxid,
        )

    def client_address(self) -> tuple[str, int]:
        """Where this server takes clients (zoo.cfg's clientPortAddress:clientPort)."""
        return self.cfg.client_port_address, self.cfg.client_port

    async def start_admin(self) -> None:
        """The AdminServer's HTTP port (adminserver.py), where zoo.cfg enables it."""
        self.admin = AdminServer(self)
        await self.admin.start()

    async def listen(self, host: str, port: int) -> None:
        self._server = await asyncio.get_running_loop().create_server(
            lambda: ClientConnection(self), host, port, reuse_address=True, backlog=1024
        )
        self.listening = (host, port)

    @property
    def port(self) -> int:
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self.admin is not None:
            await self.admin.stop()
        for c in list(self.connections):
            c.close()
        if self._log_handle is not None:
            self._log_handle.cancel()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self.txnlog.close()

    # --- connections and sessions -------------------------------------------------------

    def connection_closed(self, conn: ClientConnection) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            ip = conn.peer[0]
            left = self.connections_per_ip.get(ip, 1) - 1
            if left > 0:
                self.connections_per_ip[ip] = left
            else:
                self.connections_per_ip.pop(ip, None)
        self.tree.remove_watcher(conn)
        s = conn.session
        if s is not None and s.conn is conn:
            s.conn = None

    def negotiate_timeout(self, requested: int) -> int:
        return max(self.cfg.min_timeout, min(self.cfg.max_timeout, requested))

    def connect(self, conn: ClientConnection, req: ConnectRequest) -> None:
        if self.refuse_newer_client(conn, req):
            return
        if req.sessionId == 0:
            self.new_session(conn, req)
            return
        session = self.sessions.get(req.sessionId)
        if session is None or session.closing or req.passwd != password_for(req.sessionId):
            conn.finish_connect(None, 0)
            return
        old = session.conn
        session.conn = conn
        session.touch()
        if old is not None and old is not conn:
            old.close()
        conn.finish_connect(session, session.timeout)

    def refuse_newer_client(self, conn: ClientConnection, req: ConnectRequest) -> bool:
        """A client that saw a newer state than ours (another server's) goes elsewhere."""
        if req.lastZxidSeen <= self.tree.last_zxid:
            return False
        log.info(
            "%s has seen zxid 0x%x, ours is 0x%x; refusing",
            conn.peer,
            req.lastZxidSeen,
            self.tree.last_zxid,
        )
        conn.close()
        return True

    def new_session(self, conn: ClientConnection, req: ConnectRequest) -> None:
        """A session exists once its createSession txn commits; the client hears then."""
        timeout = self.negotiate_timeout(req.timeOut)
        sid = self.session_ids.new()
        session = Session(sid, timeout)
        self.sessions[sid] = session
        session.conn = conn

        def done(_result, conn=conn, session=session):
            conn.finish_connect(session, session.timeout)

        self.submit_create_session(sid, timeout, done)

    def submit_create_session(self, sid: int, timeout: int, done) -> None:
        self.submit_txn(Op.CREATE_SESSION, CreateSessionTxn(timeout), sid, 0, done)

    async def _expiry_loop(self) -> None:
        interval = max(0.05, self.cfg.tick_time / 2000.0)
        while True:
            await asyncio.sleep(interval)
            self.expire_sessions()

    def container_manager(self) -> ContainerManager:
        return ContainerManager(
            self,
            self.cfg.container_check_interval,
            self.cfg.container_max_per_minute,
            self.cfg.container_max_never_used,
        )

    def delete_container(self, path: str) -> bool:
        """Propose the delete of a container or expired TTL node (Apache's
        deleteContainer request); False if it no longer qualifies."""
        try:
            t_op, body = self.preparer.delete_container(path, self.next_zxid)
        except ZKError:
            return False  # a child is on its way, or it is already going
        self.propose(self.make_txn(t_op, body, 0, 0))
        return True

    def may_originate_txns(self) -> bool:
        """Only a standalone server or an ensemble's serving leader starts txns itself."""
        return self.serving

    def expire_sessions(self) -> None:
        now = time.monotonic()
        for s in list(self.sessions.values()):
            if not s.closing and s.expires < now:
                log.info("session 0x%x expired (timeout %d ms)", s.id & (2**64 - 1), s.timeout)
                self.close_session(s)

    def close_session(self, s: Session, conn=None, xid=0) -> None:
        s.closing = True
        if s.conn is not None and s.conn is not conn:
            s.conn.close()

        # The committed txn removes the session and its ephemerals everywhere.
        self.submit_txn(Op.CLOSE_SESSION, CloseSessionTxn(), s.id, xid, None, conn)

    # --- the pipeline ----------------------------------------------------------------------

    def allocate_zxid(self) -> int:
        z = self.next_zxid
        self.next_zxid += 1
        return z

    def make_txn(self, op, body, session_id, xid) -> Txn:
        return Txn(TxnHeader(session_id, xid, self.allocate_zxid(), now_ms(), op), body)

    def wait_for_commit(self, session_id, xid, entry: Entry) -> None:
        """Queue entry until the txn of (session, xid) commits."""
        # A list per (session, xid): a client may reuse an xid, and its requests still
        # commit in order, so the oldest waiting entry is the one a commit answers (a
        # single slot let a repeat xid orphan the first entry and stall every queue).
        self.waiting.setdefault((session_id, xid), []).append(entry)
        if entry.conn is not None:
            entry.conn.track(1)
        self.queue.append(entry)

    def submit_txn(self, op, body, session_id, xid, callback=None, conn=None) -> Entry:
        """A txn the server itself originates (session create/close)."""
        entry = Entry(conn, xid, op, pending=True, callback=callback)
        self.wait_for_commit(session_id, xid, entry)
        self.propose(self.make_txn(op, body, session_id, xid))
        return entry

    def submit_write(self, conn: ClientConnection, xid: int, op: int, req) -> None:
        session = conn.session
        if op == Op.CLOSE_SESSION:
            self.close_session(session, conn, xid)
            return
        if session.closing:
            self._reply_error(conn, xid, op, Err.SESSION_EXPIRED)
            return
        try:
            t_op, body = self.prepare(op, req, session.id, conn.auth)
        except ZKError as e:
            self._reply_error(conn, xid, op, e.code)
            return
        self.wait_for_commit(session.id, xid, Entry(conn, xid, op, req, pending=True))
        self.propose(self.make_txn(t_op, body, session.id, xid))

    def prepare(self, op: int, req, session_id: int, auth) -> tuple[int, object]:
        """A write request as (txn type, txn body), or ZKError."""
        if op == Op.RECONFIG:
            return op, self.prepare_reconfig(req, auth)
        return self.preparer.prepare(op, req, session_id, auth, self.next_zxid)

    def prepare_reconfig(self, req, auth):
        # Apache's order: disabled, then the ACL of /zookeeper/config, then a
        # standalone server cannot change its membership.
        self.check_reconfig_allowed(auth)
        raise ZKError(Err.UNIMPLEMENTED)

    def check_reconfig_allowed(self, auth) -> None:
        if not self.cfg.reconfig_enabled:
            raise ZKError(Err.RECONFIG_DISABLED)
        acls.check(self.tree.get(CONFIG_NODE).acl, Perms.WRITE, auth)

    def submit_sync(self, conn: ClientConnection, xid: int, req) -> None:
        # Standalone: everything acknowledged is applied, so sync is an ordered read.
        conn.ordered(xid, Op.SYNC, req)

    def propose(self, txn: Txn) -> None:
        """Standalone: the txn commits once it is in the log on disk."""
        self.to_log.append(txn)
        self.log_soon()

    def _reply_error(self, conn, xid, op, code) -> None:
        # The error may come from a change still in flight (NodeExists for a create
        # not yet applied); replying before that change is visible would let this
        # client read a state older than the one its error revealed. So an error
        # waits behind every request already queued.
        if not self.queue:
            conn.send_reply(xid, self.tree.last_zxid, code)
        else:
            conn.track(1)
            self.queue.append(Entry(conn, xid, op, err=code))

    def enqueue_read(self, conn, xid, op, req) -> None:
        conn.track(1)
        self.queue.append(Entry(conn, xid, op, req))

    # --- the log: group commit ------------------------------------------------------------

    def log_soon(self) -> None:
        """Log what is queued at the next turn of the loop: every txn proposed in this
        turn (from any connection) shares one write and one fsync."""
        if self._log_handle is None:
            self._log_handle = asyncio.get_running_loop().call_soon(self.log_now)

    def log_now(self) -> None:
        """Write and fsync everything queued, then acknowledge it (on_durable). A
        batch queued while a slow fsync runs in the worker thread goes when it ends."""
        if self._log_handle is not None:
            self._log_handle.cancel()
            self._log_handle = None
        if self._syncing or not self.to_log:
            return
        batch, self.to_log = self.to_log, []
        generation = self.generation
        try:
            self.txnlog.write(batch)
            self.last_logged = batch[-1].zxid
            if not self.sync_on_loop():
                self._syncing = True
                fut = asyncio.get_running_loop().run_in_executor(None, self.txnlog.sync)
                fut.add_done_callback(lambda f: self._synced(f, batch, generation))
                return
            self._timed_sync()
        except (OSError, ValueError) as e:
            self._log_failed(e, generation)
            return
        self._durable(batch, generation)

    def sync_on_loop(self) -> bool:
        """Whether the next fsync runs on the loop (see INLINE_SYNC_S)."""
        if min(self.recent_syncs) < INLINE_SYNC_S:
            return True
        self._thread_batches += 1
        if self._thread_batches >= PROBE_EVERY:
            self._thread_batches = 0
            return True
        return False

    def _timed_sync(self) -> None:
        """fsync on the loop, timed."""
        t = time.perf_counter()
        self.txnlog.sync()
        self.recent_syncs.append(time.perf_counter() - t)

    def _synced(self, fut: asyncio.Future, batch: list[Txn], generation: int) -> None:
        self._syncing = False
        e = fut.exception()
        if e is not None:
            self._log_failed(e, generation)
            return
        self._durable(batch, generation)
        if self.to_log:
            self.log_now()

    def _log_failed(self, e: Exception, generation: int) -> None:
        if generation != self.generation:
            return  # the log was closed under us by a reload: the batch is void
        # The log cannot be written: acknowledging anything more would be a lie.
        # Exit, as ZooKeeper's critical threads do, so the ensemble (or the
        # operator) notices at once.
        log.critical("transaction log write failed: %s; exiting", e)
        os._exit(1)

    def _durable(self, batch: list[Txn], generation: int) -> None:
        if generation != self.generation:
            return  # state was reloaded from disk meanwhile; nothing to ack
        self.txns_since_snapshot += len(batch)
        self.on_durable(batch)
        self.outbox.flush()
        if self.txns_since_snapshot >= self.snap_threshold and not self._snapshotting:
            self.snapshot()

    async def sync_log(self) -> None:
        """fsync what has been written, off the loop if the disk is slow (used where
        the caller must wait for it, as a follower taking a DIFF)."""
        if self.sync_on_loop():
            self._timed_sync()
        else:
            await asyncio.to_thread(self.txnlog.sync)

    def on_durable(self, batch: list[Txn]) -> None:
        for txn in batch:
            self.commit(txn)
        self.drain()

    def commit(self, txn: Txn):
        """Apply a committed txn; the request that asked for it (if here) gets its result."""
        result = self.tree.apply(txn)
        self.preparer.applied(txn.zxid)
        hdr = txn.hdr
        if hdr.type == Op.CREATE_SESSION and hdr.clientId not in self.sessions:
            self.sessions[hdr.clientId] = Session(hdr.clientId, txn.body.timeOut)
        elif hdr.type == Op.CLOSE_SESSION:
            gone = self.sessions.pop(hdr.clientId, None)
            if (
                gone is not None
                and gone.conn is not None
                and (hdr.clientId, hdr.cxid) not in self.waiting
            ):
                gone.conn.close()  # closed elsewhere (expiry decided by the leader)
        entry = self.claim_waiting((hdr.clientId, hdr.cxid))
        if entry is not None:
            entry.result = result
            entry.zxid = txn.zxid
            entry.pending = False
        return result

    def claim_waiting(self, key: tuple[int, int], entry: Entry | None = None) -> Entry | None:
        """Take `entry` (or the oldest entry) waiting for the txn of key; None if none."""
        entries = self.waiting.get(key)
        if not entries:
            return None
        if entry is None:
            entry = entries.pop(0)
        elif entry in entries:
            entries.remove(entry)
        else:
            return None
        if not entries:
            del self.waiting[key]
        return entry

    def drain(self) -> None:
        queue = self.queue
        while queue and not queue[0].pending:
            self.execute(queue.popleft())

    def execute(self, e: Entry) -> None:
        conn = e.conn
        if e.callback is not None:
            e.callback(e.result)
        elif e.result is not None:
            if conn is not None:
                conn.reply_write(e, e.result)
        elif e.err:
            conn.send_reply(e.xid, self.tree.last_zxid, e.err)
        elif conn is not None:
            conn.run_read(e.xid, e.op, e.req)
        if conn is not None:
            conn.track(-1)
            self._record_latency((time.perf_counter() - e.start) * 1000.0)

    def _record_latency(self, ms: float) -> None:
        lat = self.latency
        if lat[2] == 0 or ms < lat[0]:
            lat[0] = ms
        if ms > lat[1]:
            lat[1] = ms
        lat[2] += 1
        self.latency_total += ms

    # --- snapshots -------------------------------------------------------------------------

    def _next_snap_threshold(self) -> int:
        # ZooKeeper randomises the point so an ensemble's members do not snapshot together.
        half = max(1, self.cfg.snap_count // 2)
        return half + random.randint(0, half)

    def snapshot(self) -> None:
        """Take the tree's state now and roll the log; the file is written by a task.
        Called only between fsyncs (never while one runs in the worker thread), as
        rolling closes the log file."""
        self._snapshotting = True
        zxid = self.tree.last_zxid
        blob = serialize_tree(self.tree)
        # The next log starts after everything already logged, which in an ensemble
        # can run ahead of the tree (proposals logged, not yet committed). Writes go
        # on while the snapshot is saved: they land in the new log.
        self.txnlog.roll(max(zxid, self.last_logged) + 1)
        self.txns_since_snapshot = 0
        self.snap_threshold = self._next_snap_threshold()
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.create_task(self._save_snapshot(blob, zxid), name="zk-snap"))

    async def _save_snapshot(self, blob: bytes, zxid: int) -> None:
        try:
            path = await asyncio.to_thread(self.txnlog.save_snapshot, blob, zxid)
            log.info(
                "snapshot at zxid 0x%x: %s (%d bytes)", zxid, os.path.basename(path), len(blob)
            )
            await asyncio.to_thread(self.txnlog.purge, self.cfg.snap_retain_count)
        finally:
            self._snapshotting = False

    # --- facts for four-letter words and status -------------------------------------------

    def outstanding_requests(self) -> int:
        return len(self.queue)

    def processed_zxid(self) -> int:
        """The last zxid applied, as srvr's Zxid and the admin server show it."""
        return self.tree.last_zxid


__all__ = ["ZooKeeperServer", "Entry"]
