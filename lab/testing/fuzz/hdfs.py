"""HDFS under fuzz: WebHDFS on the NameNode and a DataNode, the NameNode's RPC, image
transfer, and the DataNodes' data-transfer protocol — including forged WRITE_BLOCK
headers aimed at real replicas of acknowledged files — and the native doors: Hadoop IPC
on the NameNode's RPC port (preambles, connection contexts and ClientNamenodeProtocol
calls, whole or mutated; lying frame lengths, huge varints, unknown methods and
protocols) and Hadoop's DataTransferProtocol on the DataNodes' (every op, real and bogus
blocks, forged OP_WRITE_BLOCKs and OP_TRANSFER_BLOCKs at real replicas, lying lengths).
Between batches the `hdfs` package (HdfsCLI) writes a file and reads back every
acknowledged one, and hdfs-native reads the newest through the native doors."""

from __future__ import annotations

import json
import os
import random
import struct
from collections.abc import Iterator
from pathlib import Path

from lab.services.hadoop.ipc.protobuf import Schema, encode_varint
from lab.services.hdfs import datatransfer_hadoop as dth
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


# Hadoop IPC: the ClientNamenodeProtocol calls sent whole or mutated. Reads go anywhere;
# calls that change something name /fuzz only (a mutation that cuts a path to "/" gets
# Hadoop's refusals: the root cannot be deleted or renamed).
CLIENT_PROTOCOL = "org.apache.hadoop.hdfs.protocol.ClientProtocol"
PREAMBLE = b"hrpc\x09\x00\x00"
EXT_BLOCK = {"poolId": "BP-1", "blockId": 1073741825, "generationStamp": 1001, "numBytes": 0}
IPC_CALLS = {
    "getFileInfo": {"src": "/"},
    "getListing": {"src": "/", "startAfter": b"", "needLocation": True},
    "getBlockLocations": {"src": "/acked/f0", "offset": 0, "length": 1 << 20},
    "getContentSummary": {"path": "/"},
    "getServerDefaults": {},
    "getFsStats": {},
    "getDatanodeReport": {"type": "ALL"},
    "renewLease": {"clientName": "fuzz"},
    "mkdirs": {"src": "/fuzz/n", "masked": {"perm": 0o755}, "createParent": True},
    "create": {
        "src": "/fuzz/nf",
        "masked": {"perm": 0o644},
        "clientName": "fuzz",
        "createFlag": 3,
        "createParent": True,
        "replication": 1,
        "blockSize": 65536,
    },
    "addBlock": {"src": "/fuzz/nf", "clientName": "fuzz"},
    "complete": {"src": "/fuzz/nf", "clientName": "fuzz"},
    "append": {"src": "/fuzz/nf", "clientName": "fuzz"},
    "recoverLease": {"src": "/fuzz/nf", "clientName": "fuzz2"},
    "delete": {"src": "/fuzz/n", "recursive": True},
    "rename": {"src": "/fuzz/n", "dst": "/fuzz/m"},
    "setPermission": {"src": "/fuzz", "permission": {"perm": 0o777}},
    "setReplication": {"src": "/fuzz/nf", "replication": 2},
    "setTimes": {"src": "/fuzz", "mtime": 2**64 - 1, "atime": 0},
    "getAdditionalDatanode": {
        "src": "/fuzz/nf",
        "blk": EXT_BLOCK,
        "numAdditionalNodes": 1,
        "clientName": "fuzz",
    },
    "updateBlockForPipeline": {"block": EXT_BLOCK, "clientName": "fuzz"},
}
HADOOP_STAGES = [
    "PIPELINE_SETUP_CREATE",
    "PIPELINE_SETUP_APPEND",
    "PIPELINE_SETUP_STREAMING_RECOVERY",
    "PIPELINE_SETUP_APPEND_RECOVERY",
    "PIPELINE_CLOSE",
    "TRANSFER_RBW",
]
HUGE_VARINT = b"\xff" * 9 + b"\x01"


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
        self.schema = Schema.load()
        self.methods = self.schema.services["hadoop.hdfs.ClientNamenodeProtocol"]
        try:
            import hdfs_native  # the native doors' real client, where it is installed

            url = f"hdfs://{self.cluster.nn_ip}:{self.cluster.nn_rpc}"
            self.native = hdfs_native.Client(url)
        except ImportError:
            self.native = None
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
        if self.native is not None:  # the native doors serve the same bytes
            assert self.native.get_file_info("/").isdir
            with self.native.read(path) as r:
                assert r.read() == data, f"{path} reads back otherwise through hdfs-native"
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
            (self._ipc, 4),
            (self._hadoop_xfer, 3),
            (self._hadoop_forged, 2),
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

    # ------------------------------------------------------------ the native doors
    def _ipc_frame(self, *parts: bytes) -> bytes:
        payload = b"".join(parts)
        return struct.pack(">i", len(payload)) + payload

    def _rpc_header(self, call_id: int) -> bytes:
        return self.schema.encode_delimited(
            "hadoop.common.RpcRequestHeaderProto",
            {
                "rpcKind": "RPC_PROTOCOL_BUFFER",
                "rpcOp": "RPC_FINAL_PACKET",
                "callId": call_id,
                "clientId": b"fuzz-client-id16",
            },
        )

    def _context(self, user: str = "root") -> bytes:
        context = self.schema.encode_delimited(
            "hadoop.common.IpcConnectionContextProto",
            {"userInfo": {"effectiveUser": user}, "protocol": CLIENT_PROTOCOL},
        )
        return self._ipc_frame(self._rpc_header(-3), context)

    def _call(self, call_id: int, method: str, body: bytes, protocol: str = CLIENT_PROTOCOL):
        header = self.schema.encode_delimited(
            "hadoop.common.RequestHeaderProto",
            {
                "methodName": method,
                "declaringClassProtocolName": protocol,
                "clientProtocolVersion": 1,
            },
        )
        return self._ipc_frame(self._rpc_header(call_id), header, encode_varint(len(body)), body)

    def _request(self, rng: random.Random) -> tuple[str, bytes]:
        method = rng.choice(list(IPC_CALLS))
        body = self.schema.encode(self.methods[method][0], IPC_CALLS[method])
        return method, mutate(rng, body) if rng.random() < 0.6 else body

    def _ipc(self, rng: random.Random) -> Probe:
        """Hadoop IPC on the NameNode's RPC port."""
        c = self.cluster
        user = rng.choice(["root", "root", "acc", "", "x" * 300])
        what = rng.randrange(8)
        if what == 0:  # a session of calls, some mutated
            pieces = [PREAMBLE, self._context(user)]
            for i in range(rng.randint(1, 4)):
                pieces.append(self._call(i + 1, *self._request(rng)))
        elif what == 1:  # a wrong preamble (version, service class, auth, magic)
            bad = rng.choice(
                [
                    b"hrpc" + bytes([rng.randrange(256), rng.randrange(256), rng.randrange(256)]),
                    b"HRPC\x09\x00\x00",
                    b"hrpc\x09\x00\xdf",  # SASL, then no negotiation
                    mutate(rng, PREAMBLE),
                ]
            )
            pieces = [bad, self._context(user), self._call(1, *self._request(rng))]
        elif what == 2:  # random bytes after the preamble, or after the context
            pieces = [PREAMBLE] + ([self._context(user)] if rng.random() < 0.5 else [])
            pieces.append(garbage(rng, big=rng.random() < 0.05))
        elif what == 3:  # a frame whose length lies
            frame_ = self._call(1, *self._request(rng))
            length = rng.choice(
                [-1, 0, 1, 2**31 - 1, 128 * 2**20 + 1, len(frame_) + 100, len(frame_) - 10]
            )
            pieces = [PREAMBLE, self._context(user), struct.pack(">i", length) + frame_[4:]]
        elif what == 4:  # unknown methods and protocols
            method = rng.choice(["nope", "", "getFileInfo\x00", "__init__", "a" * 1000])
            protocol = rng.choice(
                [CLIENT_PROTOCOL, "org.example.Nope", "", "org.apache.hadoop.ha.HAServiceProtocol"]
            )
            body = self.schema.encode("hadoop.hdfs.GetFileInfoRequestProto", {"src": "/"})
            pieces = [PREAMBLE, self._context(user), self._call(1, method, body, protocol)]
        elif what == 5:  # huge varints where a message length belongs
            where = rng.randrange(3)
            if where == 0:  # the request header's length
                pieces = [PREAMBLE, self._context(user), self._ipc_frame(HUGE_VARINT, b"\x08\x02")]
            elif where == 1:  # the request's length
                call = self._call(1, "getFileInfo", b"")
                pieces = [PREAMBLE, self._context(user), call[:-1] + HUGE_VARINT]
            else:  # a varint field inside the request
                body = b"\x0a\x01/" + b"\x10" + HUGE_VARINT
                pieces = [PREAMBLE, self._context(user), self._call(1, "getListing", body)]
        elif what == 6:  # a call before the connection context, or a call id out of place
            pieces = [
                PREAMBLE,
                self._call(rng.choice([1, -3, -4, -33, 2**31 - 1]), *self._request(rng)),
            ]
        else:  # a whole session mutated
            session = PREAMBLE + self._context(user) + self._call(1, *self._request(rng))
            pieces = [mutate(rng, session)]
        return Probe("ipc", c.nn_ip, c.nn_rpc, pieces)

    def _ext_block(self, rng: random.Random) -> dict:
        if self.blocks and rng.random() < 0.7:
            b = rng.choice(self.blocks)
            return {
                "poolId": b.get("blockPoolId") or "BP-1",
                "blockId": b["blockId"],
                "generationStamp": b["generationStamp"] + rng.choice([0, 0, -1, 1]),
                "numBytes": b["numBytes"],
            }
        return dict(EXT_BLOCK, blockId=rng.choice([1, 1073741825, 2**63 - 1]))

    def _dn_info(self, rng: random.Random) -> dict:
        d = rng.choice(self.cluster.datanodes)
        return {
            "id": {
                "ipAddr": d.ip,
                "hostName": d.ip,
                "datanodeUuid": d.ready["uuid"],
                "xferPort": d.ready["xfer"],
                "infoPort": d.ready["http"],
                "ipcPort": 0,
            }
        }

    def _hadoop_request(self, rng: random.Random, op: int) -> bytes:
        block = self._ext_block(rng)
        base = {"block": block}
        client = {"baseHeader": base, "clientName": "fuzz"}
        if op == dth.READ_BLOCK:
            msg = {
                "header": client,
                "offset": rng.choice(EDGE_INTS) % 2**64,
                "len": rng.choice([0, 1, 512, 2**20, 2**64 - 1]),
            }
        elif op == dth.BLOCK_CHECKSUM:
            msg = {"header": base}
        elif op == dth.TRANSFER_BLOCK:
            msg = {
                "header": client,
                "targets": [self._dn_info(rng) for _ in range(rng.randint(0, 2))],
            }
        else:
            msg = self._write_request(rng, client, block)
        return dth.request_bytes(self.schema, op, dth.REQUESTS[op], msg)

    def _write_request(self, rng: random.Random, client: dict, block: dict) -> dict:
        gs = block["generationStamp"]
        return {
            "header": client,
            "targets": [self._dn_info(rng) for _ in range(rng.randint(0, 2))],
            "stage": rng.choice(HADOOP_STAGES),
            "pipelineSize": rng.randint(0, 3),
            "minBytesRcvd": rng.choice([0, block["numBytes"], block["numBytes"] + 1]),
            "maxBytesRcvd": rng.choice([0, block["numBytes"], 2**63]),
            "latestGenerationStamp": gs + rng.choice([-1, 0, 1, 7]),
            "requestedChecksum": {
                "type": rng.choice(["CHECKSUM_CRC32C", "CHECKSUM_CRC32", "CHECKSUM_NULL"]),
                "bytesPerChecksum": rng.choice([512, 0, 1, 2**31]),
            },
        }  # fmt: skip

    def _hadoop_xfer(self, rng: random.Random) -> Probe:
        """Hadoop's DataTransferProtocol on a DataNode's port: every op, mutated, with
        lying lengths, huge varints, an unknown op or version."""
        host, port = self._dn(rng)
        op = rng.choice(list(dth.REQUESTS))
        request = self._hadoop_request(rng, op)
        what = rng.randrange(6)
        if what == 0:
            pieces = [request]
        elif what == 1:
            pieces = [mutate(rng, request)]
        elif what == 2:  # a huge varint, or a length longer than what follows
            head = struct.pack(">HB", dth.VERSION, op)
            pieces = [head + rng.choice([HUGE_VARINT, encode_varint(2**20), b"\x80" * 5 + b"\x01"])]
        elif what == 3:  # unknown op, wrong version
            pieces = [
                struct.pack(
                    ">HB",
                    rng.choice([dth.VERSION, 27, 0, 0xFFFF]),
                    rng.choice([0, 79, 82, 84, 87, 255]),
                )
                + request[3:]
            ]
        elif what == 4:  # a good prefix and random bytes
            pieces = [request[:3] + garbage(rng)]
        else:
            pieces = [request, garbage(rng)]
        return Probe("hadoop-xfer", host, port, pieces)

    def _hadoop_forged(self, rng: random.Random) -> Probe:
        """OP_WRITE_BLOCK or OP_TRANSFER_BLOCK in Hadoop's format aimed at a real replica
        of an acknowledged file, then packets whose lengths lie, garbage, or nothing."""
        host, port = self._dn(rng)
        op = rng.choice([dth.WRITE_BLOCK, dth.WRITE_BLOCK, dth.TRANSFER_BLOCK])
        pieces = [self._hadoop_request(rng, op)]
        tail = rng.randrange(4)
        if tail == 1:  # a packet: payload length, header length, PacketHeaderProto, data
            header = self.schema.encode(
                "hadoop.hdfs.PacketHeaderProto",
                {"offsetInBlock": rng.choice([0, 512, 2**40]), "seqno": 0, "lastPacketInBlock": rng.random() < 0.5, "dataLen": rng.choice([0, 512, 2**31 - 1])},
            )  # fmt: skip
            payload = rng.choice([4, 4 + 4 + 512, 2**31, 2**32 - 1, 0])
            pieces.append(struct.pack(">IH", payload % 2**32, len(header)) + header + garbage(rng))
        elif tail == 2:
            pieces.append(struct.pack(">IH", rng.randrange(2**32), rng.randrange(2**16)))
        elif tail == 3:
            pieces.append(garbage(rng))
        return Probe("hadoop-forged", host, port, pieces)
