"""A connection's incoming bytes received straight into reusable buffers, for the
DataNode's packet loops: asyncio's StreamReader receives each read into a new bytes
object, appends it to its buffer and copies every readexactly() out again (three copies
of each byte, and fresh memory for each read, whose pages the kernel must fault in),
and pauses the socket whenever 128 KiB wait. A 64 KiB packet loop spent a fifth of its
DataNode's CPU there.

ReceiveBuffer takes a connection over from its StreamReader (the bytes that reader
holds come along) as a BufferedProtocol: the socket is read into a large buffer (one
copy, from the kernel), and read(n) returns a memoryview of the next n bytes without
copying them. A view stays valid for as long as it is held: a buffer is reused only
when no view of it is left (otherwise a new one is taken), so a caller or a transport
that keeps a packet's data beyond the next read still sees its own bytes."""

from __future__ import annotations

import asyncio
import sys

FIRST = 256 << 10  # the first buffer: a small block's whole write fits
CHUNK = 1 << 20  # bytes per buffer after it (a larger one for a larger message)
LIMIT = 512 << 10  # the socket is not read while this much waits unread...
MIN_FREE = 64 << 10  # ...and a buffer with less room than this left is swapped
SPARES = 1  # idle buffers kept for reuse


class ReceiveBuffer(asyncio.BufferedProtocol):
    def __init__(self, reader: asyncio.StreamReader, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.stream = transport.get_protocol()  # the StreamReaderProtocol its writer uses
        # StreamReader keeps what it received but not yet handed out in `_buffer`; it
        # has no public way to take those bytes back.
        pending = bytes(reader._buffer)
        reader._buffer.clear()
        self.eof = reader.at_eof()
        self.error: BaseException | None = reader.exception()
        self.chunk = bytearray(max(FIRST, 2 * len(pending)))
        self.chunk[: len(pending)] = pending
        self.start, self.end = 0, len(pending)
        self.spares: list[bytearray] = []
        self.want = 0
        self.waiter: asyncio.Future | None = None
        self.paused = False
        transport.set_protocol(self)
        transport.resume_reading()  # the StreamReader may have paused it

    # ---------------------------------------------------------------- the consumer's side
    async def read(self, n: int, timeout: float | None = None) -> memoryview:
        """The next n bytes, as a view into the buffer (no copy)."""
        if self.end - self.start < n:
            if self.start + n > len(self.chunk):
                self._swap(n)
            self.want = n
            if self.paused:
                self._resume()
            while self.end - self.start < n:
                if self.error is not None:
                    raise self.error
                if self.eof:
                    partial = bytes(self.chunk[self.start : self.end])
                    raise asyncio.IncompleteReadError(partial, n)
                self.waiter = asyncio.get_running_loop().create_future()
                try:
                    async with asyncio.timeout(timeout):
                        await self.waiter
                finally:
                    self.waiter = None
            self.want = 0
        view = memoryview(self.chunk)[self.start : self.start + n]
        self.start += n
        if self.paused and self.end - self.start < LIMIT // 2:
            self._resume()
        return view

    def _swap(self, need: int) -> None:
        """Move the unread bytes to the front of a buffer with room for `need` bytes from
        there, or, for a message larger than a buffer, for twice the bytes it has sent so
        far (room grows as its bytes come, not as its stated length says): a spare that
        nobody holds a view of, or a new one."""
        unread = self.end - self.start
        size = max(CHUNK, min(need, 2 * unread) + MIN_FREE, unread + MIN_FREE)
        old = self.chunk
        new = None
        for i in range(len(self.spares)):
            spare = self.spares[i]
            # A held view (a memoryview, or a slice of one) keeps a reference to its
            # buffer: with none, the references are the list's, `spare`'s and
            # getrefcount's argument.
            if len(spare) >= size and sys.getrefcount(spare) <= 3:
                new = self.spares.pop(i)
                break
        if new is None:
            new = bytearray(size)
        new[:unread] = memoryview(old)[self.start : self.end]
        self.chunk, self.start, self.end = new, 0, unread
        if len(old) == CHUNK and len(self.spares) < SPARES:
            self.spares.append(old)

    def _resume(self) -> None:
        self.paused = False
        self.transport.resume_reading()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # ---------------------------------------------------------------- the transport's side
    def get_buffer(self, sizehint: int) -> memoryview:
        if len(self.chunk) - self.end < MIN_FREE:
            self._swap(self.want)
        return memoryview(self.chunk)[self.end :]

    def buffer_updated(self, nbytes: int) -> None:
        self.end += nbytes
        unread = self.end - self.start
        if unread >= self.want:
            self._wake()
        if unread >= max(LIMIT, self.want) and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def eof_received(self):
        self.eof = True
        self._wake()
        return self.stream.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if exc is not None:
            self.error = exc
        self._wake()
        self.stream.connection_lost(exc)  # the StreamWriter's close and drain see it

    def pause_writing(self) -> None:
        self.stream.pause_writing()

    def resume_writing(self) -> None:
        self.stream.resume_writing()
