"""Declarative checks for what a client sends as JSON (RPC arguments, data-transfer
headers, REST bodies): each field's type and range written once as data, checked before a
server acts on any of it, with one sentence naming the field when it is wrong.

Hadoop gets this for free from protobuf (a field is an int64 or it does not parse) and
from its REST layer's typed parameters; a JSON front door has to say it. Integers are
bounded to Java's long (or int) so that no value a Java server would refuse ever reaches
struct.pack, an edit log or a block file.

    BLOCK = Struct(blockId=Int(0), genStamp=Int(0), numBytes=Int(0, default=0))
    BLOCK.check({"blockId": 5, "genStamp": "x"}, "block")
      -> FieldError: block.genStamp: expected an integer, got 'x'
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
INT_MAX = 2**31 - 1
REQUIRED = object()


class FieldError(ValueError):
    """A field of a request is missing, of the wrong type or out of range."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Field:
    """One field: check(value, where) returns the value (maybe normalised) or raises."""

    def __init__(self, default: Any = REQUIRED, nullable: bool = False) -> None:
        self.default = default
        self.nullable = nullable or default is None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check(self, value: Any, where: str = "") -> Any:
        if value is None:
            if self.nullable:
                return None
            raise FieldError(where, "must not be null")
        return self.convert(value, where)

    def convert(self, value: Any, where: str) -> Any:
        raise NotImplementedError

    def or_none(self) -> Field:
        """The same field, optional: absent or null means None."""
        other = copy.copy(self)
        other.default, other.nullable = None, True
        return other


class Any_(Field):
    def convert(self, value: Any, where: str) -> Any:
        return value


class Bool(Field):
    def convert(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise FieldError(where, f"expected true or false, got {_show(value)}")
        return value


class Int(Field):
    """An integer in [lo, hi] (Java long by default); JSON's true/false are not integers."""

    def __init__(self, lo: int = LONG_MIN, hi: int = LONG_MAX, **kw) -> None:
        super().__init__(**kw)
        self.lo, self.hi = lo, hi

    def convert(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(where, f"expected an integer, got {_show(value)}")
        if not self.lo <= value <= self.hi:
            raise FieldError(where, f"{value} is out of range [{self.lo}, {self.hi}]")
        return value


class Float(Field):
    def __init__(self, lo: float = float("-inf"), hi: float = float("inf"), **kw) -> None:
        super().__init__(**kw)
        self.lo, self.hi = lo, hi

    def convert(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldError(where, f"expected a number, got {_show(value)}")
        if not self.lo <= value <= self.hi:
            raise FieldError(where, f"{value} is out of range [{self.lo}, {self.hi}]")
        return float(value)


class Str(Field):
    """Text of at most max_len characters, without NUL (Java strings may hold one, but no
    path, user or host name may, and the OS refuses them)."""

    def __init__(
        self, max_len: int = 8000, choices: tuple[str, ...] | None = None, empty: bool = True, **kw
    ) -> None:
        super().__init__(**kw)
        self.max_len, self.choices, self.empty = max_len, choices, empty

    def convert(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise FieldError(where, f"expected a string, got {_show(value)}")
        if self.choices is not None and value not in self.choices:
            raise FieldError(where, f"{_show(value)} is not one of {', '.join(self.choices)}")
        if len(value) > self.max_len:
            raise FieldError(where, f"longer than {self.max_len} characters")
        if "\x00" in value:
            raise FieldError(where, "contains a NUL character")
        if not value and not self.empty:
            raise FieldError(where, "must not be empty")
        return value


class List(Field):
    def __init__(self, item: Field, max_len: int = 100_000, **kw) -> None:
        super().__init__(**kw)
        self.item, self.max_len = item, max_len

    def convert(self, value: Any, where: str) -> list:
        if not isinstance(value, list | tuple):
            raise FieldError(where, f"expected a list, got {_show(value)}")
        if len(value) > self.max_len:
            raise FieldError(where, f"more than {self.max_len} items")
        return [self.item.check(v, f"{where}[{i}]") for i, v in enumerate(value)]


class Struct(Field):
    """A JSON object with known fields. Unknown fields are refused (a typo must not pass
    for a default); `extra=True` keeps them unchecked, for objects that carry more."""

    def __init__(self, _extra: bool = False, _default: Any = REQUIRED, **fields: Field) -> None:
        super().__init__(default=_default)
        self.fields, self.extra = fields, _extra

    def convert(self, value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            raise FieldError(where, f"expected an object, got {_show(value)}")
        out = dict(value) if self.extra else {}
        for name, spec in self.fields.items():
            sub = f"{where}.{name}" if where else name
            if name in value:
                out[name] = spec.check(value[name], sub)
            elif spec.required:
                raise FieldError(sub, "is required")
            else:
                out[name] = copy.copy(spec.default)  # a default list is not shared
        if not self.extra:
            unknown = sorted(set(value) - set(self.fields))
            if unknown:
                raise FieldError(where, f"unknown field {unknown[0]!r}")
        return out


class Checked(Field):
    """Another field plus a test of the value: check(value) returns an error text or None."""

    def __init__(self, inner: Field, test: Callable[[Any], str | None]) -> None:
        super().__init__(default=inner.default, nullable=inner.nullable)
        self.inner, self.test = inner, test

    def convert(self, value: Any, where: str) -> Any:
        value = self.inner.convert(value, where)
        problem = self.test(value)
        if problem:
            raise FieldError(where, problem)
        return value


def parse_json(body: bytes | str, what: str = "body") -> Any:
    """json.loads that turns every way a body can fail to be JSON (bad bytes, bad
    syntax, nesting deep enough to exhaust the parser's recursion) into one FieldError."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise FieldError("", f"{what} is not valid JSON: {detail}") from None


def args(**fields: Field) -> Callable:
    """Decorator: the argument struct a server method takes, kept on the method for the
    dispatcher, which checks a request against it before the method runs."""

    def mark(fn: Callable) -> Callable:
        fn.arg_spec = Struct(**fields)
        return fn

    return mark
