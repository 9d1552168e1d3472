"""One generic encoder/decoder driven by Kafka's JSON message schemas.

A schema (lab/services/kafka/schemas/*.json) lists fields with the versions they
exist in, the versions where they may be null, and, for flexible versions
(KIP-482), whether they travel as tagged fields. ``MessageSchema.codec(v)``
compiles that description once per version into a list of small closures, so a
request is read or written by walking the list, never by per-API code.

Decoded messages are plain dicts keyed by snake_case field names
("ThrottleTimeMs" -> "throttle_time_ms"); nested structs are dicts too.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from .primitives import DecodeError, Reader, Writer

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

_INF = 1 << 30


class VersionRange:
    """Kafka's version spec: "none", "3", "0-2" or "4+"."""

    __slots__ = ("lo", "hi")

    def __init__(self, spec: str):
        spec = spec.strip()
        if spec == "none":
            self.lo, self.hi = 1, 0  # empty
        elif spec.endswith("+"):
            self.lo, self.hi = int(spec[:-1]), _INF
        elif "-" in spec:
            a, b = spec.split("-")
            self.lo, self.hi = int(a), int(b)
        else:
            self.lo = self.hi = int(spec)

    def __contains__(self, v: int) -> bool:
        return self.lo <= v <= self.hi

    def __repr__(self) -> str:
        return f"VersionRange({self.lo}-{self.hi})"


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


_INT_TYPES = {"int8", "int16", "uint16", "int32", "uint32", "int64"}


def _parse_default(ftype: str, raw):
    if raw is None:
        return None
    if isinstance(raw, bool | int | float):
        return raw
    if raw == "null":
        return None
    if ftype in _INT_TYPES:
        return int(raw, 0)
    if ftype == "bool":
        return raw == "true"
    if ftype == "float64":
        return float(raw)
    return raw


class Field:
    def __init__(self, spec: dict, structs: dict[str, list[dict]]):
        self.name = spec["name"]
        self.key = snake(self.name)
        self.type = spec["type"]
        self.versions = VersionRange(spec["versions"])
        self.nullable = VersionRange(spec.get("nullableVersions", "none"))
        self.tagged = VersionRange(spec.get("taggedVersions", "none"))
        self.tag = spec.get("tag")
        self.flexible_override = (
            VersionRange(spec["flexibleVersions"]) if "flexibleVersions" in spec else None
        )
        self.is_array = self.type.startswith("[]")
        elem = self.type[2:] if self.is_array else self.type
        self.elem = elem
        sub = spec.get("fields")
        if sub is None and elem[:1].isupper():
            sub = structs.get(elem)
            if sub is None:
                raise ValueError(f"unknown struct type {elem} in field {self.name}")
        self.fields = [Field(f, structs) for f in sub] if sub is not None else None
        self.default_raw = spec.get("default")

    def default(self, version: int):
        if self.is_array:
            return None if self.default_raw == "null" else []
        if self.fields is not None:
            return None if version in self.tagged else {}
        d = _parse_default(self.type, self.default_raw)
        if d is not None or self.default_raw == "null":
            return d
        if self.type in _INT_TYPES:
            return 0
        return {
            "bool": False,
            "float64": 0.0,
            "string": "",
            "bytes": b"",
            "records": None,
            "uuid": bytes(16),
        }[self.type]


# A compiled struct: list of (key, read, write, default) for regular fields and
# {tag: (key, read, write, default)} for tagged ones, plus the flexible flag.
class StructCodec:
    __slots__ = ("fields", "tagged", "flexible")

    def __init__(self, fields, tagged, flexible):
        self.fields = fields
        self.tagged = tagged
        self.flexible = flexible

    def read(self, r: Reader) -> dict:
        out = {}
        for key, read, _w, _d in self.fields:
            out[key] = read(r)
        if self.flexible:
            for _key, _r, _w, default in self.tagged.values():
                out[_key] = default() if callable(default) else default
            for _ in range(r.uvarint()):
                tag = r.uvarint()
                size = r.uvarint()
                end = r.pos + size
                if end > r.end:
                    raise DecodeError("tagged field runs past the end")
                t = self.tagged.get(tag)
                if t is None:
                    r.pos = end  # unknown tags are skipped, as the spec says
                    continue
                sub = Reader(r.buf, r.pos, end)
                out[t[0]] = t[1](sub)
                r.pos = end
        return out

    def write(self, w: Writer, obj: dict) -> None:
        get = obj.get
        for key, _r, write, default in self.fields:
            v = get(key, _MISSING)
            write(w, (default() if callable(default) else default) if v is _MISSING else v)
        if self.flexible:
            present = []
            for tag in sorted(self.tagged):
                key, _r, write, default = self.tagged[tag]
                v = get(key, _MISSING)
                dv = default() if callable(default) else default
                if v is _MISSING or v is None or v == dv:
                    continue
                sub = Writer()
                write(sub, v)
                present.append((tag, sub.getvalue()))
            w.uvarint(len(present))
            for tag, data in present:
                w.uvarint(tag)
                w.uvarint(len(data))
                w.raw(data)


_MISSING = object()


def _scalar_codec(ftype: str, compact: bool, nullable: bool, name: str):
    if ftype in ("string", "bytes", "records"):
        # strings and bytes differ only in the Reader/Writer method; records are
        # nullable bytes whatever the schema says
        method = "string" if ftype == "string" else "bytes"
        nullable = nullable or ftype == "records"
        get, put = getattr(Reader, method), getattr(Writer, method)

        def read(r: Reader):
            v = get(r, compact)
            if v is None and not nullable:
                raise DecodeError(f"{name} may not be null")
            return v

        def write(w: Writer, v):
            if v is None and not nullable:
                raise ValueError(f"{name} may not be null")
            put(w, v, compact)

        return read, write
    if ftype in _INT_TYPES or ftype in ("bool", "float64", "uuid"):
        return getattr(Reader, ftype), getattr(Writer, ftype)
    raise ValueError(f"unknown type {ftype}")


def compile_struct(fields: list[Field], version: int, flexible: bool) -> StructCodec:
    regular, tagged = [], {}
    for f in fields:
        if version not in f.versions:
            continue
        fflex = flexible if f.flexible_override is None else version in f.flexible_override
        nullable = version in f.nullable
        if f.fields is not None:
            sc = compile_struct(f.fields, version, flexible)
            elem_read, elem_write = sc.read, sc.write
        else:
            elem_read, elem_write = _scalar_codec(f.elem, fflex, nullable, f.name)
        if f.is_array:
            read, write = _array_codec(elem_read, elem_write, fflex, nullable, f.name)
        elif f.fields is not None:
            read, write = elem_read, elem_write
        else:
            read, write = elem_read, elem_write
        default = f.default(version)
        if isinstance(default, list | dict):
            default = type(default)  # a fresh one each time, never a shared mutable
        entry = (f.key, read, write, default)
        if flexible and version in f.tagged:
            tagged[f.tag] = entry
        else:
            regular.append(entry)
    return StructCodec(regular, tagged, flexible)


def _array_codec(elem_read, elem_write, compact, nullable, name):
    def read(r: Reader):
        n = r.array_len(compact)
        if n < 0:
            if not nullable:
                raise DecodeError(f"{name} may not be null")
            return None
        return [elem_read(r) for _ in range(n)]

    def write(w: Writer, v):
        if v is None:
            if not nullable:
                raise ValueError(f"{name} may not be null")
            w.array_len(None, compact)
            return
        w.array_len(len(v), compact)
        for x in v:
            elem_write(w, x)

    return read, write


class MessageSchema:
    """One JSON schema file: a request, a response or a header."""

    def __init__(self, spec: dict):
        self.name = spec["name"]
        self.api_key = spec.get("apiKey")
        self.type = spec["type"]
        self.valid = VersionRange(spec["validVersions"])
        self.flexible = VersionRange(spec.get("flexibleVersions", "none"))
        structs = {s["name"]: s["fields"] for s in spec.get("commonStructs", [])}
        self.fields = [Field(f, structs) for f in spec["fields"]]
        self._codecs: dict[int, StructCodec] = {}

    def codec(self, version: int) -> StructCodec:
        c = self._codecs.get(version)
        if c is None:
            c = self._codecs[version] = compile_struct(
                self.fields, version, version in self.flexible
            )
        return c

    def decode(self, data: bytes | Reader, version: int) -> dict:
        r = data if isinstance(data, Reader) else Reader(data)
        return self.codec(version).read(r)

    def encode(self, obj: dict, version: int) -> bytes:
        w = Writer()
        self.codec(version).write(w, obj)
        return w.getvalue()

    def encode_into(self, w: Writer, obj: dict, version: int) -> None:
        self.codec(version).write(w, obj)


@cache
def load(name: str) -> MessageSchema:
    """Load schemas/<name>.json (e.g. "FetchRequest")."""
    path = SCHEMA_DIR / f"{name}.json"
    return MessageSchema(json.loads(path.read_text()))
