"""Hadoop IPC by hand for the HDFS tests: preamble, connection context, framed calls, for
the calls hdfs-native's Python API does not expose and for frames no client would send."""

from __future__ import annotations

import hashlib
import socket
import struct

from lab.services.hadoop.ipc.protobuf import Schema
from lab.services.hdfs import blockreader, datatransfer_hadoop

S = Schema.load()
CLIENT_PROTOCOL = "org.apache.hadoop.hdfs.protocol.ClientProtocol"
DATANODE_PROTOCOL = "org.apache.hadoop.hdfs.protocol.ClientDatanodeProtocol"
METHODS = S.services["hadoop.hdfs.ClientNamenodeProtocol"]
# Each protocol's methods: (request type, response type) by name.
SERVICES = {
    CLIENT_PROTOCOL: METHODS,
    DATANODE_PROTOCOL: S.services["hadoop.hdfs.ClientDatanodeProtocolService"],
}


class RawIpc:
    """The wire protocol by hand: preamble, connection context, framed calls. To the
    NameNode's RPC address, or with `address` and `protocol` to another IPC server (a
    DataNode's ClientDatanodeProtocol)."""

    protocol = CLIENT_PROTOCOL

    def __init__(
        self,
        cluster,
        user: str = "root",
        preamble: bytes = b"hrpc\x09\x00\x00",
        address: tuple[str, int] | None = None,
        protocol: str = CLIENT_PROTOCOL,
    ):
        address = address or (cluster.nn_ip, cluster.nn_rpc)
        self.sock = socket.create_connection(address, timeout=10)
        self.call_id, self.protocol = 0, protocol
        self.sock.sendall(preamble)
        context = {"userInfo": {"effectiveUser": user}, "protocol": protocol}
        self.send_frame(
            self.header(-3) + S.encode_delimited("hadoop.common.IpcConnectionContextProto", context)
        )

    def header(self, call_id: int) -> bytes:
        return S.encode_delimited(
            "hadoop.common.RpcRequestHeaderProto",
            {
                "rpcKind": "RPC_PROTOCOL_BUFFER",
                "rpcOp": "RPC_FINAL_PACKET",
                "callId": call_id,
                "clientId": b"0123456789abcdef",
            },
        )

    def send_frame(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def read_frame(self) -> tuple[dict, bytes]:
        size = struct.unpack(">i", self.recv(4))[0]
        data = self.recv(size)
        header, pos = S.decode_delimited("hadoop.common.RpcResponseHeaderProto", data)
        return header, data[pos:]

    def recv(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out

    def call(self, method: str, request: dict, protocol: str | None = None) -> dict:
        protocol = protocol or self.protocol
        methods = SERVICES.get(self.protocol, METHODS)
        req_type, resp_type = methods.get(method, ("hadoop.hdfs.GetFsStatusRequestProto", ""))
        self.call_id += 1
        self.send_frame(
            self.header(self.call_id)
            + S.encode_delimited(
                "hadoop.common.RequestHeaderProto",
                {
                    "methodName": method,
                    "declaringClassProtocolName": protocol,
                    "clientProtocolVersion": 1,
                },
            )
            + S.encode_delimited(req_type, request)
        )
        header, body = self.read_frame()
        assert header["callId"] == self.call_id
        if header["status"] != "SUCCESS":
            return header
        return S.decode_delimited(resp_type, body)[0]

    def close(self) -> None:
        self.sock.close()


def datanode_ipc(loc: dict, user: str = "root") -> RawIpc:
    """A Hadoop IPC connection to the DataNode of a DatanodeInfoProto (ClientDatanodeProtocol,
    at the ipcPort it advertises)."""
    address = (loc["id"]["ipAddr"], loc["id"]["ipcPort"])
    return RawIpc(None, user=user, address=address, protocol=DATANODE_PROTOCOL)


def visible_length(loc: dict, block: dict) -> int:
    """getReplicaVisibleLength of `block` on that DataNode, as Java's DFSInputStream asks
    for a file's last block under construction."""
    raw = datanode_ipc(loc)
    try:
        return raw.call("getReplicaVisibleLength", {"block": block})["length"]
    finally:
        raw.close()


def located_blocks(cluster, path: str) -> dict:
    """getBlockLocations of a whole file: LocatedBlocksProto as a dict."""
    raw = RawIpc(cluster)
    try:
        return raw.call("getBlockLocations", {"src": path, "offset": 0, "length": 1 << 62})[
            "locations"
        ]
    finally:
        raw.close()


def native_file_checksum(located: dict) -> dict:
    """DFSClient.getFileChecksum by hand, the native door's way: OP_BLOCK_CHECKSUM to a
    DataNode of each block (Hadoop's data-transfer framing), then the MD5 of the blocks'
    MD5s, with crcPerBlock from the first block when there are several. Returned in
    WebHDFS's FileChecksum shape so the two doors compare directly."""
    md5s, bpc, crc_per_block = b"", 0, 0
    for i, lb in enumerate(located["blocks"]):
        loc = lb["locs"][0]["id"]
        request = datatransfer_hadoop.request_bytes(
            S,
            datatransfer_hadoop.BLOCK_CHECKSUM,
            "OpBlockChecksumProto",
            {"header": {"block": lb["b"]}},
        )
        with socket.create_connection((loc["ipAddr"], loc["xferPort"]), timeout=10) as sock:
            sock.sendall(request)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        resp, _ = S.decode_delimited("hadoop.hdfs.BlockOpResponseProto", reply)
        assert resp["status"] == "SUCCESS", resp
        answer = resp["checksumResponse"]
        assert answer["crcType"] == "CHECKSUM_CRC32C"
        md5s += answer["blockChecksum"]
        bpc = answer["bytesPerCrc"]
        if i == 0 and len(located["blocks"]) > 1:
            crc_per_block = answer["crcPerBlock"]
    data = struct.pack(">iq", bpc, crc_per_block) + hashlib.md5(md5s).digest()
    return {
        "algorithm": f"MD5-of-{crc_per_block}MD5-of-{bpc}CRC32C",
        "bytes": data.hex(),
        "length": len(data),
    }


def read_block(loc: dict, block: dict, offset: int, length: int) -> tuple[dict, bytes]:
    """OP_READ_BLOCK as DFSClient's BlockReaderRemote sends it, to the DataNode of a
    LocatedBlock's location: -> its BlockOpResponseProto and the bytes [offset,
    offset+length) of the block, each packet's chunk CRCs checked on the way."""
    answers = []
    address = (loc["id"]["ipAddr"], loc["id"]["xferPort"])
    try:
        data = b"".join(
            blockreader.read_block(
                S, address, block, offset, length, "raw", 10, on_response=answers.append
            )
        )
        return answers[0], data
    except blockreader.BlockOpError as exc:
        return exc.response, b""
