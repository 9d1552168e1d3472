"""Checking parsed HCL (python-hcl2) against the provider schema transcribed from
terraform-provider-libvirt's own docs at the pinned tag (libvirt-<version>.schema.json,
written by transcribe_schema.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import hcl2

from lab.terraform.render import PROVIDER_VERSION

SCHEMA_FILE = Path(__file__).with_name(f"libvirt-{PROVIDER_VERSION}.schema.json")
# Terraform's own arguments, valid on every resource
META = {"for_each", "count", "depends_on", "provider", "lifecycle"}


def schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text())


def unquote(s):
    return s[1:-1] if isinstance(s, str) and len(s) >= 2 and s[0] == s[-1] == '"' else s


def clean(v):
    """python-hcl2's output without its markers, string literals unquoted."""
    if isinstance(v, dict):
        return {unquote(k): clean(x) for k, x in v.items() if not k.startswith("__")}
    if isinstance(v, list):
        return [clean(x) for x in v]
    return unquote(v)


def load(path: Path) -> dict:
    with open(path) as f:
        return clean(hcl2.load(f))


def resources(parsed: dict):
    """(type, name, body) of every resource block."""
    for entry in parsed.get("resource", []):
        for rtype, named in entry.items():
            for name, body in named.items():
                yield rtype, name, body


_OBJECT_IN_CONDITIONAL = re.compile(r"\?\s*null\s*:\s*\{(.*)\}\}?$", re.S)


def object_keys_of_expression(expr: str) -> dict | None:
    """`cond ? null : {a = x, b = y}` -> {"a": ..., "b": ...} (keys matter here)."""
    m = _OBJECT_IN_CONDITIONAL.search(expr)
    if not m:
        return None
    return {k: "<expr>" for k in re.findall(r"([a-z_][a-z0-9_]*)\s*=", m.group(1))}


def problems(rtype: str, body: dict, resource_schema: dict, path: str = "") -> list[str]:
    """Unknown arguments, read-only ones set, required ones missing, at every block
    the schema transcribes; a nested object racklab writes that the transcription lacks
    is a problem too (transcribe it)."""
    out = []
    attrs = resource_schema.get(path)
    where = f"{rtype}.{path}" if path else rtype
    if attrs is None:
        return [f"{where}: not in the transcribed schema"]
    for name, spec in attrs.items():
        if spec["mode"] == "required" and name not in body:
            out.append(f"{where}: required argument {name} missing")
    for name, v in body.items():
        if not path and name in META:
            continue
        spec = attrs.get(name)
        if spec is None:
            out.append(f"{where}: unknown argument {name}")
            continue
        if spec["mode"] == "read-only":
            out.append(f"{where}: {name} is read-only")
            continue
        sub = f"{path}.{name}" if path else name
        if isinstance(v, str) and spec["type"].startswith("Attributes"):
            v = object_keys_of_expression(v) or v  # an expression: checked where readable
        if isinstance(v, dict) and spec["type"].startswith("Attributes"):
            if spec["type"] != "Attributes":
                out.append(f"{where}: {name} is a list ({spec['type']}), given an object")
            out += problems(rtype, v, resource_schema, sub)
        elif isinstance(v, list) and spec["type"].startswith("Attributes"):
            if spec["type"] == "Attributes":
                out.append(f"{where}: {name} is one object, given a list")
            for item in v:
                out += problems(rtype, item, resource_schema, sub)
        elif isinstance(v, dict | list) and not spec["type"].startswith(("Map", "List", "Set")):
            out.append(f"{where}: {name} is a {spec['type']}, given {type(v).__name__}")
    return out
