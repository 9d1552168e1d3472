"""Jute, ZooKeeper's serialisation: big-endian ints and longs, one-byte booleans,
length-prefixed buffers and strings (length -1 means null), count-prefixed vectors.

Records are declared as a FIELDS tuple of (name, codec); Record supplies
serialize/deserialize, equality and repr from it, so each message in proto.py is a
few lines that read like the .jute files of Apache ZooKeeper.
"""

from __future__ import annotations

import keyword
import struct
from typing import Any, ClassVar

_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")


class JuteError(ValueError):
    """A frame that does not decode: the connection that sent it gets closed."""


class Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes | memoryview, pos: int = 0):
        self.buf = buf
        self.pos = pos

    def _need(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.buf):
            raise JuteError(f"truncated record: need {n} bytes at {self.pos} of {len(self.buf)}")

    # The hot paths let struct check the length (no exception costs nothing) and turn
    # its error into a JuteError.
    def int(self) -> int:
        try:
            (v,) = _INT.unpack_from(self.buf, self.pos)
        except struct.error:
            self._need(4)
            raise
        self.pos += 4
        return v

    def long(self) -> int:
        try:
            (v,) = _LONG.unpack_from(self.buf, self.pos)
        except struct.error:
            self._need(8)
            raise
        self.pos += 8
        return v

    def bool(self) -> bool:
        self._need(1)
        v = self.buf[self.pos]
        self.pos += 1
        return v != 0

    def buffer(self) -> bytes | None:
        n = self.int()
        if n < 0:
            return None
        pos = self.pos
        end = pos + n
        if end > len(self.buf):
            self._need(n)
        v = bytes(self.buf[pos:end])
        self.pos = end
        return v

    def ustring(self) -> str | None:
        b = self.buffer()
        if b is None:
            return None
        # as Java's new String(bytes, UTF_8): malformed bytes become U+FFFD
        return b.decode("utf-8", "replace")

    def remaining(self) -> int:
        return len(self.buf) - self.pos


class Writer:
    __slots__ = ("buf",)

    def __init__(self):
        self.buf = bytearray()

    def int(self, v: int) -> None:
        self.buf += _INT.pack(v)

    def long(self, v: int) -> None:
        self.buf += _LONG.pack(v)

    def bool(self, v: bool) -> None:
        self.buf.append(1 if v else 0)

    def buffer(self, v: bytes | None) -> None:
        if v is None:
            self.buf += _INT.pack(-1)
        else:
            self.buf += _INT.pack(len(v))
            self.buf += v

    def ustring(self, v: str | None) -> None:
        if v is None or v.isascii():
            self.buffer(None if v is None else v.encode("ascii"))
        else:
            self.buffer(_java_utf8(v))

    def getvalue(self) -> bytes:
        return bytes(self.buf)


def _java_utf8(v: str) -> bytes:
    """What jute's BinaryOutputArchive.writeString sends: it encodes the string one
    UTF-16 unit at a time, so each half of a character beyond the BMP is an unpaired
    surrogate and goes out as U+FFFD (seen from Debian's 3.8: a path echoed back
    by sync)."""
    if max(v) <= "\uffff":
        return v.encode("utf-8")
    return "".join(c if c <= "\uffff" else "\ufffd\ufffd" for c in v).encode("utf-8")


class Codec:
    """How one field type travels: a name for repr plus read/write."""

    def __init__(self, name: str, read, write, default=None):
        self.name = name
        self.read = read
        self.write = write
        self.default = default


int32 = Codec("int", Reader.int, Writer.int, 0)
int64 = Codec("long", Reader.long, Writer.long, 0)
boolean = Codec("boolean", Reader.bool, Writer.bool, False)
buffer = Codec("buffer", Reader.buffer, Writer.buffer, None)
ustring = Codec("ustring", Reader.ustring, Writer.ustring, None)


def vector(item: Codec | type[Record]) -> Codec:
    """vector<item>; a null vector (count -1) reads as None."""
    codec = item if isinstance(item, Codec) else record(item)

    def read(r: Reader):
        n = r.int()
        if n < 0:
            return None
        # Each element takes at least one byte, so a count beyond what is left is a lie:
        # refuse before allocating anything for it.
        if n > r.remaining():
            raise JuteError(f"vector of {n} elements in {r.remaining()} bytes")
        return [codec.read(r) for _ in range(n)]

    def write(w: Writer, v):
        if v is None:
            w.int(-1)
            return
        w.int(len(v))
        for x in v:
            codec.write(w, x)

    return Codec(f"vector<{codec.name}>", read, write, None)


def record(cls: type[Record]) -> Codec:
    return Codec(cls.__name__, cls.read, lambda w, v: v.write(w), None)


class Record:
    """A jute record. Subclasses set FIELDS = ((name, codec), ...)."""

    FIELDS: ClassVar[tuple[tuple[str, Codec], ...]] = ()
    # Records of fixed-size fields only (Stat, headers) travel through one precompiled
    # struct: the hot path of every reply.
    _STRUCT: ClassVar[struct.Struct | None] = None

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        fmt = {int32: "i", int64: "q", boolean: "?"}
        codecs = [c for _, c in cls.FIELDS]
        if codecs and all(c in fmt for c in codecs):
            cls._STRUCT = struct.Struct(">" + "".join(fmt[c] for c in codecs))
        else:
            cls._STRUCT = None
        _specialise(cls)

    def __init__(self, *args: Any, **kwargs: Any):
        names = [n for n, _ in self.FIELDS]
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes {len(names)} fields")
        for (name, _codec), value in zip(self.FIELDS, args, strict=False):
            object.__setattr__(self, name, value)
        for name, codec in self.FIELDS[len(args) :]:
            object.__setattr__(self, name, kwargs.pop(name, codec.default))
        if kwargs:
            raise TypeError(f"{type(self).__name__} has no fields {sorted(kwargs)}")

    @classmethod
    def read(cls, r: Reader):
        obj = cls.__new__(cls)
        st = cls._STRUCT
        if st is not None:
            r._need(st.size)
            values = st.unpack_from(r.buf, r.pos)
            r.pos += st.size
            for (name, _codec), v in zip(cls.FIELDS, values, strict=True):
                object.__setattr__(obj, name, v)
            return obj
        for name, codec in cls.FIELDS:
            object.__setattr__(obj, name, codec.read(r))
        return obj

    def write(self, w: Writer) -> None:
        st = self._STRUCT
        if st is not None:
            w.buf += st.pack(*[getattr(self, n) for n, _ in self.FIELDS])
            return
        for name, codec in self.FIELDS:
            codec.write(w, getattr(self, name))

    @classmethod
    def deserialize(cls, data: bytes, pos: int = 0):
        return cls.read(Reader(data, pos))

    def serialize(self) -> bytes:
        w = Writer()
        self.write(w)
        return w.getvalue()

    def __eq__(self, other):
        return type(self) is type(other) and all(
            getattr(self, n) == getattr(other, n) for n, _ in self.FIELDS
        )

    def __repr__(self):
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n, _ in self.FIELDS)
        return f"{type(self).__name__}({inner})"


def _specialise(cls: type[Record]) -> None:
    """Give a record class its own __init__, read and write, compiled from FIELDS:
    the generic ones above loop over the fields and look each codec up, which is most
    of the cost of a small record, and every request, txn and reply is several."""
    names = [n for n, _ in cls.FIELDS]
    if any(not n.isidentifier() or keyword.iskeyword(n) for n in names):
        return  # keep the generic methods
    env: dict[str, Any] = {"_need": Reader._need}
    for i, (_, codec) in enumerate(cls.FIELDS):
        env[f"_d{i}"] = codec.default
        env[f"_r{i}"] = codec.read
        env[f"_w{i}"] = codec.write
    params = ", ".join(f"{n}=_d{i}" for i, n in enumerate(names))
    init = [f"def __init__(self, {params}):"] if names else ["def __init__(self):"]
    init += [f"    self.{n} = {n}" for n in names] or ["    pass"]
    read = ["def read(cls, r):", "    obj = cls.__new__(cls)"]
    write = ["def write(self, w):"]
    st = cls._STRUCT
    if st is not None:
        env["_st"] = st
        targets = ", ".join(f"obj.{n}" for n in names)
        read += [
            f"    _need(r, {st.size})",
            f"    {targets}, = _st.unpack_from(r.buf, r.pos)",
            f"    r.pos += {st.size}",
        ]
        write += [f"    w.buf += _st.pack({', '.join(f'self.{n}' for n in names)})"]
    else:
        read += [f"    obj.{n} = _r{i}(r)" for i, n in enumerate(names)]
        write += [f"    _w{i}(w, self.{n})" for i, n in enumerate(names)] or ["    pass"]
    read.append("    return obj")
    exec("\n".join(init + read + write), env)  # noqa: S102 - code built from FIELDS only
    cls.__init__ = env["__init__"]
    cls.read = classmethod(env["read"])
    cls.write = env["write"]
