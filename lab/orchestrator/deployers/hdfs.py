"""Deploys racklab's HDFS from the topology's `services: hdfs:` section:

    hdfs: {namenode: n1, datanodes: [n2, n3, n5], secondarynamenode: n4, dfs.replication: 3}

Every other key with a dot is a Hadoop setting: `fs.*`, `hadoop.*` and `net.*` keys go to
core-site.xml, the rest to hdfs-site.xml, on every node of the service. Racks come from
the topology through the table file TableMapping reads (net.topology.table.file.name).
"""

from __future__ import annotations

from lab.backends.base import NODE_DATA_DIR
from lab.orchestrator.deployers.base import PYTHON, ServiceDeployer, ServiceProcess, config_value
from lab.services.hadoop.conf import render_rack_table, render_site_xml
from lab.services.hadoop.webclient import WebHdfsClient

NAMENODE_HTTP = 9870
NAMENODE_RPC = 8020
SECONDARY_HTTP = 9868
DATANODE_HTTP = 9864
DATANODE_XFER = 9866
ROLE_KEYS = {"namenode", "datanodes", "secondarynamenode"}
CORE_PREFIXES = ("fs.", "hadoop.", "net.", "io.")


class HdfsDeployer(ServiceDeployer):
    name = "hdfs"

    def plan(
        self, section: dict, addresses: dict[str, str], racks: dict[str, str]
    ) -> list[ServiceProcess]:
        nn = section["namenode"]
        datanodes = list(section.get("datanodes", []))
        snn = section.get("secondarynamenode")
        for node in [nn, *datanodes, *([snn] if snn else [])]:
            if node not in addresses:
                raise ValueError(f"services.hdfs names node {node!r}, which is not in the lab")
        if not datanodes:
            raise ValueError("services.hdfs.datanodes must list at least one node")
        base = f"{NODE_DATA_DIR}/hdfs"
        conf_dir = f"{base}/conf"
        nn_ip = addresses[nn]
        settings = {
            "fs.defaultFS": f"hdfs://{nn_ip}:{NAMENODE_RPC}",
            "dfs.namenode.http-address": f"{nn_ip}:{NAMENODE_HTTP}",
            "dfs.namenode.rpc-bind-host": "0.0.0.0",
            "dfs.namenode.http-bind-host": "0.0.0.0",
            "dfs.namenode.secondary.http-address": f"0.0.0.0:{SECONDARY_HTTP}",
            "dfs.namenode.name.dir": f"file://{base}/name",
            "dfs.namenode.checkpoint.dir": f"file://{base}/namesecondary",
            "dfs.datanode.data.dir": f"file://{base}/data",
            "dfs.datanode.http.address": f"0.0.0.0:{DATANODE_HTTP}",
            "dfs.datanode.address": f"0.0.0.0:{DATANODE_XFER}",
            "net.topology.table.file.name": f"{conf_dir}/topology.table",
        }
        settings.update({k: config_value(v) for k, v in section.items() if k not in ROLE_KEYS})
        # TableMapping resolves both names and addresses, as Hadoop's table file may hold either.
        table = {}
        for node, rack in racks.items():
            if node in addresses:
                table[addresses[node]] = rack
                table[node] = rack
        files = {
            f"{conf_dir}/core-site.xml": render_site_xml(
                {k: v for k, v in settings.items() if k.startswith(CORE_PREFIXES)}
            ),
            f"{conf_dir}/hdfs-site.xml": render_site_xml(
                {k: v for k, v in settings.items() if not k.startswith(CORE_PREFIXES)}
            ),
            f"{conf_dir}/topology.table": render_rack_table(table),
        }

        def proc(role: str, node: str, ports: list[int]) -> ServiceProcess:
            argv = [PYTHON, "-m", "lab.services.hdfs", role, "--config", conf_dir]
            return ServiceProcess("hdfs", role, node, argv, dict(files), ports)

        plan = [proc("namenode", nn, [NAMENODE_HTTP, NAMENODE_RPC])]
        plan += [proc("datanode", n, [DATANODE_HTTP, DATANODE_XFER]) for n in datanodes]
        if snn:
            plan.append(proc("secondarynamenode", snn, [SECONDARY_HTTP]))
        return plan

    def unready(self, procs: list[ServiceProcess], addresses: dict[str, str]) -> str | None:
        """Usable once every DataNode has registered and safe mode is off."""
        nn = next(p for p in procs if p.role == "namenode")
        want = sum(p.role == "datanode" for p in procs)
        facts = self.status(nn, addresses[nn.node])
        if "error" in facts:
            return f"NameNode does not answer /jmx: {facts['error']}"
        if facts["live_datanodes"] < want:
            return f"{facts['live_datanodes']} of {want} DataNodes registered"
        if facts["safemode"]:
            return "NameNode still in safe mode"
        return None

    def status(self, proc: ServiceProcess, address: str) -> dict:
        if proc.role != "namenode":
            return {"role": proc.role}
        client = WebHdfsClient(f"{address}:{NAMENODE_HTTP}", timeout=2)
        try:
            info, fs = client.jmx("NameNodeInfo"), client.jmx("FSNamesystem")
            return {
                "role": "namenode",
                "safemode": bool(info["Safemode"]),
                "live_datanodes": fs["NumLiveDataNodes"],
                "dead_datanodes": fs["NumDeadDataNodes"],
                "blocks": fs["BlocksTotal"],
                "under_replicated": fs["UnderReplicatedBlocks"],
            }
        except Exception as exc:  # status must not raise
            return {"role": "namenode", "error": str(exc)}
        finally:
            client.close()
