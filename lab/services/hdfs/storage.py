"""The NameNode's metadata directory, laid out as Hadoop's NNStorage:

current/VERSION                      namespaceID, clusterID, blockpoolID, ...
current/seen_txid                    highest txid known to be written
current/fsimage_<txid> (+ .md5)      the namespace as of txid (JSON here, not protobuf)
current/edits_<first>-<last>         finalized edit-log segments, one JSON op per line
current/edits_inprogress_<first>     the open segment; each op is fsync'ed before its
                                     change is acknowledged to anybody
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from pathlib import Path

_IMAGE = re.compile(r"fsimage_(\d{19})$")
_FINAL = re.compile(r"edits_(\d{19})-(\d{19})$")
_INPROGRESS = re.compile(r"edits_inprogress_(\d{19})$")


def txname(txid: int) -> str:
    return f"{txid:019d}"


class NNStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.current = self.root / "current"

    # ------------------------------------------------------------ format / VERSION
    def is_formatted(self) -> bool:
        return (self.current / "VERSION").exists()

    def format(self, empty_image: dict) -> dict:
        self.current.mkdir(parents=True, exist_ok=True)
        version = {
            "namespaceID": str(secrets.randbelow(2**31 - 1) + 1),
            "clusterID": "CID-" + secrets.token_hex(16),
            "blockpoolID": f"BP-{secrets.randbelow(2**31)}-racklab-{int(time.time() * 1000)}",
            "cTime": str(int(time.time() * 1000)),
            "storageType": "NAME_NODE",
            "layoutVersion": "-66",
        }
        self.write_version(version)
        self.save_image(0, empty_image)
        self.write_seen_txid(0)
        return version

    def write_version(self, version: dict) -> None:
        text = "".join(f"{k}={v}\n" for k, v in version.items())
        _atomic_write(self.current / "VERSION", text.encode())

    def read_version(self) -> dict:
        out = {}
        for line in (self.current / "VERSION").read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                k, _, v = line.partition("=")
                out[k] = v
        return out

    def write_seen_txid(self, txid: int) -> None:
        _atomic_write(self.current / "seen_txid", f"{txid}\n".encode())

    # ------------------------------------------------------------ fsimage
    def images(self) -> list[int]:
        return sorted(
            int(m.group(1)) for p in self.current.iterdir() if (m := _IMAGE.match(p.name))
        )

    def save_image(self, txid: int, image: dict) -> Path:
        data = json.dumps(dict(image, txid=txid), separators=(",", ":")).encode()
        return self.store_image_bytes(txid, data)

    def store_image_bytes(self, txid: int, data: bytes) -> Path:
        path = self.current / f"fsimage_{txname(txid)}"
        _atomic_write(path, data)
        digest = hashlib.md5(data).hexdigest()
        _atomic_write(path.with_name(path.name + ".md5"), f"{digest} *{path.name}\n".encode())
        return path

    def image_path(self, txid: int) -> Path:
        return self.current / f"fsimage_{txname(txid)}"

    def read_image(self, txid: int) -> dict:
        """The fsimage of txid as stored; ValueError when its digest or JSON is wrong."""
        path = self.image_path(txid)
        data = path.read_bytes()
        md5 = path.with_name(path.name + ".md5")
        if md5.exists() and md5.read_text().split()[:1] != [hashlib.md5(data).hexdigest()]:
            raise ValueError(f"{path.name} does not match its MD5 file")
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"{path.name} is not a readable image: {exc}") from None

    def set_aside(self, txid: int) -> None:
        """Move an image that failed to load out of the way (kept for a post-mortem), so
        that neither the next start nor the secondary's next checkpoint starts from it."""
        path = self.image_path(txid)
        for p in (path, path.with_name(path.name + ".md5")):
            if p.exists():
                os.replace(p, p.with_name(p.name + ".corrupt"))

    def storage_info(self) -> str:
        """Hadoop's StorageInfo string, layoutVersion:namespaceID:cTime:clusterID: what a
        checkpointer must present to upload an image (ImageServlet's check)."""
        v = self.read_version()
        return ":".join(
            v.get(k, "") for k in ("layoutVersion", "namespaceID", "cTime", "clusterID")
        )

    # ------------------------------------------------------------ edit segments
    def segments(self) -> list[tuple[int, int | None, Path]]:
        """(first txid, last txid or None when in progress, path), in order."""
        out = []
        for p in self.current.iterdir():
            if m := _FINAL.match(p.name):
                out.append((int(m.group(1)), int(m.group(2)), p))
            elif m := _INPROGRESS.match(p.name):
                out.append((int(m.group(1)), None, p))
        return sorted(out, key=lambda s: s[0])

    def read_ops(self, after_txid: int) -> list[dict]:
        """Every logged op with txid > after_txid, in order. A torn last line of an
        in-progress segment was never synced, so never acknowledged: it is dropped."""
        ops: list[dict] = []
        for _first, last, path in self.segments():
            if last is not None and last <= after_txid:
                continue
            ops.extend(read_segment(path, after_txid))
        return ops

    def edits_bytes(self) -> int:
        return sum(p.stat().st_size for _, _, p in self.segments())

    def purge(self, images_retained: int, extra_edits: int) -> None:
        """NNStorageRetentionManager: keep the newest images and the edits they need."""
        images = self.images()
        for txid in images[:-images_retained] if images_retained > 0 else []:
            for p in (
                self.image_path(txid),
                self.image_path(txid).with_name(f"fsimage_{txname(txid)}.md5"),
            ):
                p.unlink(missing_ok=True)
        images = self.images()
        if not images:
            return
        purge_before = max(0, images[0] + 1 - extra_edits)
        for _first, last, path in self.segments():
            if last is not None and last < purge_before:
                path.unlink(missing_ok=True)


def read_segment(path: Path, after_txid: int = 0) -> list[dict]:
    ops = []
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                op = json.loads(line)
            except ValueError:
                break
            if op["txid"] > after_txid:
                ops.append(op)
    return ops


class EditLog:
    """The open segment. `log` returns only after the op is on disk (fsync)."""

    def __init__(self, storage: NNStorage, last_txid: int) -> None:
        self.storage = storage
        self.last_txid = last_txid
        self.segment_start = 0
        self.file = None

    def open_segment(self) -> None:
        # An in-progress segment from a crash is finalised at the last whole op it holds.
        for first, last, path in self.storage.segments():
            if last is None:
                ops = read_segment(path)
                if ops:
                    end = ops[-1]["txid"]
                    os.replace(path, path.with_name(f"edits_{txname(first)}-{txname(end)}"))
                else:
                    path.unlink()
        self.segment_start = self.last_txid + 1
        path = self.storage.current / f"edits_inprogress_{txname(self.segment_start)}"
        self.file = open(path, "ab", buffering=0)
        self.log({"op": "OP_START_LOG_SEGMENT"})

    def log(self, op: dict) -> int:
        self.last_txid += 1
        op = dict(op, txid=self.last_txid)
        self.file.write(json.dumps(op, separators=(",", ":")).encode() + b"\n")
        os.fsync(self.file.fileno())
        return self.last_txid

    def roll(self) -> int:
        """Finalize the open segment and start a new one; -> first txid of the new one."""
        self.log({"op": "OP_END_LOG_SEGMENT"})
        self.file.close()
        src = self.storage.current / f"edits_inprogress_{txname(self.segment_start)}"
        os.replace(
            src, src.with_name(f"edits_{txname(self.segment_start)}-{txname(self.last_txid)}")
        )
        self.storage.write_seen_txid(self.last_txid)
        self.open_segment()
        return self.segment_start

    def close(self) -> None:
        if self.file:
            self.file.close()
            self.file = None


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
