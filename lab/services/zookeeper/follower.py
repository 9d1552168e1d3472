"""The follower's side of ZAB (Apache's Follower and Learner): it connects to the
leader, takes its epoch, is brought up to date (DIFF, TRUNC or SNAP), then logs every
proposal with one fsync per read and acks it, and applies what the leader commits,
or, for a write one of its own clients waits for, what the leader says a quorum
without it has logged once its own fsync covers it too (LOGGED). It forwards writes
and syncs to the leader and serves reads from its own tree.

A mixin of QuorumServer (quorum.py), whose state it shares.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from .framelink import FrameLink
from .jute import Reader
from .peerwire import (
    ACK,
    ACKEPOCH,
    COMMIT,
    DIFF,
    FOLLOWERINFO,
    LEADERINFO,
    LOGGED,
    NEWLEADER,
    PING,
    PROPOSAL,
    PROPOSAL_ELSEWHERE,
    REVALIDATE,
    SNAP,
    SYNC,
    TRUNC,
    UPTODATE,
    StepDown,
    frame,
    pack,
)
from .persistence import deserialize_tree
from .prep import Preparer
from .txn import Txn

log = logging.getLogger("zookeeper.quorum")

CONNECT_TRIES = 5  # Apache's Learner: tries per connectToLeader
CONNECT_DELAY = 0.1  # seconds between them: Apache's leaderConnectDelayDuringRetryMs


class Follower:
    async def follow(self, leader: int) -> None:
        peer = self.cfg.servers[leader]
        limit = self.cfg.init_limit * self.tick
        deadline = time.monotonic() + limit
        loop = asyncio.get_running_loop()
        # As Apache's Learner.connectToLeader: at most CONNECT_TRIES attempts, 100 ms
        # apart (leaderConnectDelayDuringRetryMs), within initLimit ticks; then back to
        # looking. Trying for all of initLimit (20 s with tickTime 2000) kept a server
        # following a leader that never led (elected by a stale vote) that long.
        for tries in range(CONNECT_TRIES):
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                _, link = await asyncio.wait_for(
                    loop.create_connection(
                        lambda: FrameLink(self.outbox), peer.host, peer.peer_port
                    ),
                    remaining,
                )
                break
            except (TimeoutError, OSError):
                if tries == CONNECT_TRIES - 1 or deadline - time.monotonic() <= CONNECT_DELAY:
                    raise StepDown(f"leader {leader} not reachable") from None
                await asyncio.sleep(CONNECT_DELAY)
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
            elif t == PROPOSAL or t == PROPOSAL_ELSEWHERE:
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
            if t == PROPOSAL or t == PROPOSAL_ELSEWHERE:
                txn = Txn.decode(bytes(r.buf[r.pos :]))
                self.proposed[txn.zxid] = txn
                self.to_log.append(txn)
                if t == PROPOSAL:
                    self.eager_zxid = txn.zxid
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
