"""The ResourceManager's records of what it manages: applications, their attempts, and
the nodes, with the states Hadoop's RM reports them in."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .records import Resource
from .scheduler import Container

FINAL_STATES = ("FINISHED", "FAILED", "KILLED")
VERSION = "3.3.6-racklab"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class RMAttempt:
    id: str
    number: int
    start_time: int
    state: str = "SCHEDULED"  # SCHEDULED ALLOCATED LAUNCHED RUNNING FINISHED FAILED KILLED
    am_container: Container | None = None
    finish_time: int = 0
    last_heartbeat: float = 0.0
    registered: bool = False
    response_id: int = 0
    diagnostics: str = ""
    updated_nodes: list[dict] = field(default_factory=list)


@dataclass
class RMApp:
    id: str
    name: str
    user: str
    queue: str
    app_type: str
    tags: list[str]
    priority: int
    am_spec: dict  # am-container-spec as submitted
    am_resource: Resource
    max_attempts: int
    unmanaged: bool
    started: int
    state: str = "ACCEPTED"
    final_status: str = "UNDEFINED"
    diagnostics: str = ""
    progress: float = 0.0
    launch_time: int = 0
    finished: int = 0
    tracking_url: str = ""
    am_host: str = ""
    rpc_port: int = -1
    attempts: list[RMAttempt] = field(default_factory=list)
    memory_seconds: int = 0
    vcore_seconds: int = 0
    ctx: dict = field(default_factory=dict)  # the submission, as received (for the state store)
    lifetime_expiry: int = 0  # ms since the epoch when its LIFETIME timeout kills it; 0: none

    @property
    def current(self) -> RMAttempt | None:
        return self.attempts[-1] if self.attempts else None


@dataclass
class RMNode:
    node_id: str
    host: str
    rack: str
    http_address: str
    capability: Resource
    state: str = "RUNNING"
    last_heartbeat: float = 0.0
    last_health_update: int = 0
    response_id: int = 0
    version: str = VERSION
    to_cleanup: list[str] = field(default_factory=list)
    apps_to_cleanup: list[str] = field(default_factory=list)
    to_signal: list[dict] = field(default_factory=list)  # {containerId, command} for the NM
