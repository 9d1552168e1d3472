"""An ensemble member: leader election, then ZAB-style atomic broadcast.

Leader: learns its followers' accepted epochs, starts epoch max+1, brings each
follower up to date (DIFF of the txns it lacks, TRUNC of txns only it has, or a
whole SNAP), and once a quorum is in sync serves. Every write (its own clients' and
those forwarded by followers) becomes a PROPOSAL; each member logs and fsyncs it and
ACKs; with a quorum of acks the leader sends COMMIT and everyone applies it.
Follower: forwards writes and syncs to the leader, serves reads from its own tree,
replies to its clients when their txn commits.

Any trouble (leader silent for syncLimit ticks, quorum lost) sends the member back
to LOOKING: it drops its clients, reloads its state from its own disk and elects.

The broadcast path runs in data_received callbacks (framelink.FrameLink): a
follower logs every proposal one read brought with one fsync and acks the last; the
leader logs what a turn of the loop proposed with one fsync (server.log_now), and
what each piece of work sends to a peer leaves in one write (outbox.Outbox).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque

from . import reconfig
from .config import Config
from .connection import ClientConnection
from .election import Election
from .framelink import FrameLink
from .jute import JuteError, Reader
from .peerwire import (
    ACK,
    ACKEPOCH,
    COMMIT,
    DIFF,
    FOLLOWERINFO,
    FOLLOWING,
    LEADERINFO,
    LEADING,
    LOGGED,
    LOOKING,
    NEWLEADER,
    PING,
    PROPOSAL,
    REQUEST,
    REVALIDATE,
    SNAP,
    STATE_NAMES,
    SYNC,
    TRUNC,
    UPTODATE,
    frame,
    pack,
)
from .persistence import deserialize_tree, serialize_tree
from .prep import Preparer
from .proto import Err, Id, Op, ZKError, decode_request, encode_request
from .reconfig import CONFIG_NODE
from .server import Entry, ZooKeeperServer, now_ms
from .sessions import Session, password_for
from .txn import CloseSessionTxn, CreateSessionTxn, ErrorTxn, SetDataTxn, Txn

log = logging.getLogger("zookeeper.quorum")

HISTORY_LIMIT = 100_000  # committed txns the leader keeps for DIFFs
# How long a COMMIT to a follower that does not wait for it (none of its clients
# asked for that write) may wait for the next frame to that follower. Its readers
# see the write this much later at most: ZooKeeper promises followers' clients an
# up-to-date view only after sync(), whose reply follows every queued commit.
LAZY_COMMIT_S = 0.005


class StepDown(Exception):
    """Leave the current role and go back to LOOKING."""


class Proposal:
    __slots__ = ("txn", "acks", "data", "origin", "hinted", "new_voters")

    def __init__(self, txn: Txn, origin: int | None = None):
        self.txn = txn
        self.acks: set[int] = set()
        self.data = txn.encode()
        self.origin = origin  # the follower whose client asked for it, if any
        self.hinted = False  # the origin was told LOGGED for it
        # a reconfig commits once a quorum of the old voters and of the new have it
        self.new_voters: set[int] | None = None


class FollowerHandle:
    """The leader's side of one connected follower."""

    def __init__(self, sid, link: FrameLink):
        self.sid = sid
        self.link = link
        self.synced = False  # acked NEWLEADER
        self.forwarding = False  # receives proposals and commits
        self.accepted_epoch = -1
        self.last_zxid = 0

    @property
    def last_heard(self) -> float:
        return self.link.last_heard

    def send(self, data: bytes) -> None:
        self.link.send(data)

    def close(self):
        self.link.close()


class QuorumServer(ZooKeeperServer):
    def __init__(self, cfg: Config):
        super().__init__(cfg)
        self.myid = cfg.myid
        self.voters = reconfig.voters(cfg.servers)
        self.quorum = len(self.voters) // 2 + 1
        self.reconfig_pending = False  # a reconfig is proposed and not committed yet
        self.leaving: str | None = None  # why a committed reconfig ends our role
        self.tick = cfg.tick_time / 1000.0
        self.election = Election(self)
        self.state = LOOKING
        self.mode = "looking"
        self.serving = False
        self.leader_id: int | None = None
        self.accepted_epoch = self._read_epoch("acceptedEpoch")
        self.current_epoch = self._read_epoch("currentEpoch")
        # leader state
        self.followers: dict[int, FollowerHandle] = {}
        self.outstanding: dict[int, Proposal] = {}
        self.unhinted: deque[Proposal] = deque()  # not yet looked at by _hint_origins
        self.history: list[Txn] = []
        self.history_base = 0
        self.pending_syncs: list[tuple[int, object]] = []
        self.epoch = 0
        # follower state
        self.leader_link: FrameLink | None = None
        self.proposed: dict[int, Txn] = {}
        self.durable_zxid = 0  # the highest zxid our own fsync covers
        self.logged_hint = 0  # the highest LOGGED the leader sent us
        self.revalidating: dict[int, list] = {}  # session id -> connections waiting

    # --- epochs on disk (ZooKeeper's acceptedEpoch / currentEpoch files) ---------------

    def _read_epoch(self, name: str) -> int:
        path = os.path.join(self.cfg.data_dir, name)
        try:
            with open(path) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return 0

    def _write_epoch(self, name: str, value: int) -> None:
        path = os.path.join(self.cfg.data_dir, name)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{value}\n")
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)

    # --- lifecycle ----------------------------------------------------------------------

    def recover(self) -> None:
        super().recover()
        self._membership_after_recovery()
        # The txns replayed from the log are the history a leader can DIFF from.
        snap = self.txnlog.load_snapshot()
        self.history_base = snap[1] if snap else 0
        self.history = self.txnlog.read(self.history_base)[-HISTORY_LIMIT:]
        if self.history and len(self.history) == HISTORY_LIMIT:
            self.history_base = self.history[0].zxid - 1

    async def start(self) -> None:
        self.recover()
        loop = asyncio.get_running_loop()
        me = self.cfg.servers[self.myid]
        host = me.client_host or self.cfg.client_port_address
        port = me.client_port or self.cfg.client_port
        self._server = await loop.create_server(
            lambda: ClientConnection(self),
            host,
            port,
            reuse_address=True,
            backlog=1024,
        )
        await self.election.start()
        self._tasks = [
            asyncio.create_task(self._expiry_loop(), name="zk-expiry"),
            asyncio.create_task(self.container_manager().run(), name="zk-containers"),
            asyncio.create_task(self._run(), name="zk-quorum"),
        ]
        log.info(
            "server %d: clients on %s:%d, peers on %s:%d/%d",
            self.myid,
            host,
            port,
            me.host,
            me.peer_port,
            me.election_port,
        )

    async def stop(self) -> None:
        await self.election.stop()
        await super().stop()

    def reload(self) -> None:
        """Forget everything in memory and start again from our own disk."""
        self.serving = False
        self.reconfig_pending = False
        self.leaving = None
        self.generation += 1
        for c in list(self.connections):
            c.close()
        self.txnlog.close()
        self.queue.clear()
        self.waiting.clear()
        self.to_log = []
        self.outstanding.clear()
        self.unhinted.clear()
        self.pending_syncs.clear()
        self.proposed.clear()
        self.durable_zxid = self.logged_hint = 0
        self.revalidating.clear()
        for f in self.followers.values():
            f.close()
        self.followers.clear()
        from .datatree import DataTree

        self.tree = DataTree()
        self.recover()

    async def _run(self) -> None:
        while True:
            self.state = LOOKING
            self.mode = "looking"
            self.serving = False
            self.leader_id = None
            vote = await self.election.look(self.current_epoch, self.last_logged)
            try:
                if vote.leader == self.myid and self.myid not in self.voters:
                    raise StepDown("elected, but not a voting member of the ensemble")
                if vote.leader == self.myid:
                    self.state = LEADING
                    self.mode = "leader"
                    self.election.settled(LEADING, vote)
                    await self.lead()
                else:
                    self.state = FOLLOWING
                    self.mode = "follower"
                    self.leader_id = vote.leader
                    self.election.settled(FOLLOWING, vote)
                    await self.follow(vote.leader)
            except (
                TimeoutError,
                StepDown,
                ConnectionError,
                OSError,
                asyncio.IncompleteReadError,
                JuteError,
            ) as e:
                log.warning("server %d leaves %s: %s", self.myid, self.mode, e or type(e).__name__)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("server %d: unexpected error as %s", self.myid, self.mode)
            self.election.state = LOOKING
            self.reload()
            await asyncio.sleep(0.05)

    # --- sessions -------------------------------------------------------------------------

    def expire_sessions(self) -> None:
        if self.may_originate_txns():
            super().expire_sessions()

    def may_originate_txns(self) -> bool:
        return self.state == LEADING and self.serving

    def connect(self, conn, req) -> None:
        if self.state == LEADING:
            super().connect(conn, req)
            return
        if self.refuse_newer_client(conn, req):
            return
        if req.sessionId == 0:
            self.new_session(conn, req)
            return
        if req.passwd != password_for(req.sessionId):
            conn.finish_connect(None, 0)
            return
        # Sessions are replicated (createSession is a txn), so we usually know it; one
        # created a moment ago may not have reached us yet: then the leader decides
        # (ZooKeeper's REVALIDATE), rather than calling a live session expired.
        timeout = self.tree.sessions.get(req.sessionId)
        if timeout is not None:
            self._resume(conn, req.sessionId, timeout)
            return
        self.revalidating.setdefault(req.sessionId, []).append(conn)
        self._send_leader(frame(REVALIDATE, pack(("long", req.sessionId))))

    def submit_create_session(self, sid: int, timeout: int, done) -> None:
        if self.state == LEADING:
            super().submit_create_session(sid, timeout, done)
            return
        # a follower forwards it to the leader and answers once the commit comes back
        entry = Entry(None, 0, Op.CREATE_SESSION, pending=True, callback=done)
        self.wait_for_commit(sid, 0, entry)
        self._forward(sid, 0, Op.CREATE_SESSION, pack(("int", timeout)), [])

    def _resume(self, conn, sid: int, timeout: int) -> None:
        if timeout <= 0:
            conn.finish_connect(None, 0)
            return
        session = self.sessions.get(sid)
        if session is None:
            session = self.sessions[sid] = Session(sid, timeout)
        old = session.conn
        session.conn = conn
        session.touch()
        if old is not None and old is not conn:
            old.close()
        conn.finish_connect(session, session.timeout)

    # --- the request pipeline, ensemble edition ----------------------------------------------

    def submit_write(self, conn, xid, op, req) -> None:
        if self.state == LEADING:
            super().submit_write(conn, xid, op, req)
            return
        session = conn.session
        self.wait_for_commit(session.id, xid, Entry(conn, xid, op, req, pending=True))
        self._forward(session.id, xid, op, encode_request(op, req), conn.auth)

    def close_session(self, s, conn=None, xid=0) -> None:
        if self.state == LEADING:
            super().close_session(s, conn, xid)
            return
        s.closing = True
        self.wait_for_commit(s.id, xid, Entry(conn, xid, Op.CLOSE_SESSION, pending=True))
        self._forward(s.id, xid, Op.CLOSE_SESSION, b"", [])

    def _reply_error(self, conn, xid, op, code) -> None:
        if self.state != LEADING:
            super()._reply_error(conn, xid, op, code)
            return
        # Errors are txns too in an ensemble, so they reach every member in commit order.
        self.wait_for_commit(conn.session.id, xid, Entry(conn, xid, op, pending=True))
        self.propose(self.make_txn(Op.ERROR, ErrorTxn(code), conn.session.id, xid))

    def submit_sync(self, conn, xid, req) -> None:
        entry = Entry(conn, xid, Op.SYNC, req, pending=True)
        self.wait_for_commit(conn.session.id, xid, entry)
        if self.state == LEADING:
            self._leader_sync(lambda e=entry: self._sync_done(e))
        else:
            self._send_leader(frame(SYNC, pack(("long", conn.session.id), ("int", xid))))

    def _sync_done(self, entry: Entry) -> None:
        self.claim_waiting((entry.conn.session.id if entry.conn.session else 0, entry.xid), entry)
        entry.pending = False
        self.drain()

    def _forward(self, session, cxid, op, body: bytes, auth: list[Id]) -> None:
        fields = [
            ("long", session),
            ("int", cxid),
            ("int", op),
            ("buffer", body),
            ("int", len(auth)),
        ]
        for a in auth:
            fields += [("ustring", a.scheme), ("ustring", a.id)]
        self._send_leader(frame(REQUEST, pack(*fields)))

    def _send_leader(self, data: bytes) -> None:
        if self.leader_link is not None:
            self.leader_link.send(data)

    def propose(self, txn: Txn, origin: int | None = None) -> None:
        if self.state != LEADING:
            raise ZKError(Err.CONNECTION_LOSS)
        p = Proposal(txn, origin)
        if txn.hdr.type == Op.RECONFIG:
            p.new_voters = reconfig.voters(reconfig.parse(txn.body.data)[0])
        self.outstanding[txn.zxid] = p
        self.unhinted.append(p)
        data = frame(PROPOSAL, p.data)
        # The follower whose client waits gets it first (its reply needs the commit
        # soonest), then the others, when the piece of work that proposed ends; our
        # own fsync comes at the next turn of the loop, with everything else proposed
        # in this one. (Measured: holding the others back until after our fsync, so
        # that theirs would not compete with these two for the disk, was slower, as
        # the quorum forms with whichever follower acks first; fsyncing at the end
        # of each follower's read instead of the turn made no difference.)
        first = self.followers.get(origin) if origin is not None else None
        if first is not None and first.forwarding:
            first.send(data)
        for f in self.followers.values():
            if f.forwarding and f is not first:
                f.send(data)
        self.to_log.append(txn)
        self.log_soon()

    def on_durable(self, batch: list[Txn]) -> None:
        last = batch[-1].zxid
        if self.state == LEADING:
            self.ack(self.myid, last)
        elif self.state == FOLLOWING:
            self._send_leader(frame(ACK, pack(("long", last))))
            self.durable_zxid = last
            self._apply_logged()

    # --- membership (reconfig) -------------------------------------------------------------

    def prepare_reconfig(self, req, auth) -> SetDataTxn:
        """The leader's checks of a reconfig, in Apache's order, and its txn: the new
        /zookeeper/config, whose version is the txn's own zxid."""
        self.check_reconfig_allowed(auth)
        if self.reconfig_pending:
            raise ZKError(Err.RECONFIG_IN_PROGRESS)
        if req.curConfigId not in (-1, self.cfg.config_version):
            raise ZKError(Err.BAD_VERSION)
        nxt = reconfig.next_membership(
            self.cfg.servers, req.joiningServers, req.leavingServers, req.newMembers
        )
        # A quorum of the new voters must be with us now, or the change could never
        # commit (Leader.isQuorumSynced).
        new_voters = reconfig.voters(nxt)
        synced = {self.myid} | {sid for sid, f in self.followers.items() if f.synced}
        if len(new_voters & synced) <= len(new_voters) // 2:
            raise ZKError(Err.NEW_CONFIG_NO_QUORUM)
        self.reconfig_pending = True
        return SetDataTxn(CONFIG_NODE, reconfig.render(nxt, self.next_zxid), -1)

    def commit(self, txn: Txn):
        result = super().commit(txn)
        if txn.hdr.type == Op.RECONFIG and not result.err:
            # A follower no longer in the membership goes on following without a vote
            # (srvr still says follower, as Apache's); a leader left out steps down.
            self.reconfig_pending = False
            self.adopt_membership(*reconfig.parse(txn.body.data))
            if self.state == LEADING and self.myid not in self.voters:
                self.leaving = "removed from the ensemble by reconfig"
        return result

    def adopt_membership(self, servers: dict, version: int) -> None:
        changed = version != self.cfg.config_version
        self.cfg.servers = servers
        self.cfg.config_version = version
        self.voters = reconfig.voters(servers)
        self.quorum = len(self.voters) // 2 + 1
        self.election.update(servers)
        if changed and self.cfg.reconfig_enabled:
            reconfig.write_dynamic_file(self.cfg.path, servers, version)

    def _membership_after_recovery(self) -> None:
        """The newest membership we know: a reconfig in our log or snapshot, else
        zoo.cfg's (or its dynamic file's), which /zookeeper/config then shows."""
        node = self.tree.get(CONFIG_NODE)
        servers, version = reconfig.parse(node.data) if node.data else ({}, -1)
        if servers and version >= self.cfg.config_version:
            self.adopt_membership(servers, version)
            return
        self._show_config(self.cfg.config_version)

    def _stamp_first_version(self, epoch: int) -> None:
        """With reconfigEnabled, the zoo.cfg membership (version 0) becomes version
        epoch<<32 once an epoch is established, on the leader and on each follower
        alike (Apache's leader does so at NEWLEADER)."""
        if self.cfg.reconfig_enabled and self.cfg.config_version == 0:
            self.adopt_membership(self.cfg.servers, epoch << 32)
            self._show_config(epoch << 32)

    def _show_config(self, version: int) -> None:
        node = self.tree.get(CONFIG_NODE)
        node.data = reconfig.render(self.cfg.servers, version)
        node.version = -1  # Apache's setData(..., -1, ...) of the config node
        node.mzxid = version
        node.mtime = now_ms()

    def _synced_voters(self) -> int:
        mine = 1 if self.myid in self.voters else 0
        return mine + sum(1 for f in self.followers.values() if f.synced and f.sid in self.voters)

    # --- leader ---------------------------------------------------------------------------

    def ack(self, sid: int, zxid: int) -> None:
        for z, p in self.outstanding.items():
            if z > zxid:
                break
            p.acks.add(sid)
        self._try_commit()

    def _try_commit(self) -> None:
        committed = False
        while self.outstanding:
            z, p = next(iter(self.outstanding.items()))
            if len(p.acks & self.voters) < self.quorum:
                break
            if p.new_voters is not None and len(p.acks & p.new_voters) <= len(p.new_voters) // 2:
                break
            del self.outstanding[z]
            data = frame(COMMIT, pack(("long", z)))
            for f in self.followers.values():
                if not f.forwarding:
                    continue
                if f.sid == p.origin and not p.hinted:
                    f.send(data)
                else:
                    f.link.send_later(data, LAZY_COMMIT_S)
            self.commit(p.txn)
            self._remember(p.txn)
            committed = True
            self._fire_syncs(z)
        if committed:
            self.drain()
        self._hint_origins()

    def _hint_origins(self) -> None:
        """Tell the follower whose client waits for a proposal that a quorum without it
        has logged it (LOGGED): once its own fsync covers the proposal too, a quorum
        has it on disk, so it is committed and the follower applies and replies then,
        without waiting for its ACK to reach us and our COMMIT to come back. Acks
        cover every earlier proposal, so everything up to that zxid is in the same
        state. The COMMIT still follows, lazily."""
        hints: dict[int, int] = {}
        # Acks cover every earlier proposal, so acks only shrink along `unhinted`:
        # each proposal is looked at once, when a quorum less one has logged it.
        todo = self.unhinted
        while todo and len(todo[0].acks & self.voters) >= self.quorum - 1:
            p = todo.popleft()
            if (
                p.origin in self.voters
                and p.origin not in p.acks
                and p.new_voters is None
                and p.txn.zxid in self.outstanding
            ):
                p.hinted = True
                hints[p.origin] = p.txn.zxid
        for sid, z in hints.items():
            f = self.followers.get(sid)
            if f is not None and f.forwarding and f.synced:
                f.send(frame(LOGGED, pack(("long", z))))

    def _remember(self, txn: Txn) -> None:
        self.history.append(txn)
        if len(self.history) > HISTORY_LIMIT:
            drop = len(self.history) - HISTORY_LIMIT
            self.history_base = self.history[drop - 1].zxid
            del self.history[:drop]

    def _leader_sync(self, callback) -> None:
        if self.outstanding:
            self.pending_syncs.append((next(reversed(self.outstanding)), callback))
        else:
            callback()

    def _fire_syncs(self, zxid: int) -> None:
        if not self.pending_syncs:
            return
        keep = []
        for z, cb in self.pending_syncs:
            if z <= zxid:
                cb()
            else:
                keep.append((z, cb))
        self.pending_syncs = keep

    async def lead(self) -> None:
        me = self.cfg.servers[self.myid]
        self.followers = {}
        infos: dict[int, FollowerHandle] = {}
        infos_quorum = asyncio.Event()
        epoch_ready = asyncio.Event()
        established = asyncio.Event()
        self.epoch = 0

        async def on_follower(link: FrameLink):
            f = None
            try:
                t, r = await link.next_frame(self.cfg.init_limit * self.tick)
                if t != FOLLOWERINFO:
                    return
                f = FollowerHandle(r.int(), link)
                f.accepted_epoch, f.last_zxid = r.long(), r.long()
                if f.sid == self.myid:
                    log.warning("leader %d: refusing peer claiming our own id", self.myid)
                    f = None
                    return
                # A server outside the membership (joining, or removed by a reconfig)
                # follows without a vote: its acks and its being in sync count for
                # nothing (self.voters), as Apache's non-voting learners.
                old = self.followers.get(f.sid)
                if old is not None:
                    old.close()
                infos[f.sid] = f
                if len(infos.keys() & self.voters) + 1 >= self.quorum:
                    infos_quorum.set()
                await epoch_ready.wait()
                if f.accepted_epoch > self.epoch:
                    # Someone started a newer epoch than ours: we are not the leader.
                    raise StepDown(
                        f"follower {f.sid} accepted epoch {f.accepted_epoch} > {self.epoch}"
                    )
                f.send(frame(LEADERINFO, pack(("long", self.epoch))))
                t, r = await link.next_frame(self.cfg.init_limit * self.tick)
                if t != ACKEPOCH:
                    return
                r.long()
                f.last_zxid = r.long()
                self.followers[f.sid] = f
                newleader_zxid = self._sync_follower(f)
                await self._serve_follower(f, newleader_zxid, established)
            except (
                TimeoutError,
                asyncio.IncompleteReadError,
                ConnectionError,
                OSError,
                JuteError,
                StepDown,
            ) as e:
                if f is not None:
                    log.info(
                        "leader %d: follower %s gone: %s", self.myid, f.sid, e or type(e).__name__
                    )
            finally:
                if f is not None and self.followers.get(f.sid) is f:
                    del self.followers[f.sid]
                link.close()
                links.discard(link)

        links: set[FrameLink] = set()
        handshakes: set[asyncio.Task] = set()

        def accepted(link: FrameLink) -> None:
            links.add(link)
            task = asyncio.create_task(on_follower(link))
            handshakes.add(task)
            task.add_done_callback(handshakes.discard)

        peer_server = await asyncio.get_running_loop().create_server(
            lambda: FrameLink(self.outbox, accepted), me.host, me.peer_port, reuse_address=True
        )
        try:
            # Phase 1: a quorum reports its accepted epoch; the new one is above all of them.
            try:
                await asyncio.wait_for(infos_quorum.wait(), self.cfg.init_limit * self.tick)
            except TimeoutError:
                raise StepDown("no quorum of followers within initLimit") from None
            self.epoch = max([self.accepted_epoch] + [f.accepted_epoch for f in infos.values()]) + 1
            self.accepted_epoch = self.epoch
            self._write_epoch("acceptedEpoch", self.epoch)
            epoch_ready.set()
            # Phase 2: wait for a quorum to be in sync (NEWLEADER acked).
            deadline = time.monotonic() + self.cfg.init_limit * self.tick
            while self._synced_voters() < self.quorum:
                if time.monotonic() > deadline:
                    raise StepDown("quorum did not sync within initLimit")
                await asyncio.sleep(0.01)
            self.current_epoch = self.epoch
            self._write_epoch("currentEpoch", self.epoch)
            self._stamp_first_version(self.epoch)
            self.next_zxid = (self.epoch << 32) | 1
            # Our own uncommitted tail of the last epoch is part of the history we
            # just synced to a quorum: it is committed now.
            self.preparer = Preparer(
                self.tree, self.cfg.jute_maxbuffer, self.cfg.extended_types, self.cfg.enforce_quota
            )
            self.sessions = {sid: Session(sid, t) for sid, t in self.tree.sessions.items()}
            established.set()
            for f in self.followers.values():
                if f.synced:
                    f.send(frame(UPTODATE))
            self.serving = True
            log.info(
                "server %d leads epoch %d at zxid 0x%x", self.myid, self.epoch, self.tree.last_zxid
            )
            # Phase 3: broadcast. Ping followers; step down without a live quorum.
            while True:
                await asyncio.sleep(self.tick / 2)
                if self.leaving:
                    raise StepDown(self.leaving)
                ping = frame(PING)
                now = time.monotonic()
                limit = self.cfg.sync_limit * self.tick
                for f in list(self.followers.values()):
                    if now - f.last_heard > limit:
                        log.info(
                            "leader %d: follower %d silent for %.1fs; dropping",
                            self.myid,
                            f.sid,
                            now - f.last_heard,
                        )
                        f.close()
                        self.followers.pop(f.sid, None)
                    else:
                        f.send(ping)
                live = self._synced_voters()
                if live < self.quorum:
                    raise StepDown(f"only {live} of {len(self.cfg.servers)} servers in sync")
        finally:
            peer_server.close()
            for f in list(self.followers.values()):
                f.close()
            for link in list(links):
                link.close()

    def _sync_follower(self, f: FollowerHandle) -> int:
        """Bring f up to our committed state, then queue our outstanding proposals to
        it; all in one step of the event loop, so nothing slips in between."""
        last = self.tree.last_zxid
        fz = f.last_zxid
        known = {t.zxid for t in self.history}
        known.add(self.history_base)
        if fz == last:
            f.send(frame(DIFF, pack(("int", 0))))
            how = "empty DIFF"
        elif fz in known:
            txns = [t for t in self.history if t.zxid > fz]
            f.send(frame(DIFF, self._pack_txns(txns)))
            how = f"DIFF of {len(txns)}"
        elif fz > self.history_base:
            # The follower has txns we never committed: cut them off, then DIFF.
            point = max([z for z in known if z < fz], default=self.history_base)
            f.send(frame(TRUNC, pack(("long", point))))
            txns = [t for t in self.history if t.zxid > point]
            f.send(frame(DIFF, self._pack_txns(txns)))
            how = f"TRUNC to 0x{point:x} + DIFF of {len(txns)}"
        else:
            f.send(frame(SNAP, pack(("long", last), ("buffer", serialize_tree(self.tree)))))
            how = "SNAP"
        for p in self.outstanding.values():
            f.send(frame(PROPOSAL, p.data))
        newleader_zxid = next(reversed(self.outstanding)) if self.outstanding else last
        f.send(frame(NEWLEADER, pack(("long", newleader_zxid))))
        f.forwarding = True
        log.info("leader %d: syncing follower %d from 0x%x by %s", self.myid, f.sid, fz, how)
        return newleader_zxid

    @staticmethod
    def _pack_txns(txns: list[Txn]) -> bytes:
        return pack(("int", len(txns)), *[("buffer", t.encode()) for t in txns])

    async def _serve_follower(
        self, f: FollowerHandle, newleader_zxid: int, established: asyncio.Event
    ) -> None:
        def on_frame(t: int, r: Reader) -> None:
            if t == ACK:
                z = r.long()
                if not f.synced and z >= newleader_zxid:
                    f.synced = True
                    if established.is_set():
                        f.send(frame(UPTODATE))
                self.ack(f.sid, z)
            elif t == PING:
                for _ in range(r.int()):
                    s = self.sessions.get(r.long())
                    if s is not None:
                        s.touch()
            elif t == REQUEST:
                self._leader_request(f, r)
            elif t == SYNC:
                session, cxid = r.long(), r.int()
                reply = frame(SYNC, pack(("long", session), ("int", cxid)))
                self._leader_sync(lambda f=f, reply=reply: f.send(reply))
            elif t == REVALIDATE:
                sid = r.long()
                sess = self.sessions.get(sid)
                valid = sess is not None and not sess.closing
                if valid:
                    sess.touch()
                f.send(
                    frame(REVALIDATE, pack(("long", sid), ("int", sess.timeout if valid else 0)))
                )

        f.link.dispatch(on_frame, self.outbox.flush)
        await f.link.watch(max(self.cfg.sync_limit, self.cfg.init_limit) * self.tick)

    def _leader_request(self, f: FollowerHandle, r: Reader) -> None:
        session, cxid, op, body = r.long(), r.int(), r.int(), r.buffer() or b""
        auth = [Id(r.ustring(), r.ustring()) for _ in range(r.int())]
        if not self.serving:
            return
        if op == Op.CREATE_SESSION:
            timeout = Reader(body).int()
            self.sessions[session] = Session(session, timeout)
            self.propose(
                self.make_txn(Op.CREATE_SESSION, CreateSessionTxn(timeout), session, cxid), f.sid
            )
            return
        if op == Op.CLOSE_SESSION:
            s = self.sessions.get(session)
            if s is not None:
                s.closing = True
            self.propose(self.make_txn(Op.CLOSE_SESSION, CloseSessionTxn(), session, cxid), f.sid)
            return
        s = self.sessions.get(session)
        if s is not None:
            s.touch()
        try:
            if s is None or s.closing:
                raise ZKError(Err.SESSION_EXPIRED)
            req = decode_request(op, Reader(body))
            t_op, txn_body = self.prepare(op, req, session, auth)
        except ZKError as e:
            t_op, txn_body = Op.ERROR, ErrorTxn(e.code)
        except JuteError:
            t_op, txn_body = Op.ERROR, ErrorTxn(Err.MARSHALLING_ERROR)
        self.propose(self.make_txn(t_op, txn_body, session, cxid), f.sid)

    # --- follower -----------------------------------------------------------------------------

    async def follow(self, leader: int) -> None:
        peer = self.cfg.servers[leader]
        limit = self.cfg.init_limit * self.tick
        deadline = time.monotonic() + limit
        loop = asyncio.get_running_loop()
        while True:
            try:
                _, link = await asyncio.wait_for(
                    loop.create_connection(
                        lambda: FrameLink(self.outbox), peer.host, peer.peer_port
                    ),
                    1.0,
                )
                break
            except (TimeoutError, OSError):
                if time.monotonic() > deadline:
                    raise StepDown(f"leader {leader} not reachable") from None
                await asyncio.sleep(0.1)
        self.leader_link = link
        try:
            link.send(
                frame(
                    FOLLOWERINFO,
                    pack(
                        ("int", self.myid),
                        ("long", self.accepted_epoch),
                        ("long", self.last_logged),
                    ),
                )
            )
            link.flush()
            t, r = await link.next_frame(limit)
            if t != LEADERINFO:
                raise StepDown(f"expected LEADERINFO, got {t}")
            epoch = r.long()
            if epoch < self.accepted_epoch:
                raise StepDown(f"leader epoch {epoch} below our accepted {self.accepted_epoch}")
            self.accepted_epoch = epoch
            self._write_epoch("acceptedEpoch", epoch)
            link.send(
                frame(ACKEPOCH, pack(("long", self.current_epoch), ("long", self.last_logged)))
            )
            link.flush()
            await self._follower_sync(link, epoch, limit)
            log.info(
                "server %d follows %d in epoch %d at zxid 0x%x",
                self.myid,
                leader,
                epoch,
                self.tree.last_zxid,
            )
            await self._follower_loop(link)
        finally:
            self.leader_link = None
            link.close()

    async def _follower_sync(self, link: FrameLink, epoch: int, limit: float) -> None:
        while True:
            t, r = await link.next_frame(limit)
            if t == DIFF:
                txns = [Txn.decode(r.buffer()) for _ in range(r.int())]
                txns = [x for x in txns if x.zxid > self.tree.last_zxid]
                if txns:
                    self.txnlog.write(txns)
                    self.last_logged = txns[-1].zxid
                    await self.sync_log()
                    for x in txns:
                        self.commit(x)
            elif t == TRUNC:
                point = r.long()
                log.info("server %d: truncating log after 0x%x", self.myid, point)
                self._truncate(point)
            elif t == SNAP:
                zxid = r.long()
                blob = r.buffer()
                self._install_snapshot(blob, zxid)
            elif t == PROPOSAL:
                txn = Txn.decode(bytes(r.buf[r.pos :]))
                self.proposed[txn.zxid] = txn
                self.txnlog.write([txn])
                self.last_logged = txn.zxid
                await self.sync_log()
                # Proposals can keep coming between NEWLEADER and UPTODATE; they need
                # our ack like any other (the quorum may depend on us).
                link.send(frame(ACK, pack(("long", txn.zxid))))
                link.flush()
            elif t == COMMIT:
                self._follower_commit(r.long())
            elif t == NEWLEADER:
                z = r.long()
                self.current_epoch = epoch
                self._write_epoch("currentEpoch", epoch)
                self._stamp_first_version(epoch)
                link.send(frame(ACK, pack(("long", z))))
                link.flush()
            elif t == UPTODATE:
                self.serving = True
                return
            elif t == PING:
                self._ping_leader(link)
                link.flush()

    def _truncate(self, point: int) -> None:
        self.txnlog.truncate_after(point)
        for name in os.listdir(self.txnlog.dir):
            if (
                name.startswith("snapshot.")
                and not name.endswith(".tmp")
                and int(name.split(".")[1], 16) > point
            ):
                os.unlink(os.path.join(self.txnlog.dir, name))
        from .datatree import DataTree

        self.txnlog.close()
        self.tree = DataTree()
        self.recover()

    def _install_snapshot(self, blob: bytes, zxid: int) -> None:
        self.txnlog.close()
        for name in os.listdir(self.txnlog.dir):
            os.unlink(os.path.join(self.txnlog.dir, name))
        self.txnlog.save_snapshot(blob, zxid)
        self.tree = deserialize_tree(blob)
        self._membership_after_recovery()
        self.preparer = Preparer(
            self.tree, self.cfg.jute_maxbuffer, self.cfg.extended_types, self.cfg.enforce_quota
        )
        self.last_logged = zxid
        self.next_zxid = zxid + 1
        self.txnlog.roll(zxid + 1)

    def _follower_commit(self, zxid: int) -> None:
        if zxid <= self.tree.last_zxid and zxid not in self.proposed:
            return  # applied already, on a LOGGED hint
        txn = self.proposed.pop(zxid, None)
        if txn is None:
            log.warning("server %d: COMMIT of unknown zxid 0x%x", self.myid, zxid)
            raise StepDown("commit for a proposal we do not have")
        self.commit(txn)
        self.drain()

    def _apply_logged(self) -> None:
        """Apply, in order, what both the leader's LOGGED hint and our own fsync cover
        (see _hint_origins): a quorum has logged it."""
        upto = min(self.logged_hint, self.durable_zxid)
        applied = False
        while self.proposed:
            z = next(iter(self.proposed))
            if z > upto:
                break
            self.commit(self.proposed.pop(z))
            applied = True
        if applied:
            self.drain()

    def _ping_leader(self, link: FrameLink) -> None:
        # Only sessions whose clients spoke within their timeout: a connected but
        # silent client must still expire, as it would on a standalone server.
        now = time.monotonic()
        touched = [s.id for s in self.sessions.values() if s.conn is not None and s.expires > now]
        link.send(frame(PING, pack(("int", len(touched)), *[("long", sid) for sid in touched])))

    async def _follower_loop(self, link: FrameLink) -> None:
        def on_frame(t: int, r: Reader) -> None:
            if t == PROPOSAL:
                txn = Txn.decode(bytes(r.buf[r.pos :]))
                self.proposed[txn.zxid] = txn
                self.to_log.append(txn)
            elif t == COMMIT:
                # A commit can overtake our own fsync of its proposal (the quorum did
                # not need us); apply in order anyway: the proposal is in memory.
                self._follower_commit(r.long())
            elif t == LOGGED:
                self.logged_hint = max(self.logged_hint, r.long())
                self._apply_logged()
            elif t == PING:
                self._ping_leader(link)
            elif t == SYNC:
                session, cxid = r.long(), r.int()
                entry = self.claim_waiting((session, cxid))
                if entry is not None:
                    entry.pending = False
                    self.drain()
            elif t == REVALIDATE:
                sid, timeout = r.long(), r.int()
                for conn in self.revalidating.pop(sid, ()):
                    self._resume(conn, sid, timeout)

        def end_of_read() -> None:
            # Replies to what was committed go first, then every proposal this read
            # brought is logged with one fsync and acked (group commit).
            self.outbox.flush()
            if self.to_log:
                self.log_now()

        # Everything logged while syncing was fsynced before we acked NEWLEADER.
        self.durable_zxid = self.last_logged
        link.dispatch(on_frame, end_of_read)
        await link.watch(self.cfg.sync_limit * self.tick)

    # --- facts for four-letter words and lab status -------------------------------------------

    def extra_mntr(self):
        yield ("zk_peer_state", STATE_NAMES.get(self.state, "?"))
        yield ("zk_server_id", self.myid)
        yield ("zk_current_epoch", self.current_epoch)
        if self.state == LEADING:
            yield ("zk_followers", len(self.followers))
            yield ("zk_synced_followers", sum(1 for f in self.followers.values() if f.synced))
            yield ("zk_pending_syncs", len(self.pending_syncs))


__all__ = ["QuorumServer"]
