"""One protobuf (proto2) encoder and decoder driven by the schemas in schemas/.

A message is a plain dict keyed by field name; enums travel by name. Decoding fills
every field the message declares (a missing scalar gets its declared default or the
type's zero, a missing repeated field [], a missing message None) and records which
fields were on the wire in `Message.present`, because proto2 servers such as Hadoop's
treat "absent" and "zero" differently (hasUsername(), hasMasked(), ...). Unknown fields
are skipped by wire type, packed and unpacked repeated scalars are both accepted, and
every length is checked against what is left, so hostile bytes end in DecodeError and
nothing else."""

from __future__ import annotations

import json
import struct
from pathlib import Path

SCHEMAS = Path(__file__).parent / "schemas"
VARINT, I64, LEN, I32 = 0, 1, 2, 5
WIRE = {
    "int32": VARINT, "int64": VARINT, "uint32": VARINT, "uint64": VARINT,
    "sint32": VARINT, "sint64": VARINT, "bool": VARINT, "enum": VARINT,
    "fixed64": I64, "sfixed64": I64, "double": I64,
    "fixed32": I32, "sfixed32": I32, "float": I32,
    "string": LEN, "bytes": LEN, "message": LEN,
}  # fmt: skip
ZERO = {"string": "", "bytes": b"", "bool": False, "float": 0.0, "double": 0.0}
FIXED = {"fixed64": "<Q", "sfixed64": "<q", "double": "<d", "fixed32": "<I", "sfixed32": "<i"}
FIXED["float"] = "<f"
MAX_DEPTH = 64  # nesting beyond this is refused rather than recursed into


class DecodeError(ValueError):
    pass


class Message(dict):
    """A decoded message: every declared field, and which of them were sent."""

    __slots__ = ("present",)

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.present: set[str] = set()


# ---------------------------------------------------------------- varints
def encode_varint(value: int) -> bytes:
    if value < 0:
        value &= (1 << 64) - 1  # negative int32/int64 go out as ten-byte two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data, pos: int) -> tuple[int, int]:
    result = shift = 0
    end = min(len(data), pos + 10)
    while pos < end:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result & ((1 << 64) - 1), pos
        shift += 7
    raise DecodeError("truncated varint" if end == len(data) else "varint longer than 10 bytes")


def zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


def unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


class Field:
    __slots__ = ("n", "name", "label", "type", "kind", "default", "packed", "wire")

    def __init__(self, row: dict, schema: Schema) -> None:
        self.n, self.name, self.label, self.type = row["n"], row["name"], row["label"], row["type"]
        if self.type in schema.messages:
            self.kind = "message"
        elif self.type in schema.enums:
            self.kind = "enum"
        else:
            self.kind = self.type
        self.wire = WIRE[self.kind]
        self.packed = row.get("packed", False)
        if "default" in row:
            self.default = row["default"]
            if self.kind == "bytes" and isinstance(self.default, str):
                self.default = self.default.encode()
        elif self.kind == "message":
            self.default = None
        else:
            self.default = ZERO.get(self.kind, 0)


class Schema:
    """Every message, enum and service of a set of schema files, with the codec."""

    def __init__(self, docs: list[dict]) -> None:
        rows = {n: f for d in docs for n, f in d["messages"].items()}
        self.enums: dict[str, dict[str, int]] = {n: e for d in docs for n, e in d["enums"].items()}
        self.enum_names = {n: {v: k for k, v in e.items()} for n, e in self.enums.items()}
        self.services = {n: s for d in docs for n, s in d["services"].items()}
        self.messages: dict[str, list[Field]] = dict.fromkeys(rows)  # names first: fields refer
        for name, fields in rows.items():
            self.messages[name] = [Field(r, self) for r in fields]
        self.by_number = {m: {f.n: f for f in fs} for m, fs in self.messages.items()}

    @classmethod
    def load(cls, directory: Path = SCHEMAS) -> Schema:
        return cls([json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))])

    # ------------------------------------------------------------ encoding
    def encode(self, type_: str, value: dict) -> bytes:
        out = bytearray()
        for f in self.messages[type_]:
            v = value.get(f.name)
            if v is None or (f.label == "repeated" and not v):
                if f.label == "required":
                    raise ValueError(f"{type_}.{f.name} is required")
                continue
            if f.label != "repeated":
                self._put(out, f, v)
            elif f.packed and f.wire != LEN:
                body = bytearray()
                for item in v:
                    self._scalar(body, f, item)
                out += encode_varint(f.n << 3 | LEN) + encode_varint(len(body)) + body
            else:
                for item in v:
                    self._put(out, f, item)
        return bytes(out)

    def encode_delimited(self, type_: str, value: dict) -> bytes:
        body = self.encode(type_, value)
        return encode_varint(len(body)) + body

    def _put(self, out: bytearray, f: Field, v) -> None:
        out += encode_varint(f.n << 3 | f.wire)
        self._scalar(out, f, v)

    def _scalar(self, out: bytearray, f: Field, v) -> None:
        k = f.kind
        if k == "message":
            body = self.encode(f.type, v)
            out += encode_varint(len(body)) + body
        elif k in ("string", "bytes"):
            b = v.encode() if isinstance(v, str) else bytes(v)
            out += encode_varint(len(b)) + b
        elif k == "enum":
            out += encode_varint(self.enums[f.type][v] if isinstance(v, str) else v)
        elif k in ("sint32", "sint64"):
            out += encode_varint(zigzag(v))
        elif k in FIXED:
            out += struct.pack(FIXED[k], v)
        else:  # int32, int64, uint32, uint64, bool
            out += encode_varint(int(v))

    # ------------------------------------------------------------ decoding
    def decode(self, type_: str, data, depth: int = 0, partial: bool = False) -> Message:
        """A message from its bytes; without every required field only when `partial`
        (protobuf-java's parsePartialFrom), else DecodeError as parseFrom throws."""
        if depth > MAX_DEPTH:
            raise DecodeError(f"messages nested deeper than {MAX_DEPTH}")
        fields = self.by_number[type_]
        msg = Message()
        data = memoryview(data)
        pos, end = 0, len(data)
        while pos < end:
            tag, pos = decode_varint(data, pos)
            n, wire = tag >> 3, tag & 7
            if n == 0:
                raise DecodeError(f"{type_}: field number 0")
            f = fields.get(n)
            if f is None:
                pos = self._skip(data, pos, wire)
                continue
            if wire == LEN and f.wire != LEN and f.label == "repeated":  # packed
                size, pos = self._length(data, pos)
                chunk, pos = data[pos : pos + size], pos + size
                p = 0
                items = msg.setdefault(f.name, [])
                while p < size:
                    v, p = self._read(chunk, p, f, depth, partial)
                    items.append(v)
            elif wire != f.wire:
                raise DecodeError(f"{type_}.{f.name}: wire type {wire}, expected {f.wire}")
            else:
                v, pos = self._read(data, pos, f, depth, partial)
                if f.label == "repeated":
                    msg.setdefault(f.name, []).append(v)
                else:
                    msg[f.name] = v
            msg.present.add(f.name)
        missing = []
        for f in self.messages[type_]:
            if f.name not in msg:
                msg[f.name] = [] if f.label == "repeated" else f.default
                if f.label == "required":
                    missing.append(f.name)
        if missing and not partial:
            # protobuf-java's parseFrom refuses such a message (InvalidProtocolBufferException),
            # so Hadoop's servers never see it; neither do racklab's.
            raise DecodeError(f"Message missing required fields: {', '.join(missing)}")
        return msg

    def decode_delimited(self, type_: str, data, pos: int = 0) -> tuple[Message, int]:
        size, pos = self._length(data, pos)
        return self.decode(type_, memoryview(data)[pos : pos + size]), pos + size

    @staticmethod
    def _length(data, pos: int) -> tuple[int, int]:
        size, pos = decode_varint(data, pos)
        if size > len(data) - pos:
            raise DecodeError(f"length {size} runs past the end ({len(data) - pos} left)")
        return size, pos

    def _skip(self, data, pos: int, wire: int) -> int:
        if wire == VARINT:
            return decode_varint(data, pos)[1]
        if wire == LEN:
            size, pos = self._length(data, pos)
            return pos + size
        width = {I64: 8, I32: 4}.get(wire)
        if width is None:  # groups (3, 4) are long deprecated and never sent by Hadoop
            raise DecodeError(f"unsupported wire type {wire}")
        if pos + width > len(data):
            raise DecodeError("truncated fixed-width field")
        return pos + width

    def _read(self, data, pos: int, f: Field, depth: int, partial: bool):
        k = f.kind
        if k in FIXED:
            width = struct.calcsize(FIXED[k])
            if pos + width > len(data):
                raise DecodeError(f"{f.name}: truncated")
            return struct.unpack_from(FIXED[k], data, pos)[0], pos + width
        if f.wire == LEN:
            size, pos = self._length(data, pos)
            raw = data[pos : pos + size]
            pos += size
            if k == "message":
                return self.decode(f.type, raw, depth + 1, partial), pos
            if k == "string":
                return bytes(raw).decode("utf-8", "replace"), pos
            return bytes(raw), pos
        v, pos = decode_varint(data, pos)
        if k == "enum":
            v = _signed(v, 32)
            return self.enum_names[f.type].get(v, v), pos
        if k in ("sint32", "sint64"):
            return unzigzag(v), pos
        if k == "int32":
            return _signed(v, 32), pos
        if k == "int64":
            return _signed(v, 64), pos
        if k == "uint32":
            return v & 0xFFFFFFFF, pos
        if k == "bool":
            return v != 0, pos
        return v, pos
