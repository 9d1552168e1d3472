"""A small WebHDFS client on the standard library, for the NodeManager and MapReduce.

Written here rather than using the ``hdfs`` package because it runs inside YARN
containers and NodeManagers, which should need nothing beyond the standard
library (``hdfs`` pulls in requests and docopt and is a test-only dependency of
the project), and because MapReduce needs GETFILEBLOCKLOCATIONS, which ``hdfs``
does not wrap. Speaks Hadoop's WebHDFS REST API: data operations get a 307 from
the NameNode to a DataNode, followed here explicitly for PUT/POST.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path


class WebHdfsError(Exception):
    def __init__(self, exception: str, message: str, status: int = 0):
        super().__init__(f"{exception}: {message}")
        self.exception = exception
        self.message = message
        self.status = status


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def parse_uri(uri: str) -> tuple[str, str]:
    """'webhdfs://host:9870/a/b' or 'http://host:9870' -> ('http://host:9870', '/a/b')."""
    u = urllib.parse.urlsplit(uri)
    if u.scheme not in ("webhdfs", "http", "swebhdfs", "https"):
        raise ValueError(f"{uri}: expected a webhdfs://host:port/path URI")
    scheme = "https" if u.scheme in ("swebhdfs", "https") else "http"
    return f"{scheme}://{u.netloc}", u.path or "/"


class WebHdfs:
    def __init__(self, base: str, user: str = "root", timeout: float = 60.0):
        if base.startswith(("webhdfs://", "swebhdfs://")):
            base, _ = parse_uri(base)
        if "://" not in base:
            base = "http://" + base
        self.base = base.rstrip("/")
        self.user = user
        self.timeout = timeout

    def _url(self, path: str, op: str, **params) -> str:
        if not path.startswith("/"):
            path = "/" + path
        q = {"op": op, "user.name": self.user}
        q.update(
            {
                k: str(v).lower() if isinstance(v, bool) else str(v)
                for k, v in params.items()
                if v is not None
            }
        )
        return f"{self.base}/webhdfs/v1{urllib.parse.quote(path)}?{urllib.parse.urlencode(q)}"

    def _do(
        self, method: str, url: str, data: bytes | None = None, follow: bool = True
    ) -> tuple[int, bytes, dict]:
        for _ in range(5):
            req = urllib.request.Request(url, data=data, method=method)
            if data is not None:
                req.add_header("Content-Type", "application/octet-stream")
            try:
                with _opener.open(req, timeout=self.timeout) as resp:
                    return resp.status, resp.read(), dict(resp.headers)
            except urllib.error.HTTPError as e:
                body = e.read()
                if e.code in (301, 302, 303, 307) and follow and e.headers.get("Location"):
                    url = e.headers["Location"]
                    continue
                try:
                    info = json.loads(body)["RemoteException"]
                    raise WebHdfsError(
                        info.get("exception", "?"), info.get("message", ""), e.code
                    ) from None
                except (ValueError, KeyError, TypeError):
                    raise WebHdfsError("HTTPError", f"{e.code} {body[:200]!r}", e.code) from None
            except (urllib.error.URLError, OSError) as e:
                raise WebHdfsError("ConnectException", f"{url}: {e}") from None
        raise WebHdfsError("IOException", f"too many redirects for {url}")

    def _json(self, method: str, path: str, op: str, **params) -> dict:
        _, body, _ = self._do(method, self._url(path, op, **params))
        return json.loads(body) if body else {}

    # -- metadata -------------------------------------------------------------
    def status(self, path: str) -> dict | None:
        try:
            return self._json("GET", path, "GETFILESTATUS")["FileStatus"]
        except WebHdfsError as e:
            if e.exception == "FileNotFoundException" or e.status == 404:
                return None
            raise

    def list(self, path: str) -> list[dict]:
        return self._json("GET", path, "LISTSTATUS")["FileStatuses"]["FileStatus"]

    def walk_files(self, path: str) -> list[tuple[str, dict]]:
        """Every file under path (or path itself), skipping hidden _ and . names as MapReduce does."""
        st = self.status(path)
        if st is None:
            return []
        if st["type"] == "FILE":
            return [(path, st)]
        out = []
        for child in sorted(self.list(path), key=lambda s: s["pathSuffix"]):
            name = child["pathSuffix"]
            if name.startswith(("_", ".")):
                continue
            full = path.rstrip("/") + "/" + name
            if child["type"] == "DIRECTORY":
                out += self.walk_files(full)
            else:
                out.append((full, child))
        return out

    def mkdirs(self, path: str) -> bool:
        return bool(self._json("PUT", path, "MKDIRS").get("boolean"))

    def rename(self, src: str, dst: str) -> bool:
        return bool(self._json("PUT", src, "RENAME", destination=dst).get("boolean"))

    def delete(self, path: str, recursive: bool = False) -> bool:
        return bool(self._json("DELETE", path, "DELETE", recursive=recursive).get("boolean"))

    def block_locations(self, path: str, offset: int, length: int) -> list[dict]:
        """[{offset, length, hosts, names, topologyPaths}] from GETFILEBLOCKLOCATIONS (Hadoop 3)."""
        data = self._json("GET", path, "GETFILEBLOCKLOCATIONS", offset=offset, length=length)
        locs = data.get("BlockLocations") or {}
        items = locs.get("BlockLocation") or []
        return items if isinstance(items, list) else [items]

    def replica_host(self, path: str, offset: int) -> str | None:
        """The DataNode the NameNode redirects an OPEN at offset to: a host holding that block."""
        url = self._url(path, "OPEN", offset=offset, length=1)
        try:
            with _opener.open(urllib.request.Request(url), timeout=self.timeout):
                return None  # served without a redirect: no DataNode to name
        except urllib.error.HTTPError as e:
            loc = e.headers.get("Location") if e.code == 307 else None
            e.read()
            return urllib.parse.urlsplit(loc).hostname if loc else None
        except (urllib.error.URLError, OSError) as e:
            raise WebHdfsError("ConnectException", f"{url}: {e}") from None

    # -- data -------------------------------------------------------------------
    def read(self, path: str, offset: int = 0, length: int | None = None) -> bytes:
        _, body, _ = self._do("GET", self._url(path, "OPEN", offset=offset or None, length=length))
        return body

    def write(
        self, path: str, data: bytes | Path, overwrite: bool = True, blocksize: int | None = None
    ) -> None:
        """Create path with data: bytes, or a local file streamed from disk."""
        # Step 1 to the NameNode without data, step 2 to the DataNode it redirects to.
        url = self._url(path, "CREATE", overwrite=overwrite, blocksize=blocksize)
        req = urllib.request.Request(url, method="PUT")
        try:
            with _opener.open(req, timeout=self.timeout) as resp:
                location = resp.headers.get("Location")
                if resp.status == 201:
                    return
        except urllib.error.HTTPError as e:
            body = e.read()
            location = e.headers.get("Location") if e.code == 307 else None
            if location is None:
                try:
                    info = json.loads(body)["RemoteException"]
                    raise WebHdfsError(
                        info.get("exception", "?"), info.get("message", ""), e.code
                    ) from None
                except (ValueError, KeyError, TypeError):
                    raise WebHdfsError("HTTPError", f"{e.code} {body[:200]!r}", e.code) from None
        except (urllib.error.URLError, OSError) as e:
            raise WebHdfsError("ConnectException", f"{url}: {e}") from None
        if not location:
            raise WebHdfsError("IOException", "CREATE was not redirected to a DataNode")
        if isinstance(data, Path):
            size = data.stat().st_size
            with open(data, "rb") as f:
                req = urllib.request.Request(location, data=f, method="PUT")
                req.add_header("Content-Type", "application/octet-stream")
                req.add_header("Content-Length", str(size))  # streamed, not held in memory
                try:
                    with _opener.open(req, timeout=self.timeout) as resp:
                        resp.read()
                except urllib.error.HTTPError as e:
                    raise WebHdfsError(
                        "HTTPError", f"{e.code} {e.read()[:200]!r}", e.code
                    ) from None
                except (urllib.error.URLError, OSError) as e:
                    raise WebHdfsError("ConnectException", f"{location}: {e}") from None
            return
        self._do("PUT", location, data=data, follow=False)
