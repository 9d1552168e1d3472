"""The one WebHDFS client of racklab, on the standard library (http.client): for the
HDFS shell, the deployer and benchmarks, and for YARN's NodeManagers, ApplicationMasters
and MapReduce tasks, which run inside YARN containers and so need nothing beyond the
standard library (the `hdfs` package is a test-only dependency; MapReduce also needs
GETFILEBLOCKLOCATIONS, which it does not wrap).

Speaks Hadoop's WebHDFS REST API: data operations get a 307 from the NameNode to a
DataNode, followed here explicitly; errors come back as Hadoop's exception classes
rebuilt from RemoteException replies (lab.services.hadoop.errors), an unreachable daemon
as ConnectException. Connections are kept alive, one per thread and daemon.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

from . import errors

CHUNK = 1 << 20
NAMENODE_HTTP = 9870


def parse_uri(uri: str) -> tuple[str, str]:
    """'webhdfs://host:9870/a/b' or 'http://host:9870' -> ('http://host:9870', '/a/b')."""
    u = urlsplit(uri)
    if u.scheme not in ("webhdfs", "http", "swebhdfs", "https"):
        raise ValueError(f"{uri}: expected a webhdfs://host:port/path URI")
    scheme = "https" if u.scheme in ("swebhdfs", "https") else "http"
    return f"{scheme}://{u.netloc}", u.path or "/"


class WebHdfsClient:
    def __init__(self, url: str, user: str | None = None, timeout: float = 120.0) -> None:
        """url: host:port, http://host:port or webhdfs://host:port[/path]."""
        if "://" not in url:
            url = "http://" + url
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or NAMENODE_HTTP
        self.url = f"http://{self.host}:{self.port}"
        self.user = user
        self.timeout = timeout
        # http.client connections are not thread-safe: an ApplicationMaster reads
        # splits from several threads, so each thread keeps its own.
        self._local = threading.local()

    # ------------------------------------------------------------ plumbing
    @property
    def _conns(self) -> dict[tuple[str, int], http.client.HTTPConnection]:
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        return conns

    def _send(self, method: str, host: str, port: int, target: str, body=None, headers=None):
        for attempt in (0, 1):
            conn = self._conns.get((host, port))
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
                self._conns[(host, port)] = conn
            try:
                conn.request(method, target, body=body, headers=headers or {})
                return conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive connection the server closed meanwhile: one fresh try,
                # unless the body was a stream already partly sent.
                self._drop(host, port)
                if attempt or (body is not None and not isinstance(body, bytes | bytearray)):
                    raise errors.ConnectException(f"{host}:{port}: connection lost") from None
            except (OSError, http.client.HTTPException) as exc:
                self._drop(host, port)
                raise errors.ConnectException(f"{host}:{port}: {exc}") from None
        raise AssertionError("unreachable")

    def _drop(self, host: str, port: int) -> None:
        conn = self._conns.pop((host, port), None)
        if conn is not None:
            conn.close()

    def _target(self, path: str, op: str, params: dict) -> str:
        if not path.startswith("/"):
            path = "/" + path
        q = {"op": op}
        if self.user:
            q["user.name"] = self.user
        q.update(
            {
                k: str(v).lower() if isinstance(v, bool) else v
                for k, v in params.items()
                if v is not None
            }
        )
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

    def call(self, method: str, path: str, op: str, **params) -> dict:
        """One operation answered by the NameNode itself, its JSON reply."""
        target = self._target(path, op, params)
        resp = self._check(self._send(method, self.host, self.port, target))
        data = resp.read()
        return json.loads(data) if data else {}

    def _redirected(self, method: str, path: str, op: str, params: dict) -> tuple[str, int, str]:
        target = self._target(path, op, params)
        resp = self._check(self._send(method, self.host, self.port, target))
        resp.read()
        if resp.status != 307:
            raise errors.IOException(f"{op}: expected a 307 redirect, got {resp.status}")
        loc = urlsplit(resp.getheader("Location"))
        return loc.hostname, loc.port, loc.path + "?" + loc.query

    # ------------------------------------------------------------ metadata
    def status(self, path: str, strict: bool = True) -> dict | None:
        """A FileStatus; with strict=False, None for a path that does not exist."""
        try:
            return self.call("GET", path, "GETFILESTATUS")["FileStatus"]
        except errors.FileNotFoundException:
            if strict:
                raise
            return None

    def list(self, path: str) -> list[dict]:
        return self.call("GET", path, "LISTSTATUS")["FileStatuses"]["FileStatus"]

    def walk_files(self, path: str) -> list[tuple[str, dict]]:
        """Every file under path (or path itself), skipping hidden _ and . names as
        MapReduce's FileInputFormat does."""
        st = self.status(path, strict=False)
        if st is None:
            return []
        if st["type"] == "FILE":
            return [(path, st)]
        found = []
        for child in sorted(self.list(path), key=lambda s: s["pathSuffix"]):
            name = child["pathSuffix"]
            if name.startswith(("_", ".")):
                continue
            full = path.rstrip("/") + "/" + name
            if child["type"] == "DIRECTORY":
                found += self.walk_files(full)
            else:
                found.append((full, child))
        return found

    def mkdirs(self, path: str, permission: str | None = None) -> bool:
        return self.call("PUT", path, "MKDIRS", permission=permission)["boolean"]

    def delete(self, path: str, recursive: bool = False) -> bool:
        return self.call("DELETE", path, "DELETE", recursive=recursive)["boolean"]

    def rename(self, src: str, dst: str) -> bool:
        return self.call("PUT", src, "RENAME", destination=dst)["boolean"]

    def set_replication(self, path: str, replication: int) -> bool:
        return self.call("PUT", path, "SETREPLICATION", replication=replication)["boolean"]

    def set_permission(self, path: str, permission: str) -> None:
        self.call("PUT", path, "SETPERMISSION", permission=permission)

    def set_owner(self, path: str, owner: str | None = None, group: str | None = None) -> None:
        self.call("PUT", path, "SETOWNER", owner=owner, group=group)

    def set_times(self, path: str, mtime: int = -1, atime: int = -1) -> None:
        """Milliseconds since the epoch; -1 leaves that time as it is."""
        self.call("PUT", path, "SETTIMES", modificationtime=mtime, accesstime=atime)

    def checksum(self, path: str) -> dict:
        """GETFILECHECKSUM (the NameNode sends it to a DataNode): algorithm, bytes, length."""
        host, port, target = self._redirected("GET", path, "GETFILECHECKSUM", {})
        resp = self._check(self._send("GET", host, port, target))
        return json.loads(resp.read())["FileChecksum"]

    def content_summary(self, path: str) -> dict:
        return self.call("GET", path, "GETCONTENTSUMMARY")["ContentSummary"]

    @property
    def uri(self) -> str:
        return f"webhdfs://{self.host}:{self.port}"

    def trash_interval(self) -> int:
        """GETSERVERDEFAULTS' fs.trash.interval in minutes (0: no trash)."""
        return self.call("GET", "/", "GETSERVERDEFAULTS")["FsServerDefaults"]["trashInterval"]

    def set_quota(self, path: str, namespace: int | None, space: int | None) -> None:
        """SETQUOTA: a count of names, bytes with replicas; -1 clears, None leaves as is."""
        self.call("PUT", path, "SETQUOTA", namespacequota=namespace, storagespacequota=space)

    def snapshot_op(self, op: str, path: str, **params) -> dict:
        """ALLOWSNAPSHOT, DISALLOWSNAPSHOT, CREATESNAPSHOT (snapshotname; -> {"Path"}),
        RENAMESNAPSHOT (oldsnapshotname, snapshotname), DELETESNAPSHOT (snapshotname)."""
        return self.call("DELETE" if op == "DELETESNAPSHOT" else "PUT", path, op, **params)

    # ACLs: specs and entries in Hadoop's text form (user:bob:r-x, default:group::r-x).
    def acl_status(self, path: str) -> dict:
        """{owner, group, stickyBit, permission (octal text), entries}."""
        return self.call("GET", path, "GETACLSTATUS")["AclStatus"]

    def acl_change(self, path: str, op: str, spec: str | None = None) -> None:
        """SETACL, MODIFYACLENTRIES, REMOVEACLENTRIES (with an aclspec), REMOVEDEFAULTACL,
        REMOVEACL."""
        self.call("PUT", path, op, aclspec=spec)

    def block_locations(self, path: str, offset: int, length: int) -> list[dict]:
        """[{offset, length, hosts, names, topologyPaths}] from GETFILEBLOCKLOCATIONS."""
        data = self.call("GET", path, "GETFILEBLOCKLOCATIONS", offset=offset, length=length)
        items = (data.get("BlockLocations") or {}).get("BlockLocation") or []
        return items if isinstance(items, list) else [items]

    def replica_host(self, path: str, offset: int) -> str | None:
        """The DataNode the NameNode sends an OPEN at offset to: a host holding that block."""
        target = self._target(path, "OPEN", {"offset": offset, "length": 1})
        resp = self._check(self._send("GET", self.host, self.port, target))
        resp.read()
        loc = resp.getheader("Location") if resp.status == 307 else None
        return urlsplit(loc).hostname if loc else None

    # ------------------------------------------------------------ data
    def write(
        self,
        path: str,
        data: bytes | Iterable[bytes] | Path,
        overwrite: bool = False,
        replication: int | None = None,
        blocksize: int | None = None,
        append: bool = False,
        length: int | None = None,
    ) -> None:
        """data: bytes; a local file, streamed from disk; or an iterable of bytes, sent
        chunked, or with Content-Length when `length` (the iterable's total) is given."""
        if append:
            host, port, target = self._redirected("POST", path, "APPEND", {})
            method = "POST"
        else:
            params = {"overwrite": overwrite, "replication": replication, "blocksize": blocksize}
            host, port, target = self._redirected("PUT", path, "CREATE", params)
            method = "PUT"
        headers = {"Content-Type": "application/octet-stream"}
        if isinstance(data, Path):
            with open(data, "rb") as f:
                headers["Content-Length"] = str(data.stat().st_size)
                resp = self._send(method, host, port, target, body=f, headers=headers)
                self._check(resp).read()
            return
        if isinstance(data, bytes | bytearray | memoryview):
            body = bytes(data)
        else:
            # No length given: http.client sends an iterable body with chunked encoding.
            body = _chunked(data)
            if length is not None:
                headers["Content-Length"] = str(length)
        self._check(self._send(method, host, port, target, body=body, headers=headers)).read()

    def read(self, path: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """The file's bytes as they arrive from the DataNode, in pieces of at most CHUNK."""
        host, port, target = self._redirected(
            "GET", path, "OPEN", {"offset": offset or None, "length": length}
        )
        resp = self._check(self._send("GET", host, port, target))
        done = False
        try:
            while piece := resp.read(CHUNK):
                yield piece
            done = True
        finally:
            if not done:  # a reader that stopped early leaves the body unread: no reuse
                self._drop(host, port)

    def read_bytes(self, path: str, offset: int = 0, length: int | None = None) -> bytes:
        return b"".join(self.read(path, offset, length))

    # ------------------------------------------------------------ NameNode pages
    def jmx(self, name: str) -> dict:
        query = urlencode({"qry": f"Hadoop:service=NameNode,name={name}"})
        resp = self._check(self._send("GET", self.host, self.port, "/jmx?" + query))
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
