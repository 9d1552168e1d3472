"""The ResourceManager: the applications manager (accept, attempts and their retries,
finish, recovery from the state store), node and AM liveness, and the servers.

One asyncio process holds all state, so no locks: REST calls, NodeManager
heartbeats and ApplicationMaster allocate calls are all handled on the loop.

Endpoints (all on every configured RM address; Hadoop splits them by port):
- webapp (8088): Hadoop's RM REST API under /ws/v1/cluster, see rest.py
- resource tracker (8031): /rpc/ResourceTracker/{registerNodeManager,nodeHeartbeat},
  see resourcetracker.py
- scheduler (8030): /rpc/ApplicationMasterProtocol/{registerApplicationMaster,allocate,
  finishApplicationMaster}, see amservice.py
The scheduler comes from capacityconf.py, AM containers are started by amlauncher.py.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..hadoop import fields
from . import appupdates, http, submission
from .amlauncher import ApplicationMasterLauncher
from .amservice import ApplicationMasterService
from .capacityconf import build_scheduler
from .conf import Configuration
from .records import ABORTED, KILLED_BY_RESOURCEMANAGER, app_id, attempt_id, parse_app_id
from .resourcetracker import ResourceTrackerService
from .rm_protocols import RPC_ARGS
from .rmapp import FINAL_STATES, RMApp, RMAttempt, RMNode, now_ms
from .scheduler import Container, SchedulerError
from .statestore import FileStateStore, app_record

log = logging.getLogger("yarn.rm")

__all__ = ["ResourceManager", "build_scheduler"]  # build_scheduler: where callers found it


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
            self.store = FileStateStore(conf.get("yarn.resourcemanager.fs.state-store.uri") or "")
        self.servers: list[asyncio.Server] = []
        self._tasks: list[asyncio.Task] = []
        self.addresses: dict[str, tuple[str, int]] = {}
        from .rest import RestApi

        self.rest = RestApi(self)
        self.tracker = ResourceTrackerService(self)
        self.am_service = ApplicationMasterService(self)
        self.am_launcher = ApplicationMasterLauncher(self)

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
            addr = self.conf.get_bind_address(key, "yarn.resourcemanager.bind-host")
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
            appupdates.kill_expired(self)

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
        res = submission.am_resource(ctx)
        try:
            max_attempts = int(ctx.get("max-app-attempts") or self.max_attempts)
            int(ctx.get("priority") or 0)  # checked here, so a bad one is this 400
        except (TypeError, ValueError):
            raise ValueError("max-app-attempts and priority must be integers") from None
        if max_attempts <= 0 or max_attempts > self.max_attempts:
            max_attempts = self.max_attempts  # Hadoop caps at the global limit
        app = submission.app_from(ctx, user, max_attempts, now_ms())
        try:
            self.scheduler.normalize(res)
        except SchedulerError as e:
            raise ValueError(str(e)) from None
        self.issued.discard(aid)
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
        self.store.save(app.id, app_record(app))

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
        app = submission.app_from(ctx, rec["user"], int(rec["max_attempts"]), int(rec["started"]))
        app.queue = str(rec.get("queue") or app.queue)
        app.priority = int(rec.get("priority", app.priority))
        app.lifetime_expiry = int(rec.get("lifetime_expiry", 0))
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
        self.scheduler.add_attempt(
            app.id, att.id, app.queue, app.user, app.am_resource, app.priority
        )
        if app.unmanaged:
            # An unmanaged AM runs outside the cluster: nothing to launch.
            self.scheduler.apps[att.id].asks.clear()
            att.state = "LAUNCHED"

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

    def advertised(self, key: str, peer_host: str) -> tuple[str, int]:
        # Others are told the address key's host (a bind-host only says where to listen)
        # with the port actually bound, as YarnConfiguration.updateConnectAddr does.
        host, port = self.conf.get_address(key)[0], self.addresses[key][1]
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
            "registerNodeManager": self.tracker.register_node,
            "nodeHeartbeat": self.tracker.node_heartbeat,
            "unRegisterNodeManager": self.tracker.unregister_node,
            "registerApplicationMaster": self.am_service.register,
            "allocate": self.am_service.allocate,
            "finishApplicationMaster": self.am_service.finish,
            "getApplicationReport": self.rpc_app_report,
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

    def rpc_app_report(self, body: dict) -> dict:
        app = self.apps.get(str(body.get("applicationId")))
        if app is None:
            raise http.HttpError(
                404,
                "ApplicationNotFoundException",
                f"Application with id '{body.get('applicationId')}' doesn't exist in RM.",
            )
        return self.rest.app_json(app)
