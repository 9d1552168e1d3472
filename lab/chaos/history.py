"""The history of a chaos run, in Jepsen's vocabulary.

Every operation a client attempts is recorded twice: an ``invoke`` when it starts and
one completion when it ends:

- ``ok``   it happened (with the value the system answered),
- ``fail`` it certainly did not happen (the system said so),
- ``info`` nobody knows (a timeout, a lost connection): it may have happened, or may
  still happen later, so checkers must allow both.

A process is one logical client thread. After an ``info`` the process may still have
an operation in flight, so the workload gives that thread a new process id (as Jepsen
does); a process therefore never has two operations open at once.

The nemesis writes its own ``info`` entries (process ``"nemesis"``) when it starts and
heals a fault, so a report can shade fault periods and a reader can see what happened
when. Times are seconds since the start of the run (monotonic clock). The history is
written as JSON lines while the run goes, so an interrupted run still leaves one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

INVOKE, OK, FAIL, INFO = "invoke", "ok", "fail", "info"
TYPES = (INVOKE, OK, FAIL, INFO)
NEMESIS = "nemesis"
NOTE = "note"  # remarks that are not operations (a client thread's crash, a final error)
NOT_CLIENTS = (NEMESIS, NOTE)


@dataclass
class Op:
    type: str  # invoke | ok | fail | info
    process: int | str  # client process id, or "nemesis"
    f: str  # what: read, write, cas, acquire, send, poll, ...
    value: Any = None
    time: float = 0.0  # seconds since the run started
    index: int = -1  # position in the history
    error: str | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        if not d["extra"]:
            del d["extra"]
        if d["error"] is None:
            del d["error"]
        return d

    @classmethod
    def from_json(cls, d: dict) -> Op:
        if d.get("type") not in TYPES:
            raise ValueError(f"history entry has an unknown type: {d.get('type')!r}")
        return cls(
            type=d["type"],
            process=d["process"],
            f=d["f"],
            value=d.get("value"),
            time=float(d.get("time", 0.0)),
            index=int(d.get("index", -1)),
            error=d.get("error"),
            extra=d.get("extra") or {},
        )


class History:
    """An append-only, thread-safe list of ops, mirrored to a JSON-lines file."""

    def __init__(self, path: str | Path | None = None, ops: Iterable[Op] = ()):
        self.ops: list[Op] = []
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._file = open(path, "a", buffering=1) if path else None  # noqa: SIM115
        for op in ops:
            self._append(op)

    # recording
    def now(self) -> float:
        return time.monotonic() - self._t0

    def _append(self, op: Op) -> Op:
        with self._lock:
            op.index = len(self.ops)
            self.ops.append(op)
            if self._file is not None:
                self._file.write(json.dumps(op.to_json(), default=str) + "\n")
        return op

    def add(self, type: str, process, f: str, value=None, error=None, **extra) -> Op:
        return self._append(Op(type, process, f, value, self.now(), error=error, extra=extra))

    def invoke(self, process, f: str, value=None, **extra) -> Op:
        return self.add(INVOKE, process, f, value, **extra)

    def complete(self, inv: Op, type: str, value=None, error: str | None = None, **extra) -> Op:
        if type not in (OK, FAIL, INFO):
            raise ValueError(f"a completion is ok, fail or info, not {type!r}")
        return self.add(type, inv.process, inv.f, value, error, **extra)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # reading
    def __iter__(self) -> Iterator[Op]:
        return iter(list(self.ops))

    def __len__(self) -> int:
        return len(self.ops)

    def client_ops(self) -> list[Op]:
        return [op for op in self.ops if op.process not in NOT_CLIENTS]

    def nemesis_ops(self) -> list[Op]:
        return [op for op in self.ops if op.process == NEMESIS]


def load(path: str | Path) -> History:
    ops = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                ops.append(Op.from_json(json.loads(line)))
            except (ValueError, KeyError) as e:
                raise ValueError(f"{path}:{n}: not a history entry: {e}") from None
    return History(ops=ops)


def from_dicts(entries: Iterable[dict]) -> History:
    """Build a history from plain dicts (crafted histories in tests), in order."""
    return History(ops=[Op.from_json({"time": i, **e}) for i, e in enumerate(entries)])


@dataclass
class Pair:
    """An invocation with its completion (None: still open when the history ended)."""

    invoke: Op
    complete: Op | None

    @property
    def type(self) -> str:
        return self.complete.type if self.complete else INFO

    @property
    def process(self):
        return self.invoke.process

    @property
    def f(self) -> str:
        return self.invoke.f

    @property
    def start(self) -> float:
        return self.invoke.time

    @property
    def end(self) -> float | None:
        """Completion time; None for ops whose outcome is unknown (info or open)."""
        if self.complete is None or self.complete.type == INFO:
            return None
        return self.complete.time


def pairs(history: History | Iterable[Op]) -> list[Pair]:
    """Match each client invocation with the next completion of the same process."""
    open_: dict = {}
    out: list[Pair] = []
    for op in history:
        if op.process in NOT_CLIENTS:
            continue
        if op.type == INVOKE:
            if op.process in open_:
                raise ValueError(
                    f"history entry {op.index}: process {op.process} invoked {op.f} while its "
                    f"{open_[op.process].invoke.f} (entry {open_[op.process].invoke.index}) "
                    "was still open"
                )
            p = Pair(op, None)
            open_[op.process] = p
            out.append(p)
        else:
            p = open_.pop(op.process, None)
            if p is None:
                raise ValueError(
                    f"history entry {op.index}: process {op.process} completed {op.f} "
                    "without invoking it"
                )
            p.complete = op
    return out


def fault_periods(history: History | Iterable[Op]) -> list[dict]:
    """[{start, end, fault}] from the nemesis entries (end None: never healed)."""
    periods: list[dict] = []
    open_: dict[str, dict] = {}
    for op in history:
        if op.process != NEMESIS:
            continue
        key = op.extra.get("id") or op.f
        if op.f == "start":
            p = {"start": op.time, "end": None, "fault": op.value}
            open_[key] = p
            periods.append(p)
        elif op.f == "stop" and key in open_:
            open_.pop(key)["end"] = op.time
    return periods
