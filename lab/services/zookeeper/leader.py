"""The leader's side of ZAB (Apache's Leader and LearnerHandler): it learns its
followers' accepted epochs, starts epoch max+1, brings each follower up to date (DIFF
of the txns it lacks, TRUNC of txns only it has, or a whole SNAP), and once a quorum
is in sync serves. Every write (its own clients' and those forwarded by followers)
becomes a PROPOSAL; each member logs and fsyncs it and ACKs; with a quorum of acks
the leader applies it and sends COMMIT. The follower whose client waits for a write
may be told LOGGED first (see Leader._hint_origins).

A mixin of QuorumServer (quorum.py), whose state it shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from . import reconfig
from .framelink import FrameLink
from .jute import JuteError, Reader
from .peerwire import (
    ACK,
    ACKEPOCH,
    COMMIT,
    DIFF,
    FOLLOWERINFO,
    LEADERINFO,
    LEADING,
    LOGGED,
    NEWLEADER,
    PING,
    PROPOSAL,
    PROPOSAL_ELSEWHERE,
    REQUEST,
    REVALIDATE,
    SNAP,
    SYNC,
    TRUNC,
    UPTODATE,
    StepDown,
    frame,
    pack,
)
from .persistence import serialize_tree
from .prep import Preparer
from .proto import Err, Id, Op, ZKError, decode_request
from .sessions import Session
from .txn import CloseSessionTxn, CreateSessionTxn, ErrorTxn, Txn

log = logging.getLogger("zookeeper.quorum")

HISTORY_LIMIT = 100_000  # committed txns the leader keeps for DIFFs
# How long a frame nobody waits for may wait for the next frame on its link: a COMMIT
# to a follower none of whose clients asked for that write (its readers see the write
# this much later at most: ZooKeeper promises followers' clients an up-to-date view
# only after sync(), whose reply follows every queued commit), and a follower's ack of
# a proposal another follower's client waits for (that one and the leader make the
# quorum with 3 servers, and the origin applies on LOGGED anyway).
LAZY_S = 0.005


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


class Leader:
    def propose(self, txn: Txn, origin: int | None = None) -> None:
        if self.state != LEADING:
            raise ZKError(Err.CONNECTION_LOSS)
        p = Proposal(txn, origin)
        if txn.hdr.type == Op.RECONFIG:
            p.new_voters = reconfig.voters(reconfig.parse(txn.body.data)[0])
        self.outstanding[txn.zxid] = p
        self.unhinted.append(p)
        data = frame(PROPOSAL, p.data)
        first = self.followers.get(origin) if origin is not None else None
        if (
            first is None
            or not first.forwarding
            or first.sid not in self.voters
            or p.new_voters is not None
        ):
            # Nobody in particular waits (our own client's write, a reconfig): the
            # quorum forms with whichever followers ack first.
            for f in self.followers.values():
                if f.forwarding:
                    f.send(data)
        else:
            self._propose_for(first, p, data)
        self.to_log.append(txn)
        self.log_soon()

    def _propose_for(self, first: FollowerHandle, p: Proposal, data: bytes) -> None:
        """Send a proposal that `first`'s client waits for. It goes at once to `first`
        and to as few other voters as make a quorum with us and it; the rest get it
        as PROPOSAL_ELSEWHERE with their next frame or within LAZY_S, and ack it at
        leisure. Our own fsync starts as soon as what this read proposed has been
        sent to those (at the end of the read, not at the next turn of the loop).

        Why (`python -m lab.bench.zookeeper_trace`, stamps in the three processes):
        the leader's fsync began only after its sends to both followers and a turn
        of its loop, and the follower's reply waits for the LOGGED that follows that
        fsync; the second follower's fsync also competed for the disk the other two
        share here. How much this saves depends on how dear a loopback send is at
        the moment (14 us to 200 us each in traces on this 2-core machine): set
        median 1.3 ms -> 0.9 ms in the first traces at load 1, 0.94x to 1.13x in
        `lab.bench.zookeeper --reference-source` runs at load 4 to 9
        (docs/BENCHMARKS.md). Holding the proposal to `first` back until our fsync
        and sending it with the LOGGED, and starting our fsync in a worker thread
        before the sends, were both slower."""
        first.send(data)
        eager = self.quorum - 2  # voters besides us and `first` a quorum needs
        lazy = frame(PROPOSAL_ELSEWHERE, p.data)
        for f in self.followers.values():
            if not f.forwarding or f is first:
                continue
            if eager > 0 and f.sid in self.voters and f.synced:
                eager -= 1
                f.send(data)
            else:
                f.link.send_later(lazy, LAZY_S)

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
                    f.link.send_later(data, LAZY_S)
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
                # a reconfig that leaves us out ends our leadership at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.role_over.wait(), self.tick / 2)
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

        def end_of_read() -> None:
            # What this read proposed has been sent: log it now (see _propose_for).
            self.outbox.flush()
            if self.to_log:
                self.log_now()

        f.link.dispatch(on_frame, end_of_read)
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
