"""Lines Kafka logs on every failed request, said at most once per interval per key.

Kafka logs its stuck-state errors (an offsets topic it cannot create, acks=all refused
below min.insync.replicas) once per request, and clients retry every 100 ms or so; a
lab broker left in that state for an afternoon should not fill its disk with them.
The first occurrence is always logged, so a user searching the log finds the reason."""

from __future__ import annotations

import time


class Throttle:
    def __init__(self, interval_s: float = 10.0):
        self.interval_s = interval_s
        self._last: dict[object, float] = {}

    def due(self, key: object) -> bool:
        """True if nothing was said for `key` in the last interval (and note it said now)."""
        now = time.monotonic()
        if now - self._last.get(key, float("-inf")) < self.interval_s:
            return False
        if len(self._last) > 10000:  # keys of deleted topics must not pile up forever
            self._last.clear()
        self._last[key] = now
        return True
