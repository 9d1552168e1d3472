"""RM REST resources racklab's RM has no machinery behind, answered as a Hadoop 3.3 RM
with the same configuration answers them, so a client gets Hadoop's refusal instead of
a 404 that suggests a wrong URL:

- scheduler-conf: the Capacity Scheduler's configuration is read from its file, not a
  mutable store (yarn.scheduler.configuration.store.class=file);
- delegation-token: security is off, so no request arrives on a Kerberos channel;
- reservation/*: the reservation system is off (yarn.resourcemanager.reservation-system.enable).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import http

if TYPE_CHECKING:
    from .rm import ResourceManager

RESERVATIONS_OFF = "Reservation is not enabled. Please enable & try again"
NO_KERBEROS = (
    "Delegation token operations can only be carried out on a Kerberos authenticated "
    "channel. Expected auth type is kerberos, got type null"
)
# path -> the methods Hadoop's resource takes there
_METHODS = {
    "/ws/v1/cluster/scheduler-conf": ("GET", "PUT"),
    "/ws/v1/cluster/delegation-token": ("POST", "DELETE"),
    "/ws/v1/cluster/delegation-token/expiration": ("POST",),
    "/ws/v1/cluster/reservation/new-reservation": ("POST",),
    "/ws/v1/cluster/reservation/list": ("GET",),
    "/ws/v1/cluster/reservation/submit": ("POST",),
    "/ws/v1/cluster/reservation/update": ("POST",),
    "/ws/v1/cluster/reservation/delete": ("POST",),
}


def answer(rm: ResourceManager, req: http.Request, path: str) -> http.Response | None:
    """Hadoop's answer at ``path``, or None when the path is none of these."""
    methods = _METHODS.get(path)
    if methods is None:
        return None
    if req.method not in methods:
        raise http.not_allowed(req.method, req.path)
    if path == "/ws/v1/cluster/scheduler-conf":
        if req.method == "PUT":
            return http.plain(400, "Configuration change only supported by MutableConfScheduler.")
        kind = "FifoScheduler" if rm.scheduler.kind == "fifoScheduler" else "CapacityScheduler"
        return http.plain(
            400,
            "This API only supports to retrieve scheduler configuration from a mutable-conf "
            f"scheduler, underneath scheduler {kind} is not an instance of MutableConfScheduler",
        )
    if path.startswith("/ws/v1/cluster/delegation-token"):
        return http.plain(403, NO_KERBEROS)
    if path.endswith("/new-reservation"):
        # getNewReservation's YarnException, rethrown as a YarnRuntimeException with a
        # message of its own: 500
        raise http.HttpError(
            500, "YarnRuntimeException", "Unable to create new reservation from RM web service"
        )
    raise http.bad_request(RESERVATIONS_OFF)
