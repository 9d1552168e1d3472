"""Parsing of the human units a topology file uses: sizes, durations, rates, percentages."""

from __future__ import annotations

import re

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
    "ti": 1024**4,
    "tib": 1024**4,
}
_NUM_UNIT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z%/]*)\s*$")


def parse_size(value: object) -> int:
    """'512Mi' -> 536870912; plain integers are bytes. Raises ValueError with a hint."""
    if isinstance(value, bool):
        raise ValueError(f"cannot parse size {value!r} (use e.g. 512Mi, 1Gi, 200M)")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"size must be positive, got {value}")
        return value
    m = _NUM_UNIT.match(str(value))
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"cannot parse size {value!r} (use e.g. 512Mi, 1Gi, 200M)")
    n = int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])
    if n <= 0:
        raise ValueError(f"size must be positive, got {value!r}")
    return n


def parse_rate(value: object) -> int:
    """An I/O rate in bytes per second: '10M', '10MB/s', '8Mi/s'."""
    s = str(value).strip()
    if s.lower().endswith("/s"):
        s = s[:-2]
    try:
        return parse_size(int(s) if s.isdigit() else s)
    except ValueError:
        raise ValueError(f"cannot parse rate {value!r} (use e.g. 10MB/s, 8Mi/s)") from None


_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """'2ms' -> 0.002 seconds; a bare number is seconds."""
    if isinstance(value, bool):
        raise ValueError(f"cannot parse duration {value!r} (use e.g. 2ms, 0.5ms, 1s)")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value}")
        return float(value)
    m = _NUM_UNIT.match(str(value))
    if not m or m.group(2).lower() not in _DURATION_UNITS:
        raise ValueError(f"cannot parse duration {value!r} (use e.g. 2ms, 0.5ms, 1s)")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2).lower()]


def parse_percent(value: object) -> float:
    """'1%' -> 1.0 (percent); a bare number is taken as percent too."""
    if isinstance(value, bool):
        raise ValueError(f"cannot parse percentage {value!r} (use e.g. 1%, 0.5%)")
    s = str(value).strip()
    if s.endswith("%"):
        s = s[:-1]
    try:
        p = float(s)
    except ValueError:
        raise ValueError(f"cannot parse percentage {value!r} (use e.g. 1%, 0.5%)") from None
    if not 0 <= p <= 100:
        raise ValueError(f"percentage must be between 0% and 100%, got {value!r}")
    return p


def format_size(n: int) -> str:
    for unit, factor in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if n >= factor and n % factor == 0:
            return f"{n // factor}{unit}"
    return str(n)
