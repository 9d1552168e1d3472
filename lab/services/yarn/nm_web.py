"""The NodeManager's web services (Hadoop's NMWebServices on the NM web address):
node info, its containers and applications, and container logs."""

from __future__ import annotations

import re
import time

from . import http
from .nmcontainer import SAFE_ID, NMContainer
from .records import attempt_of_container, parse_app_id

# org.apache.hadoop.yarn.server.nodemanager.containermanager.application.ApplicationState
NM_APP_STATES = [
    "NEW",
    "INITING",
    "RUNNING",
    "FINISHING_CONTAINERS_WAIT",
    "APPLICATION_RESOURCES_CLEANINGUP",
    "FINISHED",
]


class NMWebServices:
    def __init__(self, nm):
        """nm: the NodeManager whose state this serves (not imported here: it imports
        this module)."""
        self.nm = nm
        self.started = int(time.time() * 1000)

    async def handle(self, req: http.Request) -> http.Response:
        try:
            return await self._handle(req)
        except http.HttpError as e:
            raise e.web_service() from None

    async def _handle(self, req: http.Request) -> http.Response:
        nm = self.nm
        p = req.path.rstrip("/")
        if p in ("/ws/v1/node", "/ws/v1/node/info"):
            return http.Response(
                200,
                {
                    "nodeInfo": {
                        "id": nm.node_id,
                        "nodeHostName": nm.host,
                        "nodeManagerVersion": "3.3.6-racklab",
                        "totalVmemAllocatedContainersMB": nm.capability.memory,
                        "totalPmemAllocatedContainersMB": nm.capability.memory,
                        "totalVCoresAllocatedContainers": nm.capability.vcores,
                        # no virtual-memory check here (monitor.py checks physical memory)
                        "vmemCheckEnabled": False,
                        "pmemCheckEnabled": nm.pmem_check,
                        "lastNodeUpdateTime": self.started,  # no health script: no updates
                        "nmStartupTime": self.started,
                        "healthReport": "",
                        "nodeHealthy": True,
                        "nodeManagerBuildVersion": "3.3.6-racklab from racklab",
                        "nodeManagerVersionBuiltOn": "racklab",
                        "hadoopVersion": "3.3.6-racklab",
                        "hadoopBuildVersion": "3.3.6-racklab from racklab",
                        "hadoopVersionBuiltOn": "racklab",
                        "healthStatus": "Healthy" if nm.registered.is_set() else "Unregistered",
                        "cgroupVersion": nm.cgroups.version if nm.cgroups else None,
                        "shufflePort": nm.shuffle_port,
                    }
                },
            )
        if p == "/ws/v1/node/auxiliaryservices":
            # racklab's aux services (the shuffle) come from yarn-site.xml, not a manifest
            # (yarn.nodemanager.aux-services.manifest.enabled is false): Hadoop refuses both
            # reading and replacing them then
            if req.method not in ("GET", "HEAD", "PUT"):
                raise http.not_allowed(req.method, req.path)
            raise http.bad_request("Auxiliary services manifest is not enabled")
        if p == "/ws/v1/node/containers":
            items = [self.container_json(c) for c in nm.containers.values()]
            return http.Response(200, {"containers": {"container": items} if items else None})
        if p == "/ws/v1/node/apps":
            return http.Response(200, self.apps_json(req.query))
        m = re.match(r"^/ws/v1/node/apps/([^/]+)$", p)
        if m:
            try:
                parse_app_id(m.group(1))
            except ValueError as e:  # WebAppUtils.parseApplicationId, as the RM's
                raise http.bad_request(str(e), cause="java.lang.IllegalArgumentException") from None
            i = nm.apps.get(m.group(1))
            if i is None:
                raise http.not_found(f"app with id {m.group(1)} not found")
            return http.Response(200, {"app": self.app_json(m.group(1), i)})
        m = re.match(r"^/ws/v1/node/containers/([^/]+)(/logs)?$", p)
        if m:
            try:
                attempt_of_container(m.group(1))
            except ValueError:
                raise http.bad_request(f"invalid container id, {m.group(1)}") from None
            c = nm.containers.get(m.group(1))
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
                            "nodeId": nm.node_id,
                        }
                    ],
                )
            return http.Response(200, {"container": self.container_json(c)})
        m = re.match(r"^/ws/v1/node/containerlogs/([^/]+)/([^/]+)$", p)
        if m:
            c = nm.containers.get(m.group(1))
            if c is None or not SAFE_ID.match(m.group(2)):
                raise http.not_found(
                    f"Cannot find this log on the local disk: {m.group(1)}/{m.group(2)}"
                )
            f = c.log_dir / m.group(2)
            if not f.is_file():
                raise http.not_found(f"Cannot find this log on the local disk: {f.name}")
            return http.Response(200, f.read_bytes(), "text/plain; charset=utf-8")
        m = re.match(r"^/node/containerlogs/([^/]+)(/[^/]+)?$", p)
        if m and m.group(1) in nm.containers:
            c = nm.containers[m.group(1)]
            text = "".join(
                f"==> {f.name} <==\n{f.read_text(errors='replace')}\n"
                for f in sorted(c.log_dir.iterdir())
                if f.is_file()
            )
            return http.Response(200, text, "text/plain; charset=utf-8")
        raise http.not_found(f"Cannot find resource {req.path}")

    @staticmethod
    def app_json(app_id: str, info: dict) -> dict:
        return {
            "id": app_id,
            "state": info["state"],
            "user": info["user"],
            "containerids": info["containers"],
        }

    def apps_json(self, q: dict[str, str]) -> dict:
        """NMWebServices.getNodeApps: ?state= (an ApplicationState) and ?user= filters,
        checked against each application as Hadoop checks them (so only when there is one)."""
        state, user = q.get("state"), q.get("user")
        items = []
        for app_id, info in self.nm.apps.items():
            if state:
                if state not in NM_APP_STATES:  # ApplicationState.valueOf
                    raise http.HttpError(
                        400,
                        "IllegalArgumentException",
                        "No enum constant org.apache.hadoop.yarn.server.nodemanager."
                        f"containermanager.application.ApplicationState.{state}",
                    )
                if info["state"].upper() != state.upper():
                    continue
            if user is not None:
                if not user:
                    raise http.bad_request(
                        "Error: You must specify a non-empty string for the user"
                    )
                if info["user"] != user:
                    continue
            items.append(self.app_json(app_id, info))
        return {"apps": {"app": items} if items else None}

    def container_json(self, c: NMContainer) -> dict:
        nm = self.nm
        return {
            "id": c.id,
            "appId": c.app_id,
            # the NM's own ContainerState: a container it is done with is DONE (the RM
            # reports it COMPLETE)
            "state": "DONE" if c.state == "COMPLETE" else c.state,
            "exitCode": c.exit_status,
            "diagnostics": c.diagnostics,
            "user": c.user,
            "totalMemoryNeededMB": c.resource.memory,
            "totalVCoresNeeded": c.resource.vcores,
            "containerLogsLink": f"http://{nm.http_address}/node/containerlogs/{c.id}/{c.user}",
            "nodeId": nm.node_id,
            "containerLogFiles": sorted(f.name for f in c.log_dir.iterdir())
            if c.log_dir.exists()
            else [],
        }
