"""Transactions: what a write becomes once validated. They are what the log holds,
what the ensemble's leader proposes, and what every server applies to its tree."""

from __future__ import annotations

from .jute import Reader, Record, Writer, buffer, int32, int64, ustring, vector
from .proto import ACL, Op


class TxnHeader(Record):
    FIELDS = (
        ("clientId", int64),
        ("cxid", int32),
        ("zxid", int64),
        ("time", int64),
        ("type", int32),
    )


class CreateTxn(Record):
    # ephemeralOwner rather than ZooKeeper's boolean, so container nodes need no
    # separate txn type; parentCVersion is the parent's cversion after this create.
    FIELDS = (
        ("path", ustring),
        ("data", buffer),
        ("acl", vector(ACL)),
        ("ephemeralOwner", int64),
        ("parentCVersion", int32),
    )


class DeleteTxn(Record):
    FIELDS = (("path", ustring),)


class SetDataTxn(Record):
    FIELDS = (("path", ustring), ("data", buffer), ("version", int32))


class SetACLTxn(Record):
    FIELDS = (("path", ustring), ("acl", vector(ACL)), ("version", int32))


class CheckVersionTxn(Record):
    FIELDS = (("path", ustring), ("version", int32))


class ErrorTxn(Record):
    FIELDS = (("err", int32),)


class CreateSessionTxn(Record):
    FIELDS = (("timeOut", int32),)


class CloseSessionTxn(Record):
    FIELDS = ()


class SubTxn(Record):
    FIELDS = (("type", int32), ("data", buffer))


class MultiTxn(Record):
    FIELDS = (("txns", vector(SubTxn)),)


TXN_TYPES: dict[int, type[Record]] = {
    Op.CREATE: CreateTxn,
    Op.CREATE2: CreateTxn,
    Op.CREATE_CONTAINER: CreateTxn,
    Op.CREATE_TTL: CreateTxn,
    Op.DELETE: DeleteTxn,
    Op.SET_DATA: SetDataTxn,
    Op.RECONFIG: SetDataTxn,  # /zookeeper/config's new text, as Apache's reconfig txn
    Op.SET_ACL: SetACLTxn,
    Op.CHECK: CheckVersionTxn,
    Op.ERROR: ErrorTxn,
    Op.CREATE_SESSION: CreateSessionTxn,
    Op.CLOSE_SESSION: CloseSessionTxn,
    Op.MULTI: MultiTxn,
}


class Txn:
    """A header plus its body record; encodes to header bytes followed by body bytes.

    A txn is never changed once made, so its bytes are kept: the leader encodes each
    one once for the proposal, the log and later DIFFs, and a follower logs the very
    bytes it received."""

    __slots__ = ("hdr", "body", "raw")

    def __init__(self, hdr: TxnHeader, body: Record, raw: bytes | None = None):
        self.hdr = hdr
        self.body = body
        self.raw = raw

    def encode(self) -> bytes:
        raw = self.raw
        if raw is None:
            w = Writer()
            self.hdr.write(w)
            self.body.write(w)
            raw = self.raw = w.getvalue()
        return raw

    @classmethod
    def decode(cls, data: bytes) -> Txn:
        r = Reader(data)
        hdr = TxnHeader.read(r)
        body = TXN_TYPES[hdr.type].read(r)
        if r.pos != len(data):
            data = data[: r.pos]  # keep only the txn's own bytes
        return cls(hdr, body, bytes(data))

    @property
    def zxid(self) -> int:
        return self.hdr.zxid

    def __repr__(self):
        return f"Txn({self.hdr!r}, {self.body!r})"


def encode_sub(op: int, body: Record) -> SubTxn:
    return SubTxn(op, body.serialize())


def decode_sub(sub: SubTxn) -> tuple[int, Record]:
    return sub.type, TXN_TYPES[sub.type].deserialize(sub.data)


__all__ = [
    "TxnHeader",
    "CreateTxn",
    "DeleteTxn",
    "SetDataTxn",
    "SetACLTxn",
    "CheckVersionTxn",
    "ErrorTxn",
    "CreateSessionTxn",
    "CloseSessionTxn",
    "MultiTxn",
    "SubTxn",
    "Txn",
    "encode_sub",
    "decode_sub",
]
