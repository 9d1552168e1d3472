"""YARN's small value types: resources, ids, container exit statuses.

Ids keep Hadoop's exact textual forms so tools that parse them (and people who
know them) recognise them: application_<clusterTimestamp>_<seq:04d>,
appattempt_<ts>_<seq:04d>_<attempt:06d>, container_<ts>_<seq:04d>_<attempt:02d>_<n:06d>.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

# ContainerExitStatus constants (org.apache.hadoop.yarn.api.records.ContainerExitStatus).
SUCCESS = 0
INVALID = -1000
ABORTED = -100
DISKS_FAILED = -101
PREEMPTED = -102
KILLED_EXCEEDED_VMEM = -103
KILLED_EXCEEDED_PMEM = -104
KILLED_BY_APPMASTER = -105
KILLED_BY_RESOURCEMANAGER = -106
KILLED_AFTER_APP_COMPLETION = -107

# SignalContainerCommand, and the signal a container executor sends for each.
CONTAINER_SIGNALS = {
    "OUTPUT_THREAD_DUMP": signal.SIGQUIT,
    "GRACEFUL_SHUTDOWN": signal.SIGTERM,
    "FORCEFUL_SHUTDOWN": signal.SIGKILL,
}

LOST_CONTAINER = "Container released on a *lost* node"
RELEASED_CONTAINER = "Container released by application"
COMPLETED_APPLICATION = "Container of a completed application"

APP_STATES = [
    "NEW",
    "NEW_SAVING",
    "SUBMITTED",
    "ACCEPTED",
    "RUNNING",
    "FINISHED",
    "FAILED",
    "KILLED",
]
FINAL_STATUSES = ["UNDEFINED", "SUCCEEDED", "FAILED", "KILLED", "ENDED"]
NODE_STATES = [
    "NEW",
    "RUNNING",
    "UNHEALTHY",
    "DECOMMISSIONED",
    "LOST",
    "REBOOTED",
    "DECOMMISSIONING",
    "SHUTDOWN",
]


@dataclass(frozen=True)
class Resource:
    memory: int  # MB
    vcores: int

    def __add__(self, other: Resource) -> Resource:
        return Resource(self.memory + other.memory, self.vcores + other.vcores)

    def __sub__(self, other: Resource) -> Resource:
        return Resource(self.memory - other.memory, self.vcores - other.vcores)

    def fits_in(self, other: Resource) -> bool:
        return self.memory <= other.memory and self.vcores <= other.vcores

    def json(self) -> dict:
        return {"memory": self.memory, "vCores": self.vcores}

    @classmethod
    def from_json(cls, data: object, what: str = "resource") -> Resource:
        if not isinstance(data, dict):
            raise ValueError(f"{what} must be an object with memory and vCores")
        try:
            memory = int(data.get("memory", data.get("memorySize", 0)))
            vcores = int(data.get("vCores", data.get("virtualCores", 1)))
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{what} has a non-integer memory or vCores") from None
        if memory < 0 or vcores < 0:
            raise ValueError(f"{what} has a negative memory or vCores")
        # Java's types: memory a long, vCores an int; beyond them Hadoop refuses the JSON.
        if memory > 2**63 - 1 or vcores > 2**31 - 1:
            raise ValueError(f"{what} has a memory or vCores beyond Java's long / int")
        return cls(memory, vcores)


ZERO = Resource(0, 0)

_APP_RE = re.compile(r"^application_(\d+)_(\d+)$")
_ATTEMPT_RE = re.compile(r"^appattempt_(\d+)_(\d+)_(\d+)$")
_CONTAINER_RE = re.compile(r"^container_(?:e\d+_)?(\d+)_(\d+)_(\d+)_(\d+)$")


def app_id(cluster_ts: int, seq: int) -> str:
    return f"application_{cluster_ts}_{seq:04d}"


def parse_app_id(text: str) -> tuple[int, int]:
    """Hadoop's ApplicationId.fromString, with its error messages."""
    if not text.startswith("application_"):
        raise ValueError(
            f"Invalid ApplicationId prefix: {text}. The valid ApplicationId should start with prefix application"
        )
    m = _APP_RE.match(text)
    if not m:
        raise ValueError(f"Invalid AppAttemptId: {text}")
    return int(m.group(1)), int(m.group(2))


def attempt_id(app: str, n: int) -> str:
    ts, seq = parse_app_id(app)
    return f"appattempt_{ts}_{seq:04d}_{n:06d}"


def _parts(regex: re.Pattern, text: str, kind: str) -> tuple[int, ...]:
    """The numbers of an id, or Hadoop's "Invalid <kind>: <id>" error."""
    m = regex.match(text)
    if not m:
        raise ValueError(f"Invalid {kind}: {text}")
    return tuple(int(g) for g in m.groups())


def app_of_attempt(attempt: str) -> str:
    ts, seq, _ = _parts(_ATTEMPT_RE, attempt, "AppAttemptId")
    return f"application_{ts}_{seq:04d}"


def attempt_number(attempt: str) -> int:
    return _parts(_ATTEMPT_RE, attempt, "AppAttemptId")[2]


def container_id(attempt: str, n: int) -> str:
    ts, seq, att = _parts(_ATTEMPT_RE, attempt, "AppAttemptId")
    return f"container_{ts}_{seq:04d}_{att:02d}_{n:06d}"


def app_of_container(cid: str) -> str:
    ts, seq, _, _ = _parts(_CONTAINER_RE, cid, "ContainerId")
    return f"application_{ts}_{seq:04d}"


def attempt_of_container(cid: str) -> str:
    ts, seq, att, _ = _parts(_CONTAINER_RE, cid, "ContainerId")
    return f"appattempt_{ts}_{seq:04d}_{att:06d}"
