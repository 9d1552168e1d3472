"""Where a running lab is remembered: RACKLAB_HOME/<lab>/state.json.

Written step by step while `lab up` works, so that `lab down` and `lab clean` find
everything even after a crash or a kill -9 half-way through.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("RACKLAB_HOME", "/var/lib/racklab"))


def cache() -> Path:
    return Path(os.environ.get("RACKLAB_CACHE", "/var/cache/racklab"))


def lab_dir(name: str) -> Path:
    return home() / name


class State:
    def __init__(self, name: str, data: dict | None = None):
        self.name = name
        self.data = data if data is not None else {"name": name}

    @property
    def path(self) -> Path:
        return lab_dir(self.name) / "state.json"

    @classmethod
    def load(cls, name: str) -> State | None:
        p = lab_dir(name) / "state.json"
        try:
            return cls(name, json.loads(p.read_text()))
        except (OSError, ValueError):
            return None

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # write-then-rename: a crash never leaves half a file
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state.")
        with os.fdopen(fd, "w") as f:
            json.dump(self.data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def __getitem__(self, key):
        return self.data[key]

    def get(self, key, default=None):
        return self.data.get(key, default)

    def __setitem__(self, key, value):
        self.data[key] = value


def known_labs() -> list[str]:
    h = home()
    if not h.is_dir():
        return []
    return sorted(p.name for p in h.iterdir() if (p / "state.json").exists())


def begin(topo, plan, **extra) -> State:
    """The state of a lab about to be made, saved before anything is made: what `lab
    down` and `lab clean` need to find everything later (`extra`: what a kind of lab
    adds, such as the hosts it spans)."""
    state = State(
        topo.name,
        {
            "name": topo.name,
            "labid": topo.labid,
            "file": str(Path(topo.file).resolve()) if Path(topo.file).exists() else topo.file,
            "topology": topo.source.text if topo.source is not None else "",
            "phase": "creating",
            "started": time.time(),
            "up_pid": os.getpid(),  # `lab clean` leaves a lab alone while this runs
            "network": plan.to_json(),
            **extra,
            "nodes": {},
            "services": {},
        },
    )
    state.save()
    return state
