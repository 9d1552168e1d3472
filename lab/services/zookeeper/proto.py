"""The client protocol's numbers and records, after Apache ZooKeeper's
zookeeper.jute, ZooDefs.OpCode and KeeperException.Code."""

from __future__ import annotations

from .jute import Record, boolean, buffer, int32, int64, record, ustring, vector


class Op:
    NOTIFICATION = 0
    CREATE = 1
    DELETE = 2
    EXISTS = 3
    GET_DATA = 4
    SET_DATA = 5
    GET_ACL = 6
    SET_ACL = 7
    GET_CHILDREN = 8
    SYNC = 9
    PING = 11
    GET_CHILDREN2 = 12
    CHECK = 13
    MULTI = 14
    CREATE2 = 15
    RECONFIG = 16
    CHECK_WATCHES = 17
    REMOVE_WATCHES = 18
    CREATE_CONTAINER = 19
    DELETE_CONTAINER = 20
    CREATE_TTL = 21
    MULTI_READ = 22
    AUTH = 100
    SET_WATCHES = 101
    SASL = 102
    GET_EPHEMERALS = 103
    GET_ALL_CHILDREN_NUMBER = 104
    SET_WATCHES2 = 105
    ADD_WATCH = 106
    WHO_AM_I = 107
    CREATE_SESSION = -10
    CLOSE_SESSION = -11
    ERROR = -1


# Operations that change the tree (and so become transactions).
WRITE_OPS = frozenset(
    {
        Op.CREATE,
        Op.CREATE2,
        Op.CREATE_CONTAINER,
        Op.CREATE_TTL,
        Op.DELETE,
        Op.SET_DATA,
        Op.SET_ACL,
        Op.CHECK,
        Op.MULTI,
        Op.CLOSE_SESSION,
        Op.RECONFIG,
    }
)


class Err:
    OK = 0
    SYSTEM_ERROR = -1
    RUNTIME_INCONSISTENCY = -2
    DATA_INCONSISTENCY = -3
    CONNECTION_LOSS = -4
    MARSHALLING_ERROR = -5
    UNIMPLEMENTED = -6
    OPERATION_TIMEOUT = -7
    BAD_ARGUMENTS = -8
    UNKNOWN_SESSION = -12
    NEW_CONFIG_NO_QUORUM = -13
    RECONFIG_IN_PROGRESS = -14
    API_ERROR = -100
    NO_NODE = -101
    NO_AUTH = -102
    BAD_VERSION = -103
    NO_CHILDREN_FOR_EPHEMERALS = -108
    NODE_EXISTS = -110
    NOT_EMPTY = -111
    SESSION_EXPIRED = -112
    INVALID_CALLBACK = -113
    INVALID_ACL = -114
    AUTH_FAILED = -115
    SESSION_MOVED = -118
    NOT_READ_ONLY = -119
    EPHEMERAL_ON_LOCAL_SESSION = -120
    NO_WATCHER = -121
    RECONFIG_DISABLED = -123
    SESSION_CLOSED_REQUIRE_SASL = -124
    QUOTA_EXCEEDED = -125
    THROTTLED_OP = -127


class ZKError(Exception):
    """A KeeperException: the request fails with this code in its reply header."""

    def __init__(self, code: int, msg: str = ""):
        super().__init__(msg or str(code))
        self.code = code


class Xid:
    NOTIFICATION = -1
    PING = -2
    AUTH = -4
    SET_WATCHES = -8


class EventType:
    NONE = -1
    NODE_CREATED = 1
    NODE_DELETED = 2
    NODE_DATA_CHANGED = 3
    NODE_CHILDREN_CHANGED = 4


class KeeperState:
    DISCONNECTED = 0
    SYNC_CONNECTED = 3
    AUTH_FAILED = 4
    EXPIRED = -112


class CreateMode:
    PERSISTENT = 0
    EPHEMERAL = 1
    PERSISTENT_SEQUENTIAL = 2
    EPHEMERAL_SEQUENTIAL = 3
    CONTAINER = 4
    PERSISTENT_WITH_TTL = 5
    PERSISTENT_SEQUENTIAL_WITH_TTL = 6


class Perms:
    READ = 1
    WRITE = 2
    CREATE = 4
    DELETE = 8
    ADMIN = 16
    ALL = 31


# EphemeralType.CONTAINER_EPHEMERAL_OWNER: containers are marked by this owner.
CONTAINER_OWNER = -(1 << 63)

# EphemeralType.TTL: a TTL node's ephemeralOwner is 0xff in the top byte, the feature
# bits (the next two bytes) zero, and the TTL in ms in the low 40 bits, so the TTL
# travels in the Stat, the txn log and snapshots without a field of its own.
_EXTENDED_MASK = 0xFF00000000000000
_RESERVED_MASK = 0x00FFFF0000000000
TTL_MAX = (1 << 64) - 1 & ~(_EXTENDED_MASK | _RESERVED_MASK)


def ttl_owner(ttl: int) -> int:
    """The (signed 64-bit) ephemeralOwner of a TTL node; ValueError as Apache's
    IllegalArgumentException for a TTL out of range."""
    if ttl <= 0 or ttl > TTL_MAX:
        raise ValueError(f"ttl must be positive and cannot be larger than: {TTL_MAX}")
    return (_EXTENDED_MASK | ttl) - (1 << 64)


def ttl_of(owner: int) -> int:
    """The TTL (ms) an ephemeralOwner encodes, 0 if it is not a TTL node's."""
    u = owner & ((1 << 64) - 1)
    if u & _EXTENDED_MASK == _EXTENDED_MASK and u & _RESERVED_MASK == 0:
        return u & TTL_MAX
    return 0


# --- data -------------------------------------------------------------------


class Id(Record):
    FIELDS = (("scheme", ustring), ("id", ustring))


class ACL(Record):
    FIELDS = (("perms", int32), ("id", record(Id)))


class Stat(Record):
    FIELDS = (
        ("czxid", int64),
        ("mzxid", int64),
        ("ctime", int64),
        ("mtime", int64),
        ("version", int32),
        ("cversion", int32),
        ("aversion", int32),
        ("ephemeralOwner", int64),
        ("dataLength", int32),
        ("numChildren", int32),
        ("pzxid", int64),
    )


# --- framing headers ----------------------------------------------------------


class ConnectRequest(Record):
    FIELDS = (
        ("protocolVersion", int32),
        ("lastZxidSeen", int64),
        ("timeOut", int32),
        ("sessionId", int64),
        ("passwd", buffer),
    )
    # readOnly (a trailing boolean) is optional: old clients omit it.


class ConnectResponse(Record):
    FIELDS = (
        ("protocolVersion", int32),
        ("timeOut", int32),
        ("sessionId", int64),
        ("passwd", buffer),
    )


class RequestHeader(Record):
    FIELDS = (("xid", int32), ("type", int32))


class ReplyHeader(Record):
    FIELDS = (("xid", int32), ("zxid", int64), ("err", int32))


class WatcherEvent(Record):
    FIELDS = (("type", int32), ("state", int32), ("path", ustring))


class AuthPacket(Record):
    FIELDS = (("type", int32), ("scheme", ustring), ("auth", buffer))


class MultiHeader(Record):
    FIELDS = (("type", int32), ("done", boolean), ("err", int32))


# --- requests -----------------------------------------------------------------


class CreateRequest(Record):
    FIELDS = (("path", ustring), ("data", buffer), ("acl", vector(ACL)), ("flags", int32))


class CreateTTLRequest(Record):
    FIELDS = (
        ("path", ustring),
        ("data", buffer),
        ("acl", vector(ACL)),
        ("flags", int32),
        ("ttl", int64),
    )


class SaslRequest(Record):
    FIELDS = (("token", buffer),)


class SaslResponse(Record):
    FIELDS = (("token", buffer),)


class DeleteRequest(Record):
    FIELDS = (("path", ustring), ("version", int32))


class ExistsRequest(Record):
    FIELDS = (("path", ustring), ("watch", boolean))


class GetDataRequest(Record):
    FIELDS = (("path", ustring), ("watch", boolean))


class SetDataRequest(Record):
    FIELDS = (("path", ustring), ("data", buffer), ("version", int32))


class GetACLRequest(Record):
    FIELDS = (("path", ustring),)


class SetACLRequest(Record):
    FIELDS = (("path", ustring), ("acl", vector(ACL)), ("version", int32))


class GetChildrenRequest(Record):
    FIELDS = (("path", ustring), ("watch", boolean))


class SyncRequest(Record):
    FIELDS = (("path", ustring),)


class CheckVersionRequest(Record):
    FIELDS = (("path", ustring), ("version", int32))


class ReconfigRequest(Record):
    FIELDS = (
        ("joiningServers", ustring),
        ("leavingServers", ustring),
        ("newMembers", ustring),
        ("curConfigId", int64),
    )


class SetWatches(Record):
    FIELDS = (
        ("relativeZxid", int64),
        ("dataWatches", vector(ustring)),
        ("existWatches", vector(ustring)),
        ("childWatches", vector(ustring)),
    )


class AddWatchRequest(Record):
    FIELDS = (("path", ustring), ("mode", int32))  # 0 persistent, 1 persistent recursive


class SetWatches2(Record):
    FIELDS = (
        ("relativeZxid", int64),
        ("dataWatches", vector(ustring)),
        ("existWatches", vector(ustring)),
        ("childWatches", vector(ustring)),
        ("persistentWatches", vector(ustring)),
        ("persistentRecursiveWatches", vector(ustring)),
    )


class CheckWatchesRequest(Record):
    # also RemoveWatchesRequest; type: 1 children, 2 data, 3 any
    FIELDS = (("path", ustring), ("type", int32))


class GetEphemeralsRequest(Record):
    FIELDS = (("prefixPath", ustring),)


class GetAllChildrenNumberRequest(Record):
    FIELDS = (("path", ustring),)


class Empty(Record):
    FIELDS = ()


# --- responses ----------------------------------------------------------------


class CreateResponse(Record):
    FIELDS = (("path", ustring),)


class Create2Response(Record):
    FIELDS = (("path", ustring), ("stat", record(Stat)))


class ExistsResponse(Record):
    FIELDS = (("stat", record(Stat)),)


class GetDataResponse(Record):
    FIELDS = (("data", buffer), ("stat", record(Stat)))


class SetDataResponse(Record):
    FIELDS = (("stat", record(Stat)),)


class GetACLResponse(Record):
    FIELDS = (("acl", vector(ACL)), ("stat", record(Stat)))


class SetACLResponse(Record):
    FIELDS = (("stat", record(Stat)),)


class GetChildrenResponse(Record):
    FIELDS = (("children", vector(ustring)),)


class GetChildren2Response(Record):
    FIELDS = (("children", vector(ustring)), ("stat", record(Stat)))


class SyncResponse(Record):
    FIELDS = (("path", ustring),)


class ErrorResponse(Record):
    FIELDS = (("err", int32),)


class GetEphemeralsResponse(Record):
    FIELDS = (("ephemerals", vector(ustring)),)


class GetAllChildrenNumberResponse(Record):
    FIELDS = (("totalNumber", int32),)


class ClientInfo(Record):
    FIELDS = (("authScheme", ustring), ("user", ustring))


class WhoAmIResponse(Record):
    FIELDS = (("clientInfo", vector(ClientInfo)),)


# Request record per opcode (the ones a multi may hold are the write ones plus check).
REQUEST_TYPES: dict[int, type[Record]] = {
    Op.CREATE: CreateRequest,
    Op.CREATE2: CreateRequest,
    Op.CREATE_CONTAINER: CreateRequest,
    Op.CREATE_TTL: CreateTTLRequest,
    Op.SASL: SaslRequest,
    Op.DELETE: DeleteRequest,
    Op.EXISTS: ExistsRequest,
    Op.GET_DATA: GetDataRequest,
    Op.SET_DATA: SetDataRequest,
    Op.GET_ACL: GetACLRequest,
    Op.SET_ACL: SetACLRequest,
    Op.GET_CHILDREN: GetChildrenRequest,
    Op.GET_CHILDREN2: GetChildrenRequest,
    Op.SYNC: SyncRequest,
    Op.CHECK: CheckVersionRequest,
    Op.GET_EPHEMERALS: GetEphemeralsRequest,
    Op.GET_ALL_CHILDREN_NUMBER: GetAllChildrenNumberRequest,
    Op.CHECK_WATCHES: CheckWatchesRequest,
    Op.REMOVE_WATCHES: CheckWatchesRequest,
    Op.ADD_WATCH: AddWatchRequest,
    Op.RECONFIG: ReconfigRequest,
}

MULTI_OPS = frozenset(
    {Op.CREATE, Op.CREATE2, Op.CREATE_CONTAINER, Op.CREATE_TTL, Op.DELETE, Op.SET_DATA, Op.CHECK}
)
MULTI_READ_OPS = frozenset({Op.GET_DATA, Op.GET_CHILDREN})


def decode_multi_read(r):
    from .jute import JuteError

    ops = []
    while True:
        h = MultiHeader.read(r)
        if h.done:
            return ops
        if h.type not in MULTI_READ_OPS:
            raise JuteError(f"opcode {h.type} in a multiRead")
        ops.append((h.type, REQUEST_TYPES[h.type].read(r)))


def encode_request(op: int, req) -> bytes:
    """The request body bytes (after the header), as a client would send them; used
    when a follower forwards a client's write to the leader."""
    if op == Op.MULTI:
        from .jute import Writer

        w = Writer()
        for sub_op, sub in req:
            MultiHeader(sub_op, False, -1).write(w)
            sub.write(w)
        MultiHeader(-1, True, -1).write(w)
        return w.getvalue()
    if req is None:
        return b""
    return req.serialize()


def _multi_create_op(op: int, req):
    """Apache's MultiOperationRecord rebuilds each create from its flags: a container
    flag makes it a createContainer, and a createTTL without a TTL flag a plain
    create."""
    if op not in (Op.CREATE, Op.CREATE2, Op.CREATE_CONTAINER, Op.CREATE_TTL):
        return op, req
    if req.flags not in range(7):
        return op, req  # refused by the prepare step, as one failing op (BadArguments)
    if req.flags in (CreateMode.PERSISTENT_WITH_TTL, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL):
        if op != Op.CREATE_TTL:
            # Apache 3.8.0 cannot build a TTL op without a TTL: the whole multi fails
            raise ZKError(Err.MARSHALLING_ERROR, "TTL flags in a create without a TTL")
        return op, req
    if req.flags == CreateMode.CONTAINER:
        op = Op.CREATE_CONTAINER
    elif op in (Op.CREATE_TTL, Op.CREATE_CONTAINER):
        op = Op.CREATE
    if isinstance(req, CreateTTLRequest):
        req = CreateRequest(req.path, req.data, req.acl, req.flags)
    return op, req


def decode_request(op: int, r):
    """Parse a request body from a jute Reader (multi included)."""
    from .jute import JuteError

    if op == Op.MULTI:
        ops = []
        while True:
            h = MultiHeader.read(r)
            if h.done:
                return ops
            if h.type not in MULTI_OPS:
                raise JuteError(f"opcode {h.type} in a multi")
            ops.append(_multi_create_op(h.type, REQUEST_TYPES[h.type].read(r)))
    if op == Op.CLOSE_SESSION:
        return None
    rtype = REQUEST_TYPES.get(op)
    if rtype is None:
        raise JuteError(f"unknown opcode {op}")
    return rtype.read(r)
