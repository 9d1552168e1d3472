"""What every checker returns: a verdict a person and a script can both read.

``valid`` is True (no anomaly), False (at least one anomaly, each listed with the
history entries that show it) or "unknown" (the checker gave up, e.g. the search
budget ran out; it says why). Unknown is never reported as valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

UNKNOWN = "unknown"


@dataclass
class Verdict:
    checker: str
    valid: bool | str
    anomalies: list[dict] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    reason: str = ""  # why unknown, or a one-line summary

    def to_json(self) -> dict:
        return {
            "checker": self.checker,
            "valid": self.valid,
            "anomalies": self.anomalies,
            "stats": self.stats,
            "reason": self.reason,
        }

    @property
    def anomaly_types(self) -> set[str]:
        return {a["type"] for a in self.anomalies}


def merge(verdicts: list[Verdict]) -> dict:
    """One verdict for a run checked by several checkers: invalid wins over unknown."""
    if any(v.valid is False for v in verdicts):
        valid: bool | str = False
    elif any(v.valid == UNKNOWN for v in verdicts):
        valid = UNKNOWN
    else:
        valid = True
    return {"valid": valid, "checkers": [v.to_json() for v in verdicts]}


def judged(checker: str, anomalies: list[dict], stats: dict, summary: str = "") -> Verdict:
    return Verdict(checker, not anomalies, anomalies, stats, summary)
