"""HDFS under fuzz: WebHDFS on the NameNode and a DataNode, the NameNode's RPC, image
transfer, and the DataNodes' data-transfer protocol — including forged WRITE_BLOCK
headers aimed at real replicas of acknowledged files — with the `hdfs` package (HdfsCLI)
writing and reading back every acknowledged file between batches."""

from __future__ import annotations

import json
import os
import random
import struct
from collections.abc import Iterator
from pathlib import Path

from lab.services.hdfs.minicluster import MiniCluster

from .core import Daemon, Probe, Target, http_ok
from .mutate import (
    EDGE_INTS,
    EDGE_STRINGS,
    garbage,
    http_junk,
    http_request,
    json_value,
    mutate,
    mutate_json,
)

OPS = [
    "OPEN", "GETFILESTATUS", "LISTSTATUS", "GETCONTENTSUMMARY", "GETFILECHECKSUM", "GETHOMEDIRECTORY",
    "GETFILEBLOCKLOCATIONS", "GETBLOCKLOCATIONS", "CREATE", "MKDIRS", "RENAME", "SETREPLICATION",
    "SETOWNER", "SETPERMISSION", "SETTIMES", "APPEND", "DELETE", "TRUNCATE", "CONCAT", "FROBNICATE", "",
]  # fmt: skip
PARAMS = [
    "offset", "length", "replication", "permission", "overwrite", "recursive", "destination",
    "blocksize", "buffersize", "owner", "group", "modificationtime", "accesstime", "user.name",
    "doas", "noredirect", "newlength", "sources",
]  # fmt: skip
# Paths under /fuzz and the edges of path syntax; acknowledged files live under /acked,
# where only the root's own edge cases ("/", "") reach.
PATHS = [
    "/fuzz",
    "/fuzz/a",
    "/fuzz/a/b",
    "/",
    "",
    "/fuzz/%00",
    "/fuzz/" + "x" * 300,
    "/fuzz/../acked",
    "/fuzz/.",
    "/fuzz//c",
]
VALUES = ["-1", "0", "1", "9223372036854775808", "18446744073709551616", "abc", "", "true", "maybe", "777", "1777", "%00", "/fuzz/z", "/", "relative", "null"]  # fmt: skip

BLOCK = {"blockId": 1073741825, "genStamp": 1001, "numBytes": 0}
# ClientProtocol calls that may well succeed: they act on /fuzz only.
RPC_CLIENT = {
    "create": {"src": "/fuzz/f", "user": "root", "clientName": "fuzz", "overwrite": True},
    "addBlock": {"src": "/fuzz/f", "clientName": "fuzz", "previous": None, "excludeNodes": []},
    "abandonBlock": {"src": "/fuzz/f", "clientName": "fuzz", "block": BLOCK},
    "complete": {"src": "/fuzz/f", "clientName": "fuzz", "last": None},
    "abandonFile": {"src": "/fuzz/f", "clientName": "fuzz", "last": None},
    "append": {"src": "/fuzz/f", "user": "root", "clientName": "fuzz"},
    "getBlockLocations": {"src": "/fuzz", "user": "root", "offset": 0, "length": 10},
    "updatePipeline": {"src": "/fuzz/f", "clientName": "fuzz", "block": BLOCK, "newNodes": []},
    "getTransactionId": {},
}
# Calls that change the cluster itself (membership, safe mode, corrupt marks): sent only
# with a field of the wrong type, so a campaign tests their checks, not the lab's luck.
RPC_ADMIN = {
    "registerDatanode": {"uuid": "u", "ip": "127.0.0.9", "hostName": "h", "xferPort": 1, "infoPort": 1},
    "sendHeartbeat": {"uuid": "u", "capacity": 1, "dfsUsed": 1, "remaining": 1, "xceiverCount": 0},
    "blockReport": {"uuid": "u", "blocks": [[1, 1, 1]]},
    "blockReceivedAndDeleted": {"uuid": "u", "received": [[1, 1, 1]], "deleted": [1]},
    "reportBadBlocks": {"blocks": [{"blockId": 1, "uuid": "u"}]},
    "setSafeMode": {"action": "get"},
}  # fmt: skip


def wrong_type(rng: random.Random, template: dict) -> dict:
    """The template with one field replaced by a value of another JSON type."""
    out = dict(template)
    key = rng.choice(list(out))
    while True:
        value = json_value(rng)
        if type(value) is not type(out[key]) and not (
            isinstance(value, int) and isinstance(out[key], int)
        ):
            out[key] = value
            return out


def frame(obj) -> bytes:
    body = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
    return struct.pack(">I", len(body)) + body


class HdfsTarget(Target):
    service = "hdfs"

    def start(self, workdir: Path) -> None:
        self.cluster = MiniCluster(
            workdir,
            racks={"/rack1": 2, "/rack2": 1},
            settings={
                "dfs.blocksize": "64k",
                "hadoop.http.idle_timeout.ms": "5000",
                "dfs.client.socket-timeout": "5000",
            },
        )
        self.cluster.start()
        self.cluster.wait_active()
        from hdfs import InsecureClient  # a test dependency: the real client

        self.client = InsecureClient(self.cluster.url, user="root", timeout=60)
        self.acked: dict[str, bytes] = {}
        self.blocks: list[dict] = []
        self.check()

    def stop(self) -> None:
        self.cluster.stop()

    def daemons(self) -> list[Daemon]:
        c = self.cluster
        out = [Daemon("namenode", c.namenode.proc.pid, c.nn_ip, c.nn_http, c.namenode.log_path)]
        for d in c.datanodes:
            out.append(Daemon(f"datanode {d.ip}", d.proc.pid, d.ip, d.ready["http"], d.log_path))
        return out

    def alive(self, d: Daemon, timeout: float) -> bool:
        return http_ok(f"http://{d.host}:{d.port}/", timeout)

    def check(self) -> None:
        path = f"/acked/f{len(self.acked)}"
        data = os.urandom(random.randint(0, 150_000))
        self.client.write(path, data, overwrite=False)
        self.acked[path] = data
        # The newest acknowledged files and a sample of the older ones, so each check is
        # bounded however long the campaign; over the campaign every file is read.
        paths = list(self.acked)
        for p in paths[-20:] + random.sample(paths[:-20], min(20, max(0, len(paths) - 20))):
            with self.client.read(p) as r:
                got = r.read()
            assert got == self.acked[p], (
                f"{p} reads back {len(got)} bytes, not its {len(self.acked[p])}"
            )
        import requests

        url = f"{self.cluster.url}/webhdfs/v1{path}?op=GETBLOCKLOCATIONS&user.name=root"
        located = requests.get(url, timeout=30).json()["LocatedBlocks"]["locatedBlocks"]
        self.blocks += [lb["block"] for lb in located]

    # ------------------------------------------------------------ inputs
    def probes(self, rng: random.Random) -> Iterator[Probe]:
        kinds = [
            (self._webhdfs, 4),
            (self._rpc, 4),
            (self._xfer, 4),
            (self._forged, 2),
            (self._http_junk, 2),
            (self._imagetransfer, 1),
        ]
        makers = [m for m, w in kinds for _ in range(w)]
        while True:
            yield rng.choice(makers)(rng)

    def _webhdfs(self, rng: random.Random) -> Probe:
        c = self.cluster
        on_dn = rng.random() < 0.3
        host, port = (
            (c.datanodes[0].ip, c.datanodes[0].ready["http"]) if on_dn else (c.nn_ip, c.nn_http)
        )
        q = [f"op={rng.choice(OPS)}"]
        for name in rng.sample(PARAMS, rng.randint(0, 4)):
            q.append(f"{name}={rng.choice(VALUES)}")
        if rng.random() < 0.8:
            q.append("user.name=" + rng.choice(["root", "root", "bob", "%00", "a b", "x" * 300]))
        target = "/webhdfs/v1" + rng.choice(PATHS) + "?" + "&".join(q)
        method = rng.choice(["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS"])
        body = garbage(rng) if method in ("PUT", "POST") else b""
        return Probe("webhdfs", host, port, [http_request(method, target, body=body)])

    def _rpc(self, rng: random.Random) -> Probe:
        c = self.cluster
        if rng.random() < 0.7:
            method = rng.choice(list(RPC_CLIENT))
            args = RPC_CLIENT[method]
            body = mutate_json(rng, args) if rng.random() < 0.8 else args
        else:
            method = rng.choice(list(RPC_ADMIN))
            body = wrong_type(rng, RPC_ADMIN[method])
        if rng.random() < 0.05:
            method = rng.choice(["__init__", "", "nope", "../rpc/create"])
        raw = json.dumps(body).encode()
        if rng.random() < 0.1:
            raw = rng.choice([b"{not json", b"[" * 5000, mutate(rng, raw), b""])
        req = http_request("POST", f"/rpc/{method}", {"Content-Type": "application/json"}, raw)
        return Probe("rpc", c.nn_ip, c.nn_rpc, [req])

    def _dn(self, rng: random.Random):
        d = rng.choice(self.cluster.datanodes)
        return d.ip, d.ready["xfer"]

    def _xfer(self, rng: random.Random) -> Probe:
        host, port = self._dn(rng)
        blk = dict(rng.choice(self.blocks)) if self.blocks and rng.random() < 0.7 else dict(BLOCK)
        blk.pop("blockPoolId", None)
        if "generationStamp" in blk:
            blk["genStamp"] = blk.pop("generationStamp")
        header = rng.choice(
            [
                {"op": "READ_BLOCK", "block": blk, "offset": rng.choice(EDGE_INTS), "length": rng.choice([0, 1, 512, 2**20])},
                {"op": "BLOCK_CHECKSUM", "block": blk},
                {"op": "WRITE_BLOCK", "stage": "create", "targets": [], "block": {"blockId": rng.randint(1, 1000), "genStamp": 1}},
            ]
        )  # fmt: skip
        what = rng.randrange(5)
        if what == 0:
            pieces = [frame(mutate_json(rng, header))]
        elif what == 1:
            pieces = [mutate(rng, frame(header))]
        elif what == 2:
            pieces = [
                frame(header),
                struct.pack(
                    ">qqIB",
                    0,
                    rng.choice(EDGE_INTS) % 2**63,
                    rng.choice([0, 512, 2**31]),
                    rng.randrange(256),
                ),
                garbage(rng),
            ]
        elif what == 3:
            pieces = [
                struct.pack(">I", rng.choice([0, 2**31 - 1, 2**32 - 1, 17 * 2**20])) + garbage(rng)
            ]
        else:
            pieces = [frame(header)]
        return Probe("datatransfer", host, port, pieces)

    def _forged(self, rng: random.Random) -> Probe:
        """H1's kind of input: a WRITE_BLOCK aimed at a real replica of an acked file."""
        host, port = self._dn(rng)
        if not self.blocks:
            return self._xfer(rng)
        b = rng.choice(self.blocks)
        gs = b["generationStamp"]
        header = {
            "op": "WRITE_BLOCK",
            "stage": rng.choice(["create", "append", "transfer", "recovery", "bogus"]),
            "targets": [],
            "block": {"blockId": b["blockId"], "genStamp": gs + rng.choice([-1, 0, 1, 5]), "numBytes": rng.choice([0, b["numBytes"], b["numBytes"] + 1])},
            "newGenStamp": gs + rng.choice([-1, 0, 1, 7]),
        }  # fmt: skip
        pieces = [frame(header)]
        if rng.random() < 0.5:  # and an abort, or a packet of garbage after it
            pieces.append(struct.pack(">qqIB", 0, 0, 0, rng.choice([1, 2])))
        return Probe("forged-write", host, port, pieces)

    def _http_junk(self, rng: random.Random) -> Probe:
        c = self.cluster
        host, port = rng.choice(
            [
                (c.nn_ip, c.nn_http),
                (c.nn_ip, c.nn_rpc),
                (c.datanodes[0].ip, c.datanodes[0].ready["http"]),
            ]
        )
        return Probe("http-junk", host, port, [http_junk(rng, "/webhdfs/v1/fuzz?op=LISTSTATUS")])

    def _imagetransfer(self, rng: random.Random) -> Probe:
        c = self.cluster
        q = rng.choice(
            [
                f"txid={rng.choice(VALUES)}",
                f"txid={rng.choice(VALUES)}&storageInfo={rng.choice(EDGE_STRINGS)[:50]}",
                f"getimage=1&txid={rng.choice(VALUES)}",
                f"getedit=1&startTxId={rng.choice(VALUES)}&endTxId={rng.choice(VALUES)}",
            ]
        )
        method = rng.choice(["PUT", "GET"])
        body = garbage(rng) if method == "PUT" else b""
        return Probe(
            "imagetransfer",
            c.nn_ip,
            c.nn_http,
            [http_request(method, "/imagetransfer?" + q, body=body)],
        )
