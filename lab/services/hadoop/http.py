"""The HTTP/1.1 server (and keep-alive client) every Hadoop daemon here serves on, as
Hadoop's daemons all serve on one Jetty set-up from hadoop-common.

Enough of RFC 9112 for WebHDFS and the YARN REST clients: keep-alive, Content-Length and
chunked request bodies (requests sends generators chunked), Expect: 100-continue (curl),
and streamed responses. Request bodies are consumed by the handler as a stream, so a
DataNode can push an upload into its write pipeline without holding it in memory; a
server that wants whole bodies asks for them buffered, up to a limit.

Bounded as Jetty is under Hadoop: a request head of at most 64 KiB (431 beyond), an idle
connection closed after hadoop.http.idle_timeout.ms (60 s), and a client that stops
sending in the middle of a head or body cut off after the same time, so neither slow
clients nor huge headers hold memory or descriptors.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

log = logging.getLogger(__name__)

REASONS = {
    100: "Continue",
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    307: "Temporary Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    411: "Length Required",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
MAX_HEADER = (
    64 * 1024
)  # Jetty's requestHeaderSize under Hadoop (hadoop.http.max.request.header.size)
MAX_HEADER_LINES = 1000
STREAM_LIMIT = 256 * 1024
READ_SIZE = 256 * 1024
IDLE_TIMEOUT = 60.0  # hadoop.http.idle_timeout.ms


class BadRequest(Exception):
    """The bytes on the wire are not HTTP we can read: answer `status` and close."""

    status = 400


class PayloadTooLarge(BadRequest):
    status = 413


class HeaderTooLarge(BadRequest):
    status = 431


class ClientTimeout(ConnectionError):
    """The client stopped sending in the middle of a request: treated as a client that went
    away (every `except ConnectionError` path already cleans up after one)."""


@dataclass
class Request:
    method: str
    target: str
    path: str  # percent-decoded
    query: dict[str, str]
    headers: dict[str, str]
    peer: str
    version: str
    _reader: asyncio.StreamReader = field(repr=False, default=None)
    _writer: asyncio.StreamWriter = field(repr=False, default=None)
    _remaining: int = 0
    _chunked: bool = False
    _done: bool = False
    _continue_sent: bool = False
    _timeout: float = IDLE_TIMEOUT
    body: bytes | None = None  # the whole body, when the server was asked to buffer it

    async def _read(self, coro):
        """One read from the client, cut off when the client goes quiet for too long."""
        try:
            async with asyncio.timeout(self._timeout):
                return await coro
        except TimeoutError:
            raise ClientTimeout(f"no data from {self.peer} for {self._timeout:.0f}s") from None

    async def _send_continue(self) -> None:
        if not self._continue_sent and self.headers.get("expect", "").lower() == "100-continue":
            self._continue_sent = True
            self._writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await self._writer.drain()

    async def iter_body(self, size: int = READ_SIZE) -> AsyncIterator[bytes]:
        """The request body in pieces of at most `size` bytes."""
        while True:
            piece = await self.read_some(size)
            if not piece:
                return
            yield piece

    async def read_some(self, size: int = READ_SIZE) -> bytes:
        if self._done:
            return b""
        await self._send_continue()
        if self._chunked:
            if self._remaining == 0:
                line = await self._read(self._reader.readuntil(b"\r\n"))
                try:
                    self._remaining = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise BadRequest("bad chunk size") from None
                if self._remaining == 0:
                    # Trailer section ends with an empty line.
                    for _ in range(MAX_HEADER_LINES):
                        if await self._read(self._reader.readuntil(b"\r\n")) == b"\r\n":
                            break
                    else:
                        raise HeaderTooLarge("too many trailer lines")
                    self._done = True
                    return b""
            data = await self._take(size)
            if self._remaining == 0:
                if await self._read(self._reader.readexactly(2)) != b"\r\n":
                    raise BadRequest("chunk not followed by CRLF")
            return data
        if self._remaining <= 0:
            self._done = True
            return b""
        data = await self._take(size)
        if self._remaining == 0:
            self._done = True
        return data

    async def _take(self, size: int) -> bytes:
        """Up to `size` bytes of what remains of the body (or of the current chunk)."""
        data = await self._read(self._reader.read(min(size, self._remaining)))
        if not data:
            raise ConnectionResetError("client closed mid-body")
        self._remaining -= len(data)
        return data

    async def read_body(self, limit: int = 64 * 1024 * 1024) -> bytes:
        if self.body is not None:
            return self.body
        if not self._chunked and self._remaining > limit:
            raise PayloadTooLarge(f"request body of {self._remaining} bytes is over {limit}")
        parts, total = [], 0
        async for piece in self.iter_body():
            total += len(piece)
            if total > limit:
                raise PayloadTooLarge(f"request body is over {limit} bytes")
            parts.append(piece)
        self.body = b"".join(parts)
        return self.body

    @property
    def has_body(self) -> bool:
        return self._chunked or self._remaining > 0


@dataclass
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None  # sent with Content-Length if set, else chunked
    length: int | None = None

    @classmethod
    def json(
        cls, obj: object, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        body = json.dumps(obj, separators=(",", ":")).encode()
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        return cls(status, hdrs, body)


Handler = Callable[[Request], Awaitable[Response]]


async def serve(
    host: str,
    port: int,
    handler: Handler,
    buffer_body: int | None = None,
    idle_timeout: float = IDLE_TIMEOUT,
) -> asyncio.Server:
    """Serve `handler` on host:port. With `buffer_body`, each request's whole body (at most
    that many bytes, else 413) is read before the handler runs, as `req.body`."""
    on_connection = connection_handler(handler, buffer_body, idle_timeout)
    # The stream limit bounds a request head (readuntil) and sets how much body is buffered
    # per read; 256 KiB keeps both reasonable.
    return await asyncio.start_server(on_connection, host, port, limit=STREAM_LIMIT, backlog=512)


def connection_handler(
    handler: Handler, buffer_body: int | None = None, idle_timeout: float = IDLE_TIMEOUT
):
    """The per-connection loop of `serve`, for servers that accept connections themselves
    (the NameNode's RPC port, which also speaks Hadoop IPC)."""

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        peer_ip = peer[0] if peer else "?"
        try:
            while await _serve_one(reader, writer, handler, peer_ip, buffer_body, idle_timeout):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # the server is shutting down
        except Exception:  # a bug in one request must not take the server down
            log.exception("connection from %s failed", peer_ip)
        finally:
            writer.close()

    return on_connection


async def _serve_one(
    reader, writer, handler: Handler, peer_ip: str, buffer_body: int | None, idle: float
) -> bool:
    try:
        # An idle keep-alive connection, or a head that never ends, is closed after the
        # idle timeout, as Jetty does.
        async with asyncio.timeout(idle):
            head = await reader.readuntil(b"\r\n\r\n")
    except TimeoutError:
        return False
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            await _write_simple(writer, 400, "truncated request head")
        return False
    except (asyncio.LimitOverrunError, ValueError):
        await _write_simple(writer, 431, "request head too large")
        return False
    if len(head) > MAX_HEADER:
        await _write_simple(writer, 431, "request head too large")
        return False
    try:
        req = _parse_head(head, peer_ip)
    except BadRequest as exc:
        await _write_simple(writer, exc.status, str(exc))
        return False
    req._reader, req._writer, req._timeout = reader, writer, idle
    keep_alive = _keep_alive(req)
    try:
        if buffer_body is not None:
            await req.read_body(buffer_body)
        resp = await handler(req)
    except BadRequest as exc:
        await _write_simple(writer, exc.status, str(exc))
        return False
    # Whatever body the handler did not read must be consumed to keep the stream in step;
    # a huge unread body (e.g. an upload refused up front) is cheaper to drop with the connection.
    if not req._done and req.has_body:
        if req._chunked or req._remaining > 4 * 1024 * 1024:
            keep_alive = False
            resp.headers["Connection"] = "close"
        else:
            async for _ in req.iter_body():
                pass
    await write_response(writer, resp, keep_alive, head_only=req.method == "HEAD")
    return keep_alive


def _parse_head(head: bytes, peer_ip: str) -> Request:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:
        raise BadRequest("undecodable head") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"malformed request line {lines[0][:80]!r}")
    method, target, version = parts
    if len(lines) > MAX_HEADER_LINES:
        raise HeaderTooLarge(f"more than {MAX_HEADER_LINES} header lines")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(f"malformed header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    split = urlsplit(target)
    query = dict(parse_qsl(split.query, keep_blank_values=True))
    req = Request(method.upper(), target, unquote(split.path), query, headers, peer_ip, version)
    te = headers.get("transfer-encoding", "").lower()
    if te:
        if te != "chunked":
            raise BadRequest(f"unsupported transfer-encoding {te!r}")
        req._chunked = True
    elif "content-length" in headers:
        try:
            req._remaining = int(headers["content-length"])
        except ValueError:
            raise BadRequest("malformed Content-Length") from None
        if req._remaining < 0:
            raise BadRequest("negative Content-Length")
    req._done = not req.has_body
    return req


def _keep_alive(req: Request) -> bool:
    conn = req.headers.get("connection", "").lower()
    if req.version == "HTTP/1.0":
        return conn == "keep-alive"
    return conn != "close"


async def _write_simple(writer, status: int, message: str) -> None:
    resp = Response.json({"error": message}, status)
    resp.headers["Connection"] = "close"
    try:
        await write_response(writer, resp, keep_alive=False)
    except ConnectionError:
        pass


async def write_response(writer, resp: Response, keep_alive: bool, head_only: bool = False) -> None:
    headers = dict(resp.headers)
    if not keep_alive:
        headers["Connection"] = "close"
    chunked = False
    if resp.stream is not None:
        if resp.length is not None:
            headers["Content-Length"] = str(resp.length)
        else:
            headers["Transfer-Encoding"] = "chunked"
            chunked = True
    else:
        headers["Content-Length"] = str(len(resp.body))
    lines = [f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'Unknown')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    if head_only:
        await writer.drain()
        return
    if resp.stream is None:
        if resp.body:
            writer.write(resp.body)
        await writer.drain()
        return
    sent = 0
    try:
        async for piece in resp.stream:
            if not piece:
                continue
            sent += len(piece)
            if chunked:
                writer.write(b"%x\r\n" % len(piece))
                writer.write(piece)
                writer.write(b"\r\n")
            else:
                writer.write(piece)
            await writer.drain()
    except ConnectionError:
        raise  # the client went away: nothing to tell anybody
    except Exception:
        # Headers are gone already: the only honest signal left is a cut connection,
        # which every client reports as a short read.
        log.exception("streamed response failed after %d bytes", sent)
        writer.transport.abort()
        raise ConnectionResetError("stream failed") from None
    if chunked:
        writer.write(b"0\r\n\r\n")
    await writer.drain()


# ---------------------------------------------------------------- client


class HttpClient:
    """Keep-alive HTTP/1.1 client for daemon-to-daemon calls (JSON RPC, image transfer)."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._idle: dict[tuple[str, int], list[tuple]] = {}

    async def request(
        self,
        method: str,
        host: str,
        port: int,
        path: str,
        query: dict | None = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        target = quote(path)
        if query:
            target += "?" + urlencode(query)
        for attempt in (0, 1):
            conn = self._take(host, port)
            fresh = conn is None
            if fresh:
                conn = await asyncio.wait_for(asyncio.open_connection(host, port), self.timeout)
            reader, writer = conn
            try:
                return await asyncio.wait_for(
                    self._exchange(reader, writer, host, port, method, target, body, headers or {}),
                    self.timeout,
                )
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                writer.close()
                # A pooled connection may have been closed by the server while idle: retry once.
                if fresh or attempt:
                    raise ConnectionError(f"{host}:{port}: {exc}") from exc
            except BaseException:
                writer.close()
                raise
        raise AssertionError("unreachable")

    async def _exchange(self, reader, writer, host, port, method, target, body, headers):
        lines = [
            f"{method} {target} HTTP/1.1",
            f"Host: {host}:{port}",
            f"Content-Length: {len(body)}",
        ]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *hdr_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ")[1])
        hdrs = {}
        for line in hdr_lines:
            if line:
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            data = b"".join(parts)
        else:
            data = await reader.readexactly(int(hdrs.get("content-length", "0")))
        if hdrs.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle.setdefault((host, port), []).append((reader, writer))
        return status, hdrs, data

    def _take(self, host: str, port: int):
        pool = self._idle.get((host, port))
        while pool:
            reader, writer = pool.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer
        return None

    def close(self) -> None:
        for pool in self._idle.values():
            for _, writer in pool:
                writer.close()
        self._idle.clear()
