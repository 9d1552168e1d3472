"""The ApplicationMasterLauncher: once the scheduler places an application's AM container,
the RM asks that node's NodeManager to start it (startContainers) with the submission's
launch context and the environment YARN gives every AM."""

from __future__ import annotations

import asyncio
import time

from . import http, submission
from .records import ABORTED
from .rmapp import FINAL_STATES, RMApp, now_ms
from .scheduler import Container


class ApplicationMasterLauncher:
    def __init__(self, rm):
        """rm: the ResourceManager whose AMs these are (not imported here: it imports
        this module)."""
        self.rm = rm

    async def launch(self, app: RMApp, c: Container) -> None:
        rm = self.rm
        att = app.current
        node = rm.nodes.get(c.node_id)
        if att is None or att.id != c.attempt_id or node is None:
            return
        att.am_container = c
        att.state = "ALLOCATED"
        env = submission.environment(app.am_spec)
        env.update(
            {
                "CONTAINER_ID": c.id,
                "APPLICATION_ATTEMPT_ID": att.id,
                "APP_SUBMIT_TIME_ENV": str(app.started),
                "MAX_APP_ATTEMPTS": str(app.max_attempts),
                "YARN_RM_SCHEDULER_ADDRESS": "{}:{}".format(
                    *rm.advertised("yarn.resourcemanager.scheduler.address", node.host)
                ),
            }
        )
        request = {
            "containerId": c.id,
            "appId": app.id,
            "user": app.user,
            "resource": c.resource.json(),
            "launchContext": {
                "commands": submission.commands(app.am_spec),
                "environment": env,
                "localResources": submission.local_resources(app.am_spec),
            },
        }
        try:
            reply = await asyncio.to_thread(
                http.call,
                f"http://{node.node_id}/rpc/ContainerManagementProtocol/startContainers",
                {"requests": [request]},
            )
            failed = reply.get("failed") or []
            if failed:
                raise http.RpcError("YarnException", failed[0].get("exception", "start failed"))
        except http.RpcError as e:
            if app.current is att and app.state not in FINAL_STATES:
                rm.attempt_failed(app, f"Error launching {att.id}. Got exception: {e}", ABORTED)
            return
        if app.current is att and att.state == "ALLOCATED":
            att.state = "LAUNCHED"
            att.last_heartbeat = time.monotonic()
            app.launch_time = app.launch_time or now_ms()
            app.am_host = node.host
