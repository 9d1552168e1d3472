"""Kafka's primitive wire types: big-endian fixed ints, zig-zag and unsigned
varints, classic (int16/int32 length) and compact (uvarint length + 1) strings,
bytes and arrays. Reader/Writer are the only places that touch raw bytes."""

from __future__ import annotations

import struct

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_U16 = struct.Struct(">H")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_F64 = struct.Struct(">d")


class DecodeError(ValueError):
    """The bytes do not follow the schema (truncated, negative length, bad varint...)."""


class Reader:
    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: bytes | memoryview, pos: int = 0, end: int | None = None):
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    def remaining(self) -> int:
        return self.end - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise DecodeError(f"need {n} bytes at {self.pos}, have {self.end - self.pos}")
        b = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return b

    def _fixed(self, s: struct.Struct):
        if self.pos + s.size > self.end:
            raise DecodeError(f"truncated at {self.pos}")
        v = s.unpack_from(self.buf, self.pos)[0]
        self.pos += s.size
        return v

    def int8(self) -> int:
        return self._fixed(_I8)

    def int16(self) -> int:
        return self._fixed(_I16)

    def uint16(self) -> int:
        return self._fixed(_U16)

    def int32(self) -> int:
        return self._fixed(_I32)

    def uint32(self) -> int:
        return self._fixed(_U32)

    def int64(self) -> int:
        return self._fixed(_I64)

    def float64(self) -> float:
        return self._fixed(_F64)

    def bool(self) -> bool:
        return self._fixed(_I8) != 0

    def uvarint(self) -> int:
        result = shift = 0
        while True:
            if self.pos >= self.end:
                raise DecodeError("truncated varint")
            b = self.buf[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise DecodeError("varint too long")

    def varint(self) -> int:
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def uuid(self) -> bytes:
        return self.take(16)

    # length-prefixed values; None is Kafka's null
    def string(self, compact: bool) -> str | None:
        n = self.uvarint() - 1 if compact else self.int16()
        if n < 0:
            return None
        try:
            return self.take(n).decode()
        except UnicodeDecodeError as e:
            raise DecodeError(f"string is not UTF-8: {e}") from None

    def bytes(self, compact: bool) -> bytes | None:
        n = self.uvarint() - 1 if compact else self.int32()
        if n < 0:
            return None
        return self.take(n)

    def array_len(self, compact: bool) -> int:
        n = self.uvarint() - 1 if compact else self.int32()
        if n > self.remaining():  # every element takes at least one byte
            raise DecodeError(f"array of {n} elements cannot fit in {self.remaining()} bytes")
        return n


def uvarint_bytes(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint_bytes(v: int) -> bytes:
    return uvarint_bytes((v << 1) ^ (v >> 63))


class Writer:
    __slots__ = ("parts",)

    def __init__(self):
        self.parts: list[bytes] = []

    def getvalue(self) -> bytes:
        return b"".join(self.parts)

    def raw(self, b: bytes) -> None:
        self.parts.append(b)

    def int8(self, v: int) -> None:
        self.parts.append(_I8.pack(v))

    def int16(self, v: int) -> None:
        self.parts.append(_I16.pack(v))

    def uint16(self, v: int) -> None:
        self.parts.append(_U16.pack(v))

    def int32(self, v: int) -> None:
        self.parts.append(_I32.pack(v))

    def uint32(self, v: int) -> None:
        self.parts.append(_U32.pack(v))

    def int64(self, v: int) -> None:
        self.parts.append(_I64.pack(v))

    def float64(self, v: float) -> None:
        self.parts.append(_F64.pack(v))

    def bool(self, v: bool) -> None:
        self.parts.append(b"\x01" if v else b"\x00")

    def uvarint(self, v: int) -> None:
        self.parts.append(uvarint_bytes(v))

    def varint(self, v: int) -> None:
        self.parts.append(varint_bytes(v))

    def uuid(self, v: bytes) -> None:
        if len(v) != 16:
            raise ValueError("uuid must be 16 bytes")
        self.parts.append(v)

    def string(self, v: str | None, compact: bool) -> None:
        if v is None:
            self.uvarint(0) if compact else self.int16(-1)
            return
        b = v.encode()
        self.uvarint(len(b) + 1) if compact else self.int16(len(b))
        self.parts.append(b)

    def bytes(self, v: bytes | None, compact: bool) -> None:
        if v is None:
            self.uvarint(0) if compact else self.int32(-1)
            return
        self.uvarint(len(v) + 1) if compact else self.int32(len(v))
        self.parts.append(bytes(v))

    def array_len(self, n: int | None, compact: bool) -> None:
        if n is None:
            self.uvarint(0) if compact else self.int32(-1)
        else:
            self.uvarint(n + 1) if compact else self.int32(n)
