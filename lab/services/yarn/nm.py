"""The NodeManager: registers with the RM, heartbeats, and runs containers.

Each container is a process tree started from a generated launch_container.sh
(as Hadoop's ContainerLaunch writes one) that first moves itself into the
container's own cgroup, exports the launch context's environment and execs the
commands. A monitor checks every container's physical memory (RSS of its
cgroup's processes, as ContainersMonitorImpl does) and kills one that exceeds its
grant with YARN's diagnostic; the cgroup's hard limit catches fast allocators.

Also serves map outputs to reducers (the ShuffleHandler aux service, on
mapreduce.shuffle.port) and container logs on the NM web address.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shlex
import shutil
import socket
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..hadoop.webclient import WebHdfsClient
from . import http
from .cgroups import CgroupManager, ContainerCgroup
from .conf import Configuration
from .processtree import ProcessTreeContainer, ProcessTreeManager
from .records import (
    KILLED_BY_APPMASTER,
    KILLED_BY_RESOURCEMANAGER,
    KILLED_EXCEEDED_PMEM,
    Resource,
    app_of_container,
)

log = logging.getLogger("yarn.nm")

_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass
class NMContainer:
    id: str
    app_id: str
    user: str
    resource: Resource
    work_dir: Path
    log_dir: Path
    state: str = "NEW"  # NEW LOCALIZING RUNNING COMPLETE
    exit_status: int = -1000
    diagnostics: str = ""
    proc: asyncio.subprocess.Process | None = None
    cgroup: ContainerCgroup | ProcessTreeContainer | None = None
    kill_status: int | None = None
    kill_reason: str = ""
    started: float = field(default_factory=time.time)
    reported: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


def _fmt_mb(b: int) -> str:
    return f"{b / 1048576:.1f} MB"


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


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
        self.cgroups: CgroupManager | None = None
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

    # -- lifecycle --------------------------------------------------------------
    def _container_cgroups(self):
        """A cgroup per container where this node can make them; where it cannot (a
        read-only cgroupfs, no memory controller) or the site asks for Hadoop's
        DefaultContainerExecutor, containers run in sessions of their own instead."""
        executor = self.conf.get("yarn.nodemanager.container-executor.class") or ""
        if executor.endswith("DefaultContainerExecutor"):
            manager = ProcessTreeManager(f"{executor} configured")
            manager.setup()
            return manager
        try:
            manager = CgroupManager(
                self.conf.get("yarn.nodemanager.linux-container-executor.cgroups.mount-path")
                or "/sys/fs/cgroup",
                self.conf.get("yarn.nodemanager.linux-container-executor.cgroups.hierarchy")
                or "/hadoop-yarn",
                self.conf.get_bool(
                    "yarn.nodemanager.linux-container-executor.cgroups.strict-resource-usage"
                ),
            )
            manager.setup()
        except OSError as e:
            manager = ProcessTreeManager(str(e))
            manager.setup()
        return manager

    async def start(self) -> None:
        self.local_dir.mkdir(parents=True, exist_ok=True)
        self.log_root.mkdir(parents=True, exist_ok=True)
        self.cgroups = self._container_cgroups()
        rpc_host, rpc_port = self.conf.get_address("yarn.nodemanager.address")
        web_host, web_port = self.conf.get_address("yarn.nodemanager.webapp.address")
        shuffle_port = self.conf.get_int("mapreduce.shuffle.port")
        idle = self.conf.get_int("hadoop.http.idle_timeout.ms", 60000) / 1000
        rpc = await http.serve(self.handle_rpc, rpc_host, rpc_port, idle)
        web = await http.serve(self.handle_web, web_host, web_port, idle)
        shuffle = await http.serve(self.handle_shuffle, web_host, shuffle_port)
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

    def finish_app(self, aid: str) -> None:
        for c in list(self.containers.values()):
            if c.app_id == aid and c.state != "COMPLETE":
                self.kill(c, KILLED_BY_RESOURCEMANAGER, "Container of a completed application")
        info = self.apps.get(aid)
        if info and info["state"] != "FINISHED":
            info["state"] = "FINISHED"
            info["finished"] = time.monotonic()
            # Intermediate data goes with the app; logs stay (yarn.nodemanager.log.retain-seconds).
            appcache = self.local_dir / "usercache" / info["user"] / "appcache" / aid
            asyncio.get_running_loop().call_later(2, shutil.rmtree, appcache, True)

    # -- containers -------------------------------------------------------------------
    def app_dir(self, user: str, aid: str) -> Path:
        return self.local_dir / "usercache" / user / "appcache" / aid

    async def start_container(self, req: dict) -> NMContainer:
        cid = str(req.get("containerId", ""))
        if not _ID.match(cid):
            raise ValueError(f"invalid container id {cid!r}")
        aid = app_of_container(cid)
        if cid in self.containers:
            raise ValueError(f"Container {cid} is already started on this NodeManager")
        user = str(req.get("user") or "root")
        if not _ID.match(user):
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
                await asyncio.to_thread(self._localize, c, name, res)
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

    def _localize(self, c: NMContainer, name: str, res: dict) -> None:
        if not _ID.match(name):
            raise ValueError(f"invalid local resource name {name!r}")
        url = str(res.get("resource") or res.get("url") or "")
        target = c.work_dir / name
        u = urllib.parse.urlsplit(url)
        if u.scheme in ("webhdfs", "swebhdfs"):
            data = WebHdfsClient(url, user=c.user).read_bytes(u.path)
        elif u.scheme == "hdfs":
            nn = self.conf.get("dfs.namenode.http-address")
            if not nn:
                raise ValueError(
                    f"{url}: hdfs:// resources need dfs.namenode.http-address in hdfs-site.xml"
                )
            data = WebHdfsClient(nn, user=c.user).read_bytes(u.path)
        elif u.scheme in ("http", "https"):
            with urllib.request.urlopen(url, timeout=60) as r:
                data = r.read()
        elif u.scheme in ("file", ""):
            data = Path(u.path).read_bytes()
        else:
            raise ValueError(f"{url}: unsupported resource scheme {u.scheme!r}")
        size = res.get("size")
        if size not in (None, -1, "-1") and int(size) != len(data):
            raise ValueError(
                f"Resource {url} changed on src filesystem (expected size {size}, was {len(data)})"
            )
        target.write_bytes(data)

    def _environment(self, c: NMContainer, ctx: dict) -> dict[str, str]:
        env = {k: os.environ[k] for k in ("PATH", "LANG", "PYTHONPATH", "TZ") if k in os.environ}
        env.update(
            {
                "PYTHON": sys.executable,
                "HADOOP_CONF_DIR": str(self.conf.config_dir or ""),
                "CONTAINER_ID": c.id,
                "NM_HOST": self.host,
                "NM_PORT": self.node_id.rpartition(":")[2],
                "NM_HTTP_PORT": self.http_address.rpartition(":")[2],
                "NM_SHUFFLE_PORT": str(self.shuffle_port),
                "LOCAL_DIRS": str(self.app_dir(c.user, c.app_id)),
                "LOG_DIRS": str(c.log_dir),
                "USER": c.user,
                "LOGNAME": c.user,
                "HOME": str(c.work_dir),
                "PWD": str(c.work_dir),
            }
        )
        user_env = ctx.get("environment") or {}
        if not isinstance(user_env, dict):
            raise ValueError("launchContext.environment must be an object")
        env.update({str(k): str(v) for k, v in user_env.items()})
        return env

    async def _launch(self, c: NMContainer, ctx: dict) -> None:
        env = self._environment(c, ctx)
        # Hadoop's expansion: <LOG_DIR>, <CPS>, and {{VAR}} for the container's $VAR.
        cmd = " ".join(str(x) for x in ctx["commands"])
        cmd = cmd.replace("<LOG_DIR>", str(c.log_dir)).replace("<CPS>", ":")
        cmd = re.sub(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}", r"$\1", cmd)
        c.cgroup = self.cgroups.create(c.id, c.resource.memory, c.resource.vcores)
        lines = ["#!/bin/bash", "set -e"]
        lines += [f"echo $$ > {shlex.quote(str(p))}" for p in c.cgroup.procs_files]
        lines += [
            f"export {k}={shlex.quote(v)}"
            for k, v in env.items()
            if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k)
        ]
        lines += [
            f"cd {shlex.quote(str(c.work_dir))}",
            "set +e",
            f"exec /bin/bash -c {shlex.quote(cmd)}",
        ]
        script = c.work_dir / "launch_container.sh"
        script.write_text("\n".join(lines) + "\n")
        out = open(c.log_dir / "stdout", "ab")
        err = open(c.log_dir / "stderr", "ab")
        try:
            c.proc = await asyncio.create_subprocess_exec(
                "/bin/bash",
                str(script),
                cwd=str(c.work_dir),
                stdout=out,
                stderr=err,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
                env={"PATH": env.get("PATH", "/usr/bin:/bin")},
            )
        finally:
            out.close()
            err.close()
        c.cgroup.attach(c.proc.pid)
        if c.state == "COMPLETE":  # killed while localizing
            c.cgroup.kill_all()
        else:
            c.state = "RUNNING"
            log.info("launched %s (pid %d) with %s", c.id, c.proc.pid, c.resource)
        asyncio.get_running_loop().create_task(self._wait(c))

    async def _wait(self, c: NMContainer) -> None:
        code = await c.proc.wait()
        if c.cgroup and c.kill_status is None and c.cgroup.oom_kills() > 0:
            c.kill_status = KILLED_EXCEEDED_PMEM
            c.kill_reason = (
                f"Container [pid={c.proc.pid},containerID={c.id}] is running beyond the 'PHYSICAL' memory limit. "
                f"Current usage: more than {c.resource.memory} MB of {c.resource.memory} MB physical memory used "
                "(killed by the kernel's OOM killer in the container's cgroup). Killing container."
            )
        if c.kill_status is not None:
            status, diag = (
                c.kill_status,
                f"{c.kill_reason}\nContainer killed on request. Exit code is {_shell_code(code)}",
            )
        elif code == 0:
            status, diag = 0, ""
        else:
            status = _shell_code(code)
            tail = _tail(c.log_dir / "stderr", 4096)
            diag = (
                f"Exception from container-launch.\nContainer id: {c.id}\nExit code: {status}\n"
                + (f"Last 4096 bytes of stderr :\n{tail}" if tail else "")
            )
        self._complete(c, status, diag)

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
                if c.state != "RUNNING" or c.cgroup is None or c.kill_status is not None:
                    continue
                pids = c.cgroup.pids()
                used = sum(_rss(p) for p in pids)
                limit = c.resource.memory * 1024 * 1024
                if used > limit:
                    self.kill(
                        c,
                        KILLED_EXCEEDED_PMEM,
                        f"Container [pid={c.proc.pid},containerID={c.id}] is running {used - limit}B beyond the "
                        f"'PHYSICAL' memory limit. Current usage: {_fmt_mb(used)} of {c.resource.memory} MB physical "
                        "memory used. Killing container.",
                    )

    def status_json(self, c: NMContainer) -> dict:
        return {
            "containerId": c.id,
            "state": c.state,
            "exitStatus": c.exit_status,
            "diagnostics": c.diagnostics,
        }

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
                self.status_json(self.containers[c])
                for c in body.get("containerIds") or []
                if c in self.containers
            ]
            return http.Response(200, {"containerStatuses": out})
        raise http.not_found(f"no RPC named {name}")

    # -- web: node info and container logs ------------------------------------------------
    async def handle_web(self, req: http.Request) -> http.Response:
        p = req.path.rstrip("/")
        if p in ("/ws/v1/node", "/ws/v1/node/info"):
            return http.Response(
                200,
                {
                    "nodeInfo": {
                        "id": self.node_id,
                        "nodeHostName": self.host,
                        "nodeManagerVersion": "3.3.6-racklab",
                        "totalVmemAllocatedContainersMB": self.capability.memory,
                        "totalPmemAllocatedContainersMB": self.capability.memory,
                        "totalVCoresAllocatedContainers": self.capability.vcores,
                        "healthStatus": "Healthy" if self.registered.is_set() else "Unregistered",
                        "cgroupVersion": self.cgroups.version if self.cgroups else None,
                        "shufflePort": self.shuffle_port,
                    }
                },
            )
        if p == "/ws/v1/node/containers":
            items = [self.container_json(c) for c in self.containers.values()]
            return http.Response(200, {"containers": {"container": items} if items else None})
        if p == "/ws/v1/node/apps":
            items = [
                {"id": a, "state": i["state"], "user": i["user"], "containerids": i["containers"]}
                for a, i in self.apps.items()
            ]
            return http.Response(200, {"apps": {"app": items} if items else None})
        m = re.match(r"^/ws/v1/node/apps/([^/]+)$", p)
        if m:
            i = self.apps.get(m.group(1))
            if i is None:
                raise http.not_found(f"app with id {m.group(1)} not found")
            return http.Response(
                200,
                {
                    "app": {
                        "id": m.group(1),
                        "state": i["state"],
                        "user": i["user"],
                        "containerids": i["containers"],
                    }
                },
            )
        m = re.match(r"^/ws/v1/node/containers/([^/]+)(/logs)?$", p)
        if m:
            c = self.containers.get(m.group(1))
            if c is None:
                raise http.not_found(f"container with id, {m.group(1)}, not found")
            if m.group(2):
                files = [
                    {
                        "fileName": f.name,
                        "fileSize": str(f.stat().st_size),
                        "lastModifiedTime": time.ctime(f.stat().st_mtime),
                    }
                    for f in sorted(c.log_dir.iterdir())
                    if f.is_file()
                ]
                return http.Response(
                    200,
                    [
                        {
                            "containerLogInfo": files,
                            "logAggregationType": "LOCAL",
                            "containerId": c.id,
                            "nodeId": self.node_id,
                        }
                    ],
                )
            return http.Response(200, {"container": self.container_json(c)})
        m = re.match(r"^/ws/v1/node/containerlogs/([^/]+)/([^/]+)$", p)
        if m:
            c = self.containers.get(m.group(1))
            if c is None or not _ID.match(m.group(2)):
                raise http.not_found(
                    f"Cannot find this log on the local disk: {m.group(1)}/{m.group(2)}"
                )
            f = c.log_dir / m.group(2)
            if not f.is_file():
                raise http.not_found(f"Cannot find this log on the local disk: {f.name}")
            return http.Response(200, f.read_bytes(), "text/plain; charset=utf-8")
        m = re.match(r"^/node/containerlogs/([^/]+)(/[^/]+)?$", p)
        if m and m.group(1) in self.containers:
            c = self.containers[m.group(1)]
            text = "".join(
                f"==> {f.name} <==\n{f.read_text(errors='replace')}\n"
                for f in sorted(c.log_dir.iterdir())
                if f.is_file()
            )
            return http.Response(200, text, "text/plain; charset=utf-8")
        raise http.not_found(f"Cannot find resource {req.path}")

    def container_json(self, c: NMContainer) -> dict:
        return {
            "id": c.id,
            "appId": c.app_id,
            "state": c.state,
            "exitCode": c.exit_status,
            "diagnostics": c.diagnostics,
            "user": c.user,
            "totalMemoryNeededMB": c.resource.memory,
            "totalVCoresNeeded": c.resource.vcores,
            "containerLogsLink": f"http://{self.http_address}/node/containerlogs/{c.id}/{c.user}",
            "nodeId": self.node_id,
            "containerLogFiles": sorted(f.name for f in c.log_dir.iterdir())
            if c.log_dir.exists()
            else [],
        }

    # -- ShuffleHandler -------------------------------------------------------------------
    async def handle_shuffle(self, req: http.Request) -> http.Response:
        """GET /mapOutput?job=job_<ts>_<seq>&reduce=<n>&map=attempt_... -> that map's partition."""
        if req.path.rstrip("/") != "/mapOutput":
            raise http.not_found(f"Cannot find resource {req.path}")
        job, reduce_, maps = (
            req.query.get("job", ""),
            req.query.get("reduce", ""),
            req.query.get("map", ""),
        )
        m = re.match(r"^job_(\d+)_(\d+)$", job)
        if not m or not reduce_.isdigit() or not maps:
            raise http.bad_request(
                "mapOutput needs job=job_<ts>_<seq>, reduce=<n> and map=<attempt id>"
            )
        aid = f"application_{m.group(1)}_{m.group(2)}"
        info = self.apps.get(aid)
        chunks = []
        for attempt in maps.split(","):
            if not _ID.match(attempt):
                raise http.bad_request(f"invalid map attempt id {attempt!r}")
            f = (
                self.app_dir(info["user"], aid) / "output" / attempt / f"part-{int(reduce_)}"
                if info
                else None
            )
            if f is None or not f.is_file():
                raise http.not_found(
                    f"map output of {attempt} for reduce {reduce_} is not on this node"
                )
            chunks.append(await asyncio.to_thread(f.read_bytes))
        return http.Response(200, b"".join(chunks), "application/octet-stream")


def _shell_code(code: int) -> int:
    return 128 - code if code < 0 else code  # -9 (SIGKILL) -> 137, as a shell reports it


def _tail(path: Path, n: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode(errors="replace")
    except OSError:
        return ""
