"""'did you mean' for a misspelt key: the closest known name, if one is close."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: object, known: Iterable[str]) -> str:
    """'; did you mean cpus?' or '' (appended to an 'unknown field' message)."""
    if not isinstance(word, str):
        return ""
    # case-insensitive first: ticktime -> tickTime
    by_lower = {k.lower(): k for k in known}
    if word.lower() in by_lower:
        return f"; did you mean {by_lower[word.lower()]}?"
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean {by_lower[close[0]]}?" if close else ""


def model_fields(model) -> set[str]:
    """Every field name of a pydantic model and of the models inside it."""
    import typing

    seen: set[str] = set()
    todo, done = [model], set()
    while todo:
        m = todo.pop()
        if m in done:
            continue
        done.add(m)
        for name, f in m.model_fields.items():
            seen.add(f.alias or name)
            stack = [f.annotation]
            while stack:
                t = stack.pop()
                if isinstance(t, type) and hasattr(t, "model_fields"):
                    todo.append(t)
                stack += list(typing.get_args(t))
    return seen
