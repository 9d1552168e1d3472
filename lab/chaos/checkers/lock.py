"""Mutual exclusion for a lock workload: no two clients ever both believe they hold it.

A client certainly holds the lock from the moment its ``acquire`` returned ok until
the moment it invokes ``release`` (or, if it never does, until the history ends). The
workload ends a hold early (invokes release) when its session is suspended or lost,
since a careful client must stop trusting the lock then. Two such hold intervals that
overlap are two holders at once: a violation. An acquire with an unknown outcome
proves nothing either way and is not counted as a hold.
"""

from __future__ import annotations

from lab.chaos.history import OK, History, pairs

from .base import Verdict, judged


def holds(history: History) -> list[dict]:
    ps = pairs(history)
    last = max((op.time for op in history), default=0.0)
    out: list[dict] = []
    held: dict = {}
    for p in sorted(ps, key=lambda p: p.invoke.index):
        if p.f == "acquire" and p.type == OK:
            h = {
                "process": p.process,
                "start": p.complete.time,
                "end": last,
                "acquired_index": p.complete.index,
                "released_index": None,
            }
            held[p.process] = h
            out.append(h)
        elif p.f == "release" and p.process in held:
            h = held.pop(p.process)
            h["end"] = p.invoke.time
            h["released_index"] = p.invoke.index
    return out


def check(history: History) -> Verdict:
    hs = sorted(holds(history), key=lambda h: h["start"])
    anomalies = []
    for i, a in enumerate(hs):
        for b in hs[i + 1 :]:
            if b["start"] >= a["end"]:
                break
            if a["process"] == b["process"]:
                continue
            anomalies.append(
                {
                    "type": "two-holders",
                    "holders": [a, b],
                    "message": (
                        f"processes {a['process']} and {b['process']} both held the lock "
                        f"from t={b['start']:.3f}s to t={min(a['end'], b['end']):.3f}s "
                        f"(acquired at history entries {a['acquired_index']} and "
                        f"{b['acquired_index']})"
                    ),
                }
            )
    stats = {"holds": len(hs), "acquire_attempts": sum(p.f == "acquire" for p in pairs(history))}
    summary = (
        f"{len(anomalies)} overlapping holds"
        if anomalies
        else f"{len(hs)} holds, never two at once"
    )
    return judged("lock-mutual-exclusion", anomalies, stats, summary)


__all__ = ["check", "holds", "Verdict"]
