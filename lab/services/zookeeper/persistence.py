"""On-disk state: a transaction log and snapshots, under <dataDir>/racklab-v1/.

Log files log.<first zxid hex> hold records [u32 length][u32 crc32c][txn bytes]. A
write is acknowledged only after its record is fsynced. A record whose length runs
past the end of the file or whose checksum fails can only be the last one, torn by a
crash mid-write (it was never acknowledged): recovery cuts the file there.

Snapshots snapshot.<zxid hex> are written to a temporary name, fsynced and renamed,
so a snapshot file is either complete or absent; each also ends with a checksum.
The format is racklab's own (not Apache ZooKeeper's version-2 files), hence the
separate directory.
"""

from __future__ import annotations

import logging
import os
import struct

import crc32c

from .datatree import DataTree, Node
from .jute import Reader, Writer
from .proto import ACL
from .txn import Txn

log = logging.getLogger("zookeeper.persistence")

_HDR = struct.Struct(">II")
LOG_MAGIC = b"RLZKLOG1"
SNAP_MAGIC = b"RLZKSNP1"


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _zxid_of(name: str) -> int:
    return int(name.split(".", 1)[1], 16)


class TxnLog:
    def __init__(self, data_dir: str, prealloc: int = 16 * 1024 * 1024, force_sync: bool = True):
        self.dir = os.path.join(data_dir, "racklab-v1")
        os.makedirs(self.dir, exist_ok=True)
        self.f = None
        self.path = None
        # Like ZooKeeper's preAllocSize: the log file is grown in big zero-filled
        # steps, so an fdatasync after an append need not also commit a new file size.
        self.prealloc = prealloc
        self.force_sync = force_sync
        self.end = 0  # where the next record goes
        self.allocated = 0

    def _files(self, prefix: str) -> list[str]:
        names = [
            n for n in os.listdir(self.dir) if n.startswith(prefix + ".") and not n.endswith(".tmp")
        ]
        return sorted(names, key=_zxid_of)

    # --- reading ------------------------------------------------------------------

    def read(self, after_zxid: int) -> list[Txn]:
        """All logged txns with zxid > after_zxid, in order; cuts off a torn tail."""
        out: list[Txn] = []
        files = self._files("log")
        for i, name in enumerate(files):
            # A later file starting at or below after_zxid means this one is all older.
            if i + 1 < len(files) and _zxid_of(files[i + 1]) <= after_zxid + 1:
                continue
            path = os.path.join(self.dir, name)
            with open(path, "rb") as f:
                data = f.read()
            pos = len(LOG_MAGIC) if data.startswith(LOG_MAGIC) else None
            if pos is None:
                log.warning("log file %s has no header; discarding it", name)
                self._cut(path, 0)
                continue
            good = pos
            while pos + _HDR.size <= len(data):
                length, crc = _HDR.unpack_from(data, pos)
                if length == 0:
                    break  # preallocated zeros: the end of the records
                body = data[pos + _HDR.size : pos + _HDR.size + length]
                if len(body) < length or crc32c.crc32c(body) != crc:
                    break
                txn = Txn.decode(body)
                if txn.zxid > after_zxid:
                    out.append(txn)
                pos += _HDR.size + length
                good = pos
            if good < len(data) and path != self.path:
                if any(data[good : good + 4096]):
                    log.warning(
                        "log %s: torn record at byte %d (never acknowledged); cutting it off",
                        name,
                        good,
                    )
                self._cut(path, good)
        return out

    def _cut(self, path: str, size: int) -> None:
        with open(path, "r+b") as f:
            f.truncate(size if size >= len(LOG_MAGIC) else 0)
            f.flush()
            os.fsync(f.fileno())

    # --- writing ------------------------------------------------------------------

    def roll(self, next_zxid: int) -> None:
        """Start a new log file whose first record will be next_zxid. (After recovery
        a file of that name can only hold a header: read() cut everything after.)"""
        self.close()
        self.path = os.path.join(self.dir, f"log.{next_zxid:x}")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        self.f = os.fdopen(fd, "r+b")
        self.f.seek(0, os.SEEK_END)
        self.end = self.f.tell()
        if self.end == 0:
            self.f.write(LOG_MAGIC)
            self.end = len(LOG_MAGIC)
        self.allocated = self.end
        self._grow(0)
        self.f.flush()
        os.fsync(self.f.fileno())
        _fsync_dir(self.dir)

    def _grow(self, need: int) -> None:
        if self.end + need <= self.allocated or self.prealloc <= 0:
            return
        size = self.end + need + self.prealloc
        try:
            os.posix_fallocate(self.f.fileno(), 0, size)
        except OSError:
            # Filesystems without fallocate: zeros written once, same effect.
            self.f.seek(size - 1)
            self.f.write(b"\0")
        self.allocated = size
        self.f.seek(self.end)

    def write(self, txns: list[Txn]) -> None:
        """Append records (not yet durable: call sync())."""
        if self.f is None:
            self.roll(txns[0].zxid)
        parts = []
        for t in txns:
            body = t.encode()
            parts.append(_HDR.pack(len(body), crc32c.crc32c(body)))
            parts.append(body)
        data = b"".join(parts)
        grew = self.end + len(data) > self.allocated
        self._grow(len(data))
        self.f.write(data)
        self.end += len(data)
        self.grew = grew

    def sync(self) -> None:
        self.f.flush()
        if not self.force_sync:
            return  # forceSync=no: the operator chose speed over durability
        if getattr(self, "grew", True):
            os.fsync(self.f.fileno())  # the file size changed: metadata too
        else:
            os.fdatasync(self.f.fileno())

    def truncate_after(self, zxid: int) -> None:
        """Drop every logged txn above zxid (a follower told TRUNC by its leader)."""
        txns = [t for t in self.read(-1) if t.zxid <= zxid]
        if self.f is not None:
            self.f.close()
            self.f = None
        for name in self._files("log"):
            os.unlink(os.path.join(self.dir, name))
        if txns:
            self.roll(txns[0].zxid)
            self.write(txns)
            self.sync()

    def close(self) -> None:
        if self.f is not None:
            # Give back the unused preallocated tail, so the file ends at its records.
            try:
                self.f.flush()
                self.f.truncate(self.end)
            except (OSError, ValueError):
                pass
            self.f.close()
            self.f = None

    # --- snapshots ------------------------------------------------------------------

    def save_snapshot(self, blob: bytes, zxid: int) -> str:
        path = os.path.join(self.dir, f"snapshot.{zxid:x}")
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(blob)
            f.write(struct.pack(">I", crc32c.crc32c(blob)))
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
        _fsync_dir(self.dir)
        return path

    def load_snapshot(self) -> tuple[bytes, int] | None:
        for name in reversed(self._files("snapshot")):
            with open(os.path.join(self.dir, name), "rb") as f:
                data = f.read()
            if len(data) < 4 or not data.startswith(SNAP_MAGIC):
                log.warning("snapshot %s is not a snapshot; skipping", name)
                continue
            blob, (crc,) = data[:-4], struct.unpack(">I", data[-4:])
            if crc32c.crc32c(blob) != crc:
                log.warning("snapshot %s fails its checksum; skipping", name)
                continue
            return blob, _zxid_of(name)
        return None

    def purge(self, keep: int) -> None:
        """Keep the newest `keep` snapshots and the logs the oldest kept one needs."""
        snaps = self._files("snapshot")
        if len(snaps) <= keep:
            return
        oldest_kept = _zxid_of(snaps[-keep])
        for name in snaps[:-keep]:
            os.unlink(os.path.join(self.dir, name))
        logs = self._files("log")
        for i, name in enumerate(logs):
            # A log is still needed if the next one starts after the oldest kept snapshot.
            if i + 1 < len(logs) and _zxid_of(logs[i + 1]) <= oldest_kept + 1:
                os.unlink(os.path.join(self.dir, name))


def serialize_tree(tree: DataTree) -> bytes:
    w = Writer()
    w.buf += SNAP_MAGIC
    w.long(tree.last_zxid)
    w.int(len(tree.sessions))
    for sid, timeout in tree.sessions.items():
        w.long(sid)
        w.int(timeout)
    w.int(len(tree.nodes))
    for path, n in tree.iter_nodes():
        w.ustring(path)
        w.buffer(n.data)
        w.int(len(n.acl))
        for a in n.acl:
            a.write(w)
        for v in (n.czxid, n.mzxid, n.ctime, n.mtime):
            w.long(v)
        for v in (n.version, n.cversion, n.aversion):
            w.int(v)
        w.long(n.owner)
        w.long(n.pzxid)
    return w.getvalue()


def deserialize_tree(blob: bytes) -> DataTree:
    r = Reader(blob, len(SNAP_MAGIC))
    tree = DataTree()
    tree.nodes.clear()
    tree.last_zxid = r.long()
    for _ in range(r.int()):
        sid = r.long()
        tree.sessions[sid] = r.int()
    for _ in range(r.int()):
        path = r.ustring()
        data = r.buffer()
        acl = [ACL.read(r) for _ in range(r.int())]
        n = Node(data, acl)
        n.czxid, n.mzxid, n.ctime, n.mtime = r.long(), r.long(), r.long(), r.long()
        n.version, n.cversion, n.aversion = r.int(), r.int(), r.int()
        n.owner = r.long()
        n.pzxid = r.long()
        tree.load_node(path, n)
    tree.quotas.rebuild()
    return tree
