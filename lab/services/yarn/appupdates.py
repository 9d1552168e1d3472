"""What a client may change on an application it submitted: its queue, its priority and
its lifetime (ClientRMService's moveApplicationAcrossQueues, updateApplicationPriority
and updateApplicationTimeouts, with the Capacity Scheduler's checks and texts).

A refusal is an UpdateRefused whose ``plain`` says how Hadoop's RMWebServices answers it:
True for the refusals it turns into a 400 with the bare message as the body ("App in
KILLED state cannot be moved.", an expiry time that is not ISO 8601), False for the
YarnExceptions it lets escape inside an UndeclaredThrowableException, which Hadoop 3.3's
GenericExceptionHandler maps to 500 (an unknown target queue, an expiry in the past).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .rmapp import FINAL_STATES, RMApp, now_ms

if TYPE_CHECKING:
    from .rm import ResourceManager

# ClientRMService.ACTIVE_APP_STATES: an application the scheduler still tracks.
MOVABLE_STATES = ("NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING")
TIMEOUT_TYPES = ["LIFETIME"]
LIFETIME_EXCEEDED = (
    "Application is killed by ResourceManager as it has exceeded the lifetime period."
)


class UpdateRefused(Exception):
    def __init__(self, message: str, plain: bool):
        super().__init__(message)
        self.message = message
        self.plain = plain


def move(rm: ResourceManager, app: RMApp, target: str) -> None:
    if app.state not in MOVABLE_STATES:
        raise UpdateRefused(f"App in {app.state} state cannot be moved.", plain=True)
    sched = rm.scheduler
    if sched.kind == "fifoScheduler":
        raise UpdateRefused("FifoScheduler does not support moving apps between queues", False)
    queue = sched.find_queue(target)
    if queue is None:
        if target in sched.parent_names():
            raise UpdateRefused(f"The specified Queue: {target} is not a Leaf Queue.", False)
        raise UpdateRefused(f"The specified Queue: {target} doesn't exist", False)
    if queue.state != "RUNNING":
        raise UpdateRefused(
            f"Queue {queue.path or queue.name} is STOPPED. "
            f"Cannot accept submission of application: {app.id}",
            False,
        )
    att = app.current
    if att is not None and att.id in sched.apps:
        sched.move(att.id, queue)
    app.queue = queue.name
    rm.persist(app)


def set_priority(rm: ResourceManager, app: RMApp, priority: int) -> None:
    """A completed application keeps its priority and the call succeeds (as in Hadoop)."""
    if app.state in FINAL_STATES:
        return
    app.priority = priority
    att = app.current
    sapp = rm.scheduler.apps.get(att.id) if att else None
    if sapp is not None:
        sapp.priority = priority  # the queue's FIFO order reads it at the next heartbeat
    rm.persist(app)


def format_iso8601(ms: int) -> str:
    """Hadoop's Times.formatISO8601: yyyy-MM-dd'T'HH:mm:ss.SSSZ in the local zone."""
    t = datetime.fromtimestamp(ms / 1000).astimezone()
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}" + t.strftime("%z")


def set_lifetime(rm: ResourceManager, app: RMApp, expiry: str) -> None:
    """The application's LIFETIME ends at ``expiry`` (ISO 8601); the RM kills it then."""
    if app.state in FINAL_STATES:
        return
    try:
        when = datetime.strptime(expiry.strip(), "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        raise UpdateRefused(
            "Expire time is not in ISO8601 format. ISO8601 supported format is "
            "yyyy-MM-dd'T'HH:mm:ss.SSSZ",
            plain=True,
        ) from None
    ms, now = int(when.timestamp() * 1000), now_ms()
    if ms < now:
        raise UpdateRefused(
            f"Expire time is less than current time, current-time={format_iso8601(now)} "
            f"expire-time={format_iso8601(ms)}",
            plain=False,
        )
    app.lifetime_expiry = ms
    rm.persist(app)


def timeout_json(app: RMApp) -> dict:
    """AppTimeoutInfo: UNLIMITED and -1 until a lifetime is set."""
    if not app.lifetime_expiry:
        return {"type": "LIFETIME", "expiryTime": "UNLIMITED", "remainingTimeInSeconds": -1}
    left = max((app.lifetime_expiry - now_ms()) // 1000, 0)
    return {
        "type": "LIFETIME",
        "expiryTime": format_iso8601(app.lifetime_expiry),
        "remainingTimeInSeconds": left,
    }


def kill_expired(rm: ResourceManager) -> None:
    """RMAppLifetimeMonitor: applications past their lifetime are killed."""
    now = now_ms()
    for app in list(rm.apps.values()):
        if app.lifetime_expiry and app.state not in FINAL_STATES and now >= app.lifetime_expiry:
            rm.finish_app(app, "KILLED", "KILLED", LIFETIME_EXCEEDED)
