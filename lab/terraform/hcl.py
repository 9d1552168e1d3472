"""Writing Terraform's native syntax (HCL) already in `terraform fmt`'s layout.

Only what a rendered root module needs: blocks with attributes, and values that are
strings, numbers, booleans, null, lists, objects and raw expressions. Layout follows
fmt so that `terraform fmt -check` passes on every rendered file without running fmt:
two-space indents, and the `=` of consecutive one-line attributes aligned (an
attribute spanning several lines ends the run, as fmt does).
"""

from __future__ import annotations

import json
import re

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
INDENT = "  "


class Raw(str):
    """An expression written as is: a reference, a function call."""


class Block:
    """``type "label" ... { attributes; nested blocks }``."""

    def __init__(self, type_: str, *labels: str, **attrs):
        self.type, self.labels = type_, labels
        self.attrs: dict = dict(attrs)
        self.blocks: list[Block] = []
        self.comment: str | None = None

    def add(self, block: Block) -> Block:
        self.blocks.append(block)
        return block


def string(s: str) -> str:
    # JSON's escapes are HCL's (\" \\ \n \t \uXXXX); a literal ${ or %{ would start a
    # template sequence, so it is doubled as HCL requires
    return json.dumps(s, ensure_ascii=False).replace("${", "$${").replace("%{", "%%{")


def key(k: str) -> str:
    return k if IDENT.match(k) else string(k)


def value(v, level: int = 0) -> str:
    """A value as it appears after `=` at indent ``level`` (lines after the first are
    indented by the caller's level)."""
    if isinstance(v, Raw):
        return str(v)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, list | tuple):
        if not v:
            return "[]"
        if all(_scalar(x) for x in v):
            return "[" + ", ".join(value(x) for x in v) + "]"
        pad = INDENT * (level + 1)
        return "[\n" + "".join(f"{pad}{value(x, level + 1)},\n" for x in v) + INDENT * level + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        if len(v) <= 3 and all(_scalar(x) for x in v.values()):
            return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }"
        return "{\n" + _attributes(v, level + 1) + INDENT * level + "}"
    raise TypeError(f"no HCL for {type(v).__name__}")


def _scalar(v) -> bool:
    return v is None or isinstance(v, bool | int | float | str) and "\n" not in str(v)


def _attributes(attrs: dict, level: int) -> str:
    pad = INDENT * level
    rendered = [(key(k), value(v, level)) for k, v in attrs.items()]
    out, run = [], []

    def flush():
        width = max((len(k) for k, _ in run), default=0)
        out.extend(f"{pad}{k.ljust(width)} = {v}\n" for k, v in run)
        run.clear()

    for k, v in rendered:
        if "\n" in v:
            flush()
            out.append(f"{pad}{k} = {v}\n")
        else:
            run.append((k, v))
    flush()
    return "".join(out)


def block(b: Block, level: int = 0) -> str:
    pad = INDENT * level
    head = " ".join([b.type, *(string(label) for label in b.labels)])
    text = f"{pad}# {b.comment}\n" if b.comment else ""
    text += f"{pad}{head} {{\n" + _attributes(b.attrs, level + 1)
    for i, inner in enumerate(b.blocks):
        if b.attrs or i:
            text += "\n"
        text += block(inner, level + 1)
    return text + f"{pad}}}\n"


def document(*blocks: Block, header: str = "") -> str:
    parts = [header] if header else []
    parts += [block(b) for b in blocks]
    return "\n".join(parts)
