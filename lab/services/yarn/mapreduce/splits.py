"""Input splits from HDFS block locations, and reading a split's lines as Hadoop does.

One split per block of every input file (FileInputFormat with split size = block
size), carrying the block's hosts and racks for locality. A split's reader owns
the lines that start inside it: it skips a partial first line (unless it starts at
0) and reads one line past its end, like LineRecordReader.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from ...hadoop.errors import HadoopException
from ...hadoop.webclient import WebHdfsClient

log = logging.getLogger("mapreduce.splits")


class InputPathMissing(Exception):
    pass


def _hosts_of(loc: dict) -> tuple[list[str], list[str]]:
    hosts: list[str] = []
    for h in loc.get("hosts") or []:
        hosts.append(h)
    for n in loc.get("names") or []:
        hosts.append(n.rsplit(":", 1)[0])
    racks = []
    for t in loc.get("topologyPaths") or []:
        rack = t.rsplit("/", 1)[0]
        if rack:
            racks.append(rack)
    return sorted(set(hosts)), sorted(set(racks))


def _located_blocks(fs: WebHdfsClient, path: str, length: int) -> list[dict]:
    """GETFILEBLOCKLOCATIONS (public, Hadoop 3) or GETBLOCKLOCATIONS (LocatedBlocks) as a fallback."""
    try:
        return fs.block_locations(path, 0, length)
    except HadoopException as e:
        first = e
    try:
        data = fs.call("GET", path, "GETBLOCKLOCATIONS", offset=0, length=length)
        blocks = (data.get("LocatedBlocks") or {}).get("locatedBlocks") or []
        out = []
        for b in blocks:
            locs = b.get("locations") or []
            out.append(
                {
                    "offset": b.get("startOffset", 0),
                    "length": (b.get("block") or {}).get("numBytes", 0),
                    "hosts": [x.get("hostName") for x in locs if x.get("hostName")],
                    "names": [
                        f"{x.get('ipAddr')}:{x.get('xferPort')}" for x in locs if x.get("ipAddr")
                    ],
                    "topologyPaths": [
                        f"{x.get('networkLocation')}/{x.get('ipAddr')}:{x.get('xferPort')}"
                        for x in locs
                        if x.get("networkLocation")
                    ],
                }
            )
        return out
    except HadoopException:
        log.warning("no block-location op in this WebHDFS (%s): using OPEN redirects", first)
        return []


def compute_splits(
    fs: WebHdfsClient, inputs: list[str], block_size_hint: int = 128 << 20
) -> list[dict]:
    splits = []
    for path in inputs:
        if fs.status(path, strict=False) is None:
            raise InputPathMissing(f"Input path does not exist: {path}")
        for file, st in fs.walk_files(path):
            length = int(st.get("length", 0))
            if length == 0:
                continue
            blocks = _located_blocks(fs, file, length)
            if not blocks:
                bs = int(st.get("blockSize") or block_size_hint) or block_size_hint
                # No block-location op on this NameNode: one replica per block is still
                # known from where the NameNode redirects an OPEN at the block's offset.
                blocks = []
                for o in range(0, length, bs):
                    host = fs.replica_host(file, o)
                    blocks.append(
                        {
                            "offset": o,
                            "length": min(bs, length - o),
                            "hosts": [host] if host else [],
                        }
                    )
            for b in sorted(blocks, key=lambda b: int(b["offset"])):
                hosts, racks = _hosts_of(b)
                splits.append(
                    {
                        "path": file,
                        "offset": int(b["offset"]),
                        "length": int(b["length"]),
                        "hosts": hosts,
                        "racks": racks,
                    }
                )
    return splits


def read_split(fs: WebHdfsClient, split: dict, chunk: int = 4 << 20) -> Iterator[str]:
    path, start, length = split["path"], split["offset"], split["length"]
    end = start + length
    buf = b""
    i = 0  # read position in buf
    base = start  # absolute file offset of buf[0]
    eof = False

    def more() -> bool:
        # Drop what was consumed, then append the next chunk (no per-line copying).
        nonlocal buf, i, base, eof
        if eof:
            return False
        base += i
        buf = buf[i:]
        i = 0
        data = fs.read_bytes(path, base + len(buf), chunk)
        if len(data) < chunk:
            eof = True
        buf += data
        return bool(data)

    more()
    if start != 0:
        # skip the rest of the line that began in the previous split (that split reads it)
        while True:
            nl = buf.find(b"\n", i)
            if nl >= 0:
                i = nl + 1
                break
            i = len(buf)
            if not more():
                return
    while base + i <= end:
        nl = buf.find(b"\n", i)
        while nl < 0:
            if not more():
                break
            nl = buf.find(b"\n", i)
        if nl < 0:
            if i < len(buf):
                yield buf[i:].decode("utf-8", "surrogateescape")
            return
        line = buf[i:nl]
        if line.endswith(b"\r"):
            line = line[:-1]
        yield line.decode("utf-8", "surrogateescape")
        i = nl + 1
