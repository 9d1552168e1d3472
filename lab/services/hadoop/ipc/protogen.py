"""Turn Hadoop's .proto files into the message schemas the generic codec reads.

    python -m lab.services.hadoop.ipc.protogen DIR_WITH_PROTO_FILES...

Reads every .proto named in FILES from the given directories (Hadoop's sources keep
them in hadoop-common's and hadoop-hdfs-client's src/main/proto) and writes one JSON
file per .proto into schemas/: its messages (fields with number, label, resolved type,
default, packed), enums and services, every type name fully qualified. Only what the
proto2 files Hadoop ships use is understood; anything else is a clear error, so a
newer .proto cannot be half-read silently."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

SCHEMAS = Path(__file__).parent / "schemas"
FILES = (
    "RpcHeader.proto",
    "IpcConnectionContext.proto",
    "ProtobufRpcEngine2.proto",
    "Security.proto",
    "HAServiceProtocol.proto",
    "hdfs.proto",
    "acl.proto",
    "xattr.proto",
    "encryption.proto",
    "erasurecoding.proto",
    "inotify.proto",
    "ReconfigurationProtocol.proto",
    "ClientNamenodeProtocol.proto",
    "datatransfer.proto",
    "ClientDatanodeProtocol.proto",
)
SCALARS = {
    "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
    "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes",
}  # fmt: skip
TOKEN = re.compile(
    r'\s+|//[^\n]*|/\*.*?\*/|(?P<tok>"(?:[^"\\]|\\.)*"|-?[\w.]+|[{}\[\]=;<>(),])', re.S
)


class ProtoError(ValueError):
    pass


def tokenize(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            raise ProtoError(f"cannot read {text[pos : pos + 20]!r}")
        if m.group("tok"):
            out.append(m.group("tok"))
        pos = m.end()
    return out


class Parser:
    """Recursive descent over one file's tokens, collecting raw (unresolved) types."""

    def __init__(self, tokens: list[str]) -> None:
        self.t, self.i = tokens, 0
        self.package = ""
        self.messages: dict[str, dict] = {}  # fqn -> {"scope", "fields": [...]}
        self.enums: dict[str, dict[str, int]] = {}
        self.services: dict[str, dict[str, list[str]]] = {}

    def next(self) -> str:
        if self.i >= len(self.t):
            raise ProtoError("unexpected end of file")
        self.i += 1
        return self.t[self.i - 1]

    def expect(self, tok: str) -> None:
        got = self.next()
        if got != tok:
            raise ProtoError(f"expected {tok!r}, found {got!r}")

    def skip_statement(self) -> None:
        while self.next() != ";":
            pass

    def skip_block(self) -> None:
        depth = 0
        while True:
            tok = self.next()
            depth += tok == "{"
            depth -= tok == "}"
            if depth == 0 and tok == "}":
                return

    def parse(self) -> Parser:
        while self.i < len(self.t):
            tok = self.next()
            if tok == "package":
                self.package = self.next()
                self.expect(";")
            elif tok in ("syntax", "import", "option"):
                self.skip_statement()
            elif tok == "message":
                self.message(self.package)
            elif tok == "enum":
                self.enum(self.package)
            elif tok == "service":
                self.service()
            elif tok == "extend":
                self.skip_block()
            else:
                raise ProtoError(f"unexpected {tok!r} at top level")
        return self

    def message(self, scope: str) -> None:
        name = f"{scope}.{self.next()}".lstrip(".")
        fields: list[dict] = []
        self.messages[name] = {"scope": name, "fields": fields}
        self.expect("{")
        while (tok := self.next()) != "}":
            if tok == "message":
                self.message(name)
            elif tok == "enum":
                self.enum(name)
            elif tok in ("option", "extensions", "reserved"):
                self.skip_statement()
            elif tok == "extend":
                self.skip_block()
            elif tok == ";":
                pass
            elif tok == "map":
                # On the wire a map is a repeated message of {key = 1, value = 2}.
                self.expect("<")
                key = self.next()
                self.expect(",")
                value = self.next()
                self.expect(">")
                f = self.field("repeated", "")
                entry = f"{name}.{f['name'][0].upper()}{f['name'][1:]}Entry"
                f["type"] = entry
                self.messages[entry] = {
                    "scope": name,
                    "fields": [
                        {"n": 1, "name": "key", "label": "optional", "type": key},
                        {"n": 2, "name": "value", "label": "optional", "type": value},
                    ],
                }
                fields.append(f)
            elif tok == "oneof":
                self.next()
                self.expect("{")
                while self.t[self.i] != "}":
                    fields.append(self.field("optional", self.next()))
                self.expect("}")
            elif tok in ("optional", "required", "repeated"):
                fields.append(self.field(tok, self.next()))
            else:
                raise ProtoError(f"{name}: unexpected {tok!r}")

    def field(self, label: str, type_: str) -> dict:
        name = self.next()
        self.expect("=")
        f = {"n": int(self.next()), "name": name, "label": label, "type": type_}
        if self.t[self.i] == "[":
            self.next()
            while True:
                key = self.next()
                self.expect("=")
                value = self.next()
                if key == "default":
                    f["default"] = value
                elif key == "packed":
                    f["packed"] = value == "true"
                if self.next() == "]":
                    break
        self.expect(";")
        return f

    def enum(self, scope: str) -> None:
        name = f"{scope}.{self.next()}".lstrip(".")
        values: dict[str, int] = {}
        self.enums[name] = values
        self.expect("{")
        while (tok := self.next()) != "}":
            if tok in ("option", "reserved"):
                self.skip_statement()
                continue
            self.expect("=")
            values[tok] = int(self.next(), 0)
            if self.t[self.i] == "[":
                while self.next() != "]":
                    pass
            self.expect(";")

    def service(self) -> None:
        name = f"{self.package}.{self.next()}".lstrip(".")
        methods: dict[str, list[str]] = {}
        self.services[name] = methods
        self.expect("{")
        while (tok := self.next()) != "}":
            if tok == "option":
                self.skip_statement()
                continue
            if tok != "rpc":
                raise ProtoError(f"service {name}: unexpected {tok!r}")
            method = self.next()
            self.expect("(")
            req = self.next()
            self.expect(")")
            self.expect("returns")
            self.expect("(")
            resp = self.next()
            self.expect(")")
            if self.next() == "{":
                self.i -= 1
                self.skip_block()
            methods[method] = [self.resolve_late(req), self.resolve_late(resp)]

    def resolve_late(self, name: str) -> str:
        return f"?{self.package}?{name}"  # resolved once every file is read


def resolve(name: str, scope: str, known: set[str]) -> str:
    """Protobuf's scoping: innermost scope first, then each enclosing one, then global."""
    if name.startswith("."):
        return name[1:]
    parts = scope.split(".") if scope else []
    while True:
        candidate = ".".join([*parts, name])
        if candidate in known:
            return candidate
        if not parts:
            raise ProtoError(f"unknown type {name} (in {scope})")
        parts.pop()


def default_value(f: dict, enums: dict) -> object:
    raw = f.get("default")
    t = f["type"]
    if raw is None:
        # proto2: an enum without a default takes its first declared value; written out
        # because the schema files keep enum values sorted by name.
        return next(iter(enums[t])) if t in enums else None
    if t in ("string", "bytes"):
        return json.loads(raw) if raw.startswith('"') else raw
    if t == "bool":
        return raw == "true"
    if t in ("float", "double"):
        return float(raw)
    if t in SCALARS:
        return int(raw, 0)
    if raw not in enums[t]:
        raise ProtoError(f"{f['name']}: default {raw} is not a value of {t}")
    return raw  # an enum's default is kept by name


def generate(dirs: list[Path], out: Path = SCHEMAS) -> list[Path]:
    parsed: dict[str, Parser] = {}
    for fname in FILES:
        src = next((d / fname for d in dirs if (d / fname).exists()), None)
        if src is None:
            raise SystemExit(f"{fname} not found in {', '.join(map(str, dirs))}")
        try:
            parsed[fname] = Parser(tokenize(src.read_text())).parse()
        except ProtoError as exc:
            raise SystemExit(f"{src}: {exc}") from None
    known = {n for p in parsed.values() for n in (*p.messages, *p.enums)}
    enums = {n: v for p in parsed.values() for n, v in p.enums.items()}
    written = []
    out.mkdir(parents=True, exist_ok=True)
    for fname, p in parsed.items():
        messages = {}
        for mname, m in p.messages.items():
            fields = []
            for f in m["fields"]:
                if f["type"] not in SCALARS:
                    f["type"] = resolve(f["type"], m["scope"], known)
                f["default"] = default_value(f, enums)
                row = {k: f[k] for k in ("n", "name", "label", "type")}
                if f["default"] is not None:
                    row["default"] = f["default"]
                if f.get("packed"):
                    row["packed"] = True
                fields.append(row)
            messages[mname] = fields
        services = {
            s: {
                m: [resolve(t.split("?")[2], t.split("?")[1], known) for t in types]
                for m, types in methods.items()
            }
            for s, methods in p.services.items()
        }
        doc = {
            "source": fname,
            "package": p.package,
            "messages": messages,
            "enums": p.enums,
            "services": services,
        }
        path = out / (fname.removesuffix(".proto") + ".json")
        path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for p in generate([Path(a) for a in sys.argv[1:]]):
        print(p)
