"""A container as the NodeManager keeps it (Hadoop's ContainerImpl): its grant, its
directories, its process and cgroup, and how it ended."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .cgroups import ContainerCgroup
from .processtree import ProcessTreeContainer
from .records import Resource

# What may name a container, a user, a local resource or a map attempt: each becomes a
# path component on this node.
SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass
class NMContainer:
    id: str
    app_id: str
    user: str
    resource: Resource
    work_dir: Path
    log_dir: Path
    state: str = "NEW"  # NEW LOCALIZING RUNNING COMPLETE
    exit_status: int = -1000
    diagnostics: str = ""
    proc: asyncio.subprocess.Process | None = None
    cgroup: ContainerCgroup | ProcessTreeContainer | None = None
    kill_status: int | None = None
    kill_reason: str = ""
    started: float = field(default_factory=time.time)
    reported: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def status_json(self) -> dict:
        """ContainerStatus as the RM and an AM read it."""
        return {
            "containerId": self.id,
            "state": self.state,
            "exitStatus": self.exit_status,
            "diagnostics": self.diagnostics,
        }
