"""Hadoop IPC, client side, blocking: what a command-line tool needs to call a daemon the
way Hadoop's own tools do (the `hdfs` shell's ClientNamenodeProtocol calls).

One connection: the "hrpc" preamble (version 9, SIMPLE auth), the connection context
naming the user and protocol, then one framed call at a time, each answered in order. A
failed call raises RemoteError with the server's Java exception class and message; the
connection stays usable, as with Hadoop's client."""

from __future__ import annotations

import os
import socket
import struct

from .protobuf import Schema
from .server import CONNECTION_CONTEXT_CALL_ID, CONTEXT, REQUEST_HEADER, RESPONSE_HEADER, RPC_HEADER


class RemoteError(Exception):
    """A call the server answered with ERROR or FATAL."""

    def __init__(self, java: str, message: str) -> None:
        super().__init__(message)
        self.java = java


class IpcClient:
    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        protocol: str,
        service: str,
        timeout: float = 60.0,
        schema: Schema | None = None,
    ) -> None:
        self.schema = schema or Schema.load()
        self.protocol = protocol
        self.methods = self.schema.services[service]
        self.client_id = os.urandom(16)
        self.call_id = 0
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.sendall(b"hrpc\x09\x00\x00")
        context = {"userInfo": {"effectiveUser": user}, "protocol": protocol}
        self._send(
            self._header(CONNECTION_CONTEXT_CALL_ID)
            + self.schema.encode_delimited(CONTEXT, context)
        )

    def call(self, method: str, request: dict) -> dict:
        req_type, resp_type = self.methods[method]
        self.call_id += 1
        request_header = {
            "methodName": method,
            "declaringClassProtocolName": self.protocol,
            "clientProtocolVersion": 1,
        }
        self._send(
            self._header(self.call_id)
            + self.schema.encode_delimited(REQUEST_HEADER, request_header)
            + self.schema.encode_delimited(req_type, request)
        )
        size = struct.unpack(">i", self._recv(4))[0]
        frame = self._recv(size)
        header, pos = self.schema.decode_delimited(RESPONSE_HEADER, frame)
        if header["status"] != "SUCCESS":
            raise RemoteError(header["exceptionClassName"] or "", header["errorMsg"] or "")
        return self.schema.decode_delimited(resp_type, frame, pos)[0]

    def close(self) -> None:
        self.sock.close()

    def _header(self, call_id: int) -> bytes:
        header = {
            "rpcKind": "RPC_PROTOCOL_BUFFER",
            "rpcOp": "RPC_FINAL_PACKET",
            "callId": call_id,
            "clientId": self.client_id,
        }
        return self.schema.encode_delimited(RPC_HEADER, header)

    def _send(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def _recv(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("the server closed the connection")
            out += chunk
        return bytes(out)
