"""A minimal blocking ZooKeeper wire client for tests that need to misbehave
(partial frames, garbage, silence) in ways kazoo never would."""

from __future__ import annotations

import socket
import struct

from lab.services.zookeeper.jute import Reader
from lab.services.zookeeper.proto import (
    ConnectRequest,
    ConnectResponse,
    ReplyHeader,
    RequestHeader,
    WatcherEvent,
)


class RawClient:
    def __init__(self, host: str, port: int, timeout: float = 5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.events: list[tuple[int, str]] = []

    def send_frame(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def recv_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed by server")
            out += chunk
        return out

    def recv_frame(self) -> bytes:
        (n,) = struct.unpack(">i", self.recv_exact(4))
        return self.recv_exact(n)

    def connect(self, timeout_ms=3000, session_id=0, passwd=b"\0" * 16, last_zxid=0):
        req = ConnectRequest(0, last_zxid, timeout_ms, session_id, passwd).serialize() + b"\0"
        self.send_frame(req)
        r = Reader(self.recv_frame())
        resp = ConnectResponse.read(r)
        return resp

    def request(self, xid: int, op: int, body: bytes = b"") -> tuple[ReplyHeader, Reader]:
        self.send_frame(RequestHeader(xid, op).serialize() + body)
        return self.reply()

    def reply(self) -> tuple[ReplyHeader, Reader]:
        """The next reply; watch events arriving before it are kept in self.events."""
        while True:
            r = Reader(self.recv_frame())
            h = ReplyHeader.read(r)
            if h.xid != -1:
                return h, r
            ev = WatcherEvent.read(r)
            self.events.append((ev.type, ev.path))

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True once the server has closed (EOF or reset), reading and dropping replies."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False

    def close(self):
        self.sock.close()
