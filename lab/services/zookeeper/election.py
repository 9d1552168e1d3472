"""Leader election on the election port, after ZooKeeper's FastLeaderElection:
every LOOKING server proposes a vote (epoch, last zxid, id) and adopts any higher
one it hears of in the same round; a vote backed by a quorum wins after a short
wait for anything better. A server that finds an established leader (a quorum of
LEADING/FOLLOWING notifications naming it) joins it without a new round."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging

from .peerwire import (
    HELLO,
    LEADING,
    LOOKING,
    NOTIFICATION,
    Notification,
    Vote,
    frame,
    pack,
    read_frame,
)

log = logging.getLogger("zookeeper.election")

FINALIZE_WAIT = 0.2


class PeerLink:
    """Outgoing connection to one peer's election port; reconnects forever, keeps
    only the last few unsent messages (a newer notification supersedes older ones)."""

    def __init__(self, myid: int, host: str, port: int, hello: bytes):
        self.myid = myid
        self.host = host
        self.port = port
        self.hello = hello
        self.pending: collections.deque[bytes] = collections.deque(maxlen=8)
        self.event = asyncio.Event()
        self.task: asyncio.Task | None = None

    def send(self, data: bytes) -> None:
        self.pending.append(data)
        self.event.set()

    async def run(self) -> None:
        while True:
            writer = None
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), 1.0
                )
                writer.write(self.hello)
                while True:
                    while self.pending:
                        writer.write(self.pending.popleft())
                    await writer.drain()
                    self.event.clear()
                    if not self.pending:
                        await self.event.wait()
            except (TimeoutError, OSError, ConnectionError):
                await asyncio.sleep(0.2)
            finally:
                if writer is not None:
                    writer.close()


class Election:
    def __init__(self, server):
        self.server = server
        cfg = server.cfg
        self.myid = cfg.myid
        me = cfg.servers[self.myid]
        # Our id and where we listen: a server outside the membership (removed by a
        # reconfig) is answered there, so that it can find the leader again.
        self.hello = frame(
            HELLO, pack(("int", self.myid), ("ustring", me.host), ("int", me.election_port))
        )
        self.voters: set[int] = set()
        self.links: dict[int, PeerLink] = {}
        self.strangers: dict[int, PeerLink] = {}  # servers outside the membership
        self.update(cfg.servers)
        self.inbox: asyncio.Queue[Notification] = asyncio.Queue()
        self.round = 0
        self.state = LOOKING
        self.vote = Vote(0, 0, self.myid)
        self._server = None

    def update(self, servers: dict) -> None:
        """A new membership (a committed reconfig): links to new members, none to
        those gone, and the quorum of its voters."""
        self.voters = {sid for sid, p in servers.items() if p.role == "participant"}
        self.quorum = len(self.voters) // 2 + 1
        for sid, p in servers.items():
            if sid != self.myid and sid not in self.links:
                self._stop_link(self.strangers.pop(sid, None))
                self.links[sid] = self._link(p.host, p.election_port)
        for sid in [sid for sid in self.links if sid not in servers]:
            self._stop_link(self.links.pop(sid))

    def _link(self, host: str, port: int) -> PeerLink:
        link = PeerLink(self.myid, host, port, self.hello)
        if getattr(self, "_server", None) is not None:
            link.task = asyncio.create_task(link.run())
        return link

    @staticmethod
    def _stop_link(link: PeerLink | None) -> None:
        if link is not None and link.task is not None:
            link.task.cancel()

    async def start(self) -> None:
        me = self.server.cfg.servers[self.myid]
        self._server = await asyncio.start_server(
            self._accept, me.host, me.election_port, reuse_address=True
        )
        for link in self.links.values():
            link.task = asyncio.create_task(link.run())

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in [*self.links.values(), *self.strangers.values()]:
            if link.task:
                link.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await link.task

    async def _accept(self, reader, writer) -> None:
        try:
            t, r = await read_frame(reader)
            if t != HELLO:
                return
            r.int()  # the peer's id (each notification carries it too)
            where = (r.ustring(), r.int()) if r.pos < len(r.buf) else None
            while True:
                t, r = await read_frame(reader)
                if t == NOTIFICATION:
                    self._received(Notification.decode(r), where)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError):
            pass
        finally:
            writer.close()

    def _received(self, n: Notification, where: tuple[str, int] | None = None) -> None:
        if n.sid not in self.server.cfg.servers:
            # Outside the membership: no say in elections, but told who leads, so it
            # can follow without a vote (Apache's non-voting learner).
            if self.state != LOOKING and n.state == LOOKING and where is not None:
                link = self.strangers.get(n.sid)
                if link is None or (link.host, link.port) != where:
                    self._stop_link(link)
                    link = self.strangers[n.sid] = self._link(*where)
                link.send(self.notification().encode())
            return
        if self.state == LOOKING:
            self.inbox.put_nowait(n)
        elif n.state == LOOKING:
            # Tell a newcomer who leads, so it can join without a new round.
            self.send(n.sid)

    def notification(self) -> Notification:
        return Notification(self.myid, self.state, self.round, self.vote)

    def send(self, sid: int) -> None:
        link = self.links.get(sid)
        if link is not None:
            link.send(self.notification().encode())

    def broadcast(self) -> None:
        data = self.notification().encode()
        for link in self.links.values():
            link.send(data)

    def settled(self, state: int, vote: Vote) -> None:
        self.state = state
        self.vote = vote
        self.broadcast()

    async def look(self, epoch: int, zxid: int) -> Vote:
        self.state = LOOKING
        self.round += 1
        mine = Vote(epoch, zxid, self.myid)
        self.vote = mine
        votes: dict[int, Vote] = {self.myid: mine}
        established: dict[int, tuple[Vote, int]] = {}
        log.info("looking: round %d, my vote %s", self.round, tuple(mine))
        self.broadcast()
        wait = 0.2
        while True:
            try:
                n = await asyncio.wait_for(self.inbox.get(), wait)
            except TimeoutError:
                self.broadcast()
                wait = min(wait * 2, 2.0)
                continue
            if n.state == LOOKING:
                if n.round > self.round:
                    self.round = n.round
                    votes = {}
                    self.vote = max(n.vote, mine)
                    self.broadcast()
                elif n.round < self.round:
                    self.send(n.sid)
                    continue
                elif n.vote > self.vote:
                    self.vote = n.vote
                    self.broadcast()
                votes[n.sid] = n.vote
                votes[self.myid] = self.vote
                backing = sum(1 for s, v in votes.items() if v == self.vote and s in self.voters)
                if backing >= self.quorum:
                    if await self._nothing_better():
                        log.info("elected %s in round %d", tuple(self.vote), self.round)
                        return self.vote
            else:
                established[n.sid] = (n.vote, n.state)
                leader = n.vote.leader
                backers = sum(
                    1
                    for s, (v, _) in established.items()
                    if v.leader == leader and s in self.voters
                )
                leading = established.get(leader, (None, None))[1] == LEADING
                if backers >= self.quorum and leading:
                    self.round = max(self.round, n.round)
                    self.vote = n.vote
                    log.info("joining established leader %d", leader)
                    return n.vote

    async def _nothing_better(self) -> bool:
        """Wait briefly for a better vote before settling (FastLeaderElection's finalizeWait)."""
        held = []
        better = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FINALIZE_WAIT
        while True:
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                n = await asyncio.wait_for(self.inbox.get(), left)
            except TimeoutError:
                break
            held.append(n)
            if n.state == LOOKING and n.round >= self.round and n.vote > self.vote:
                better = True
                break
        for n in held:
            self.inbox.put_nowait(n)
        return not better
