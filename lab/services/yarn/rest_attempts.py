"""The RM REST API's attempt and container resources:
/ws/v1/cluster/apps/{app}/appattempts/{attempt}[/containers[/{container}]].

Hadoop serves these from WebServices (hadoop-yarn-server-common) over ClientRMService's
reports, so their ids are parsed the raw way (IllegalArgumentException, 400) rather than
the way /apps/{app} parses them (BadRequestException), a missing app or attempt is
ClientRMService's ApplicationNotFoundException / ApplicationAttemptNotFoundException
message under NotFoundException, and the containers listed are the attempt's live ones
(what the scheduler holds), as ClientRMService.getContainers answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import http
from .records import (
    CONTAINER_SIGNALS,
    app_of_attempt,
    attempt_of_container,
    parse_app_id,
)
from .rmapp import RMApp, RMAttempt, now_ms
from .scheduler import Container

if TYPE_CHECKING:
    from .rm import ResourceManager


def _illegal(e: ValueError) -> http.HttpError:
    return http.HttpError(400, "IllegalArgumentException", str(e))


def _parse_ids(app_text: str, attempt_text: str, container_text: str | None = None) -> None:
    """WebServices' parse*Id + validateIds: the three ids' forms, then that they nest."""
    try:
        parse_app_id(app_text)
        if not attempt_text.startswith("appattempt_"):
            raise ValueError(f"Invalid AppAttemptId prefix: {attempt_text}")
        attempt_app = app_of_attempt(attempt_text)
        if container_text is not None:
            if not container_text.startswith("container_"):
                raise ValueError(f"Invalid ContainerId prefix: {container_text}")
            container_attempt = attempt_of_container(container_text)
    except ValueError as e:
        raise _illegal(e) from None
    if attempt_app != app_text:
        raise http.not_found("appId and appAttemptId don't match")
    if container_text is not None and container_attempt != attempt_text:
        raise http.not_found("appAttemptId and containerId don't match")


def _attempt(rm: ResourceManager, app_text: str, attempt_text: str) -> tuple[RMApp, RMAttempt]:
    # NotFoundException(ClientRMService's exception): the message is its toString()
    app = rm.apps.get(app_text)
    if app is None:
        raise http.not_found(
            f"Application with id '{app_text}' doesn't exist in RM. "
            "Please check that the job submission was successful.",
            cause="org.apache.hadoop.yarn.exceptions.ApplicationNotFoundException",
        )
    for att in app.attempts:
        if att.id == attempt_text:
            return app, att
    raise http.not_found(
        f"ApplicationAttempt with id '{attempt_text}' doesn't exist in RM.",
        cause="org.apache.hadoop.yarn.exceptions.ApplicationAttemptNotFoundException",
    )


def attempt_json(rm: ResourceManager, app_text: str, attempt_text: str) -> dict:
    """GET .../appattempts/{attempt}: server-common's AppAttemptInfo."""
    _parse_ids(app_text, attempt_text)
    app, att = _attempt(rm, app_text, attempt_text)
    current = att is app.current
    return {
        "appAttempt": {
            "appAttemptId": att.id,
            "host": (app.am_host or "N/A") if current else "N/A",
            "rpcPort": app.rpc_port if current else -1,
            "trackingUrl": rm.rest.tracking_url(app) if current and app.tracking_url else "",
            "originalTrackingUrl": app.tracking_url if current else "",
            "diagnosticsInfo": att.diagnostics,
            "appAttemptState": att.state,
            "amContainerId": att.am_container.id if att.am_container else None,
            "startedTime": att.start_time,
            "finishedTime": att.finish_time,
        }
    }


def container_json(rm: ResourceManager, c: Container, user: str) -> dict:
    """server-common's ContainerInfo of a live container (RMContainer's report)."""
    node = rm.nodes.get(c.node_id)
    http_address = node.http_address if node else ""
    return {
        "containerId": c.id,
        "allocatedMB": c.resource.memory,
        "allocatedVCores": c.resource.vcores,
        "assignedNodeId": c.node_id,
        "priority": c.priority,
        "startedTime": c.allocated_ms,
        "finishedTime": 0,
        "elapsedTime": now_ms() - c.allocated_ms,
        "diagnosticsInfo": "",
        "logUrl": f"http://{http_address}/node/containerlogs/{c.id}/{user}" if node else "",
        "containerExitStatus": 0,
        # RMContainer reports every container it has not seen finish as RUNNING
        "containerState": "RUNNING",
        "nodeHttpAddress": f"http://{http_address}" if node else "",
        "nodeId": c.node_id,
    }


def containers_json(rm: ResourceManager, app_text: str, attempt_text: str) -> dict:
    """GET .../appattempts/{attempt}/containers: the attempt's live containers."""
    _parse_ids(app_text, attempt_text)
    app, att = _attempt(rm, app_text, attempt_text)
    sapp = rm.scheduler.apps.get(att.id)
    items = [container_json(rm, c, app.user) for c in sapp.containers.values()] if sapp else []
    return {"containers": {"container": items} if items else None}


def one_container_json(
    rm: ResourceManager, app_text: str, attempt_text: str, container_text: str
) -> dict:
    """GET .../appattempts/{attempt}/containers/{container}."""
    _parse_ids(app_text, attempt_text, container_text)
    app, _ = _attempt(rm, app_text, attempt_text)
    c = rm.scheduler.find_container(container_text)
    if c is None:
        raise http.not_found(
            f"Container with id '{container_text}' doesn't exist in RM.",
            cause="org.apache.hadoop.yarn.exceptions.ContainerNotFoundException",
        )
    return {"container": container_json(rm, c, app.user)}


def signal_container(rm: ResourceManager, container_text: str, command: str) -> http.Response:
    """POST /ws/v1/cluster/containers/{container}/signal/{command}: RMWebServices'
    signalToContainer, whose refusals are bare messages (400 for the command, 500 for the
    rest); the container's NodeManager gets the order with its next heartbeat."""
    command = command.upper()
    if command not in CONTAINER_SIGNALS:
        return http.plain(
            400,
            f"Invalid command: {command}, valid commands are: [{', '.join(CONTAINER_SIGNALS)}]",
        )
    try:
        if not container_text.startswith("container_"):
            raise ValueError(f"Invalid ContainerId prefix: {container_text}")
        attempt_of_container(container_text)
    except ValueError as e:
        return http.plain(500, str(e))
    c = rm.scheduler.find_container(container_text)
    node = rm.nodes.get(c.node_id) if c else None
    if c is None or node is None:
        return http.plain(500, f"Trying to signal an absent container {container_text}")
    node.to_signal.append({"containerId": c.id, "command": command})
    return http.Response(200, None)
