"""The NodeManager: registers with the RM, heartbeats, and runs containers
(ContainerManager: start, stop, statuses; kills; finished applications' clean-up).

The parts Hadoop names apart live apart: localizer.py fetches a container's local
resources, launcher.py starts it from a launch_container.sh in its own cgroup and
reports how it ended, monitor.py checks its physical memory, nm_web.py serves node
info and container logs on the NM web address, and shuffle.py is the ShuffleHandler
aux service (map outputs to reducers, on mapreduce.shuffle.port).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import time
from pathlib import Path

from . import http, launcher
from .cgroups import CgroupManager
from .conf import Configuration
from .localizer import localize
from .monitor import over_memory
from .nm_web import NMWebServices
from .nmcontainer import SAFE_ID, NMContainer
from .processtree import ProcessTreeManager
from .records import (
    CONTAINER_SIGNALS,
    KILLED_BY_APPMASTER,
    KILLED_BY_RESOURCEMANAGER,
    KILLED_EXCEEDED_PMEM,
    Resource,
    app_of_container,
)
from .shuffle import ShuffleHandler

log = logging.getLogger("yarn.nm")


class NodeManager:
    def __init__(self, conf: Configuration):
        self.conf = conf
        self.capability = Resource(
            conf.get_int("yarn.nodemanager.resource.memory-mb"),
            conf.get_int("yarn.nodemanager.resource.cpu-vcores"),
        )
        self.local_dir = Path((conf.get("yarn.nodemanager.local-dirs") or "").split(",")[0])
        self.log_root = Path((conf.get("yarn.nodemanager.log-dirs") or "").split(",")[0])
        self.pmem_check = conf.get_bool("yarn.nodemanager.pmem-check-enabled", True)
        self.monitor_interval = (
            conf.get_int("yarn.nodemanager.container-monitor.interval-ms") / 1000
        )
        self.log_retain = conf.get_int("yarn.nodemanager.log.retain-seconds")
        host = conf.get("yarn.nodemanager.hostname") or "0.0.0.0"
        self.host = socket.gethostname() if host in ("0.0.0.0", "") else host
        self.containers: dict[str, NMContainer] = {}
        self.apps: dict[str, dict] = {}  # app id -> {"user", "containers": [...], "state"}
        self.servers: list[asyncio.Server] = []
        self._tasks: list[asyncio.Task] = []
        self.cgroups: CgroupManager | ProcessTreeManager | None = None
        self.node_id = ""
        self.http_address = ""
        self.shuffle_port = 0
        self.rm_url = "http://{}:{}".format(
            *conf.get_address("yarn.resourcemanager.resource-tracker.address")
        )
        self.hb_interval = (
            conf.get_int("yarn.resourcemanager.nodemanagers.heartbeat-interval-ms") / 1000
        )
        self.registered = asyncio.Event()
        self.web = NMWebServices(self)
        self.shuffle = ShuffleHandler(self._app_cache)

    # -- lifecycle --------------------------------------------------------------
    async def start(self) -> None:
        self.local_dir.mkdir(parents=True, exist_ok=True)
        self.log_root.mkdir(parents=True, exist_ok=True)
        self.cgroups = launcher.container_executor(self.conf)
        bind_host = "yarn.nodemanager.bind-host"
        rpc_host, rpc_port = self.conf.get_bind_address("yarn.nodemanager.address", bind_host)
        web_host, web_port = self.conf.get_bind_address(
            "yarn.nodemanager.webapp.address", bind_host
        )
        shuffle_port = self.conf.get_int("mapreduce.shuffle.port")
        idle = self.conf.get_int("hadoop.http.idle_timeout.ms", 60000) / 1000
        rpc = await http.serve(self.handle_rpc, rpc_host, rpc_port, idle)
        web = await http.serve(self.web.handle, web_host, web_port, idle)
        shuffle = await http.serve(self.shuffle.handle, web_host, shuffle_port)
        self.servers = [rpc, web, shuffle]
        self.node_id = f"{self.host}:{rpc.sockets[0].getsockname()[1]}"
        self.http_address = f"{self.host}:{web.sockets[0].getsockname()[1]}"
        self.shuffle_port = shuffle.sockets[0].getsockname()[1]
        log.info(
            "node %s web %s shuffle %d, %s",
            self.node_id,
            self.http_address,
            self.shuffle_port,
            self.capability,
        )
        self._tasks = [
            asyncio.create_task(self._heartbeats()),
            asyncio.create_task(self._monitor()),
        ]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for c in list(self.containers.values()):
            if c.state in ("RUNNING", "LOCALIZING", "NEW"):
                self.kill(c, KILLED_BY_RESOURCEMANAGER, "Container killed on NodeManager shutdown")
        for c in list(self.containers.values()):
            if c.proc is not None:
                try:
                    await asyncio.wait_for(c.done.wait(), 5)
                except TimeoutError:
                    pass
        if self.registered.is_set():
            try:
                await asyncio.to_thread(
                    http.call,
                    f"{self.rm_url}/rpc/ResourceTracker/unRegisterNodeManager",
                    {"nodeId": self.node_id},
                    timeout=3,
                )
            except http.RpcError as e:
                log.warning("could not unregister from the ResourceManager: %s", e)
        for s in self.servers:
            s.close()
        if self.cgroups:
            self.cgroups.teardown()

    # -- talking to the RM ----------------------------------------------------------
    async def _register(self) -> None:
        body = {
            "nodeId": self.node_id,
            "httpAddress": self.http_address,
            "resource": self.capability.json(),
            "nmVersion": "3.3.6-racklab",
        }
        reply = await asyncio.to_thread(
            http.call, f"{self.rm_url}/rpc/ResourceTracker/registerNodeManager", body
        )
        self.hb_interval = reply.get("nextHeartBeatInterval", self.hb_interval * 1000) / 1000
        self.registered.set()
        log.info("registered with the ResourceManager at %s", self.rm_url)

    async def _heartbeats(self) -> None:
        while True:
            try:
                if not self.registered.is_set():
                    await self._register()
                await self._heartbeat()
            except http.RpcError as e:
                log.warning("heartbeat to %s failed: %s", self.rm_url, e)
            except Exception:
                log.exception("heartbeat loop error")
            await asyncio.sleep(self.hb_interval)

    async def _heartbeat(self) -> None:
        statuses = []
        sent = []
        for c in list(self.containers.values()):
            if c.state == "COMPLETE":
                if c.reported:
                    continue
                sent.append(c)
            statuses.append(
                {
                    "containerId": c.id,
                    "state": "COMPLETE" if c.state == "COMPLETE" else "RUNNING",
                    "exitStatus": c.exit_status,
                    "diagnostics": c.diagnostics,
                }
            )
        reply = await asyncio.to_thread(
            http.call,
            f"{self.rm_url}/rpc/ResourceTracker/nodeHeartbeat",
            {"nodeId": self.node_id, "containersStatuses": statuses},
        )
        for c in sent:
            c.reported = True
        if reply.get("nodeAction") == "RESYNC":
            log.warning("ResourceManager asked for a resync: killing containers and re-registering")
            for c in list(self.containers.values()):
                if c.state != "COMPLETE":
                    self.kill(
                        c,
                        KILLED_BY_RESOURCEMANAGER,
                        "Container killed on resync with the ResourceManager",
                    )
            self.registered.clear()
            return
        for cid in reply.get("containersToCleanup") or []:
            c = self.containers.get(cid)
            if c and c.state != "COMPLETE":
                self.kill(c, KILLED_BY_RESOURCEMANAGER, "Container killed by the ResourceManager")
        for aid in reply.get("applicationsToCleanup") or []:
            self.finish_app(aid)
        for order in reply.get("containersToSignal") or []:
            self.signal(order.get("containerId"), order.get("command"))

    def signal(self, cid: object, command: object) -> None:
        """SignalContainerCommand from the RM, sent to the container's process group as
        Hadoop's container executors send it (a thread dump is SIGQUIT)."""
        c = self.containers.get(cid) if isinstance(cid, str) else None
        signo = CONTAINER_SIGNALS.get(command) if isinstance(command, str) else None
        if c is None or signo is None or c.proc is None or c.state == "COMPLETE":
            return
        log.info("signalling %s with %s", c.id, command)
        try:
            os.killpg(c.proc.pid, signo)
        except ProcessLookupError:
            pass

    def finish_app(self, aid: str) -> None:
        for c in list(self.containers.values()):
            if c.app_id == aid and c.state != "COMPLETE":
                self.kill(c, KILLED_BY_RESOURCEMANAGER, "Container of a completed application")
        info = self.apps.get(aid)
        if info and info["state"] != "FINISHED":
            info["state"] = "FINISHED"
            info["finished"] = time.monotonic()
            # Intermediate data goes with the app; logs stay (yarn.nodemanager.log.retain-seconds).
            appcache = self.app_dir(info["user"], aid)
            asyncio.get_running_loop().call_later(2, shutil.rmtree, appcache, True)

    # -- containers -------------------------------------------------------------------
    def app_dir(self, user: str, aid: str) -> Path:
        return self.local_dir / "usercache" / user / "appcache" / aid

    def _app_cache(self, aid: str) -> Path | None:
        info = self.apps.get(aid)
        return self.app_dir(info["user"], aid) if info else None

    async def start_container(self, req: dict) -> NMContainer:
        cid = str(req.get("containerId", ""))
        if not SAFE_ID.match(cid):
            raise ValueError(f"invalid container id {cid!r}")
        aid = app_of_container(cid)
        if cid in self.containers:
            raise ValueError(f"Container {cid} is already started on this NodeManager")
        user = str(req.get("user") or "root")
        if not SAFE_ID.match(user):
            raise ValueError(f"invalid user {user!r}")
        res = Resource.from_json(req.get("resource"), "resource")
        ctx = req.get("launchContext") or {}
        commands = ctx.get("commands") or []
        if not isinstance(commands, list) or not commands:
            raise ValueError("launchContext.commands must be a non-empty list")
        work = self.app_dir(user, aid) / cid
        logs = self.log_root / aid / cid
        work.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        c = NMContainer(cid, aid, user, res, work, logs, state="LOCALIZING")
        self.containers[cid] = c
        info = self.apps.setdefault(aid, {"user": user, "containers": [], "state": "RUNNING"})
        info["containers"].append(cid)
        asyncio.get_running_loop().create_task(self._localize_and_launch(c, ctx))
        return c

    async def _localize_and_launch(self, c: NMContainer, ctx: dict) -> None:
        try:
            for name, res in (ctx.get("localResources") or {}).items():
                await asyncio.to_thread(localize, self.conf, c, name, res)
        except Exception as e:
            self._complete(c, -1000, f"Resource localization failed: {e}")
            return
        if c.state == "COMPLETE":
            return
        try:
            await self._launch(c, ctx)
        except Exception as e:
            log.exception("launch of %s failed", c.id)
            self._complete(c, -1000, f"Exception from container-launch: {e}")

    def _node_env(self, c: NMContainer) -> dict[str, str]:
        """What YARN tells every container about the node it runs on."""
        return {
            "HADOOP_CONF_DIR": str(self.conf.config_dir or ""),
            "NM_HOST": self.host,
            "NM_PORT": self.node_id.rpartition(":")[2],
            "NM_HTTP_PORT": self.http_address.rpartition(":")[2],
            "NM_SHUFFLE_PORT": str(self.shuffle_port),
            "LOCAL_DIRS": str(self.app_dir(c.user, c.app_id)),
        }

    async def _launch(self, c: NMContainer, ctx: dict) -> None:
        env = launcher.environment(c, ctx, self._node_env(c))
        c.cgroup = self.cgroups.create(c.id, c.resource.memory, c.resource.vcores)
        c.proc = await launcher.spawn(c, env, ctx["commands"])
        c.cgroup.attach(c.proc.pid)
        if c.state == "COMPLETE":  # killed while localizing
            c.cgroup.kill_all()
        else:
            c.state = "RUNNING"
            log.info("launched %s (pid %d) with %s", c.id, c.proc.pid, c.resource)
        asyncio.get_running_loop().create_task(self._wait(c))

    async def _wait(self, c: NMContainer) -> None:
        code = await c.proc.wait()
        self._complete(c, *launcher.exit_report(c, code))

    def _complete(self, c: NMContainer, status: int, diagnostics: str) -> None:
        if c.state == "COMPLETE" and c.done.is_set():
            return
        c.state = "COMPLETE"
        c.exit_status = status
        c.diagnostics = diagnostics
        if c.cgroup:
            c.cgroup.remove()
        c.done.set()
        log.info(
            "%s completed: exit %d %s",
            c.id,
            status,
            diagnostics.splitlines()[0] if diagnostics else "",
        )

    def kill(self, c: NMContainer, status: int, reason: str) -> None:
        if c.state == "COMPLETE":
            return
        if c.kill_status is None:
            c.kill_status, c.kill_reason = status, reason
        if c.proc is None:
            self._complete(c, status, reason)  # never started: nothing to signal
            return
        if c.cgroup:
            c.cgroup.kill_all()
        try:
            os.killpg(c.proc.pid, 9)
        except ProcessLookupError:
            pass

    def purge_old_apps(self, now: float) -> None:
        """Forget finished apps and delete their logs after yarn.nodemanager.log.retain-seconds."""
        for aid, info in list(self.apps.items()):
            if info["state"] == "FINISHED" and now - info.get("finished", now) > self.log_retain:
                for cid in info["containers"]:
                    self.containers.pop(cid, None)
                shutil.rmtree(self.log_root / aid, ignore_errors=True)
                del self.apps[aid]
                log.info("removed the logs of %s (retention over)", aid)

    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(self.monitor_interval)
            self.purge_old_apps(time.monotonic())
            if not self.pmem_check:
                continue
            for c in list(self.containers.values()):
                reason = over_memory(c)
                if reason:
                    self.kill(c, KILLED_EXCEEDED_PMEM, reason)

    # -- RPC: ContainerManagementProtocol ------------------------------------------------
    async def handle_rpc(self, req: http.Request) -> http.Response:
        if req.method != "POST":
            raise http.HttpError(405, "WebApplicationException", "RPCs are POSTs")
        body = req.json()
        name = req.path.rstrip("/").rsplit("/", 1)[-1]
        if name == "startContainers":
            ok, failed = [], []
            for r in body.get("requests") or []:
                try:
                    c = await self.start_container(r)
                    ok.append(c.id)
                except ValueError as e:
                    failed.append({"containerId": r.get("containerId"), "exception": str(e)})
            return http.Response(
                200,
                {
                    "succeeded": ok,
                    "failed": failed,
                    "servicesMetaData": {"mapreduce_shuffle": self.shuffle_port},
                },
            )
        if name == "stopContainers":
            stopped = []
            for cid in body.get("containerIds") or []:
                c = self.containers.get(cid)
                if c:
                    self.kill(c, KILLED_BY_APPMASTER, "Container killed by the ApplicationMaster.")
                    stopped.append(cid)
            return http.Response(200, {"succeeded": stopped})
        if name == "getContainerStatuses":
            out = [
                self.containers[c].status_json()
                for c in body.get("containerIds") or []
                if c in self.containers
            ]
            return http.Response(200, {"containerStatuses": out})
        raise http.not_found(f"no RPC named {name}")
