"""The ResourceManager: applications manager, node liveness, and the servers.

One asyncio process holds all state, so no locks: REST calls, NodeManager
heartbeats and ApplicationMaster allocate calls are all handled on the loop.

Endpoints (all on every configured RM address; Hadoop splits them by port):
- webapp (8088): Hadoop's RM REST API under /ws/v1/cluster, see rest.py
- resource tracker (8031): /rpc/ResourceTracker/{registerNodeManager,nodeHeartbeat}
- scheduler (8030): /rpc/ApplicationMasterProtocol/{registerApplicationMaster,allocate,finishApplicationMaster}
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..hadoop import fields
from . import http, submission
from .conf import Configuration
from .records import (
    ABORTED,
    KILLED_BY_APPMASTER,
    KILLED_BY_RESOURCEMANAGER,
    RELEASED_CONTAINER,
    Resource,
    app_id,
    app_of_attempt,
    attempt_id,
    parse_app_id,
)
from .rm_protocols import RPC_ARGS
from .rmapp import FINAL_STATES, RMApp, RMAttempt, RMNode, now_ms
from .scheduler import (
    Container,
    FifoScheduler,
    ParentQueue,
    Queue,
    Scheduler,
    SchedulerError,
    SchedulerNode,
)

log = logging.getLogger("yarn.rm")


def build_scheduler(conf: Configuration) -> Scheduler:
    kw = dict(
        minimum=Resource(
            conf.get_int("yarn.scheduler.minimum-allocation-mb"),
            conf.get_int("yarn.scheduler.minimum-allocation-vcores"),
        ),
        maximum=Resource(
            conf.get_int("yarn.scheduler.maximum-allocation-mb"),
            conf.get_int("yarn.scheduler.maximum-allocation-vcores"),
        ),
        node_locality_delay=conf.get_int("yarn.scheduler.capacity.node-locality-delay"),
        rack_locality_additional_delay=conf.get_int(
            "yarn.scheduler.capacity.rack-locality-additional-delay"
        ),
        memory_only=not (conf.get("yarn.scheduler.capacity.resource-calculator") or "").endswith(
            "DominantResourceCalculator"
        ),
    )
    cls = conf.get("yarn.resourcemanager.scheduler.class") or ""
    if cls.endswith("FifoScheduler"):
        return FifoScheduler(**kw)
    if not cls.endswith("CapacityScheduler"):
        raise ValueError(
            f"yarn.resourcemanager.scheduler.class={cls!r}: only the Capacity and FIFO schedulers exist here"
        )
    default_am = conf.get_float("yarn.scheduler.capacity.maximum-am-resource-percent")
    leaves: list[Queue] = []

    def children(path: str, abs_cap: float, abs_max: float, ancestors: list[ParentQueue]) -> None:
        names = [
            n.strip()
            for n in (conf.get(f"yarn.scheduler.capacity.{path}.queues") or "").split(",")
            if n.strip()
        ]
        if not names:
            raise ValueError(f"yarn.scheduler.capacity.{path}.queues names no queue")
        total = 0.0
        for name in names:
            qpath = f"{path}.{name}"
            prefix = f"yarn.scheduler.capacity.{qpath}."
            cap = conf.get_float(prefix + "capacity", 100.0 if len(names) == 1 else 0.0)
            maxcap = conf.get_float(prefix + "maximum-capacity", 100.0)
            if maxcap == -1:
                maxcap = 100.0
            if maxcap < cap:
                raise ValueError(
                    f"queue {qpath}: maximum-capacity {maxcap} is below capacity {cap}"
                )
            total += cap
            q_abs, q_max = abs_cap * cap / 100, abs_max * maxcap / 100
            if conf.get(prefix + "queues"):
                parent = ParentQueue(qpath, q_abs, q_max, cap, maxcap)
                before = len(leaves)
                children(qpath, q_abs, q_max, [*ancestors, parent])
                parent.leaves = leaves[before:]
                continue
            if any(q.name == name for q in leaves):
                raise ValueError(f"queue {qpath}: a leaf queue named {name} exists twice")
            leaves.append(
                Queue(
                    name, q_abs, q_max,
                    conf.get_float(prefix + "maximum-am-resource-percent", default_am),
                    state=(conf.get(prefix + "state") or "RUNNING").upper(),
                    path=qpath, rel_capacity=cap, rel_max_capacity=maxcap, ancestors=list(ancestors),
                )
            )  # fmt: skip
        if abs(total - 100.0) > 1e-6:
            raise ValueError(f"capacities of the queues under {path} add up to {total}, not 100")

    children("root", 100.0, 100.0, [])
    return Scheduler(leaves, **kw)


class ResourceManager:
    def __init__(self, conf: Configuration):
        self.conf = conf
        self.cluster_ts = now_ms()
        self.started = self.cluster_ts
        self.scheduler = build_scheduler(conf)
        self.scheduler.on_release = self._account
        self.racks = conf.rack_table()
        self.apps: dict[str, RMApp] = {}
        self.nodes: dict[str, RMNode] = {}
        self.next_app = 1
        self.issued: set[str] = set()  # ids handed out by new-application, not yet submitted
        self.hb_interval = conf.get_int("yarn.resourcemanager.nodemanagers.heartbeat-interval-ms")
        self.nm_expiry = conf.get_int("yarn.nm.liveness-monitor.expiry-interval-ms") / 1000
        self.am_expiry = conf.get_int("yarn.am.liveness-monitor.expiry-interval-ms") / 1000
        self.alloc_expiry = (
            conf.get_int("yarn.resourcemanager.rm.container-allocation.expiry-interval-ms") / 1000
        )
        self.max_attempts = conf.get_int("yarn.resourcemanager.am.max-attempts")
        self.max_completed = conf.get_int("yarn.resourcemanager.max-completed-applications")
        self.store = None
        if conf.get_bool("yarn.resourcemanager.recovery.enabled"):
            from .statestore import FileStateStore

            self.store = FileStateStore(conf.get("yarn.resourcemanager.fs.state-store.uri") or "")
        self.servers: list[asyncio.Server] = []
        self._tasks: list[asyncio.Task] = []
        self.addresses: dict[str, tuple[str, int]] = {}
        from .rest import RestApi

        self.rest = RestApi(self)

    def _account(self, c: Container) -> None:
        # Aggregate resource usage (memorySeconds / vcoreSeconds in the app report).
        app = self.apps.get(c.app_id)
        if app is not None:
            secs = max(0.0, time.monotonic() - c.allocated_at)
            app.memory_seconds += int(c.resource.memory * secs)
            app.vcore_seconds += int(c.resource.vcores * secs)

    # -- lifecycle ------------------------------------------------------------
    async def start(self) -> None:
        if self.store:
            self.recover()
        bound: dict[tuple[str, int], asyncio.Server] = {}
        for key in (
            "yarn.resourcemanager.webapp.address",
            "yarn.resourcemanager.address",
            "yarn.resourcemanager.scheduler.address",
            "yarn.resourcemanager.resource-tracker.address",
        ):
            addr = self.conf.get_address(key)
            if addr not in bound or addr[1] == 0:
                srv = await http.serve(self.handle, addr[0], addr[1], self.http_idle_timeout())
                bound[addr] = srv
                self.servers.append(srv)
            sock = bound[addr].sockets[0].getsockname()
            self.addresses[key] = (sock[0], sock[1])
            log.info("%s listening on %s:%d", key, *self.addresses[key])
        self._tasks.append(asyncio.create_task(self._monitor()))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for s in self.servers:
            s.close()
        for s in self.servers:
            try:
                await asyncio.wait_for(s.wait_closed(), 2)
            except Exception:
                pass

    def http_idle_timeout(self) -> float:
        return self.conf.get_int("hadoop.http.idle_timeout.ms", 60000) / 1000

    async def handle(self, req: http.Request) -> http.Response:
        if req.path.startswith("/rpc/"):
            return await self.handle_rpc(req)
        return await self.rest.handle(req)

    # -- liveness -------------------------------------------------------------
    async def _monitor(self) -> None:
        period = max(0.05, min(self.nm_expiry, self.am_expiry) / 5)
        while True:
            await asyncio.sleep(min(period, 1.0))
            self.check_liveness(time.monotonic())

    def check_liveness(self, now: float) -> None:
        for node in list(self.nodes.values()):
            if node.state == "RUNNING" and now - node.last_heartbeat > self.nm_expiry:
                log.warning(
                    "node %s missed heartbeats for %.1fs: LOST",
                    node.node_id,
                    now - node.last_heartbeat,
                )
                self.node_lost(node, "LOST")
        for app in self.apps.values():
            att = app.current
            if app.state in FINAL_STATES or att is None or att.state not in ("LAUNCHED", "RUNNING"):
                continue
            if now - att.last_heartbeat > self.am_expiry:
                self.attempt_failed(
                    app, f"ApplicationMaster for attempt {att.id} timed out", ABORTED
                )
        # Allocated containers that no AM ever launched go back to the cluster.
        for node in self.scheduler.nodes.values():
            for c in list(node.containers.values()):
                if (
                    c.state in ("ALLOCATED", "ACQUIRED")
                    and now - c.allocated_at > self.alloc_expiry
                ):
                    log.warning(
                        "%s expired: allocated %.0fs ago and never launched",
                        c.id,
                        now - c.allocated_at,
                    )
                    self.container_finished(c, ABORTED, "Container expired since it was unused")
                    self.nodes[node.node_id].to_cleanup.append(c.id)

    def node_lost(self, node: RMNode, state: str) -> None:
        node.state = state
        lost = self.scheduler.remove_node(node.node_id)
        report = {
            "nodeId": node.node_id,
            "nodeState": state,
            "rack": node.rack,
            "httpAddress": node.http_address,
        }
        for app in self.apps.values():
            att = app.current
            if att and app.state not in FINAL_STATES:
                att.updated_nodes.append(report)
        for c in lost:
            app = self.apps.get(c.app_id)
            if (
                c.is_am
                and app
                and app.current
                and app.current.id == c.attempt_id
                and app.state not in FINAL_STATES
            ):
                self.attempt_failed(
                    app,
                    f"AM Container for {c.attempt_id} was on a lost node {node.node_id}",
                    ABORTED,
                )

    # -- applications manager -------------------------------------------------
    def new_application(self) -> str:
        aid = app_id(self.cluster_ts, self.next_app)
        self.next_app += 1
        self.issued.add(aid)
        return aid

    def submit(self, ctx: dict, user: str) -> RMApp:
        """Accept an ApplicationSubmissionContext (REST JSON shape). Raises ValueError on bad input."""
        aid = ctx.get("application-id")
        if not isinstance(aid, str) or not aid:
            raise ValueError("application-id must be set (get one from apps/new-application)")
        parse_app_id(aid)
        if aid in self.apps:
            raise ValueError(
                f"Application with id {aid} is already present! Cannot add a duplicate!"
            )
        if aid not in self.issued:
            raise ValueError(f"Application id {aid} was not issued by this ResourceManager")
        submission.validate_submission(ctx)
        spec = ctx.get("am-container-spec") or {}
        commands = submission.commands(spec)
        unmanaged = bool(ctx.get("unmanaged-AM", False))
        if not commands and not unmanaged:
            raise ValueError("am-container-spec.commands must hold at least one command")
        res = Resource.from_json(ctx.get("resource") or {"memory": 1024, "vCores": 1}, "resource")
        try:
            max_attempts = int(ctx.get("max-app-attempts") or self.max_attempts)
            priority = int(ctx.get("priority") or 0)
        except (TypeError, ValueError):
            raise ValueError("max-app-attempts and priority must be integers") from None
        if max_attempts <= 0 or max_attempts > self.max_attempts:
            max_attempts = self.max_attempts  # Hadoop caps at the global limit
        tags = submission.tags(ctx)
        app = RMApp(
            id=aid,
            name=str(ctx.get("application-name") or "N/A"),
            user=user,
            queue=str(ctx.get("queue") or "default"),
            app_type=str(ctx.get("application-type") or "YARN"),
            tags=tags,
            priority=priority,
            am_spec=spec,
            am_resource=res,
            max_attempts=max_attempts,
            unmanaged=unmanaged,
            started=now_ms(),
        )
        try:
            self.scheduler.normalize(res)
        except SchedulerError as e:
            raise ValueError(str(e)) from None
        self.issued.discard(aid)
        app.ctx = ctx
        self.apps[aid] = app
        self.persist(app)
        self._admit(app)
        log.info("accepted %s (%s) into queue %s", aid, app.name, app.queue)
        return app

    def _admit(self, app: RMApp) -> None:
        aid, user = app.id, app.user
        q = self.scheduler.find_queue(app.queue)
        if q is not None:
            app.queue = q.name  # a full path (root.eng.dev) names the leaf
        if q is None:
            self.finish_app(
                app,
                "FAILED",
                "FAILED",
                f"Application {aid} submitted by user {user} to unknown queue: {app.queue}",
            )
        elif q.state != "RUNNING":
            self.finish_app(
                app,
                "FAILED",
                "FAILED",
                f"Queue {app.queue} is STOPPED. Cannot accept submission of application: {aid}",
            )
        else:
            self.new_attempt(app)

    def _forget_old_apps(self) -> None:
        """Keep at most yarn.resourcemanager.max-completed-applications finished apps."""
        done = [a for a in self.apps.values() if a.state in FINAL_STATES]
        for app in sorted(done, key=lambda a: a.finished)[: max(0, len(done) - self.max_completed)]:
            del self.apps[app.id]
            if self.store:
                self.store.forget(app.id)

    # -- state store ------------------------------------------------------------
    def persist(self, app: RMApp) -> None:
        if self.store is None:
            return
        self.store.save(
            app.id,
            {
                "ctx": app.ctx,
                "user": app.user,
                "started": app.started,
                "launch_time": app.launch_time,
                "attempts": len(app.attempts),
                "max_attempts": app.max_attempts,
                "state": app.state,
                "final_status": app.final_status,
                "diagnostics": app.diagnostics,
                "finished": app.finished,
                "progress": app.progress,
            },
        )

    def recover(self) -> None:
        records = self.store.load()
        for rec in records:
            ctx, aid = rec["ctx"], rec["ctx"]["application-id"]
            self.issued.add(aid)
            try:
                app = self.submit_record(ctx, rec)
            except ValueError as e:
                log.warning("could not recover %s: %s", aid, e)
                continue
            log.info("recovered %s (%s)", aid, app.state)
        if records:
            log.info("recovered %d applications from %s", len(records), self.store.dir)

    def submit_record(self, ctx: dict, rec: dict) -> RMApp:
        """Rebuild an application from its stored record (the RM restarted)."""
        aid = ctx["application-id"]
        app = RMApp(
            id=aid, name=str(ctx.get("application-name") or "N/A"), user=rec["user"],
            queue=str(ctx.get("queue") or "default"), app_type=str(ctx.get("application-type") or "YARN"),
            tags=submission.tags(ctx), priority=int(ctx.get("priority") or 0), am_spec=ctx.get("am-container-spec") or {},
            am_resource=Resource.from_json(ctx.get("resource") or {"memory": 1024, "vCores": 1}),
            max_attempts=int(rec["max_attempts"]), unmanaged=bool(ctx.get("unmanaged-AM", False)),
            started=int(rec["started"]), ctx=ctx,
        )  # fmt: skip
        self.issued.discard(aid)
        lost = int(rec["attempts"])
        for n in range(1, lost + 1):
            state = "FAILED"
            if n == lost and rec["state"] in FINAL_STATES:
                state = "FINISHED" if rec["state"] == "FINISHED" else rec["state"]
            app.attempts.append(RMAttempt(attempt_id(aid, n), n, app.started, state=state,
                                          diagnostics="" if n == lost and rec["state"] in FINAL_STATES
                                          else "Attempt lost with the ResourceManager's restart"))  # fmt: skip
        self.apps[aid] = app
        if rec["state"] in FINAL_STATES:
            app.state, app.final_status = rec["state"], rec["final_status"]
            app.diagnostics, app.finished = rec["diagnostics"], int(rec["finished"])
            app.progress, app.launch_time = float(rec["progress"]), int(rec["launch_time"])
            return app
        # The restart is not the application's fault: its lost attempt does not count.
        app.max_attempts += lost
        app.launch_time = int(rec["launch_time"])
        self._admit(app)
        self.persist(app)
        return app

    def new_attempt(self, app: RMApp) -> None:
        att = RMAttempt(attempt_id(app.id, len(app.attempts) + 1), len(app.attempts) + 1, now_ms())
        att.last_heartbeat = time.monotonic()
        app.attempts.append(att)
        app.state = "ACCEPTED"
        self.persist(app)
        if app.unmanaged:
            # An unmanaged AM runs outside the cluster: nothing to launch.
            self.scheduler.add_attempt(
                app.id, att.id, app.queue, app.user, app.am_resource, app.priority
            )
            self.scheduler.apps[att.id].asks.clear()
            att.state = "LAUNCHED"
            return
        self.scheduler.add_attempt(
            app.id, att.id, app.queue, app.user, app.am_resource, app.priority
        )

    def attempt_failed(self, app: RMApp, why: str, exit_status: int) -> None:
        att = app.current
        if att is None or att.state in ("FAILED", "FINISHED", "KILLED"):
            return
        att.state = "FAILED"
        att.finish_time = now_ms()
        att.diagnostics = why
        self._drop_attempt(att.id, exit_status, "Container of a failed attempt")
        log.warning("%s failed: %s", att.id, why)
        if len(app.attempts) < app.max_attempts:
            self.new_attempt(app)
        else:
            self.finish_app(
                app,
                "FAILED",
                "FAILED",
                f"Application {app.id} failed {app.max_attempts} times due to {why}. Failing the application.",
            )

    def _drop_attempt(
        self, att_id: str, exit_status: int, diagnostics: str, spare_am: bool = False
    ) -> None:
        for c in self.scheduler.remove_attempt(att_id, exit_status, diagnostics):
            node = self.nodes.get(c.node_id)
            if node is None:
                continue
            if spare_am and c.is_am:
                # Let a finished AM exit on its own; kill it only if it lingers.
                # (looked up when it fires: each heartbeat reply swaps the lists for new ones)
                asyncio.get_running_loop().call_later(
                    10, lambda n=node, cid=c.id: n.to_cleanup.append(cid)
                )
            else:
                node.to_cleanup.append(c.id)

    def finish_app(self, app: RMApp, state: str, final_status: str, diagnostics: str) -> None:
        if app.state in FINAL_STATES:
            return
        app.state = state
        app.final_status = final_status
        if diagnostics:
            app.diagnostics = diagnostics
        app.finished = now_ms()
        self.persist(app)
        self._forget_old_apps()
        att = app.current
        if att and att.state not in ("FAILED", "FINISHED", "KILLED"):
            att.state = "FINISHED" if state == "FINISHED" else state
            att.finish_time = app.finished
            self._drop_attempt(
                att.id,
                KILLED_BY_RESOURCEMANAGER if state == "KILLED" else ABORTED,
                "Container of a completed application",
                spare_am=state == "FINISHED",
            )
        # NMs drop the app's containers and intermediate data; a finished AM gets a
        # moment to exit on its own first.
        delay = 5.0 if state == "FINISHED" else 0.0
        for node in self.nodes.values():
            if node.state == "RUNNING":
                asyncio.get_running_loop().call_later(
                    delay, lambda n=node: n.apps_to_cleanup.append(app.id)
                )
        log.info("%s %s (%s): %s", app.id, state, final_status, diagnostics)

    def kill(self, app: RMApp) -> None:
        self.finish_app(app, "KILLED", "KILLED", "Application killed by user.")

    async def launch_am(self, app: RMApp, c: Container) -> None:
        """ApplicationMasterLauncher: ask the AM container's NodeManager to start it."""
        att = app.current
        node = self.nodes.get(c.node_id)
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
                    *self._advertised("yarn.resourcemanager.scheduler.address", node.host)
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
                self.attempt_failed(app, f"Error launching {att.id}. Got exception: {e}", ABORTED)
            return
        if app.current is att and att.state == "ALLOCATED":
            att.state = "LAUNCHED"
            att.last_heartbeat = time.monotonic()
            app.launch_time = app.launch_time or now_ms()
            app.am_host = node.host

    def _advertised(self, key: str, peer_host: str) -> tuple[str, int]:
        host, port = self.addresses[key]
        if host in ("0.0.0.0", "::", ""):
            host = self.conf.get("yarn.resourcemanager.hostname") or "127.0.0.1"
            if host in ("0.0.0.0", ""):
                host = "127.0.0.1"
        return host, port

    # -- RPC ------------------------------------------------------------------
    async def handle_rpc(self, req: http.Request) -> http.Response:
        if req.method != "POST":
            raise http.HttpError(405, "WebApplicationException", "RPCs are POSTs")
        body = req.json()
        name = req.path.rstrip("/").rsplit("/", 1)[-1]
        handler = {
            "registerNodeManager": self.rpc_register_node,
            "nodeHeartbeat": self.rpc_node_heartbeat,
            "registerApplicationMaster": self.rpc_register_am,
            "allocate": self.rpc_allocate,
            "finishApplicationMaster": self.rpc_finish_am,
            "getApplicationReport": self.rpc_app_report,
            "unRegisterNodeManager": self.rpc_unregister_node,
        }.get(name)
        if handler is None:
            raise http.not_found(f"no RPC named {name}")
        try:
            # The fields each RPC reads are type-checked first (as protobuf would), so
            # nothing of the wrong type reaches the scheduler.
            body = RPC_ARGS[name].check(body)
        except fields.FieldError as e:
            raise http.bad_request(f"{name}: {e}") from None
        return http.Response(200, handler(body))

    def rpc_register_node(self, body: dict) -> dict:
        try:
            node_id = str(body["nodeId"])
            host, _, port = node_id.rpartition(":")
            int(port)
            cap = Resource.from_json(body.get("resource"), "resource")
        except (KeyError, ValueError) as e:
            raise http.bad_request(f"malformed registerNodeManager: {e}") from None
        old = self.nodes.get(node_id)
        if old and old.state == "RUNNING":
            self.node_lost(old, "REBOOTED")  # a restarted NM lost its containers
        rack = self.racks.get(host, self.racks.get(node_id, "/default-rack"))
        node = RMNode(node_id, host, rack, str(body.get("httpAddress", "")), cap)
        node.last_heartbeat = time.monotonic()
        node.last_health_update = now_ms()
        self.nodes[node_id] = node
        self.scheduler.add_node(SchedulerNode(node_id, host, rack, cap, node.http_address))
        log.info(
            "registered node %s (%s) in rack %s with %s", node_id, node.http_address, rack, cap
        )
        return {
            "nodeAction": "NORMAL",
            "rmIdentifier": self.cluster_ts,
            "nextHeartBeatInterval": self.hb_interval,
        }

    def rpc_unregister_node(self, body: dict) -> dict:
        """A NodeManager shutting down cleanly: SHUTDOWN at once, no expiry wait."""
        node = self.nodes.get(str(body.get("nodeId")))
        if node is not None and node.state == "RUNNING":
            log.info("node %s shut down", node.node_id)
            self.node_lost(node, "SHUTDOWN")
        return {}

    def rpc_node_heartbeat(self, body: dict) -> dict:
        node = self.nodes.get(str(body.get("nodeId")))
        if node is None or node.state != "RUNNING":
            return {"nodeAction": "RESYNC", "responseId": 0}
        node.last_heartbeat = time.monotonic()
        node.last_health_update = now_ms()
        node.response_id += 1
        for st in body.get("containersStatuses") or []:
            cid = st.get("containerId")
            c = self.scheduler.find_container(cid)
            if c is None:
                if st.get("state") != "COMPLETE":
                    node.to_cleanup.append(cid)  # a container the RM no longer knows: kill it
                continue
            if st.get("state") == "COMPLETE":
                self.container_finished(
                    c, int(st.get("exitStatus", -1000)), str(st.get("diagnostics", ""))
                )
            elif c.state in ("ALLOCATED", "ACQUIRED"):
                c.state = "RUNNING"
        for c in self.scheduler.node_update(node.node_id):
            app = self.apps.get(c.app_id)
            if c.is_am and app:
                asyncio.get_running_loop().create_task(self.launch_am(app, c))
        reply = {
            "responseId": node.response_id,
            "nodeAction": "NORMAL",
            "containersToCleanup": node.to_cleanup,
            "applicationsToCleanup": node.apps_to_cleanup,
            "nextHeartBeatInterval": self.hb_interval,
        }
        node.to_cleanup, node.apps_to_cleanup = [], []
        return reply

    def container_finished(self, c: Container, exit_status: int, diagnostics: str) -> None:
        self.scheduler.container_completed(c.id, exit_status, diagnostics)
        app = self.apps.get(c.app_id)
        if app is None:
            return
        att = app.current
        if c.is_am and att and att.id == c.attempt_id and app.state not in FINAL_STATES:
            self.attempt_failed(
                app,
                f"AM Container for {att.id} exited with  exitCode: {exit_status}\n"
                f"Failing this attempt.Diagnostics: {diagnostics}",
                exit_status,
            )

    def _attempt_for(self, body: dict) -> tuple[RMApp, RMAttempt]:
        att_id = str(body.get("attemptId", ""))
        try:
            app = self.apps.get(app_of_attempt(att_id))
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

    def rpc_register_am(self, body: dict) -> dict:
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
            "maximumResourceCapability": self.scheduler.maximum.json(),
            "queue": app.queue,
            "containersFromPreviousAttempts": [],
            "clusterTimestamp": self.cluster_ts,
        }

    def rpc_allocate(self, body: dict) -> dict:
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
            self.scheduler.update_asks(att.id, asks)
        except (ValueError, TypeError, SchedulerError) as e:
            raise http.HttpError(400, "InvalidResourceRequestException", str(e)) from None
        sapp = self.scheduler.apps[att.id]
        bl = body.get("blacklistRequest") or {}
        sapp.blacklist |= set(bl.get("blacklistAdditions") or [])
        sapp.blacklist -= set(bl.get("blacklistRemovals") or [])
        for c in self.scheduler.release(
            att.id, list(body.get("release") or []), RELEASED_CONTAINER, KILLED_BY_APPMASTER
        ):
            node = self.nodes.get(c.node_id)
            if node:
                node.to_cleanup.append(c.id)
        allocated = []
        for c in sapp.new_containers:
            c.state = "ACQUIRED"
            node = self.scheduler.nodes.get(c.node_id)
            allocated.append(c.json(node))
        sapp.new_containers = []
        completed, sapp.completed = sapp.completed, []
        updated, att.updated_nodes = att.updated_nodes, []
        att.response_id += 1
        avail = self.scheduler.cluster - self.scheduler.used
        return {
            "responseId": att.response_id,
            "allocatedContainers": allocated,
            "completedContainersStatuses": completed,
            "updatedNodes": updated,
            "availableResources": avail.json(),
            "numClusterNodes": len(self.scheduler.nodes),
            "nodes": {n.host: n.rack for n in self.scheduler.nodes.values()},
        }

    def rpc_finish_am(self, body: dict) -> dict:
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
        self.finish_app(app, "FINISHED", status, str(body.get("diagnostics") or ""))
        return {"isUnregistered": True}

    def rpc_app_report(self, body: dict) -> dict:
        app = self.apps.get(str(body.get("applicationId")))
        if app is None:
            raise http.HttpError(
                404,
                "ApplicationNotFoundException",
                f"Application with id '{body.get('applicationId')}' doesn't exist in RM.",
            )
        return self.rest.app_json(app)
