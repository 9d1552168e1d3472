"""The RM REST API's per-application settings: /apps/{app}/queue, /priority (GET and
PUT), /timeouts, /timeouts/{type} (GET) and /timeout (PUT), with RMWebServices'
answers, including its two ways of refusing (see appupdates.UpdateRefused)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import appupdates, http
from .rmapp import RMApp

if TYPE_CHECKING:
    from .rm import ResourceManager


def refused(e: appupdates.UpdateRefused) -> http.Response:
    if e.plain:
        return http.plain(400, e.message)
    # A YarnException the resource let escape, wrapped by doAs: Hadoop 3.3 answers 500.
    raise http.HttpError(500, "UndeclaredThrowableException", e.message)


def _body_field(req: http.Request, name: str, kind: type):
    value = req.json().get(name)
    if value is not None and (
        not isinstance(value, kind)
        or isinstance(value, bool)
        or (kind is int and not -(2**31) <= value < 2**31)  # a Java int
    ):
        raise http.bad_request(f"{name} must be {'an integer' if kind is int else 'a string'}")
    return value


def _timeout_type(text: str) -> str:
    if text.strip().upper() not in appupdates.TIMEOUT_TYPES:
        raise http.bad_request(
            f"Invalid application-state {text.strip()} specified. "
            f"It should be one of [{', '.join(appupdates.TIMEOUT_TYPES)}]"
        )
    return text.strip().upper()


def handle(rm: ResourceManager, req: http.Request, app: RMApp, sub: str) -> http.Response:
    put = req.method == "PUT"
    if req.method not in ("GET", "HEAD", "PUT") or (put and sub.startswith("/timeouts")):
        raise http.not_allowed(req.method, req.path)
    if sub == "/queue":
        if put:
            target = _body_field(req, "queue", str)
            if target is None:
                raise http.bad_request("queue must be given")
            if target != app.queue:
                try:
                    appupdates.move(rm, app, target)
                except appupdates.UpdateRefused as e:
                    return refused(e)
        return http.Response(200, {"queue": app.queue}, xml_root="appqueue")
    if sub == "/priority":
        if put:
            target = _body_field(req, "priority", int) or 0  # JAXB's int defaults to 0
            if target == app.priority:
                return http.Response(200, {"priority": target}, xml_root="applicationpriority")
            appupdates.set_priority(rm, app, target)
        return http.Response(200, {"priority": app.priority}, xml_root="applicationpriority")
    if sub == "/timeouts":
        return http.Response(200, {"timeouts": {"timeout": [appupdates.timeout_json(app)]}})
    if sub.startswith("/timeouts/"):
        _timeout_type(sub[len("/timeouts/") :])
        return http.Response(200, {"timeout": appupdates.timeout_json(app)})
    # PUT /timeout {"timeout": {"type": "LIFETIME", "expiryTime": "..."}}
    if not put:
        raise http.not_allowed("GET", req.path)
    info = req.json().get("timeout")
    info = info if isinstance(info, dict) else {}
    kind, expiry = info.get("type"), info.get("expiryTime")
    # JAXB leaves an unknown enum constant null: the same refusal as a missing one
    if not isinstance(kind, str) or kind not in appupdates.TIMEOUT_TYPES:
        kind = None
    if kind is None or not isinstance(expiry, str):
        return http.plain(400, "Timeout type or ExpiryTime is null.")
    try:
        appupdates.set_lifetime(rm, app, expiry)
    except appupdates.UpdateRefused as e:
        return refused(e)
    return http.Response(200, {"timeout": appupdates.timeout_json(app)})
