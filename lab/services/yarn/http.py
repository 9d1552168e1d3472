"""A small HTTP/1.1 server on asyncio and a JSON client on the standard library.

The daemons need only a handful of JSON endpoints each, so a hand-written server
keeps them free of web-framework dependencies (and lets containers run with just
the standard library). Errors are rendered the way Hadoop's web services render
them: ``{"RemoteException": {"exception", "message", "javaClassName"}}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024 * 1024
REASONS = {
    200: "OK",
    202: "Accepted",
    204: "No Content",
    307: "Temporary Redirect",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
}

# Hadoop's web-app exceptions and the Java classes its RemoteException names.
JAVA_CLASSES = {
    "BadRequestException": "org.apache.hadoop.yarn.webapp.BadRequestException",
    "NotFoundException": "org.apache.hadoop.yarn.webapp.NotFoundException",
    "ForbiddenException": "org.apache.hadoop.yarn.webapp.ForbiddenException",
    "IllegalArgumentException": "java.lang.IllegalArgumentException",
    "WebApplicationException": "javax.ws.rs.WebApplicationException",
    "YarnException": "org.apache.hadoop.yarn.exceptions.YarnException",
    "InvalidResourceRequestException": "org.apache.hadoop.yarn.exceptions.InvalidResourceRequestException",
    "ApplicationNotFoundException": "org.apache.hadoop.yarn.exceptions.ApplicationNotFoundException",
    "ApplicationAttemptNotFoundException": "org.apache.hadoop.yarn.exceptions.ApplicationAttemptNotFoundException",
    "InvalidApplicationMasterRequestException": "org.apache.hadoop.yarn.exceptions.InvalidApplicationMasterRequestException",
    "ApplicationMasterNotRegisteredException": "org.apache.hadoop.yarn.exceptions.ApplicationMasterNotRegisteredException",
    "InvalidContainerException": "org.apache.hadoop.yarn.exceptions.InvalidContainerException",
    "Exception": "java.lang.Exception",
}


class HttpError(Exception):
    """Raised by handlers; becomes a RemoteException JSON body with this status."""

    def __init__(self, status: int, exception: str, message: str):
        super().__init__(message)
        self.status = status
        self.exception = exception
        self.message = message

    def body(self) -> dict:
        return {
            "RemoteException": {
                "exception": self.exception,
                "message": self.message,
                "javaClassName": JAVA_CLASSES.get(self.exception, "java.lang.Exception"),
            }
        }


def bad_request(message: str) -> HttpError:
    return HttpError(400, "BadRequestException", message)


def not_found(message: str) -> HttpError:
    return HttpError(404, "NotFoundException", message)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    peer: str = ""

    def json(self) -> dict:
        if not self.body:
            raise bad_request("The request has no JSON body")
        try:
            value = json.loads(self.body)
        except ValueError as e:
            raise bad_request(f"The request body is not valid JSON: {e}") from None
        if not isinstance(value, dict):
            raise bad_request("The request body must be a JSON object")
        return value


@dataclass
class Response:
    status: int = 200
    body: object = None  # dict/list -> JSON, bytes/str -> as is
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        if self.body is None:
            payload = b""
        elif isinstance(self.body, bytes):
            payload = self.body
        elif isinstance(self.body, str):
            payload = self.body.encode()
        else:
            payload = json.dumps(self.body).encode()
        head = [f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Status')}"]
        headers = {"Content-Type": self.content_type, "Content-Length": str(len(payload))}
        headers.update(self.headers)
        head += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


Handler = Callable[[Request], Awaitable[Response]]


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    line = await reader.readline()
    if not line:
        return None
    try:
        method, target, _version = line.decode("latin-1").strip().split(" ", 2)
    except ValueError:
        raise HttpError(400, "BadRequestException", "malformed request line") from None
    headers: dict[str, str] = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, value = h.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    if length > MAX_BODY:
        raise HttpError(413, "BadRequestException", "request body too large")
    body = await reader.readexactly(length) if length else b""
    parsed = urllib.parse.urlsplit(target)
    query = {
        k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()
    }
    return Request(method.upper(), urllib.parse.unquote(parsed.path), query, headers, body)


async def serve(handler: Handler, host: str, port: int) -> asyncio.Server:
    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while True:
                try:
                    req = await _read_request(reader)
                except HttpError as e:
                    writer.write(
                        Response(e.status, e.body(), headers={"Connection": "close"}).encode()
                    )
                    break
                except (asyncio.IncompleteReadError, ValueError):
                    break
                if req is None:
                    break
                req.peer = peer[0] if peer else ""
                try:
                    resp = await handler(req)
                except HttpError as e:
                    resp = Response(e.status, e.body())
                except Exception as e:  # the server keeps serving whatever one request did
                    log.exception("error handling %s %s", req.method, req.path)
                    resp = Response(
                        500,
                        HttpError(
                            500, "WebApplicationException", f"{type(e).__name__}: {e}"
                        ).body(),
                    )
                close = req.headers.get("connection", "").lower() == "close"
                if close:
                    resp.headers["Connection"] = "close"
                writer.write(resp.encode())
                await writer.drain()
                if close:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(on_client, host, port, reuse_address=True)


class RpcError(Exception):
    """A JSON RPC answered with a RemoteException (or the peer could not be reached)."""

    def __init__(self, exception: str, message: str, status: int = 0):
        super().__init__(f"{exception}: {message}")
        self.exception = exception
        self.message = message
        self.status = status


def call(
    url: str, body: dict | None = None, *, method: str | None = None, timeout: float = 10.0
) -> dict:
    """POST (or GET when body is None) JSON to url and return the decoded answer."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method or ("POST" if data is not None else "GET")
    )
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            info = json.loads(raw)["RemoteException"]
            raise RpcError(info["exception"], info["message"], e.code) from None
        except (ValueError, KeyError, TypeError):
            raise RpcError("HTTPError", f"{e.code} {raw[:200]!r}", e.code) from None
    except (urllib.error.URLError, OSError) as e:
        raise RpcError("ConnectException", f"{url}: {e}") from None
    return json.loads(raw) if raw else {}
