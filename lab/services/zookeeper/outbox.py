"""Output held back until the piece of work that produced it is done.

A client connection or a link to another ensemble member queues what it sends and
tells the outbox; whoever finishes a piece of work (a batch of requests read from a
socket, a log flush, a batch of frames from the leader) calls flush(), and anything
left over goes at the start of the next turn of the event loop. So every reply,
proposal, ack or commit one piece of work produced for one socket leaves in one
write (one system call, one wake-up of the other side), and none of it waits for a
later turn of the loop, which on a busy machine may come much later.
"""

from __future__ import annotations

import asyncio


class Outbox:
    __slots__ = ("dirty", "handle")

    def __init__(self):
        self.dirty: list = []
        self.handle: asyncio.Handle | None = None

    def mark(self, holder) -> None:
        """`holder` (anything with a flush() method) has output queued."""
        self.dirty.append(holder)
        if self.handle is None:
            self.handle = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        while self.dirty:
            dirty, self.dirty = self.dirty, []
            for holder in dirty:
                holder.flush()
