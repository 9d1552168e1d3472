"""Linearizability of a history against a sequential model (Wing & Gong's search with
Lowe's memoisation, the algorithm behind Knossos' "wgl" checker and porcupine).

The history becomes a list of call and return events in real-time order. The search
walks it: at a call it tries to linearize that operation now (apply it to the model);
at a return whose call has not been linearized yet it is stuck and backtracks. A cache
of (set of linearized ops, model state) pairs already explored keeps it from walking
the same ground twice. Operations whose outcome is unknown (``info``) have their return
at infinity: they may take effect at any point after their call, or never (taking
effect after everything else is the same as never, for what any read could see).
``fail`` operations certainly did not happen and are left out.

The search is exponential in the worst case, so it has a budget (steps and seconds):
when it runs out the verdict is "unknown", never "valid".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from lab.chaos.history import FAIL, INFO, OK, History, Pair, pairs

from .base import UNKNOWN, Verdict


class Model:
    """A sequential specification: ``step`` says whether an op may happen in a state."""

    name = "?"

    def init(self) -> Any:
        raise NotImplementedError

    def step(self, state, f: str, value, known: bool) -> tuple[bool, Any]:
        """Apply op ``f`` with ``value`` (its input, or for reads what it returned).
        ``known``: False for info ops, whose result nobody saw. Returns (legal, state)."""
        raise NotImplementedError

    def describe(self, state) -> str:
        return repr(state)

    def prune(self, ops: list[Pair]) -> list[Pair]:
        """Drop operations that cannot change the verdict (keeps the search small)."""
        return ops


class CASRegister(Model):
    """A register with read, write and compare-and-set (cas value: [expected, new])."""

    name = "cas-register"

    def __init__(self, initial=None):
        self.initial = initial

    def init(self):
        return self.initial

    def step(self, state, f, value, known):
        if f == "read":
            return (value == state, state) if known else (True, state)
        if f == "write":
            return True, value
        if f == "cas":
            expected, new = value
            if state == expected:
                return True, new
            # a cas known to have succeeded needs the expected value; an unknown one
            # may just as well have failed and changed nothing
            return (not known), state
        raise ValueError(f"a cas-register has no operation {f!r}")

    def prune(self, ops: list[Pair]) -> list[Pair]:
        # A write or cas of unknown outcome whose new value nobody ever observed (no ok
        # read returned it, no ok cas expected it) may as well have happened last, i.e.
        # never: leaving it out changes no verdict, and each one left in doubles the
        # search. This is why the workload writes distinct values.
        observed = set()
        for p in ops:
            if p.type == OK and p.f == "read":
                observed.add(_key(p.complete.value))
            elif p.type == OK and p.f == "cas":
                observed.add(_key(p.invoke.value[0]))
        keep = []
        for p in ops:
            if p.type != OK and p.f in ("write", "cas"):
                new = p.invoke.value if p.f == "write" else p.invoke.value[1]
                if _key(new) not in observed:
                    continue
            keep.append(p)
        return keep


def _key(v):
    return repr(v)


class Mutex(Model):
    name = "mutex"

    def init(self):
        return False

    def step(self, state, f, value, known):
        if f == "acquire":
            return (not state, True) if known else (True, True if not state else state)
        if f == "release":
            return (state, False) if known else (True, False)
        raise ValueError(f"a mutex has no operation {f!r}")


@dataclass
class _Entry:
    call: bool
    op_id: int
    pair: Pair | None = None
    match: _Entry | None = None
    prev: _Entry | None = None
    next: _Entry | None = None


def _op_input(p: Pair):
    """The value the model sees: reads are judged by what they returned."""
    if p.f == "read":
        return p.complete.value if p.type == OK else None
    return p.invoke.value


def _build(ops: list[Pair]) -> _Entry:
    events: list[tuple[float, int, _Entry]] = []
    for i, p in enumerate(ops):
        call = _Entry(True, i, p)
        ret = _Entry(False, i, p)
        call.match = ret
        # ordering by history index is the real-time order the recorder saw
        end = p.complete.index if p.type == OK else float("inf")
        events.append((p.invoke.index, 0, call))
        events.append((end, 1, ret))
    events.sort(key=lambda e: (e[0], e[1], e[2].op_id))
    head = _Entry(False, -1)
    cur = head
    for _, _, e in events:
        cur.next = e
        e.prev = cur
        cur = e
    return head


def _lift(e: _Entry) -> None:
    e.prev.next = e.next
    if e.next:
        e.next.prev = e.prev
    m = e.match
    m.prev.next = m.next
    if m.next:
        m.next.prev = m.prev


def _unlift(e: _Entry) -> None:
    m = e.match
    m.prev.next = m
    if m.next:
        m.next.prev = m
    e.prev.next = e
    if e.next:
        e.next.prev = e


def _describe_op(p: Pair) -> dict:
    d = {
        "process": p.process,
        "f": p.f,
        "value": p.invoke.value,
        "invoke_index": p.invoke.index,
        "time": round(p.start, 4),
        "type": p.type,
    }
    if p.complete is not None:
        d["complete_index"] = p.complete.index
        d["end"] = round(p.complete.time, 4)
        if p.f == "read":
            d["value"] = p.complete.value
    return d


def check(
    history: History,
    model: Model,
    max_steps: int = 2_000_000,
    max_seconds: float = 60.0,
    fs: tuple[str, ...] | None = None,
) -> Verdict:
    """Is ``history`` (ops named in ``fs``, default all) linearizable for ``model``?"""
    all_pairs = [p for p in pairs(history) if fs is None or p.f in fs]
    ops = [p for p in all_pairs if p.type != FAIL and not (p.f == "read" and p.type == INFO)]
    ops = model.prune(ops)
    stats = {
        "ops": len(all_pairs),
        "ok": sum(p.type == OK for p in all_pairs),
        "fail": sum(p.type == FAIL for p in all_pairs),
        "info": sum(p.type == INFO for p in all_pairs),
        "model": model.name,
        "searched": len(ops),
    }
    name = f"linearizable-{model.name}"
    if not ops:
        return Verdict(name, True, [], stats, "no operations to check")
    head = _build(ops)
    cache: set[tuple[int, Any]] = set()
    calls: list[tuple[_Entry, Any]] = []
    state = model.init()
    linearized = 0
    depth = 0
    deepest: tuple[int, Pair | None, list] = (-1, None, [])
    steps = 0
    deadline = time.monotonic() + max_seconds
    entry = head.next
    while head.next is not None:
        steps += 1
        if steps > max_steps or (steps & 0xFFF == 0 and time.monotonic() > deadline):
            stats["steps"] = steps
            return Verdict(
                name,
                UNKNOWN,
                [],
                stats,
                f"search budget ran out after {steps} steps "
                f"({len(ops)} operations, {stats['info']} with unknown outcome)",
            )
        if entry.call:
            p = entry.pair
            legal, new_state = model.step(state, p.f, _op_input(p), p.type == OK)
            if legal:
                new_lin = linearized | (1 << entry.op_id)
                key = (new_lin, new_state)
                if key not in cache:
                    cache.add(key)
                    calls.append((entry, state))
                    state, linearized = new_state, new_lin
                    depth += 1
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # a return reached before its call was linearized: nothing here works
            if depth > deepest[0] or (depth == deepest[0] and entry.pair is deepest[1]):
                if depth > deepest[0]:
                    deepest = (depth, entry.pair, [])
                desc = model.describe(state)
                if desc not in deepest[2]:
                    deepest[2].append(desc)
            if not calls:
                return _invalid(name, stats, steps, deepest)
            entry, state = calls.pop()
            linearized &= ~(1 << entry.op_id)
            depth -= 1
            _unlift(entry)
            entry = entry.next
    stats["steps"] = steps
    return Verdict(name, True, [], stats, f"linearizable ({len(ops)} operations)")


def _invalid(name: str, stats: dict, steps: int, deepest) -> Verdict:
    stats["steps"] = steps
    _, p, states = deepest
    op = _describe_op(p)
    if p.f == "read":
        what = f"read of {op['value']!r}"
    elif p.f == "cas":
        what = f"cas {p.invoke.value[0]!r}->{p.invoke.value[1]!r}"
    else:
        what = f"{p.f} {p.invoke.value!r}" if p.invoke.value is not None else p.f
    held = " or ".join(states[:8]) + (" ..." if len(states) > 8 else "")
    anomaly = {
        "type": "not-linearizable",
        "op": op,
        "possible_states": states[:20],
        "message": (
            f"{what} by process {p.process} (history entries {op['invoke_index']}"
            f"-{op.get('complete_index', '?')}) cannot be linearized: every order of the "
            f"operations before it leaves the {stats['model']} holding {held}"
        ),
    }
    return Verdict(name, False, [anomaly], stats, anomaly["message"])
