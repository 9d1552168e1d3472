"""Hadoop's ResourceManager REST API (/ws/v1/cluster/...), JSON only.

Shapes, parameters and error texts follow the Hadoop 3 ResourceManager REST API
documentation, so clients written against a real RM (yarn-api-client) work
unchanged. Errors are RemoteException objects with Hadoop's exception names.
"""

from __future__ import annotations

import html
import re
import time
from typing import TYPE_CHECKING

from . import (
    appupdates,
    http,
    rest_appupdates,
    rest_attempts,
    rest_nodes,
    rest_scheduler,
    rest_unsupported,
    webproxy,
)
from .records import APP_STATES, FINAL_STATUSES, NODE_STATES, ZERO, parse_app_id
from .rmapp import RMApp, RMNode

if TYPE_CHECKING:
    from .rm import ResourceManager

_APP_PATH = re.compile(r"^/ws/v1/cluster/apps/([^/]+)(/.*)?$")
_NODE_PATH = re.compile(r"^/ws/v1/cluster/nodes/([^/]+)(/resource)?$")
_SIGNAL_PATH = re.compile(r"^/ws/v1/cluster/containers/([^/]+)/signal/([^/]+)$")
_APP_PAGE = re.compile(r"^/cluster/app/([^/]+)$")
_ATTEMPT_PATH = re.compile(r"^/ws/v1/cluster/apps/([^/]+)/appattempts/([^/]+)(/.*)?$")
_CONTAINER_SUB = re.compile(r"^/containers/([^/]+)$")


def _ms() -> int:
    return int(time.time() * 1000)


# DeSelectFields.DeSelectType: the app fields a client may leave out (?deSelects=)
DESELECTABLE = (
    "resourceRequests",
    "timeouts",
    "appNodeLabelExpression",
    "amNodeLabelExpression",
    "resourceInfo",
)


def deselected(q: dict[str, str]) -> frozenset[str]:
    out = set()
    for literal in q.get("deSelects", "").split(","):
        if not literal.strip():
            continue
        match = next((d for d in DESELECTABLE if d.lower() == literal.lower()), None)
        if match is None:
            raise http.bad_request(
                f"Invalid deSelects string {literal.strip()} specified. "
                f"It should be one of [{', '.join(DESELECTABLE)}]"
            )
        out.add(match)
    return frozenset(out)


class RestApi:
    def __init__(self, rm: ResourceManager):
        self.rm = rm

    async def handle(self, req: http.Request) -> http.Response:
        try:
            return await self._handle(req)
        except http.HttpError as e:
            raise e.web_service() from None

    async def _handle(self, req: http.Request) -> http.Response:
        p = req.path.rstrip("/") or "/"
        if p in ("/", "/cluster", "/cluster/apps", "/cluster/nodes"):
            return http.Response(200, self.html_page(), "text/html; charset=utf-8")
        if p.startswith("/proxy/"):
            return await webproxy.handle(self.rm, req, self._web())
        m = _APP_PAGE.match(p)
        if m and m.group(1) in self.rm.apps:
            return http.Response(
                200, self.app_page(self.rm.apps[m.group(1)]), "text/html; charset=utf-8"
            )
        if not p.startswith("/ws/v1/cluster"):
            raise http.not_found(f"Cannot find resource {req.path}")
        if p in ("/ws/v1/cluster", "/ws/v1/cluster/info"):
            return self._get(req, self.info)
        if p == "/ws/v1/cluster/metrics":
            return self._get(req, self.metrics)
        if p == "/ws/v1/cluster/scheduler":
            return self._get(req, self.scheduler_info)
        if p == "/ws/v1/cluster/nodes":
            return self._get(req, self.nodes_json)
        if p == "/ws/v1/cluster/appstatistics":
            return self._get(req, self.app_statistics)
        m = _NODE_PATH.match(p)
        if m:
            if m.group(2):
                return rest_nodes.update_resource(self.rm, req, m.group(1))
            return self._get(req, lambda r: self.node_by_id(m.group(1)))
        labels = rest_nodes.labels(self.rm, req, p)
        if labels is not None:
            return labels
        if p == "/ws/v1/cluster/apps/new-application":
            if req.method != "POST":
                raise http.HttpError(405, "WebApplicationException", "new-application takes a POST")
            aid = self.rm.new_application()
            return http.Response(
                200,
                {
                    "application-id": aid,
                    "maximum-resource-capability": self.rm.scheduler.maximum.json(),
                },
            )
        if p == "/ws/v1/cluster/apps":
            if req.method == "POST":
                return self.submit(req)
            return self._get(req, self.apps_json)
        m = _ATTEMPT_PATH.match(p)
        if m:  # parsed the way server-common's WebServices parses them, before the app
            app_text, attempt_text, rest = m.groups()
            if rest is None:
                return self._get(
                    req, lambda r: rest_attempts.attempt_json(self.rm, app_text, attempt_text)
                )
            if rest == "/containers":
                return self._get(
                    req, lambda r: rest_attempts.containers_json(self.rm, app_text, attempt_text)
                )
            cm = _CONTAINER_SUB.match(rest)
            if cm:
                return self._get(
                    req,
                    lambda r: rest_attempts.one_container_json(
                        self.rm, app_text, attempt_text, cm.group(1)
                    ),
                )
        m = _SIGNAL_PATH.match(p)
        if m:
            if req.method != "POST":
                raise http.not_allowed(req.method, req.path)
            return rest_attempts.signal_container(self.rm, m.group(1), m.group(2))
        m = _APP_PATH.match(p)
        if m:
            app = self.find_app(m.group(1))
            sub = m.group(2) or ""
            if sub == "":
                drop = deselected(req.query)
                return self._get(req, lambda r: {"app": self.app_json(app, drop)})
            if sub == "/state":
                if req.method == "PUT":
                    return self.put_state(req, app)
                return self._get(req, lambda r: {"state": app.state}, xml_root="appstate")
            if sub == "/appattempts":
                return self._get(req, lambda r: self.attempts_json(app))
            if sub in ("/queue", "/priority", "/timeout", "/timeouts") or sub.startswith(
                "/timeouts/"
            ):
                return rest_appupdates.handle(self.rm, req, app, sub)
        other = rest_unsupported.answer(self.rm, req, p)
        if other is not None:
            return other
        raise http.not_found(f"Cannot find resource {req.path}")

    def _get(self, req: http.Request, fn, xml_root: str | None = None) -> http.Response:
        if req.method not in ("GET", "HEAD"):
            raise http.not_allowed(req.method, req.path)
        return http.Response(200, fn(req), xml_root=xml_root)

    # -- cluster ------------------------------------------------------------
    def info(self, req=None) -> dict:
        rm = self.rm
        return {
            "clusterInfo": {
                "id": rm.cluster_ts,
                "startedOn": rm.started,
                "state": "STARTED",
                "haState": "ACTIVE",
                "rmStateStoreName": "org.apache.hadoop.yarn.server.resourcemanager.recovery.NullRMStateStore",
                "resourceManagerVersion": "3.3.6-racklab",
                "resourceManagerBuildVersion": "3.3.6-racklab from racklab",
                "resourceManagerVersionBuiltOn": "racklab",
                "hadoopVersion": "3.3.6-racklab",
                "hadoopBuildVersion": "3.3.6-racklab from racklab",
                "hadoopVersionBuiltOn": "racklab",
                "haZooKeeperConnectionState": "ResourceManager HA is not enabled.",
            }
        }

    def metrics(self, req=None) -> dict:
        rm = self.rm
        states = [a.state for a in rm.apps.values()]
        sched = rm.scheduler
        total, used = sched.cluster, sched.used
        pending_n, pending_res = sched.pending()
        node_states = [n.state for n in rm.nodes.values()]
        allocated = sum(len(n.containers) for n in sched.nodes.values())
        return {
            "clusterMetrics": {
                "appsSubmitted": len(states),
                "appsCompleted": states.count("FINISHED"),
                "appsPending": sum(
                    s in ("NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED") for s in states
                ),
                "appsRunning": states.count("RUNNING"),
                "appsFailed": states.count("FAILED"),
                "appsKilled": states.count("KILLED"),
                "reservedMB": 0,
                "availableMB": total.memory - used.memory,
                "allocatedMB": used.memory,
                "pendingMB": pending_res.memory,
                "reservedVirtualCores": 0,
                "availableVirtualCores": total.vcores - used.vcores,
                "allocatedVirtualCores": used.vcores,
                "pendingVirtualCores": pending_res.vcores,
                "containersAllocated": allocated,
                "containersReserved": 0,
                "containersPending": pending_n,
                "totalMB": total.memory,
                "totalVirtualCores": total.vcores,
                "utilizedMBPercent": int(100 * used.memory / total.memory) if total.memory else 0,
                "utilizedVirtualCoresPercent": int(100 * used.vcores / total.vcores)
                if total.vcores
                else 0,
                "totalNodes": node_states.count("RUNNING"),
                "lostNodes": node_states.count("LOST"),
                "unhealthyNodes": node_states.count("UNHEALTHY"),
                "decommissioningNodes": node_states.count("DECOMMISSIONING"),
                "decommissionedNodes": node_states.count("DECOMMISSIONED"),
                "rebootedNodes": node_states.count("REBOOTED"),
                "activeNodes": node_states.count("RUNNING"),
                "shutdownNodes": node_states.count("SHUTDOWN"),
            }
        }

    def scheduler_info(self, req=None) -> dict:
        return rest_scheduler.scheduler_json(self.rm.scheduler)

    # -- nodes ----------------------------------------------------------------
    def node_json(self, n: RMNode) -> dict:
        sn = self.rm.scheduler.nodes.get(n.node_id)
        used = sn.used if sn and n.state == "RUNNING" else None
        return {
            "rack": n.rack,
            "state": n.state,
            "id": n.node_id,
            "nodeHostName": n.host,
            "nodeHTTPAddress": n.http_address,
            "lastHealthUpdate": n.last_health_update,
            "version": n.version,
            "healthReport": "",
            "healthStatus": "Healthy" if n.state == "RUNNING" else "Unhealthy",
            "numContainers": len(sn.containers) if sn and n.state == "RUNNING" else 0,
            "usedMemoryMB": used.memory if used else 0,
            "availMemoryMB": (n.capability.memory - used.memory) if used else 0,
            "usedVirtualCores": used.vcores if used else 0,
            "availableVirtualCores": (n.capability.vcores - used.vcores) if used else 0,
            "totalResource": n.capability.json(),
        }

    def nodes_json(self, req: http.Request) -> dict:
        wanted = set(NODE_STATES)
        raw = req.query.get("states") or req.query.get("state")
        if raw:
            wanted = set()
            for s in raw.split(","):
                s = s.strip().upper()
                if s not in NODE_STATES:
                    raise http.HttpError(
                        400,
                        "IllegalArgumentException",
                        f"No enum constant org.apache.hadoop.yarn.api.records.NodeState.{s}",
                    )
                wanted.add(s)
        nodes = [self.node_json(n) for n in self.rm.nodes.values() if n.state in wanted]
        return {"nodes": {"node": nodes} if nodes else None}

    def node_by_id(self, node_id: str) -> dict:
        return {"node": self.node_json(rest_nodes.find_node(self.rm, node_id))}

    # -- apps -----------------------------------------------------------------
    def find_app(self, text: str) -> RMApp:
        if not text:
            raise http.not_found(f"appId, {text}, is empty or null")
        try:
            parse_app_id(text)
        except ValueError as e:
            raise http.bad_request(str(e), cause="java.lang.IllegalArgumentException") from None
        app = self.rm.apps.get(text)
        if app is None:
            raise http.not_found(f"app with id: {text} not found")
        return app

    def app_json(self, app: RMApp, drop: frozenset[str] = frozenset()) -> dict:
        att = app.current
        am = att.am_container if att else None
        node = self.rm.nodes.get(am.node_id) if am else None
        sapp = self.rm.scheduler.apps.get(att.id) if att else None
        total = self.rm.scheduler.cluster
        finished = app.finished or 0
        end = finished or _ms()
        alloc = sapp.used if sapp else None
        tracking_ui = (
            "History"
            if app.state in ("FINISHED", "FAILED", "KILLED")
            else ("ApplicationMaster" if app.state == "RUNNING" else "UNASSIGNED")
        )
        out = {
            "id": app.id,
            "user": app.user,
            "name": app.name,
            "queue": app.queue,
            "state": app.state,
            "finalStatus": app.final_status,
            "progress": round(app.progress * 100, 2),
            "trackingUI": tracking_ui,
            "trackingUrl": self.tracking_url(app),
            "diagnostics": app.diagnostics,
            "clusterId": self.rm.cluster_ts,
            "applicationType": app.app_type,
            "applicationTags": ",".join(app.tags),
            "priority": app.priority,
            "startedTime": app.started,
            "launchTime": app.launch_time,
            "finishedTime": finished,
            "elapsedTime": end - app.started,
            "amContainerLogs": f"http://{node.http_address}/node/containerlogs/{am.id}/{app.user}"
            if node
            else "",
            "amHostHttpAddress": node.http_address if node else "",
            "amRPCAddress": f"{app.am_host}:{app.rpc_port}"
            if app.am_host and app.rpc_port > 0
            else "N/A",
            "masterNodeId": am.node_id if am else "",
            "allocatedMB": alloc.memory if alloc else -1,
            "allocatedVCores": alloc.vcores if alloc else -1,
            "reservedMB": 0,
            "reservedVCores": 0,
            "runningContainers": len(sapp.containers) if sapp else 0,
            "memorySeconds": app.memory_seconds,
            "vcoreSeconds": app.vcore_seconds,
            "queueUsagePercentage": 0.0,
            "clusterUsagePercentage": round(100.0 * alloc.memory / total.memory, 2)
            if alloc and total.memory
            else 0.0,
            "preemptedResourceMB": 0,
            "preemptedResourceVCores": 0,
            "numNonAMContainerPreempted": 0,
            "numAMContainerPreempted": 0,
            "logAggregationStatus": "DISABLED",
            "unmanagedApplication": app.unmanaged,
            "amNodeLabelExpression": "",
            "appNodeLabelExpression": "",
            "preemptedMemorySeconds": 0,
            "preemptedVcoreSeconds": 0,
            "timeouts": {"timeout": [appupdates.timeout_json(app)]},
            "resourceRequests": self.resource_requests(sapp),
            "resourceInfo": {
                "resourceUsagesByPartition": [
                    {
                        "partitionName": "",
                        "used": (alloc or ZERO).json(),
                        "reserved": ZERO.json(),
                        "pending": (sapp.pending()[1] if sapp else ZERO).json(),
                        "amUsed": (sapp.am_resource if sapp and sapp.active else ZERO).json(),
                    }
                ]
            },
            "attempts": len(app.attempts),
        }
        for name in drop:
            out.pop(name, None)
        return out

    def tracking_url(self, app: RMApp) -> str:
        """The RM's proxy to the AM's own tracking URL (as Hadoop hands it out), or the
        application's RM page when its AM gave none."""
        if app.tracking_url:
            return f"http://{self._web()}/proxy/{app.id}/"
        return f"http://{self._web()}/cluster/app/{app.id}"

    @staticmethod
    def resource_requests(sapp) -> list[dict]:
        """An attempt's outstanding asks as ResourceRequestInfo (the any-place request
        of each: racklab keeps the wanted hosts and racks on the ask, not as requests)."""
        if sapp is None:
            return []
        return [
            {
                "priority": ask.priority,
                "allocationRequestId": ask.request_id,
                "resourceName": "*",
                "capability": ask.capability.json(),
                "numContainers": ask.num,
                "relaxLocality": ask.relax_locality,
                "nodeLabelExpression": "",
                "executionTypeRequest": {
                    "executionType": "GUARANTEED",
                    "enforceExecutionType": False,
                },
            }
            for ask in sapp.asks.values()
            if ask.num > 0
        ]

    def _web(self) -> str:
        host, port = self.rm.advertised("yarn.resourcemanager.webapp.address", "")
        return f"{host}:{port}"

    def _filters(self, q: dict[str, str]) -> dict:
        """The apps query, checked in the order and with the texts of Hadoop's
        ApplicationsRequestBuilder (queue, limit, start range, finish range, then states)."""
        queue = q.get("queue")
        if queue and self.rm.scheduler.kind != "fifoScheduler":
            if self.rm.scheduler.find_queue(queue) is None and (
                queue not in self.rm.scheduler.parent_names()
            ):
                raise http.bad_request(f"Unknown queue: {queue}")

        def num(name: str, label: str) -> int | None:
            if not q.get(name):
                return None
            try:
                value = int(q[name])
            except ValueError:
                value = None
            if value is None or not -(2**63) <= value < 2**63:  # Long.parseLong
                raise http.bad_request(f"{label} value must be a number!")
            return value

        limit = num("limit", "limit")
        if limit is not None and limit <= 0:
            raise http.bad_request("limit value must be greater then 0")
        ranges = {}
        for kind, begin, end, label in (
            ("started", "startedTimeBegin", "startedTimeEnd", "startedTime"),
            ("finished", "finishedTimeBegin", "finishedTimeEnd", "finishTime"),
        ):
            lo = num(begin, begin) or 0
            hi = num(end, end)
            hi = 2**63 - 1 if hi is None else hi
            if lo < 0:
                raise http.bad_request(f"{label}Begin must be greater than 0")
            if hi < 0:
                raise http.bad_request(f"{label}End must be greater than 0")
            if lo > hi:
                low = "startTimeBegin" if kind == "started" else "finishTimeBegin"
                raise http.bad_request(f"{label}End must be greater than {low}")
            ranges[kind] = (lo, hi)
        states = set()
        for raw in (q.get("state"), q.get("states")):
            for s in (raw or "").split(","):
                if not s.strip():
                    continue
                if s.strip().upper() not in APP_STATES:
                    raise http.bad_request(
                        f"Invalid application-state {s.strip()} specified. "
                        f"It should be one of [{', '.join(APP_STATES)}]"
                    )
                states.add(s.strip().upper())
        final = q.get("finalStatus")

        def lower_set(name: str) -> set[str]:
            return {t.strip().lower() for t in q.get(name, "").split(",") if t.strip()}

        return {
            "states": states,
            "final": final,
            "user": q.get("user"),
            "queue": queue,
            "name": q.get("name"),
            "limit": limit,
            "ranges": ranges,
            "types": lower_set("applicationTypes"),
            "tags": lower_set("applicationTags"),
            "drop": deselected(q),
        }

    def apps_json(self, req: http.Request) -> dict:
        f = self._filters(req.query)
        (s_lo, s_hi), (f_lo, f_hi) = f["ranges"]["started"], f["ranges"]["finished"]
        found: list[RMApp] = []
        for app in self.rm.apps.values():
            if f["states"] and app.state not in f["states"]:
                continue
            if f["user"] and app.user != f["user"]:
                continue
            if f["queue"] and f["queue"] not in (app.queue, f"root.{app.queue}"):
                q = self.rm.scheduler.find_queue(app.queue)
                if not (q and q.path == f["queue"]):
                    continue
            if f["name"] and app.name != f["name"]:
                continue
            if f["types"] and app.app_type.lower() not in f["types"]:
                continue
            if f["tags"] and not f["tags"] & {t.lower() for t in app.tags}:
                continue
            # an unfinished application's finish time is 0, as in Hadoop's report
            if not (s_lo <= app.started <= s_hi and f_lo <= (app.finished or 0) <= f_hi):
                continue
            found.append(app)
            if f["limit"] and len(found) >= f["limit"]:
                break
        # As RMWebServices.getApps: the limit is ClientRMService's, over the other filters;
        # the final status filters what that returned (so an unknown one is refused only
        # when there is an application to compare it with)
        final = f["final"]
        if final and found and final not in FINAL_STATUSES:  # FinalApplicationStatus.valueOf
            raise http.HttpError(
                400,
                "IllegalArgumentException",
                f"No enum constant org.apache.hadoop.yarn.api.records.FinalApplicationStatus.{final}",
            )
        out = [
            self.app_json(app, f["drop"])
            for app in found
            if not final or app.final_status == final.upper()
        ]
        return {"apps": {"app": out} if out else None}

    def app_statistics(self, req: http.Request) -> dict:
        """RMWebServices.getAppStatistics: counts per state for one type (or any, "*")."""
        f = self._filters({k: v for k, v in req.query.items() if k == "states"})
        types = {t.strip().lower() for t in req.query.get("applicationTypes", "").split(",")}
        types.discard("")
        if len(types) > 1:
            raise http.bad_request(
                f"# of applicationTypes = {len(types)}, we temporarily support at most one applicationType"
            )
        kind = next(iter(types), "*")
        counts: dict[str, int] = {}
        for app in self.rm.apps.values():
            if kind == "*" or app.app_type.strip().lower() == kind:
                counts[app.state] = counts.get(app.state, 0) + 1
        items = [
            {"state": s, "type": kind, "count": counts.get(s, 0)}
            for s in APP_STATES
            if not f["states"] or s in f["states"]
        ]
        return {"appStatInfo": {"statItem": items}}

    def attempts_json(self, app: RMApp) -> dict:
        out = []
        for att in app.attempts:
            c = att.am_container
            node = self.rm.nodes.get(c.node_id) if c else None
            out.append(
                {
                    "id": att.number,
                    "appAttemptId": att.id,
                    "appAttemptState": att.state,
                    "startTime": att.start_time,
                    "finishedTime": att.finish_time,
                    "containerId": c.id if c else "",
                    "nodeHttpAddress": node.http_address if node else "",
                    "nodeId": c.node_id if c else "",
                    "logsLink": f"http://{node.http_address}/node/containerlogs/{c.id}/{app.user}"
                    if node and c
                    else "",
                    "diagnosticsInfo": att.diagnostics,
                    # the nodes the attempt's AM asked the scheduler to avoid (racklab
                    # keeps no AM blacklist of its own: that list is empty)
                    "blacklistedNodes": ", ".join(
                        sorted(self.rm.scheduler.apps[att.id].blacklist)
                        if att.id in self.rm.scheduler.apps
                        else []
                    ),
                    "nodesBlacklistedBySystem": "",
                }
            )
        return {"appAttempts": {"appAttempt": out}}

    def submit(self, req: http.Request) -> http.Response:
        ctx = req.json()
        user = req.query.get("user.name") or req.headers.get("x-racklab-user") or "dr.who"
        try:
            app = self.rm.submit(ctx, user)
        except ValueError as e:
            raise http.bad_request(str(e)) from None
        return http.Response(
            202, None, headers={"Location": f"http://{self._web()}/ws/v1/cluster/apps/{app.id}"}
        )

    def put_state(self, req: http.Request, app: RMApp) -> http.Response:
        body = req.json()
        target = str(body.get("state", "")).upper()
        if target != "KILLED":
            raise http.bad_request("Only 'KILLED' is allowed as a target state.")
        if app.state in ("FINISHED", "FAILED", "KILLED"):
            return http.Response(200, {"state": app.state}, xml_root="appstate")
        self.rm.kill(app)
        return http.Response(200, {"state": app.state}, xml_root="appstate")

    # -- a minimal web UI ----------------------------------------------------
    def app_page(self, a: RMApp) -> str:
        rows = "".join(
            f"<tr><th>{k}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in (
                ("Application", a.id),
                ("Name", a.name),
                ("User", a.user),
                ("Queue", a.queue),
                ("State", a.state),
                ("FinalStatus", a.final_status),
                ("Diagnostics", a.diagnostics),
            )
        )
        return (
            f"<!doctype html><html><head><title>{html.escape(a.id)}</title></head><body>"
            f"<h1>Application {html.escape(a.id)}</h1><table border=1>{rows}</table></body></html>"
        )

    def html_page(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(a.id)}</td><td>{html.escape(a.name)}</td><td>{html.escape(a.queue)}</td>"
            f"<td>{a.state}</td><td>{a.final_status}</td><td>{a.progress * 100:.0f}%</td></tr>"
            for a in self.rm.apps.values()
        )
        nodes = "".join(
            f"<tr><td>{html.escape(n.node_id)}</td><td>{html.escape(n.rack)}</td><td>{n.state}</td></tr>"
            for n in self.rm.nodes.values()
        )
        return (
            "<!doctype html><html><head><title>racklab ResourceManager</title></head><body>"
            "<h1>All Applications</h1><table border=1><tr><th>ID</th><th>Name</th><th>Queue</th>"
            f"<th>State</th><th>FinalStatus</th><th>Progress</th></tr>{rows}</table>"
            f"<h2>Nodes</h2><table border=1><tr><th>Node</th><th>Rack</th><th>State</th></tr>{nodes}</table>"
            "</body></html>"
        )
