"""The ApplicationMasterService (on yarn.resourcemanager.scheduler.address): an AM
registers, heartbeats with allocate (its asks, releases and blacklist; back come new
containers, finished ones and changed nodes), and unregisters with its final status."""

from __future__ import annotations

import time

from . import http, submission
from .records import KILLED_BY_APPMASTER, RELEASED_CONTAINER, app_of_attempt
from .rmapp import FINAL_STATES, RMApp, RMAttempt, now_ms
from .scheduler import SchedulerError


class ApplicationMasterService:
    def __init__(self, rm):
        """rm: the ResourceManager whose applications these are (not imported here: it
        imports this module)."""
        self.rm = rm

    def _attempt_for(self, body: dict) -> tuple[RMApp, RMAttempt]:
        att_id = str(body.get("attemptId", ""))
        try:
            app = self.rm.apps.get(app_of_attempt(att_id))
        except ValueError as e:
            raise http.HttpError(400, "InvalidApplicationMasterRequestException", str(e)) from None
        if app is None or app.current is None:
            raise http.HttpError(
                404,
                "ApplicationAttemptNotFoundException",
                f"Application attempt {att_id} doesn't exist in ApplicationMasterService cache.",
            )
        if app.current.id != att_id or app.state in FINAL_STATES:
            raise http.HttpError(
                404,
                "ApplicationAttemptNotFoundException",
                f"Application attempt {att_id} is not the current attempt of a running application (state {app.state}).",
            )
        return app, app.current

    def register(self, body: dict) -> dict:
        app, att = self._attempt_for(body)
        if att.registered:
            raise http.HttpError(
                400,
                "InvalidApplicationMasterRequestException",
                f"Application Master is already registered : {app.id}",
            )
        att.registered = True
        att.state = "RUNNING"
        att.last_heartbeat = time.monotonic()
        app.state = "RUNNING"
        app.launch_time = app.launch_time or now_ms()
        app.tracking_url = str(body.get("trackingUrl") or "")
        app.am_host = str(body.get("host") or app.am_host)
        app.rpc_port = int(body.get("rpcPort") or -1)
        return {
            "maximumResourceCapability": self.rm.scheduler.maximum.json(),
            "queue": app.queue,
            "containersFromPreviousAttempts": [],
            "clusterTimestamp": self.rm.cluster_ts,
        }

    def allocate(self, body: dict) -> dict:
        scheduler = self.rm.scheduler
        app, att = self._attempt_for(body)
        if not att.registered:
            raise http.HttpError(
                400,
                "ApplicationMasterNotRegisteredException",
                f"AM is not registered for known application attempt: {att.id} or RM had restarted after AM registered. AM should re-register.",
            )
        att.last_heartbeat = time.monotonic()
        try:
            if body["progress"] is not None:
                app.progress = min(1.0, max(0.0, body["progress"]))
            asks = [submission.parse_ask(a) for a in body.get("ask") or []]
            scheduler.update_asks(att.id, asks)
        except (ValueError, TypeError, SchedulerError) as e:
            raise http.HttpError(400, "InvalidResourceRequestException", str(e)) from None
        sapp = scheduler.apps[att.id]
        bl = body.get("blacklistRequest") or {}
        sapp.blacklist |= set(bl.get("blacklistAdditions") or [])
        sapp.blacklist -= set(bl.get("blacklistRemovals") or [])
        for c in scheduler.release(
            att.id, list(body.get("release") or []), RELEASED_CONTAINER, KILLED_BY_APPMASTER
        ):
            node = self.rm.nodes.get(c.node_id)
            if node:
                node.to_cleanup.append(c.id)
        allocated = []
        for c in sapp.new_containers:
            c.state = "ACQUIRED"
            node = scheduler.nodes.get(c.node_id)
            allocated.append(c.json(node))
        sapp.new_containers = []
        completed, sapp.completed = sapp.completed, []
        updated, att.updated_nodes = att.updated_nodes, []
        att.response_id += 1
        avail = scheduler.cluster - scheduler.used
        return {
            "responseId": att.response_id,
            "allocatedContainers": allocated,
            "completedContainersStatuses": completed,
            "updatedNodes": updated,
            "availableResources": avail.json(),
            "numClusterNodes": len(scheduler.nodes),
            "nodes": {n.host: n.rack for n in scheduler.nodes.values()},
        }

    def finish(self, body: dict) -> dict:
        app, att = self._attempt_for(body)
        status = str(body.get("finalApplicationStatus", "UNDEFINED")).upper()
        if status not in ("SUCCEEDED", "FAILED", "KILLED", "UNDEFINED", "ENDED"):
            raise http.HttpError(
                400,
                "InvalidApplicationMasterRequestException",
                f"unknown finalApplicationStatus {status}",
            )
        if body.get("trackingUrl"):
            app.tracking_url = str(body["trackingUrl"])
        app.progress = 1.0 if status == "SUCCEEDED" else app.progress
        self.rm.finish_app(app, "FINISHED", status, str(body.get("diagnostics") or ""))
        return {"isUnregistered": True}
