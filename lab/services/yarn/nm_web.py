"""The NodeManager's web services (Hadoop's NMWebServices on the NM web address):
node info, its containers and applications, and container logs."""

from __future__ import annotations

import re
import time

from . import http
from .nmcontainer import SAFE_ID, NMContainer


class NMWebServices:
    def __init__(self, nm):
        """nm: the NodeManager whose state this serves (not imported here: it imports
        this module)."""
        self.nm = nm

    async def handle(self, req: http.Request) -> http.Response:
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
                        "healthStatus": "Healthy" if nm.registered.is_set() else "Unregistered",
                        "cgroupVersion": nm.cgroups.version if nm.cgroups else None,
                        "shufflePort": nm.shuffle_port,
                    }
                },
            )
        if p == "/ws/v1/node/containers":
            items = [self.container_json(c) for c in nm.containers.values()]
            return http.Response(200, {"containers": {"container": items} if items else None})
        if p == "/ws/v1/node/apps":
            items = [
                {"id": a, "state": i["state"], "user": i["user"], "containerids": i["containers"]}
                for a, i in nm.apps.items()
            ]
            return http.Response(200, {"apps": {"app": items} if items else None})
        m = re.match(r"^/ws/v1/node/apps/([^/]+)$", p)
        if m:
            i = nm.apps.get(m.group(1))
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

    def container_json(self, c: NMContainer) -> dict:
        nm = self.nm
        return {
            "id": c.id,
            "appId": c.app_id,
            "state": c.state,
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
