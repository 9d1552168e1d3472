"""Framing between ensemble members: [u32 length][u8 type][payload], payloads built
with the jute Writer. Election notifications and the leader/follower (ZAB) messages."""

from __future__ import annotations

import asyncio
import struct

from .jute import Reader, Writer

_FRAME = struct.Struct(">IB")
MAX_PEER_FRAME = 256 * 1024 * 1024  # a SNAP carries a whole tree

# ZAB message types, numbered as ZooKeeper's Leader class does where it has one.
REQUEST = 1
PROPOSAL = 2
ACK = 3
COMMIT = 4
PING = 5
REVALIDATE = 6
SYNC = 7
NEWLEADER = 10
FOLLOWERINFO = 11
UPTODATE = 12
DIFF = 13
TRUNC = 14
SNAP = 15
LEADERINFO = 17
ACKEPOCH = 18
# racklab's own: "a quorum without you has logged up to this zxid; once you have
# too, it is committed" (quorum.py, the leader's hint to the follower whose client
# waits; not in ZooKeeper).
LOGGED = 40
# racklab's own: a PROPOSAL another follower's client waits for; its ack may wait for
# the next frame to the leader (quorum.py, on_durable).
PROPOSAL_ELSEWHERE = 41
# election port
HELLO = 100
NOTIFICATION = 101

LOOKING, FOLLOWING, LEADING = 0, 1, 2


class StepDown(Exception):
    """Leave the current role (leader or follower) and go back to LOOKING."""


STATE_NAMES = {LOOKING: "looking", FOLLOWING: "follower", LEADING: "leader"}


def frame(type_: int, payload: bytes = b"") -> bytes:
    return _FRAME.pack(len(payload) + 1, type_) + payload


async def read_frame(
    reader: asyncio.StreamReader, limit: float | None = None
) -> tuple[int, Reader]:
    """The next frame, or TimeoutError after limit seconds (None: no limit).
    asyncio.timeout rather than wait_for: no task per frame on the path that every
    proposal, ack and commit takes."""
    async with asyncio.timeout(limit):
        head = await reader.readexactly(_FRAME.size)
        length, type_ = _FRAME.unpack(head)
        if length < 1 or length > MAX_PEER_FRAME:
            raise ConnectionError(f"peer frame of {length} bytes")
        body = await reader.readexactly(length - 1)
    return type_, Reader(body)


def pack(*fields: tuple[str, object]) -> bytes:
    """pack(("long", 5), ("int", 3), ("buffer", b"..")) -> bytes"""
    w = Writer()
    for kind, value in fields:
        getattr(w, kind)(value)
    return w.getvalue()


class Vote(tuple):
    """(epoch, zxid, leader id): compared as a tuple, highest epoch then zxid then id."""

    __slots__ = ()

    def __new__(cls, epoch: int, zxid: int, leader: int):
        return super().__new__(cls, (epoch, zxid, leader))

    @property
    def epoch(self) -> int:
        return self[0]

    @property
    def zxid(self) -> int:
        return self[1]

    @property
    def leader(self) -> int:
        return self[2]


class Notification:
    __slots__ = ("sid", "state", "round", "vote")

    def __init__(self, sid: int, state: int, round_: int, vote: Vote):
        self.sid = sid
        self.state = state
        self.round = round_
        self.vote = vote

    def encode(self) -> bytes:
        return frame(
            NOTIFICATION,
            pack(
                ("int", self.sid),
                ("int", self.state),
                ("long", self.round),
                ("long", self.vote.epoch),
                ("long", self.vote.zxid),
                ("int", self.vote.leader),
            ),
        )

    @classmethod
    def decode(cls, r: Reader) -> Notification:
        sid, state, rnd = r.int(), r.int(), r.long()
        return cls(sid, state, rnd, Vote(r.long(), r.long(), r.int()))

    def __repr__(self):
        return f"Notification(sid={self.sid}, {STATE_NAMES.get(self.state)}, round={self.round}, vote={tuple(self.vote)})"
