"""YARN's web services on hadoop-common's HTTP server, and a JSON client on the
standard library.

Handlers take a whole JSON body and answer a Response whose body is JSON-able; errors are
rendered the way Hadoop's web services render them:
``{"RemoteException": {"exception", "message", "javaClassName"}}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape as xml_escape

from ..hadoop import fields
from ..hadoop import http as hhttp

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024 * 1024

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
    "UndeclaredThrowableException": "java.lang.reflect.UndeclaredThrowableException",
    "YarnRuntimeException": "org.apache.hadoop.yarn.exceptions.YarnRuntimeException",
    "Exception": "java.lang.Exception",
}


# Hadoop's web-app exceptions made from a String wrap it in a java.lang.Exception, and
# Hadoop 3.3's GenericExceptionHandler reports getMessage(), i.e. that Exception's
# toString(): "java.lang.Exception: app with id: ... not found", as the REST docs show.
STRING_WRAPPERS = ("BadRequestException", "NotFoundException", "ForbiddenException")


class HttpError(Exception):
    """Raised by handlers; becomes a RemoteException JSON body with this status.

    cause: the Java class of the exception a web-app exception wraps (its message then
    reads "<cause>: <message>"); see web_service() for the ones made from a String."""

    def __init__(self, status: int, exception: str, message: str, cause: str | None = None):
        super().__init__(message)
        self.status = status
        self.exception = exception
        self.message = f"{cause}: {message}" if cause else message
        self.wrapped = cause is not None

    def web_service(self) -> HttpError:
        """As Hadoop's REST resources report it (RM, NM and MapReduce AM web services)."""
        if self.exception in STRING_WRAPPERS and not self.wrapped:
            self.message, self.wrapped = f"java.lang.Exception: {self.message}", True
        return self

    def body(self) -> dict:
        return {
            "RemoteException": {
                "exception": self.exception,
                "message": self.message,
                "javaClassName": JAVA_CLASSES.get(self.exception, "java.lang.Exception"),
            }
        }


def bad_request(message: str, cause: str | None = None) -> HttpError:
    return HttpError(400, "BadRequestException", message, cause)


def not_found(message: str, cause: str | None = None) -> HttpError:
    return HttpError(404, "NotFoundException", message, cause)


def not_allowed(method: str, path: str) -> HttpError:
    """A method the resource does not take (Jersey's 405)."""
    return HttpError(405, "WebApplicationException", f"{method} is not allowed on {path}")


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
            value = fields.parse_json(self.body, "The request body")
        except fields.FieldError as e:
            raise bad_request(str(e)) from None
        if not isinstance(value, dict):
            raise bad_request("The request body must be a JSON object")
        return value


@dataclass
class Response:
    status: int = 200
    body: object = None  # dict/list -> JSON, bytes/str -> as is
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # the XML root element of a resource whose JSON has none ({"state": "KILLED"} is
    # <appstate><state>KILLED</state></appstate>)
    xml_root: str | None = None

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


Handler = Callable[[Request], Awaitable[Response]]


def plain(status: int, message: str) -> Response:
    """Response.status(s).entity(message): the refusals Hadoop's web services answer with
    a bare message instead of a RemoteException. Jersey sends a String entity as the
    first type the resource produces, application/json."""
    return Response(status, message, "application/json")


def to_xml(obj: object, root: str | None = None) -> bytes:
    """A YARN REST answer as its XML form (Accept: application/xml): Hadoop renders both
    from the same JAXB objects, so {"apps": {"app": [a, b]}} is <apps><app>a</app><app>b
    </app></apps>, a null is an empty element, and a list repeats its element."""

    def render(name: str, value: object, out: list[str]) -> None:
        if isinstance(value, list):
            for item in value:
                render(name, item, out)
        elif value is None:
            out.append(f"<{name}/>")
        elif isinstance(value, dict):
            out.append(f"<{name}>")
            for k, v in value.items():
                render(k, v, out)
            out.append(f"</{name}>")
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            out.append(f"<{name}>{xml_escape(text)}</{name}>")

    out = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>']
    if root is not None:
        render(root, obj, out)
    elif isinstance(obj, dict) and len(obj) == 1:
        ((name, value),) = obj.items()
        render(name, value, out)
    else:
        render("response", obj, out)
    return "".join(out).encode()


def wants_xml(headers: dict[str, str]) -> bool:
    accept = headers.get("accept", "")
    return "application/xml" in accept and "application/json" not in accept


async def serve(
    handler: Handler, host: str, port: int, idle_timeout: float = hhttp.IDLE_TIMEOUT
) -> asyncio.Server:
    """Serve a YARN handler on hadoop-common's HTTP server: whole JSON bodies (up to
    MAX_BODY, else 413), Hadoop's RemoteException for errors, XML on request."""

    async def adapt(raw: hhttp.Request) -> hhttp.Response:
        req = Request(raw.method, raw.path, raw.query, raw.headers, raw.body or b"", raw.peer)
        try:
            resp = await handler(req)
        except HttpError as e:
            resp = Response(e.status, e.body())
        except Exception as e:  # the server keeps serving whatever one request did
            log.exception("error handling %s %s", req.method, req.path)
            resp = Response(
                500, HttpError(500, "WebApplicationException", f"{type(e).__name__}: {e}").body()
            )
        content_type, body = resp.content_type, resp.payload()
        if content_type == "application/json" and wants_xml(raw.headers):
            content_type, body = "application/xml", to_xml(resp.body, resp.xml_root)
        return hhttp.Response(resp.status, {"Content-Type": content_type, **resp.headers}, body)

    return await hhttp.serve(host, port, adapt, buffer_body=MAX_BODY, idle_timeout=idle_timeout)


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
