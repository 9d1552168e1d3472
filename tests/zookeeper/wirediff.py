"""What the generated differential tests share: raw sessions that send the same
bytes to Apache ZooKeeper and to racklab's, reply decoding (multi and multiRead
included), and the normalisation of what legitimately differs between two runs
(zxids, session ids, times)."""

from __future__ import annotations

import time

from lab.services.zookeeper.jute import Reader
from lab.services.zookeeper.proto import (
    CONTAINER_OWNER,
    Create2Response,
    CreateResponse,
    GetACLResponse,
    GetAllChildrenNumberResponse,
    GetChildren2Response,
    GetChildrenResponse,
    GetDataResponse,
    GetEphemeralsResponse,
    MultiHeader,
    Op,
    SaslResponse,
    Stat,
    SyncResponse,
    WhoAmIResponse,
    ttl_of,
)

from .rawclient import RawClient

REPLY_TYPES = {
    Op.CREATE: CreateResponse,
    Op.CREATE2: Create2Response,
    Op.CREATE_CONTAINER: Create2Response,
    Op.CREATE_TTL: Create2Response,
    Op.EXISTS: Stat,
    Op.SET_DATA: Stat,
    Op.SET_ACL: Stat,
    Op.GET_DATA: GetDataResponse,
    Op.GET_ACL: GetACLResponse,
    Op.GET_CHILDREN: GetChildrenResponse,
    Op.GET_CHILDREN2: GetChildren2Response,
    Op.SYNC: SyncResponse,
    Op.GET_EPHEMERALS: GetEphemeralsResponse,
    Op.GET_ALL_CHILDREN_NUMBER: GetAllChildrenNumberResponse,
    Op.WHO_AM_I: WhoAmIResponse,
    Op.SASL: SaslResponse,
}


class Norm:
    """zxids and session ids to tokens in order of first appearance; times to
    'set or not'."""

    def __init__(self, ordered: bool = False):
        self.tokens: dict[tuple, str] = {}
        # ordered: compare children and ephemerals lists in the order sent
        self.ordered = ordered

    def tok(self, kind, v):
        if v == 0:
            return 0
        return self.tokens.setdefault((kind, v), f"{kind}{len(self.tokens)}")

    def owner(self, v):
        if v == CONTAINER_OWNER or ttl_of(v):
            return v  # containers and TTL nodes: the owner is the mode, compare it
        return self.tok("s", v)

    def value(self, v):
        if isinstance(v, Stat):
            return (
                self.tok("z", v.czxid),
                self.tok("z", v.mzxid),
                v.ctime > 0,
                v.mtime >= v.ctime,
                v.version,
                v.cversion,
                v.aversion,
                self.owner(v.ephemeralOwner),
                v.dataLength,
                v.numChildren,
                self.tok("z", v.pzxid),
            )
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, tuple):
            return tuple(self.value(x) for x in v)
        if hasattr(v, "FIELDS"):
            out = []
            for name, _ in v.FIELDS:
                x = self.value(getattr(v, name))
                if name in ("children", "ephemerals") and x is not None and not self.ordered:
                    x = sorted(x)  # Apache lists them in hash-set order
                out.append((name, x))
            return tuple(out)
        return v


def decode(op: int, r: Reader):
    if op in (Op.MULTI, Op.MULTI_READ):
        out = []
        while True:
            h = MultiHeader.read(r)
            if h.done:
                return out
            t = REPLY_TYPES.get(h.type)
            if h.type == Op.ERROR:
                out.append(("error", r.int()))
            elif t is None:
                out.append((h.type,))
            else:
                out.append((h.type, t.read(r)))
    t = REPLY_TYPES.get(op)
    if t is None:
        return bytes(r.buf[r.pos :])
    return t.read(r)


class Session:
    """One raw connection; reopened (and the fact recorded) when the server closes it."""

    def __init__(self, host, port, norm: Norm | None = None):
        self.host, self.port = host, port
        self.xid = 0
        self.norm = norm or Norm()
        self.last_zxid = 0  # the highest zxid in a reply header
        self.session = (0, b"\0" * 16)
        self.open()

    def open(self):
        # Reattach to the same session, so its ephemerals and the tree stay the same
        # on both servers whatever time the reconnect takes.
        # A server may still be dropping the old connection when the new one comes:
        # a ping shows the new one is good (bounded retries).
        for _ in range(20):
            self.c = RawClient(self.host, self.port)
            try:
                resp = self.c.connect(
                    timeout_ms=30000, session_id=self.session[0], passwd=self.session[1]
                )
                if resp.timeOut <= 0:  # the session is gone: start a new one
                    self.c.close()
                    self.session = (0, b"\0" * 16)
                    continue
                self.c.request(-2, Op.PING)
            except (ConnectionError, OSError):
                self.c.close()
                time.sleep(0.1)
                continue
            self.session = (resp.sessionId, resp.passwd)
            self.norm.tok("s", resp.sessionId)
            return
        raise AssertionError(f"cannot reattach to {self.host}:{self.port}")

    def send(self, op, body):
        self.xid += 1
        # the xids clients send these with (ClientCnxn: AUTH_XID, SET_WATCHES_XID)
        xid = {Op.AUTH: -4, Op.SET_WATCHES: -8, Op.SET_WATCHES2: -8}.get(op, self.xid)
        try:
            h, r = self.c.request(xid, op, body)
        except (ConnectionError, OSError):
            self.c.close()
            self.open()
            return ("closed",)
        self.last_zxid = max(self.last_zxid, h.zxid)
        events, self.c.events = self.c.events, []
        body = self.norm.value(decode(op, r)) if h.err == 0 else None
        return (h.err, body, events)

    def close(self):
        self.c.close()
