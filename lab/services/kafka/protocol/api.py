"""The APIs this broker serves, their version ranges (from the schema files),
and framing: request header v1/v2 in, response header v0/v1 out."""

from __future__ import annotations

from dataclasses import dataclass

from .primitives import DecodeError, Reader, Writer
from .schema import MessageSchema, load


class ApiKey:
    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    DESCRIBE_GROUPS = 15
    LIST_GROUPS = 16
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    DELETE_TOPICS = 20
    DELETE_RECORDS = 21
    INIT_PRODUCER_ID = 22
    OFFSET_FOR_LEADER_EPOCH = 23
    ADD_PARTITIONS_TO_TXN = 24
    ADD_OFFSETS_TO_TXN = 25
    END_TXN = 26
    WRITE_TXN_MARKERS = 27
    TXN_OFFSET_COMMIT = 28
    DESCRIBE_ACLS = 29
    CREATE_ACLS = 30
    DELETE_ACLS = 31
    DESCRIBE_CONFIGS = 32
    ALTER_CONFIGS = 33
    DESCRIBE_LOG_DIRS = 35
    CREATE_PARTITIONS = 37
    DELETE_GROUPS = 42
    ELECT_LEADERS = 43
    INCREMENTAL_ALTER_CONFIGS = 44
    LIST_PARTITION_REASSIGNMENTS = 46
    OFFSET_DELETE = 47
    DESCRIBE_USER_SCRAM_CREDENTIALS = 50
    DESCRIBE_CLUSTER = 60
    DESCRIBE_PRODUCERS = 61
    DESCRIBE_TRANSACTIONS = 65
    LIST_TRANSACTIONS = 66


_NAMES = {
    0: "Produce",
    1: "Fetch",
    2: "ListOffsets",
    3: "Metadata",
    8: "OffsetCommit",
    9: "OffsetFetch",
    10: "FindCoordinator",
    11: "JoinGroup",
    12: "Heartbeat",
    13: "LeaveGroup",
    14: "SyncGroup",
    15: "DescribeGroups",
    16: "ListGroups",
    18: "ApiVersions",
    19: "CreateTopics",
    20: "DeleteTopics",
    21: "DeleteRecords",
    22: "InitProducerId",
    23: "OffsetForLeaderEpoch",
    24: "AddPartitionsToTxn",
    25: "AddOffsetsToTxn",
    26: "EndTxn",
    27: "WriteTxnMarkers",
    28: "TxnOffsetCommit",
    29: "DescribeAcls",
    30: "CreateAcls",
    31: "DeleteAcls",
    32: "DescribeConfigs",
    33: "AlterConfigs",
    35: "DescribeLogDirs",
    37: "CreatePartitions",
    42: "DeleteGroups",
    43: "ElectLeaders",
    44: "IncrementalAlterConfigs",
    46: "ListPartitionReassignments",
    47: "OffsetDelete",
    50: "DescribeUserScramCredentials",
    60: "DescribeCluster",
    61: "DescribeProducers",
    65: "DescribeTransactions",
    66: "ListTransactions",
}


@dataclass
class Api:
    key: int
    name: str
    request: MessageSchema
    response: MessageSchema

    @property
    def min_version(self) -> int:
        return self.request.valid.lo

    @property
    def max_version(self) -> int:
        return self.request.valid.hi

    def supports(self, version: int) -> bool:
        return version in self.request.valid

    def request_header_version(self, version: int) -> int:
        return 2 if version in self.request.flexible else 1

    def response_header_version(self, version: int) -> int:
        # ApiVersions answers with header v0 always, so a client that sent a
        # version we do not know can still read the error (KIP-511).
        if self.key == ApiKey.API_VERSIONS:
            return 0
        return 1 if version in self.response.flexible else 0


APIS: dict[int, Api] = {
    k: Api(k, n, load(f"{n}Request"), load(f"{n}Response")) for k, n in _NAMES.items()
}
REQUEST_HEADER = load("RequestHeader")
RESPONSE_HEADER = load("ResponseHeader")


@dataclass
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


def read_request_header(r: Reader) -> tuple[RequestHeader, Api | None]:
    """Read the header; the header version depends on the API and its version,
    so peek at key and version first. Unknown APIs get a v1 header read (the
    common prefix) and None for the Api."""
    if r.remaining() < 8:
        raise DecodeError("request shorter than a header")
    start = r.pos
    key = r.int16()
    version = r.int16()
    r.pos = start
    api = APIS.get(key)
    hv = api.request_header_version(version) if api and api.supports(version) else 1
    h = REQUEST_HEADER.decode(r, hv)
    return RequestHeader(key, version, h["correlation_id"], h["client_id"]), api


def encode_response(api: Api, version: int, correlation_id: int, body: dict) -> bytes:
    """A whole frame: size, response header, body."""
    w = Writer()
    w.int32(0)  # size placeholder
    RESPONSE_HEADER.encode_into(
        w, {"correlation_id": correlation_id}, api.response_header_version(version)
    )
    api.response.encode_into(w, body, version)
    data = w.getvalue()
    return len(data[4:]).to_bytes(4, "big", signed=True) + data[4:]


def encode_request(
    api: Api, version: int, correlation_id: int, client_id: str, body: dict
) -> bytes:
    """Used by follower replicas and the admin commands (our own client side)."""
    w = Writer()
    REQUEST_HEADER.encode_into(
        w,
        {
            "request_api_key": api.key,
            "request_api_version": version,
            "correlation_id": correlation_id,
            "client_id": client_id,
        },
        api.request_header_version(version),
    )
    api.request.encode_into(w, body, version)
    data = w.getvalue()
    return len(data).to_bytes(4, "big") + data


def decode_response(api: Api, version: int, payload: bytes) -> tuple[int, dict]:
    r = Reader(payload)
    h = RESPONSE_HEADER.decode(r, api.response_header_version(version))
    return h["correlation_id"], api.response.decode(r, version)
