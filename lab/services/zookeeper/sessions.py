"""Session ids, passwords and expiry deadlines.

The password is derived from the session id with a secret every server shares (as
ZooKeeper derives it from a fixed superSecret), so any server of an ensemble can
check a reconnecting client's password without having seen the session created.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import time

_SECRET = b"racklab-zookeeper-session-secret"


def password_for(session_id: int) -> bytes:
    return hmac.new(_SECRET, struct.pack(">q", session_id), hashlib.sha256).digest()[:16]


def to_signed64(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


class SessionIds:
    """ZooKeeper's SessionTrackerImpl.initializeNextSession: the server id in the top
    byte, milliseconds since the epoch below it, then counting up."""

    def __init__(self, server_id: int):
        now = int(time.time() * 1000)
        base = ((now << 24) & ((1 << 64) - 1)) >> 8
        self.next = to_signed64(base | (server_id << 56))

    def new(self) -> int:
        sid = self.next
        self.next = to_signed64(self.next + 1)
        return sid


class Session:
    __slots__ = ("id", "timeout", "conn", "expires", "closing")

    def __init__(self, sid: int, timeout: int):
        self.id = sid
        self.timeout = timeout
        self.conn = None
        self.closing = False
        self.expires = 0.0
        self.touch()

    def touch(self) -> None:
        self.expires = time.monotonic() + self.timeout / 1000.0

    @property
    def passwd(self) -> bytes:
        return password_for(self.id)
