"""The record batch codecs Kafka defines (the low three bits of a batch's attributes).

gzip comes with Python; snappy, lz4 and zstd come from cramjam, one wheel with all
three. Their framing is Kafka's, not just the library's default:
  * snappy: the Java client writes xerial-snappy's stream (a magic header, then
    length-prefixed raw snappy blocks); librdkafka may send one raw snappy block.
    Both are read; xerial is written, so Java consumers read what racklab writes.
  * lz4: the standard LZ4 frame format (KIP-57, magic 1 and later).
  * zstd: a standard zstd frame.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from collections.abc import Iterator

NONE, GZIP, SNAPPY, LZ4, ZSTD = range(5)
NAMES = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}

XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)  # version 1, compatible since 1
XERIAL_BLOCK = 32 * 1024  # the Java client's block size


class CodecError(ValueError):
    """A payload that does not decompress with the codec its batch names."""


class TooLarge(CodecError):
    """A payload that decompresses to more than the caller's cap (a compression bomb,
    or a batch far larger than the broker takes): refused before it is all inflated."""


def _cramjam():
    try:
        import cramjam
    except ImportError as e:  # an install without the wheel: say what is missing
        raise CodecError(f"snappy, lz4 and zstd need the cramjam package: {e}") from None
    return cramjam


def _snappy_blocks(data: bytes) -> list[bytes]:
    """The raw snappy blocks of a payload: itself, or the length-prefixed blocks after
    a xerial header (what the Java clients write)."""
    if not data.startswith(XERIAL_MAGIC):
        return [data]
    blocks, pos = [], len(_XERIAL_HEADER)
    while pos < len(data):
        if pos + 4 > len(data):
            raise CodecError("truncated xerial-snappy block length")
        (n,) = struct.unpack_from(">i", data, pos)
        pos += 4
        if n < 0 or pos + n > len(data):
            raise CodecError("xerial-snappy block runs past the payload")
        blocks.append(data[pos : pos + n])
        pos += n
    return blocks


def _snappy_decompress(data: bytes) -> bytes:
    snappy = _cramjam().snappy
    return b"".join(bytes(snappy.decompress_raw(block)) for block in _snappy_blocks(data))


def _snappy_compress(data: bytes) -> bytes:
    snappy = _cramjam().snappy
    blocks = [_XERIAL_HEADER]
    for i in range(0, len(data), XERIAL_BLOCK):
        raw = bytes(snappy.compress_raw(data[i : i + XERIAL_BLOCK]))
        blocks.append(struct.pack(">i", len(raw)) + raw)
    return b"".join(blocks)


def _gzip_compress(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1)


def _lib(name: str, fn: str):
    return lambda data: bytes(getattr(getattr(_cramjam(), name), fn)(data))


# codec -> (compress, decompress)
_CODECS = {
    NONE: (bytes, bytes),
    GZIP: (_gzip_compress, gzip.decompress),
    SNAPPY: (_snappy_compress, _snappy_decompress),
    LZ4: (_lib("lz4", "compress"), _lib("lz4", "decompress")),
    ZSTD: (_lib("zstd", "compress"), _lib("zstd", "decompress")),
}


def decompress(codec: int, data: bytes) -> bytes:
    if codec not in _CODECS:
        raise CodecError(f"unknown compression codec {codec}")
    try:
        return _CODECS[codec][1](data)
    except CodecError:
        raise
    except Exception as e:  # zlib.error, EOFError, cramjam's DecompressionError, ...
        raise CodecError(f"{NAMES[codec]} payload does not decompress: {e}") from None


def compress(codec: int, data: bytes) -> bytes:
    if codec not in _CODECS:
        raise ValueError(f"unknown compression codec {codec}")
    return _CODECS[codec][0](data)


# ---- streaming, bounded decompression (what a broker does with a client's batch) ----

CHUNK = 64 * 1024
# zstd frames name the window they need; a hostile one could ask for gigabytes. 8 MiB
# is what zstd's level 19 uses, more than any producer's default level needs.
ZSTD_MAX_WINDOW = 1 << 23


def _gzip_chunks(data: bytes) -> Iterator[bytes]:
    rest = data
    while rest:
        d = zlib.decompressobj(wbits=31)
        buf = rest
        while not d.eof:
            out = d.decompress(buf, CHUNK)
            buf = d.unconsumed_tail
            if out:
                yield out
            elif not buf:
                raise CodecError("gzip payload does not decompress: truncated stream")
        # several gzip members follow each other (as gzip.decompress allows), zero
        # padding after the last is ignored
        rest = d.unused_data
        if not rest.strip(b"\0"):
            return


def _zstd_chunks(data: bytes) -> Iterator[bytes]:
    import zstandard

    dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
    reader = dctx.stream_reader(io.BytesIO(data), read_across_frames=True)
    while out := reader.read(CHUNK):
        yield out


def _lz4_chunks(data: bytes) -> Iterator[bytes]:
    import lz4.frame

    rest = data
    while rest:
        d = lz4.frame.LZ4FrameDecompressor()
        buf = rest
        while not d.eof:
            out = d.decompress(buf, max_length=CHUNK)
            buf = b""
            if out:
                yield out
            elif d.needs_input:
                raise CodecError("lz4 payload does not decompress: truncated frame")
        rest = d.unused_data


def _snappy_chunks(data: bytes, cap: int) -> Iterator[bytes]:
    # a raw snappy block states its decompressed length up front: checked before the
    # block is inflated
    snappy = _cramjam().snappy
    total = 0
    for block in _snappy_blocks(data):
        total += int(snappy.decompress_raw_len(block))
        if total > cap:
            raise TooLarge(f"snappy payload decompresses to more than {cap} bytes")
        out = bytes(snappy.decompress_raw(block))
        for i in range(0, len(out), CHUNK):
            yield out[i : i + CHUNK]


def stream(codec: int, data: bytes, cap: int) -> Iterator[bytes]:
    """The decompressed payload in chunks of at most CHUNK bytes, never more than
    ``cap`` bytes in all (TooLarge past it); CodecError when it does not decode."""
    if codec not in _CODECS:
        raise CodecError(f"unknown compression codec {codec}")
    if codec == NONE:
        chunks: Iterator[bytes] = iter([data])
    elif codec == GZIP:
        chunks = _gzip_chunks(data)
    elif codec == SNAPPY:
        chunks = _snappy_chunks(data, cap)
    elif codec == LZ4:
        chunks = _lz4_chunks(data)
    else:
        chunks = _zstd_chunks(data)
    total = 0
    try:
        for out in chunks:
            total += len(out)
            if total > cap:
                raise TooLarge(f"{NAMES[codec]} payload decompresses to more than {cap} bytes")
            yield out
    except CodecError:
        raise
    except Exception as e:  # zlib.error, ZstdError, lz4's RuntimeError, cramjam's errors
        raise CodecError(f"{NAMES[codec]} payload does not decompress: {e}") from None
