"""Only the layers a host lacks: ``docker save`` with the layer files the host's engine
has already taken out, for ``docker load`` there (lab/hosts/images.py).

Why it works: ``docker load`` reads an image's layers in order, and for each one first
asks its layer store for the layer by chain ID (the layer with every layer under it);
when the store has it, the layer's file in the archive is never opened. So a layer can
be left out of the archive exactly when the host has an image whose layers start with
the same layers up to and including it. A new racklab version changes only the node
image's last layers (racklab's own wheel, a few MiB), so that is all a host is sent.

``docker save`` names each layer's folder by an ID of the old v1 format, computed by
the engine, not by the layer's content; which folder holds which layer (its diff ID,
the SHA-256 of its uncompressed tar) is found once per image by hashing each layer file
of one ``docker save`` here, and cached beside the other image caches.

The archive is filtered as it streams, header by header (a tar member is a 512-byte
header and its data padded to 512 bytes): nothing is unpacked or held in memory.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Callable, Iterable, Iterator

BLOCK = 512
CHUNK = 1 << 20
# headers that belong to the member after them (long names, PAX records)
_PREFIX_TYPES = {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME,
                 tarfile.GNUTYPE_LONGLINK}  # fmt: skip


class _Reader:
    """read(n) over an iterable of byte chunks: exactly n bytes, fewer only at the end."""

    def __init__(self, chunks: Iterable[bytes]):
        self._it = iter(chunks)
        self._buf = bytearray()

    def read(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = next(self._it, None)
            if chunk is None:
                break
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def rest(self) -> Iterator[bytes]:
        if self._buf:
            yield bytes(self._buf)
            self._buf.clear()
        yield from self._it


def walk(chunks: Iterable[bytes], drop: Callable[[str], bool] = lambda name: False,
         seen: Callable[[tarfile.TarInfo, bytes], None] | None = None) -> Iterator[bytes]:  # fmt: skip
    """The archive in ``chunks`` without the members whose name ``drop`` says; ``seen``
    gets each member's header and its data, piece by piece (b"" once at its end)."""
    r = _Reader(chunks)
    pending = b""
    while True:
        block = r.read(BLOCK)
        if len(block) < BLOCK or block == bytes(BLOCK):  # the end: what follows is padding
            yield pending + block
            yield from r.rest()
            return
        info = tarfile.TarInfo.frombuf(block, tarfile.ENCODING, "surrogateescape")
        padded = -(-info.size // BLOCK) * BLOCK
        if info.type in _PREFIX_TYPES:
            pending += block + r.read(padded)
            continue
        keep = not drop(info.name)
        if keep:
            yield pending + block
        pending = b""
        left, data = padded, info.size
        while left:
            piece = r.read(min(CHUNK, left))
            if not piece:
                raise ValueError(f"the image archive ends inside {info.name}")
            left -= len(piece)
            if seen is not None and data > 0:
                seen(info, piece[:data])
                data -= min(data, len(piece))
            if keep:
                yield piece
        if seen is not None:
            seen(info, b"")


def layer_files(chunks: Iterable[bytes]) -> dict[str, str]:
    """Each layer file of a ``docker save`` archive -> the diff ID of its layer."""
    hashes: dict[str, hashlib._Hash] = {}
    links: dict[str, str] = {}

    def seen(info: tarfile.TarInfo, data: bytes) -> None:
        if not info.name.endswith("/layer.tar"):
            return
        if info.issym():  # a layer the image has twice: the same file
            folder = info.name.rsplit("/", 1)[0] if "/" in info.name else ""
            links[info.name] = _join(folder, info.linkname)
        elif info.isreg():
            hashes.setdefault(info.name, hashlib.sha256()).update(data)

    for _ in walk(chunks, seen=seen):
        pass
    out = {name: "sha256:" + h.hexdigest() for name, h in hashes.items()}
    for name, target in links.items():
        if target in out:
            out[name] = out[target]
    return out


def _join(folder: str, link: str) -> str:
    parts = [p for p in f"{folder}/{link}".split("/") if p not in ("", ".")]
    out: list[str] = []
    for p in parts:
        if p == "..":
            if out:
                out.pop()
        else:
            out.append(p)
    return "/".join(out)


def host_prefixes(layer_lists: Iterable[list[str]]) -> set[tuple[str, ...]]:
    """Every chain of layers the host's engine has: each image's layers up to each one."""
    return {tuple(layers[: i + 1]) for layers in layer_lists for i in range(len(layers))}


def droppable(layers: list[str], prefixes: set[tuple[str, ...]]) -> set[str]:
    """The diff IDs of ``layers`` (an image's, bottom first) that a host with these
    chains need not be sent: a layer whose chain it has, and that the image does not
    also have at a position whose chain the host lacks."""
    have = {d for i, d in enumerate(layers) if tuple(layers[: i + 1]) in prefixes}
    lack = {d for i, d in enumerate(layers) if tuple(layers[: i + 1]) not in prefixes}
    return have - lack


def inspect_script() -> str:
    """A shell line printing, one JSON list a line, the layers of every image of a
    host's engine (``docker image inspect`` of each)."""
    return ("docker image ls -q --no-trunc | sort -u | "
            "xargs -r docker image inspect --format '{{json .RootFS.Layers}}'")  # fmt: skip


def parse_layer_lists(out: str) -> list[list[str]]:
    lists = []
    for line in out.splitlines():
        try:
            got = json.loads(line)
        except ValueError:
            continue
        if isinstance(got, list):
            lists.append([str(x) for x in got])
    return lists
