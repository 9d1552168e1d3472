"""Resource localization (Hadoop's ResourceLocalizationService): a container's local
resources copied into its work directory before it starts, from WebHDFS, hdfs:// (through
the NameNode's WebHDFS address), http(s) or a local file, each checked against the size
the submitter recorded."""

from __future__ import annotations

import urllib.parse
import urllib.request
from pathlib import Path

from ..hadoop.webclient import WebHdfsClient
from .conf import Configuration
from .nmcontainer import SAFE_ID, NMContainer


def localize(conf: Configuration, c: NMContainer, name: str, res: dict) -> None:
    """Fetch local resource `name` (a LocalResource: url/resource, size) into c's work dir."""
    if not SAFE_ID.match(name):
        raise ValueError(f"invalid local resource name {name!r}")
    url = str(res.get("resource") or res.get("url") or "")
    target = c.work_dir / name
    u = urllib.parse.urlsplit(url)
    if u.scheme in ("webhdfs", "swebhdfs"):
        data = WebHdfsClient(url, user=c.user).read_bytes(u.path)
    elif u.scheme == "hdfs":
        nn = conf.get("dfs.namenode.http-address")
        if not nn:
            raise ValueError(
                f"{url}: hdfs:// resources need dfs.namenode.http-address in hdfs-site.xml"
            )
        data = WebHdfsClient(nn, user=c.user).read_bytes(u.path)
    elif u.scheme in ("http", "https"):
        with urllib.request.urlopen(url, timeout=60) as r:
            data = r.read()
    elif u.scheme in ("file", ""):
        data = Path(u.path).read_bytes()
    else:
        raise ValueError(f"{url}: unsupported resource scheme {u.scheme!r}")
    size = res.get("size")
    if size not in (None, -1, "-1") and int(size) != len(data):
        raise ValueError(
            f"Resource {url} changed on src filesystem (expected size {size}, was {len(data)})"
        )
    target.write_bytes(data)
