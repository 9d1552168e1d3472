"""The ResourceManager's state store (FileSystemRMStateStore's role): one JSON file per
application, so a restarted RM knows every application it had accepted.

With yarn.resourcemanager.recovery.enabled, finished applications come back as
history and unfinished ones get a new attempt (the RM restart is not the
application's fault, so it does not count against its max attempts). Each write
goes to a temporary file, is fsynced and renamed over the old one: a crash leaves
the old record or the new, never half of one.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from .rmapp import RMApp

log = logging.getLogger("yarn.rm.store")


class FileStateStore:
    def __init__(self, uri: str):
        path = uri[len("file://") :] if uri.startswith("file://") else uri
        self.dir = Path(path) / "apps"
        self.dir.mkdir(parents=True, exist_ok=True)

    def save(self, app_id: str, record: dict) -> None:
        tmp = self.dir / f".{app_id}.tmp"
        with open(tmp, "w") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.rename(self.dir / f"{app_id}.json")

    def forget(self, app_id: str) -> None:
        (self.dir / f"{app_id}.json").unlink(missing_ok=True)

    def load(self) -> list[dict]:
        out = []
        for p in sorted(self.dir.glob("application_*.json")):
            try:
                out.append(json.loads(p.read_text()))
            except ValueError as e:
                log.warning("unreadable application record %s skipped: %s", p, e)
        return out


def app_record(app: RMApp) -> dict:
    """What the store keeps of an application: its submission and where it got to."""
    return {
        "ctx": app.ctx,
        "user": app.user,
        "started": app.started,
        "launch_time": app.launch_time,
        "attempts": len(app.attempts),
        "max_attempts": app.max_attempts,
        "state": app.state,
        "final_status": app.final_status,
        "diagnostics": app.diagnostics,
        "finished": app.finished,
        "progress": app.progress,
        # what a client changed since the submission (PUT queue, priority, timeout)
        "queue": app.queue,
        "priority": app.priority,
        "lifetime_expiry": app.lifetime_expiry,
    }
