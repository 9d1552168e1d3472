"""Deploys racklab's YARN from the topology's `services: yarn:` section:

    yarn: {resourcemanager: n1, nodemanagers: [n2, n3], yarn.nodemanager.resource.memory-mb: 1024}

Every other key with a dot is a Hadoop setting: `yarn.scheduler.capacity.*` keys go
to capacity-scheduler.xml, `mapreduce.*` to mapred-site.xml, the rest to
yarn-site.xml, on every node of the service. Racks come from the topology through
the table file TableMapping reads (net.topology.table.file.name). NodeManagers
use their node's address as host name, the same one its DataNode registers with,
so the MapReduce AM can place maps beside their blocks.
"""

from __future__ import annotations

from lab.backends.base import NODE_DATA_DIR
from lab.orchestrator.deployers.base import PYTHON, ServiceDeployer, ServiceProcess, config_value
from lab.services.hadoop.conf import render_site_xml

RM_WEBAPP = 8088
RM_CLIENT = 8032
RM_SCHEDULER = 8030
RM_TRACKER = 8031
NM_RPC = 8041  # Hadoop's default is an ephemeral port; fixed here so node ids stay put
NM_WEBAPP = 8042
SHUFFLE = 13562
ROLE_KEYS = {"resourcemanager", "nodemanagers"}

# Where Hadoop's defaults assume a big machine, a lab of small nodes needs smaller ones.
LAB_DEFAULTS = {
    "yarn.nodemanager.resource.memory-mb": 1024,
    "yarn.nodemanager.resource.cpu-vcores": 2,
    "yarn.scheduler.minimum-allocation-mb": 128,
    "yarn.scheduler.maximum-allocation-mb": 1024,
    "yarn.nm.liveness-monitor.expiry-interval-ms": 30000,
    "yarn.nodemanager.container-monitor.interval-ms": 1000,
    # a lab is for breaking things: an RM killed by chaos gets its applications back
    "yarn.resourcemanager.recovery.enabled": "true",
}


class YarnDeployer(ServiceDeployer):
    name = "yarn"

    def plan(
        self, section: dict, addresses: dict[str, str], racks: dict[str, str]
    ) -> list[ServiceProcess]:
        rm = section["resourcemanager"]
        nms = list(section.get("nodemanagers", []))
        for node in [rm, *nms]:
            if node not in addresses:
                raise ValueError(f"services.yarn names node {node!r}, which is not in the lab")
        if not nms:
            raise ValueError("services.yarn.nodemanagers must list at least one node")
        base = f"{NODE_DATA_DIR}/yarn"
        conf_dir = f"{base}/conf"
        rm_ip = addresses[rm]
        settings: dict[str, object] = dict(LAB_DEFAULTS)
        settings.update(
            {
                # Hadoop's way: the addresses name the RM's host, so a client configured
                # from this file (yarn-api-client, the yarn CLI) reaches it from any node or
                # from the host, and the bind-hosts make the daemons listen on every address.
                # Written out rather than left to ${yarn.resourcemanager.hostname}, since
                # yarn-api-client reads the webapp address as it stands.
                "yarn.resourcemanager.hostname": rm_ip,
                "yarn.resourcemanager.webapp.address": f"{rm_ip}:{RM_WEBAPP}",
                "yarn.resourcemanager.address": f"{rm_ip}:{RM_CLIENT}",
                "yarn.resourcemanager.scheduler.address": f"{rm_ip}:{RM_SCHEDULER}",
                "yarn.resourcemanager.resource-tracker.address": f"{rm_ip}:{RM_TRACKER}",
                "yarn.resourcemanager.bind-host": "0.0.0.0",
                "yarn.nodemanager.bind-host": "0.0.0.0",
                "yarn.resourcemanager.fs.state-store.uri": f"file://{base}/rmstore",
                "yarn.nodemanager.local-dirs": f"{base}/local",
                "yarn.nodemanager.log-dirs": f"{base}/logs",
                "mapreduce.shuffle.port": SHUFFLE,
                "net.topology.table.file.name": f"{conf_dir}/topology.table",
            }
        )
        settings.update({k: config_value(v) for k, v in section.items() if k not in ROLE_KEYS})
        capacity = {k: v for k, v in settings.items() if k.startswith("yarn.scheduler.capacity.")}
        mapred = {k: v for k, v in settings.items() if k.startswith("mapreduce.")}
        yarn_site = {k: v for k, v in settings.items() if k not in capacity and k not in mapred}
        # Hadoop's network locations are paths ("/r1"); topology racks are plain names.
        loc = {n: r if r.startswith("/") else f"/{r}" for n, r in racks.items()}
        table = "".join(
            f"{addr} {loc[n]}\n{n} {loc[n]}\n" for n, addr in sorted(addresses.items()) if n in loc
        )
        common = {
            f"{conf_dir}/capacity-scheduler.xml": render_site_xml(capacity),
            f"{conf_dir}/mapred-site.xml": render_site_xml(mapred),
            f"{conf_dir}/topology.table": table,
        }
        plan = [
            ServiceProcess(
                "yarn",
                "resourcemanager",
                rm,
                [PYTHON, "-m", "lab.services.yarn", "resourcemanager", "--config", conf_dir],
                {**common, f"{conf_dir}/yarn-site.xml": render_site_xml(yarn_site)},
                [RM_WEBAPP, RM_CLIENT, RM_SCHEDULER, RM_TRACKER],
            )
        ]
        for n in nms:
            nm_site = dict(yarn_site)
            nm_site["yarn.nodemanager.hostname"] = addresses[n]
            nm_site["yarn.nodemanager.address"] = f"{addresses[n]}:{NM_RPC}"
            nm_site["yarn.nodemanager.webapp.address"] = f"{addresses[n]}:{NM_WEBAPP}"
            nm_site["yarn.nodemanager.linux-container-executor.cgroups.hierarchy"] = (
                f"/hadoop-yarn-{n}"
            )
            plan.append(
                ServiceProcess(
                    "yarn",
                    "nodemanager",
                    n,
                    [PYTHON, "-m", "lab.services.yarn", "nodemanager", "--config", conf_dir],
                    {**common, f"{conf_dir}/yarn-site.xml": render_site_xml(nm_site)},
                    [NM_RPC, NM_WEBAPP, SHUFFLE],
                )
            )
        return plan

    def status(self, proc: ServiceProcess, address: str) -> dict:
        from lab.services.yarn import http

        try:
            if proc.role == "resourcemanager":
                m = http.call(f"http://{address}:{RM_WEBAPP}/ws/v1/cluster/metrics", timeout=2)[
                    "clusterMetrics"
                ]
                return {
                    "role": "resourcemanager",
                    "active_nodes": m["activeNodes"],
                    "lost_nodes": m["lostNodes"],
                    "apps_running": m["appsRunning"],
                    "apps_pending": m["appsPending"],
                    "allocated_mb": m["allocatedMB"],
                    "total_mb": m["totalMB"],
                }
            info = http.call(f"http://{address}:{NM_WEBAPP}/ws/v1/node/info", timeout=2)["nodeInfo"]
            return {
                "role": "nodemanager",
                "health": info["healthStatus"],
                "cgroups": info["cgroupVersion"],
            }
        except Exception as exc:  # status must not raise
            return {"role": proc.role, "error": str(exc)}
