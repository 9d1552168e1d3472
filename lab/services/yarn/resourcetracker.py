"""The ResourceTracker service (Hadoop's ResourceTrackerService, on
yarn.resourcemanager.resource-tracker.address): NodeManagers register, heartbeat with
their containers' statuses and get back what to clean up, and unregister on a clean
shutdown."""

from __future__ import annotations

import asyncio
import logging
import time

from . import http
from .records import Resource
from .rmapp import RMNode, now_ms
from .scheduler import SchedulerNode

log = logging.getLogger("yarn.rm")


class ResourceTrackerService:
    def __init__(self, rm):
        """rm: the ResourceManager whose nodes these are (not imported here: it imports
        this module)."""
        self.rm = rm

    def register_node(self, body: dict) -> dict:
        rm = self.rm
        try:
            node_id = str(body["nodeId"])
            host, _, port = node_id.rpartition(":")
            int(port)
            cap = Resource.from_json(body.get("resource"), "resource")
        except (KeyError, ValueError) as e:
            raise http.bad_request(f"malformed registerNodeManager: {e}") from None
        old = rm.nodes.get(node_id)
        if old and old.state == "RUNNING":
            rm.node_lost(old, "REBOOTED")  # a restarted NM lost its containers
        rack = rm.racks.get(host, rm.racks.get(node_id, "/default-rack"))
        node = RMNode(node_id, host, rack, str(body.get("httpAddress", "")), cap)
        node.last_heartbeat = time.monotonic()
        node.last_health_update = now_ms()
        rm.nodes[node_id] = node
        rm.scheduler.add_node(SchedulerNode(node_id, host, rack, cap, node.http_address))
        log.info(
            "registered node %s (%s) in rack %s with %s", node_id, node.http_address, rack, cap
        )
        return {
            "nodeAction": "NORMAL",
            "rmIdentifier": rm.cluster_ts,
            "nextHeartBeatInterval": rm.hb_interval,
        }

    def unregister_node(self, body: dict) -> dict:
        """A NodeManager shutting down cleanly: SHUTDOWN at once, no expiry wait."""
        node = self.rm.nodes.get(str(body.get("nodeId")))
        if node is not None and node.state == "RUNNING":
            log.info("node %s shut down", node.node_id)
            self.rm.node_lost(node, "SHUTDOWN")
        return {}

    def node_heartbeat(self, body: dict) -> dict:
        rm = self.rm
        node = rm.nodes.get(str(body.get("nodeId")))
        if node is None or node.state != "RUNNING":
            return {"nodeAction": "RESYNC", "responseId": 0}
        node.last_heartbeat = time.monotonic()
        node.last_health_update = now_ms()
        node.response_id += 1
        for st in body.get("containersStatuses") or []:
            cid = st.get("containerId")
            c = rm.scheduler.find_container(cid)
            if c is None:
                if st.get("state") != "COMPLETE":
                    node.to_cleanup.append(cid)  # a container the RM no longer knows: kill it
                continue
            if st.get("state") == "COMPLETE":
                rm.container_finished(
                    c, int(st.get("exitStatus", -1000)), str(st.get("diagnostics", ""))
                )
            elif c.state in ("ALLOCATED", "ACQUIRED"):
                c.state = "RUNNING"
        for c in rm.scheduler.node_update(node.node_id):
            app = rm.apps.get(c.app_id)
            if c.is_am and app:
                asyncio.get_running_loop().create_task(rm.am_launcher.launch(app, c))
        reply = {
            "responseId": node.response_id,
            "nodeAction": "NORMAL",
            "containersToCleanup": node.to_cleanup,
            "applicationsToCleanup": node.apps_to_cleanup,
            "containersToSignal": node.to_signal,
            "nextHeartBeatInterval": rm.hb_interval,
        }
        node.to_cleanup, node.apps_to_cleanup, node.to_signal = [], [], []
        return reply
