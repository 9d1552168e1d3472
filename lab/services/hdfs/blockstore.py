"""A DataNode's replicas on disk, in Hadoop's layout: current/finalized/blk_<id> with
blk_<id>_<genstamp>.meta beside it, current/rbw/ for replicas being written, and
current/tmp/ for copies another DataNode is sending (re-replication, or a writer's
pipeline recovery), which a restart deletes.

A replica's state is Hadoop's ReplicaState: "finalized"; "rbw" (being written, or left
unfinished by a writer that went away: kept for the NameNode's block recovery, never
dropped by the DataNode on its own); "rwr" (waiting to be recovered: an unfinished replica
found on disk at start-up, cut to the bytes whose checksums hold); "temporary" (a copy
being received from another DataNode: Hadoop's TEMPORARY, in no block report, removed at
start-up — nobody recovers it, the NameNode asks for another copy)."""

from __future__ import annotations

import os
import re
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from . import checksum
from .checksum import CRC_SIZE, ChecksumError

_META = re.compile(r"blk_(\d+)_(\d+)\.meta$")
READ_SLAB = 4 << 20
# ReplicaState's values as Hadoop's block reports carry them.
STATE_CODES = {"finalized": 0, "rbw": 1, "rwr": 2, "temporary": 4}
STATES = {code: name for name, code in STATE_CODES.items()}


@dataclass
class Replica:
    block_id: int
    gen_stamp: int
    length: int
    state: str  # "finalized", "rbw" or "rwr"
    data_path: Path
    meta_path: Path

    def to_report(self) -> list[int]:
        """[blockId, genStamp, numBytes], and the state's code when not finalized."""
        report = [self.block_id, self.gen_stamp, self.length]
        if self.state != "finalized":
            report.append(STATE_CODES[self.state])
        return report


class BlockStore:
    def __init__(self, root: Path, bytes_per_checksum: int) -> None:
        self.root = Path(root)
        self.bpc = bytes_per_checksum
        self.finalized = self.root / "current" / "finalized"
        self.rbw = self.root / "current" / "rbw"
        self.tmp = self.root / "current" / "tmp"
        for folder in (self.finalized, self.rbw, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
        self.replicas: dict[int, Replica] = {}
        self._load()

    def _load(self) -> None:
        # A copy that was still arriving when the DataNode stopped is dropped, as Hadoop's
        # DataNode deletes its tmp/ folder at start-up.
        for leftover in self.tmp.iterdir():
            leftover.unlink()
        # A replica left in rbw/ by a crash or a writer that went away is kept as Hadoop's
        # DataNode keeps it: waiting to be recovered (RWR), cut to the bytes its checksums
        # vouch for, reported as such; the NameNode's block recovery decides its length.
        for state, folder in (("finalized", self.finalized), ("rbw", self.rbw)):
            for meta in folder.glob("blk_*_*.meta"):
                m = _META.match(meta.name)
                data = folder / f"blk_{m.group(1)}"
                if not data.exists():
                    meta.unlink()
                    continue
                rep = Replica(
                    int(m.group(1)), int(m.group(2)), data.stat().st_size, state, data, meta
                )
                if state == "rbw":
                    self._validate_rbw(rep)
                self.replicas[rep.block_id] = rep

    def _validate_rbw(self, rep: Replica) -> None:
        """BlockPoolSlice.validateIntegrityAndSetLength: the chunks both files hold, the
        last one kept only if its CRC matches its bytes (the process may have died between
        writing a chunk's data and its CRC); the files cut to that, the replica RWR."""
        crcs = max(0, (rep.meta_path.stat().st_size - checksum.HEADER.size) // CRC_SIZE)
        chunks = min(crcs, -(-rep.length // self.bpc))
        length = 0
        if chunks:
            start = (chunks - 1) * self.bpc
            with open(rep.data_path, "rb") as df, open(rep.meta_path, "rb") as mf:
                df.seek(start)
                last = df.read(min(self.bpc, rep.length - start))
                mf.seek(checksum.HEADER.size + (chunks - 1) * CRC_SIZE)
                stored = mf.read(CRC_SIZE)
            good = checksum.piece_crcs(last, start, self.bpc) == stored
            length = start + len(last) if good else start
        with open(rep.data_path, "r+b") as f:
            f.truncate(length)
        with open(rep.meta_path, "r+b") as f:
            f.truncate(checksum.HEADER.size + -(-length // self.bpc) * CRC_SIZE)
        rep.length, rep.state = length, "rwr"

    def temporary_to_rbw(self, rep: Replica) -> None:
        """FsDatasetImpl.convertTemporaryToRbw: a copy for a writer's pipeline recovery,
        complete, becomes a replica being written, which the recovery pipeline reopens."""
        if rep.state != "temporary":
            return
        data, meta = self.rbw / rep.data_path.name, self.rbw / rep.meta_path.name
        os.replace(rep.meta_path, meta)
        os.replace(rep.data_path, data)
        rep.data_path, rep.meta_path, rep.state = data, meta, "rbw"

    def _finalize_paths(self, rep: Replica) -> Replica:
        data = self.finalized / rep.data_path.name
        meta = self.finalized / rep.meta_path.name
        os.replace(rep.meta_path, meta)
        os.replace(rep.data_path, data)
        rep.data_path, rep.meta_path, rep.state = data, meta, "finalized"
        return rep

    # ------------------------------------------------------------ writing
    def create_rbw(self, block_id: int, gen_stamp: int, temporary: bool = False) -> ReplicaWriter:
        """A new replica being written (a writer's pipeline), or with `temporary` a copy
        another DataNode sends (FsDatasetImpl.createTemporary), in tmp/."""
        old = self.replicas.get(block_id)
        if old is not None:  # the caller decides whether an old replica may go, and removes it
            raise FileExistsError(f"replica blk_{block_id}_{old.gen_stamp} already exists")
        folder = self.tmp if temporary else self.rbw
        data = folder / f"blk_{block_id}"
        meta = folder / f"blk_{block_id}_{gen_stamp}.meta"
        with open(meta, "wb") as f:
            f.write(checksum.meta_header(self.bpc))
        open(data, "wb").close()
        rep = Replica(block_id, gen_stamp, 0, "temporary" if temporary else "rbw", data, meta)
        self.replicas[block_id] = rep
        return ReplicaWriter(self, rep, last_crc=0)

    def append(
        self, block_id: int, old_gs: int, new_gs: int, expected_length: int
    ) -> ReplicaWriter:
        rep = self.replicas.get(block_id)
        if rep is None or rep.state != "finalized":
            raise FileNotFoundError(f"no finalized replica of blk_{block_id}")
        if new_gs <= rep.gen_stamp:
            raise ValueError(
                f"The new generation stamp {new_gs} should be greater than the replica "
                f"blk_{block_id}_{rep.gen_stamp}'s generation stamp"
            )
        if rep.gen_stamp != old_gs or rep.length != expected_length:
            raise ValueError(
                f"replica blk_{block_id}_{rep.gen_stamp} len {rep.length} does not match "
                f"genstamp {old_gs} len {expected_length}"
            )
        data = self.rbw / rep.data_path.name
        meta = self.rbw / f"blk_{block_id}_{new_gs}.meta"
        os.replace(rep.meta_path, meta)
        os.replace(rep.data_path, data)
        rep.data_path, rep.meta_path, rep.state, rep.gen_stamp = data, meta, "rbw", new_gs
        last_crc = 0
        if rep.length % self.bpc:
            with open(meta, "rb") as f:
                f.seek(checksum.HEADER.size + (rep.length // self.bpc) * CRC_SIZE)
                (last_crc,) = struct.unpack(">I", f.read(CRC_SIZE))
        writer = ReplicaWriter(self, rep, last_crc)
        writer.before_append = (rep.length, old_gs, last_crc)
        return writer

    def recover(self, block_id: int, new_gs: int, length: int) -> ReplicaWriter:
        """Pipeline recovery: cut the replica back to the length every node acknowledged,
        give it the new generation stamp, and reopen it for writing from there."""
        rep = self.replicas.get(block_id)
        if rep is None:
            raise FileNotFoundError(f"no replica of blk_{block_id} to recover")
        if rep.state == "finalized":
            return self.append(block_id, rep.gen_stamp, new_gs, length)
        if rep.length < length:
            raise ValueError(
                f"blk_{block_id} has {rep.length} bytes, fewer than the {length} acknowledged"
            )
        last_crc = 0
        with open(rep.data_path, "r+b") as f:
            f.truncate(length)
            if length % self.bpc:
                f.seek(length - length % self.bpc)
                last_crc = checksum.crc_continue(f.read(length % self.bpc), 0)
        self.cut(rep, length, last_crc, new_gs)
        rep.state = "rbw"  # a replica waiting to be recovered is being written again
        return ReplicaWriter(self, rep, last_crc)

    def cut(self, rep, length: int, last_crc: int, gen_stamp: int) -> None:
        """The replica's data file already ends at `length`: cut its CRCs to match (the
        last, partial chunk's CRC is `last_crc`) and give it `gen_stamp`, which names the
        meta file."""
        ncrc = -(-length // self.bpc)
        with open(rep.meta_path, "r+b") as f:
            f.truncate(checksum.HEADER.size + ncrc * CRC_SIZE)
            if length % self.bpc:
                f.seek(checksum.HEADER.size + (ncrc - 1) * CRC_SIZE)
                f.write(struct.pack(">I", last_crc))
        meta = rep.meta_path.with_name(f"blk_{rep.block_id}_{gen_stamp}.meta")
        os.replace(rep.meta_path, meta)
        rep.meta_path, rep.length, rep.gen_stamp = meta, length, gen_stamp

    def delete(self, block_id: int) -> bool:
        rep = self.replicas.pop(block_id, None)
        if rep is None:
            return False
        for path in (rep.data_path, rep.meta_path):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        return True

    # ------------------------------------------------------------ reading
    def get(self, block_id: int) -> Replica | None:
        return self.replicas.get(block_id)

    def read_raw(
        self, rep: Replica, start: int, length: int, visible: int | None = None
    ) -> tuple[bytes, bytes]:
        """Data [start, start+length) and the stored CRCs of its chunks; start must be
        chunk aligned. Used to ship checksummed data to a remote reader. `visible`: where
        the readable bytes of a replica still being written end."""
        with open(rep.data_path, "rb") as f:
            f.seek(start)
            data = f.read(length)
        first, n = start // self.bpc, -(-len(data) // self.bpc)
        with open(rep.meta_path, "rb") as f:
            f.seek(checksum.HEADER.size + first * CRC_SIZE)
            crcs = f.read(n * CRC_SIZE)
        return data, self.visible_crcs(rep, data, start, crcs, visible)

    def visible_crcs(
        self, rep: Replica, data: bytes | None, start: int, crcs: bytes, visible: int | None
    ) -> bytes:
        """`crcs` of the chunks from `start` (aligned) to `visible`, with the last one made
        right for a replica still being written whose visible end cuts a chunk: the stored
        CRC of that chunk may already cover bytes written after it (Hadoop's BlockSender
        sends the last partial chunk's checksum as of the visible length too). `data`: the
        bytes from `start` when the caller has them, else read here."""
        if rep.state == "finalized" or visible is None or not visible % self.bpc or not crcs:
            return crcs
        tail_start = visible - visible % self.bpc
        if tail_start != start + (len(crcs) // CRC_SIZE - 1) * self.bpc:
            return crcs  # the chunk the visible end cuts is not the last of these
        if data is not None:
            tail = data[tail_start - start : visible - start]
        else:
            with open(rep.data_path, "rb") as f:
                f.seek(tail_start)
                tail = f.read(visible - tail_start)
        return crcs[:-CRC_SIZE] + checksum.piece_crcs(tail, tail_start, self.bpc)

    def read_verified(self, rep: Replica, offset: int, length: int):
        """Yield the bytes [offset, offset+length) of a finalized replica, each slab
        checked against its stored CRCs; a mismatch raises ChecksumError."""
        end = min(offset + length, rep.length)
        # Verification needs whole chunks: read from the chunk holding `offset` to the end
        # of the chunk holding the last byte wanted, and trim.
        disk_end = min(rep.length, -(-end // self.bpc) * self.bpc)
        pos = offset - offset % self.bpc
        with open(rep.data_path, "rb") as df, open(rep.meta_path, "rb") as mf:
            bpc = checksum.parse_meta_header(mf.read(checksum.HEADER.size))
            if bpc != self.bpc:
                raise ChecksumError(f"blk_{rep.block_id}: meta file bytes-per-checksum {bpc}", pos)
            df.seek(pos)
            mf.seek(checksum.HEADER.size + (pos // self.bpc) * CRC_SIZE)
            while pos < end:
                want = min(READ_SLAB, disk_end - pos)
                data = df.read(want)
                if len(data) != want:
                    raise ChecksumError(f"blk_{rep.block_id} is shorter than its length", pos)
                stored = mf.read(-(-len(data) // self.bpc) * CRC_SIZE)
                if not checksum.pieces_match(data, pos, self.bpc, stored):
                    raise ChecksumError(f"Checksum error: blk_{rep.block_id} at offset {pos}", pos)
                lo, hi = max(0, offset - pos), min(len(data), end - pos)
                yield data[lo:hi] if lo or hi < len(data) else data
                pos += len(data)

    def verify(self, rep: Replica) -> bool:
        try:
            for _ in self.read_verified(rep, 0, rep.length):
                pass
            return True
        except ChecksumError:
            return False
        except FileNotFoundError:
            return False

    def report(self) -> list[list[int]]:
        """Every replica, unfinished ones with their state (BlockListAsLongs); copies still
        arriving (temporary) are in none."""
        return [r.to_report() for r in self.replicas.values() if r.state != "temporary"]

    def used_bytes(self) -> int:
        return sum(r.length for r in self.replicas.values())

    def capacity(self) -> tuple[int, int]:
        usage = shutil.disk_usage(self.root)
        return usage.total, usage.free


class ReplicaWriter:
    """Appends checksummed pieces to an rbw replica. Each piece is [a, b) of one chunk;
    a piece that continues a partial chunk extends that chunk's CRC (CRC32C continues)."""

    def __init__(self, store: BlockStore, rep: Replica, last_crc: int) -> None:
        self.store, self.rep = store, rep
        self.bpc = store.bpc
        self.before_append: tuple[int, int, int] | None = None
        # Bytes every node downstream has acknowledged (the DataNode's responder moves it):
        # what Hadoop calls the replica's visible length while it is being written.
        self.acked = rep.length
        self.closed = False
        self.last_crc = last_crc
        self.data = open(rep.data_path, "r+b", buffering=0)
        self.data.seek(rep.length)
        self.meta = open(rep.meta_path, "r+b", buffering=0)
        self._seek_meta()

    def _seek_meta(self) -> None:
        self.meta.seek(checksum.HEADER.size + (self.rep.length // self.bpc) * CRC_SIZE)

    def write(self, data: bytes | memoryview, crcs: bytes, verify: bool) -> None:
        """Write data starting at the replica's length; crcs are the sender's per-piece CRCs."""
        if self.closed:
            raise OSError(f"blk_{self.rep.block_id}: this writer was superseded")
        offset = self.rep.length
        if verify and not checksum.pieces_match(data, offset, self.bpc, crcs):
            raise ChecksumError(
                f"Checksum error in packet for blk_{self.rep.block_id} at {offset}", offset
            )
        crcs = bytes(crcs)
        if offset % self.bpc:
            first = min(len(data), self.bpc - offset % self.bpc)
            merged = checksum.crc_continue(memoryview(data)[:first], self.last_crc)
            crcs = struct.pack(">I", merged) + crcs[CRC_SIZE:]
        self.data.write(data)
        self.meta.write(crcs)
        self.rep.length += len(data)
        if self.rep.length % self.bpc:
            (self.last_crc,) = struct.unpack(">I", crcs[-CRC_SIZE:])
            self._seek_meta()  # the next piece rewrites this partial chunk's CRC
        else:
            self.last_crc = 0

    def sync(self) -> None:
        """A packet with syncBlock (a writer's hsync): on disk before it is acknowledged."""
        os.fsync(self.data.fileno())
        os.fsync(self.meta.fileno())

    def finalize(self, sync: bool = True) -> Replica:
        """The replica finished: moved to finalized/, fsynced first if `sync` (Hadoop's
        dfs.datanode.synconclose; without it the page cache writes it back in its time)."""
        if sync:
            self.sync()
        self.data.close()
        self.meta.close()
        return self.store._finalize_paths(self.rep)

    def close_files(self) -> None:
        self.closed = True
        self.data.close()
        self.meta.close()

    def abort(self) -> None:
        """A failed create drops the replica; a failed append puts back the replica as it
        was before (length, CRCs, generation stamp): those bytes were acknowledged."""
        self.data.close()
        self.meta.close()
        if self.before_append is None:
            self.store.delete(self.rep.block_id)
            return
        length, gs, last_crc = self.before_append
        rep = self.rep
        with open(rep.data_path, "r+b") as f:
            f.truncate(length)
        self.store.cut(rep, length, last_crc, gs)
        self.store._finalize_paths(rep)
