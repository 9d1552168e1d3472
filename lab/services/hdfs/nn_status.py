"""The NameNode's status pages: /jmx with the beans Hadoop's tools read (NameNodeInfo,
FSNamesystem, NameNodeStatus, ...) and /fsck with its report, text or JSON."""

from __future__ import annotations

import json
import time

from ..hadoop.http import Request, Response
from .blockmanager import QUEUE_CORRUPT, QUEUE_NAMES
from .fsck import render_fsck
from .namespace import INodeDirectory, normalize


class StatusPages:
    def __init__(self, nn) -> None:
        self.nn = nn

    def jmx(self, qry: str | None) -> dict:
        live, dead = {}, {}
        for d in self.nn.bm.datanodes.values():
            entry = {
                "infoAddr": f"{d.ip}:{d.info_port}",
                "xferaddr": f"{d.ip}:{d.xfer_port}",
                "location": d.rack,
                "lastContact": int(time.monotonic() - d.last_heartbeat),
                "capacity": d.capacity,
                "used": d.dfs_used,
                "remaining": d.remaining,
                "numBlocks": len(d.blocks),
                "adminState": "In Service",
                "uuid": d.uuid,
            }
            (live if d.alive else dead)[f"{d.host_name}:{d.xfer_port}"] = entry
        safe, total = self.nn.safe_blocks()
        under = sum(len(q) for i, q in enumerate(self.nn.bm.needed) if i != QUEUE_CORRUPT)
        beans = [
            {
                "name": "Hadoop:service=NameNode,name=NameNodeInfo",
                "Safemode": self.nn.safemode_tip(),
                "LiveNodes": json.dumps(live),
                "DeadNodes": json.dumps(dead),
                "Total": sum(d.capacity for d in self.nn.bm.live_nodes()),
                "Used": sum(d.dfs_used for d in self.nn.bm.live_nodes()),
                "Free": sum(d.remaining for d in self.nn.bm.live_nodes()),
                "ClusterId": self.nn.version.get("clusterID"),
                "BlockPoolId": self.nn.version.get("blockpoolID"),
            },
            {
                "name": "Hadoop:service=NameNode,name=FSNamesystem",
                "BlocksTotal": total,
                "BlocksSafe": safe,
                "FilesTotal": len(self.nn.ns.inodes),
                "UnderReplicatedBlocks": under,
                "CorruptBlocks": len(self.nn.bm.needed[QUEUE_CORRUPT]),
                "PendingReplicationBlocks": len(self.nn.bm.pending),
                "NumLiveDataNodes": len(live),
                "NumDeadDataNodes": len(dead),
                "LastWrittenTransactionId": self.nn.editlog.last_txid,
                "MostRecentCheckpointTxId": self.nn.storage.images()[-1],
                "TransactionsSinceLastCheckpoint": self.nn.editlog.last_txid
                - self.nn.storage.images()[-1],
                "EditLogBytes": self.nn.storage.edits_bytes(),
                "LowRedundancyByPriority": {
                    QUEUE_NAMES[i]: len(q) for i, q in enumerate(self.nn.bm.needed)
                },
            },
        ]
        beans.append(
            {
                "name": "Hadoop:service=NameNode,name=NameNodeStatus",
                "State": "active",
                "HostAndPort": f"{self.nn.rpc_address[0]}:{self.nn.rpc_address[1]}",
                "SecurityEnabled": False,
            }
        )
        if qry:
            beans = [b for b in beans if b["name"] == qry]
        return {"beans": beans}

    def fsck(self, path: str) -> dict:
        node = self.nn.ns.get(normalize(path))
        files = []
        totals = {
            "files": 0,
            "dirs": 0,
            "blocks": 0,
            "size": 0,
            "missing": 0,
            "corrupt": 0,
            "under": 0,
            "misreplicated": 0,
            "replicas": 0,
        }
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, INodeDirectory):
                totals["dirs"] += 1
                stack.extend(sorted(n.children.values(), key=lambda c: c.name, reverse=True))
                continue
            totals["files"] += 1
            totals["size"] += n.length
            blocks = []
            for b in n.blocks:
                info = self.nn.bm.blocks.get(b.block_id)
                live = self.nn.bm.live_replicas(info) if info else []
                bad = [
                    self.nn.bm.datanodes[u]
                    for u in (info.corrupt if info else [])
                    if u in self.nn.bm.datanodes
                ]
                racks = sorted({d.rack for d in live})
                status = "HEALTHY"
                if not live:
                    status = "CORRUPT" if bad else "MISSING"
                    totals["corrupt" if bad else "missing"] += 1
                elif len(live) < n.replication:
                    status = "UNDER_REPLICATED"
                    totals["under"] += 1
                elif len(racks) < min(2, len(self.nn.bm.racks()), n.replication):
                    status = "MIS_REPLICATED"
                    totals["misreplicated"] += 1
                totals["blocks"] += 1
                totals["replicas"] += len(live)
                blocks.append(
                    {
                        "block": b.name,
                        "blockId": b.block_id,
                        "len": b.num_bytes,
                        "status": status,
                        "replication": n.replication,
                        "live": len(live),
                        "locations": [
                            {"addr": f"{d.ip}:{d.xfer_port}", "rack": d.rack} for d in live
                        ],
                        "corruptLocations": [
                            {"addr": f"{d.ip}:{d.xfer_port}", "rack": d.rack} for d in bad
                        ],
                    }
                )
            files.append(
                {
                    "path": n.path(),
                    "length": n.length,
                    "replication": n.replication,
                    "underConstruction": n.client_name is not None,
                    "blocks": blocks,
                }
            )
        healthy = totals["missing"] == 0 and totals["corrupt"] == 0
        return {
            "path": normalize(path),
            "status": "HEALTHY" if healthy else "CORRUPT",
            "files": files,
            "totals": totals,
            "datanodes": len(self.nn.bm.live_nodes()),
            "racks": len(self.nn.bm.racks()),
            "safemode": self.nn.safemode_on,
        }

    def fsck_http(self, req: Request) -> Response:
        report = self.fsck(req.query.get("path", "/"))
        if req.query.get("format") == "json":
            return Response.json(report)
        return Response(
            200, {"Content-Type": "text/plain; charset=utf-8"}, render_fsck(report).encode()
        )
