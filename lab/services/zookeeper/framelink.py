"""The leader-follower connection as frames ([u32 length][u8 type][payload]).

Two ways to read it. While a follower joins (epochs, DIFF/TRUNC/SNAP, NEWLEADER) each
side awaits the next frame in turn (next_frame). Once the ensemble broadcasts, a
handler is called from data_received for every frame as it arrives, then once more
at the end of what one read brought (`end`): no task to wake and no timer to set
and cancel for each proposal, ack and commit, and a natural batch (every proposal
one read brought is logged with one fsync). A link that stays silent is found by
its owner looking at `last_heard`, not by a timer per frame.

What is sent is queued and leaves through the server's Outbox, so the frames one
piece of work produced go out in one write. A frame nobody waits for (a COMMIT to a
follower none of whose clients asked for that write) may instead wait for the next
frame on the link, at most `within` seconds (send_later), as Raft followers learn
the commit index with the next AppendEntries: one message and one wake-up of the
follower fewer per write when writes flow.
"""

from __future__ import annotations

import asyncio
import collections
import struct
import time

from .jute import Reader
from .peerwire import MAX_PEER_FRAME

_FRAME = struct.Struct(">IB")


class FrameLink(asyncio.Protocol):
    def __init__(self, outbox, on_open=None):
        self.outbox = outbox
        self.on_open = on_open
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.frames: collections.deque[tuple[int, Reader]] = collections.deque()
        self.waiter: asyncio.Future | None = None
        self.handler = None
        self.end = None
        self.out: list[bytes] = []
        self.marked = False  # told the outbox: leaves at the end of this piece of work
        self.later: asyncio.TimerHandle | None = None  # deadline of send_later frames
        self.last_heard = time.monotonic()
        self.lost: asyncio.Future = asyncio.get_running_loop().create_future()
        # Nobody may be waiting for the end of a link (a leader closing many at once).
        self.lost.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.peer = ("?", 0)

    # --- asyncio plumbing ---------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peer = (transport.get_extra_info("peername") or ("?", 0))[:2]
        if self.on_open is not None:
            self.on_open(self)

    def connection_lost(self, exc) -> None:
        self._finish(exc or ConnectionError(f"peer {self.peer[0]}:{self.peer[1]} closed"))

    def _finish(self, exc: BaseException) -> None:
        if not self.lost.done():
            self.lost.set_exception(exc)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def data_received(self, data: bytes) -> None:
        self.last_heard = time.monotonic()
        buf = self.buf
        buf += data
        try:
            while len(buf) >= _FRAME.size:
                length, type_ = _FRAME.unpack_from(buf, 0)
                if length < 1 or length > MAX_PEER_FRAME:
                    raise ConnectionError(f"peer frame of {length} bytes")
                if len(buf) < 4 + length:
                    break
                body = bytes(buf[_FRAME.size : 4 + length])
                del buf[: 4 + length]
                if self.handler is not None:
                    self.handler(type_, Reader(body))
                else:
                    self.frames.append((type_, Reader(body)))
                    if self.waiter is not None and not self.waiter.done():
                        self.waiter.set_result(None)
            if self.handler is not None and self.end is not None:
                self.end()
        except Exception as e:  # a bad frame, or the owner giving up (StepDown)
            self._finish(e)
            self.close()

    # --- reading ------------------------------------------------------------------

    async def next_frame(self, timeout: float | None) -> tuple[int, Reader]:
        """The next frame; TimeoutError after `timeout` seconds of nothing."""
        if not self.frames:
            if self.lost.done():
                self.lost.result()  # raises why the link ended
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self.waiter
            finally:
                self.waiter = None
        return self.frames.popleft()

    def dispatch(self, handler, end=None) -> None:
        """From now on call handler(type, reader) for each frame, then end() after
        each read; frames already received go first."""
        self.handler = handler
        self.end = end
        try:
            while self.frames:
                handler(*self.frames.popleft())
            if end is not None:
                end()
        except Exception as e:
            self._finish(e)
            self.close()

    async def watch(self, limit: float) -> None:
        """Until the link ends: its error, or TimeoutError once nothing came for
        `limit` seconds."""
        while True:
            done, _ = await asyncio.wait([self.lost], timeout=limit / 4)
            if done:
                self.lost.result()
                return
            silent = time.monotonic() - self.last_heard
            if silent > limit:
                raise TimeoutError(f"peer silent for {silent:.1f}s")

    # --- writing ------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if not self.marked:
            self.marked = True
            self.outbox.mark(self)
        self.out.append(data)

    def send_later(self, data: bytes, within: float) -> None:
        """Queue a frame that goes with the next one sent, or after `within` seconds."""
        if self.transport is None or self.transport.is_closing():
            return
        self.out.append(data)
        if not self.marked and self.later is None:
            self.later = asyncio.get_running_loop().call_later(within, self.flush)

    def flush(self) -> None:
        self.marked = False
        if self.later is not None:
            self.later.cancel()
            self.later = None
        if self.out:
            data = b"".join(self.out) if len(self.out) > 1 else self.out[0]
            self.out.clear()
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(data)

    def is_closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.flush()
            self.transport.close()
