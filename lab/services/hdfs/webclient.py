"""A small synchronous WebHDFS client on the standard library (http.client), for racklab's
own tools (`lab hdfs ...`, the benchmark): follows the NameNode's 307 to a DataNode and
raises Hadoop's exception classes from RemoteException replies."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterable, Iterator
from urllib.parse import quote, urlencode, urlsplit

from . import errors

CHUNK = 1 << 20


class WebHdfsClient:
    def __init__(self, url: str, user: str | None = None, timeout: float = 120.0) -> None:
        if "://" not in url:
            url = "http://" + url
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 9870
        self.user = user
        self.timeout = timeout
        self._conns: dict[tuple[str, int], http.client.HTTPConnection] = {}

    # ------------------------------------------------------------ plumbing
    def _conn(self, host: str, port: int) -> http.client.HTTPConnection:
        conn = self._conns.get((host, port))
        if conn is None:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
            self._conns[(host, port)] = conn
        return conn

    def _send(self, method: str, host: str, port: int, target: str, body=None, headers=None):
        for attempt in (0, 1):
            conn = self._conn(host, port)
            try:
                conn.request(method, target, body=body, headers=headers or {})
                return conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                self._conns.pop((host, port), None)
                if attempt or (body is not None and not isinstance(body, bytes | bytearray)):
                    raise
        raise AssertionError("unreachable")

    def _target(self, path: str, op: str, params: dict) -> str:
        q = {"op": op}
        if self.user:
            q["user.name"] = self.user
        q.update({k: v for k, v in params.items() if v is not None})
        return f"/webhdfs/v1{quote(path)}?{urlencode(q)}"

    @staticmethod
    def _check(resp: http.client.HTTPResponse) -> http.client.HTTPResponse:
        if resp.status >= 400:
            data = resp.read()
            try:
                raise errors.from_json(json.loads(data))
            except ValueError:
                raise errors.IOException(f"HTTP {resp.status}: {data[:200]!r}") from None
        return resp

    def _json(self, method: str, path: str, op: str, **params) -> dict:
        resp = self._check(self._send(method, self.host, self.port, self._target(path, op, params)))
        data = resp.read()
        return json.loads(data) if data else {}

    def _redirected(self, method: str, path: str, op: str, params: dict) -> tuple[str, int, str]:
        resp = self._check(self._send(method, self.host, self.port, self._target(path, op, params)))
        resp.read()
        if resp.status != 307:
            raise errors.IOException(f"{op}: expected a 307 redirect, got {resp.status}")
        loc = urlsplit(resp.getheader("Location"))
        return loc.hostname, loc.port, loc.path + "?" + loc.query

    # ------------------------------------------------------------ operations
    def status(self, path: str) -> dict:
        return self._json("GET", path, "GETFILESTATUS")["FileStatus"]

    def list(self, path: str) -> list[dict]:
        return self._json("GET", path, "LISTSTATUS")["FileStatuses"]["FileStatus"]

    def mkdirs(self, path: str, permission: str | None = None) -> bool:
        return self._json("PUT", path, "MKDIRS", permission=permission)["boolean"]

    def delete(self, path: str, recursive: bool = False) -> bool:
        return self._json("DELETE", path, "DELETE", recursive=str(recursive).lower())["boolean"]

    def rename(self, src: str, dst: str) -> bool:
        return self._json("PUT", src, "RENAME", destination=dst)["boolean"]

    def set_replication(self, path: str, replication: int) -> bool:
        return self._json("PUT", path, "SETREPLICATION", replication=replication)["boolean"]

    def set_permission(self, path: str, permission: str) -> None:
        self._json("PUT", path, "SETPERMISSION", permission=permission)

    def set_owner(self, path: str, owner: str | None = None, group: str | None = None) -> None:
        self._json("PUT", path, "SETOWNER", owner=owner, group=group)

    def content_summary(self, path: str) -> dict:
        return self._json("GET", path, "GETCONTENTSUMMARY")["ContentSummary"]

    def write(
        self,
        path: str,
        data: bytes | Iterable[bytes],
        overwrite: bool = False,
        replication: int | None = None,
        blocksize: int | None = None,
        append: bool = False,
        length: int | None = None,
    ) -> None:
        """data: bytes, or an iterable of bytes sent chunked, or with Content-Length when
        `length` (the iterable's total) is given."""
        if append:
            host, port, target = self._redirected("POST", path, "APPEND", {})
            method = "POST"
        else:
            params = {
                "overwrite": str(overwrite).lower(),
                "replication": replication,
                "blocksize": blocksize,
            }
            host, port, target = self._redirected("PUT", path, "CREATE", params)
            method = "PUT"
        if isinstance(data, bytes | bytearray | memoryview):
            body, headers = bytes(data), {"Content-Type": "application/octet-stream"}
        else:
            # No length given: http.client sends an iterable body with chunked encoding.
            body = _chunked(data)
            headers = {"Content-Type": "application/octet-stream"}
            if length is not None:
                headers["Content-Length"] = str(length)
        resp = self._check(self._send(method, host, port, target, body=body, headers=headers))
        resp.read()

    def read(self, path: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        host, port, target = self._redirected(
            "GET", path, "OPEN", {"offset": offset, "length": length}
        )
        resp = self._check(self._send("GET", host, port, target))
        while True:
            piece = resp.read(CHUNK)
            if not piece:
                break
            yield piece

    def jmx(self, name: str) -> dict:
        resp = self._check(
            self._send(
                "GET",
                self.host,
                self.port,
                "/jmx?" + urlencode({"qry": f"Hadoop:service=NameNode,name={name}"}),
            )
        )
        return json.loads(resp.read())["beans"][0]

    def fsck(self, path: str, as_json: bool = False) -> str | dict:
        q = {"path": path}
        if as_json:
            q["format"] = "json"
        resp = self._check(self._send("GET", self.host, self.port, "/fsck?" + urlencode(q)))
        data = resp.read()
        return json.loads(data) if as_json else data.decode()

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


def _chunked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    # Each piece becomes one chunk; an empty one would read as the end of the body.
    for p in pieces:
        if p:
            yield p
