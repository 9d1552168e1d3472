"""Two protocols on one port, told apart by a connection's first four bytes.

Hadoop IPC opens with "hrpc"; racklab's daemon RPC is HTTP, which opens with a method
name. A native client given fs.defaultFS and racklab's own daemons can thus share the
NameNode's one RPC address. The bytes read to decide are handed on to the chosen
protocol's stream untouched, so neither side knows a choice was made."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Connection = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
STREAM_LIMIT = 256 * 1024


class _Sniffer(asyncio.Protocol):
    def __init__(
        self, choose: Callable[[bytes], Connection], idle_timeout: float, limit: int
    ) -> None:
        self.choose, self.idle_timeout, self.limit = choose, idle_timeout, limit
        self.buf = b""
        self.inner: asyncio.StreamReaderProtocol | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        # A connection that never says which protocol it speaks is closed, as either
        # protocol's own idle limit would.
        self.timer = asyncio.get_running_loop().call_later(self.idle_timeout, transport.close)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) >= 4:
            self._hand_over()

    def eof_received(self):
        if self.buf:  # a few bytes then EOF: the chosen protocol answers them as it would
            self._hand_over()
            self.inner.eof_received()
        return False

    def connection_lost(self, exc) -> None:
        if self.timer:
            self.timer.cancel()

    def _hand_over(self) -> None:
        self.timer.cancel()
        callback = self.choose(self.buf[:4])
        reader = asyncio.StreamReader(limit=self.limit)
        self.inner = asyncio.StreamReaderProtocol(reader, callback)
        self.transport.set_protocol(self.inner)
        self.inner.connection_made(self.transport)
        self.inner.data_received(self.buf)


async def serve_sniffing(
    host: str,
    port: int,
    by_prefix: dict[bytes, Connection],
    fallback: Connection,
    idle_timeout: float,
    limit: int = STREAM_LIMIT,
    backlog: int = 512,
) -> asyncio.Server:
    """Serve on host:port: connections opening with a key of `by_prefix` (at most 4
    bytes) go to its handler, every other connection to `fallback`."""

    def choose(first: bytes) -> Connection:
        return next((h for p, h in by_prefix.items() if first.startswith(p)), fallback)

    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: _Sniffer(choose, idle_timeout, limit), host, port, backlog=backlog
    )
