"""An ensemble member (Apache's QuorumPeer): leader election, then ZAB-style atomic
broadcast in the role the election gave it.

This module holds what every member does whatever its role: its epochs on disk, the
loop of electing and then leading or following, sessions, and the request pipeline's
ensemble edition (a follower forwards writes and syncs to the leader; errors are txns
too, so they reach every member in commit order). The roles are mixins sharing this
state: leader.py (the leader and its handle on each follower), follower.py, and
reconfig.py's Membership (the membership a committed reconfig names).

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
from collections import deque

from . import reconfig
from .config import Config
from .election import Election
from .follower import Follower
from .framelink import FrameLink
from .jute import JuteError
from .leader import HISTORY_LIMIT, LAZY_S, FollowerHandle, Leader, Proposal
from .peerwire import (
    ACK,
    FOLLOWING,
    LEADING,
    LOOKING,
    REQUEST,
    REVALIDATE,
    SYNC,
    StepDown,
    frame,
    pack,
)
from .proto import Id, Op, encode_request
from .reconfig import Membership, voters
from .server import Entry, ZooKeeperServer
from .sessions import Session, password_for
from .txn import ErrorTxn, Txn

log = logging.getLogger("zookeeper.quorum")


class QuorumServer(Leader, Follower, Membership, ZooKeeperServer):
    def __init__(self, cfg: Config):
        super().__init__(cfg)
        self.myid = cfg.myid
        self.voters = reconfig.voters(cfg.servers)
        self.quorum = len(self.voters) // 2 + 1
        self.reconfig_pending = False  # a reconfig is proposed and not committed yet
        self.leaving: str | None = None  # why a committed reconfig ends our role
        self.role_over = asyncio.Event()  # set with `leaving`
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
        self.eager_zxid = 0  # the last proposal whose ack someone waits for (PROPOSAL)
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
        host, port = self.client_address()
        await self.listen(host, port)
        await self.start_admin()
        me = self.cfg.servers[self.myid]
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

    def client_address(self) -> tuple[str, int]:
        """Our member line's client address (`;host:port`), else zoo.cfg's."""
        me = self.cfg.servers.get(self.myid)
        host, port = super().client_address()
        if me is not None and me.client_port is not None:
            return me.client_host or host, me.client_port
        return host, port

    def move_client_address(self) -> None:
        """After a committed reconfig that gives this member another client address
        (Apache's cnxnFactory.reconfigure): stop listening on the old one, listen on
        the new one; clients already connected stay connected. Where the new address
        cannot be bound, we take no new clients and say so, as Apache. A member left
        out of the membership keeps its address (Apache looks only at its own line)."""
        me = self.cfg.servers.get(self.myid)
        if me is None or me.client_port is None or self._server is None:
            return
        addr = self.client_address()
        if addr == self.listening:
            return
        self._server.close()
        self._server = None
        self.listening = None

        async def rebind() -> None:
            try:
                await self.listen(*addr)
                log.info("server %d: clients now on %s:%d", self.myid, *addr)
            except OSError as e:
                log.error("server %d: cannot take clients on %s:%d: %s", self.myid, *addr, e)

        self._tasks.append(asyncio.create_task(rebind(), name="zk-client-address"))

    async def stop(self) -> None:
        await self.election.stop()
        await super().stop()

    def reload(self) -> None:
        """Forget everything in memory and start again from our own disk."""
        self.serving = False
        self.reconfig_pending = False
        self.leaving = None
        self.role_over.clear()
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
        self.durable_zxid = self.logged_hint = self.eager_zxid = 0
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

    def on_durable(self, batch: list[Txn]) -> None:
        last = batch[-1].zxid
        if self.state == LEADING:
            self.ack(self.myid, last)
        elif self.state == FOLLOWING:
            # Replies to what this fsync lets us apply (the leader said LOGGED) are
            # queued first, so they leave before the ack in the flush that follows.
            self.durable_zxid = last
            self._apply_logged()
            ack = frame(ACK, pack(("long", last)))
            if batch[0].zxid > self.eager_zxid and self.leader_link is not None:
                # every proposal of the batch is another follower's: ack at leisure
                self.leader_link.send_later(ack, LAZY_S)
            else:
                self._send_leader(ack)

    # --- facts for four-letter words and lab status -------------------------------------------

    def processed_zxid(self) -> int:
        # Apache's leader starts its epoch at zxid (epoch << 32) before anything of it
        # is applied (Leader.lead: zk.setZxid(makeZxid(epoch, 0))), and shows that
        if self.state == LEADING and self.serving:
            return max(self.tree.last_zxid, self.current_epoch << 32)
        return self.tree.last_zxid

    def extra_mntr(self):
        # Apache's keys: QuorumPeer.getDetailedPeerState ("following - broadcast", a
        # phase of ZAB after the state; "looking" alone), the voters, and on a leader
        # its learners and how many of them are in sync
        state = {LEADING: "leading", FOLLOWING: "following"}.get(self.state, "looking")
        if state != "looking":
            state += " - broadcast" if self.serving else " - synchronization"
        yield ("zk_peer_state", state)
        yield ("zk_quorum_size", len(voters(self.cfg.servers)))
        if self.state == LEADING:
            yield ("zk_synced_followers", sum(1 for f in self.followers.values() if f.synced))
            yield ("zk_synced_non_voting_followers", 0)
            yield ("zk_synced_observers", 0)
            yield ("zk_pending_syncs", len(self.pending_syncs))
            yield ("zk_learners", len(self.followers))


__all__ = ["QuorumServer"]
