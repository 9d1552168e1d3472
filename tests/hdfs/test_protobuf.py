"""The schema-driven protobuf codec and the .proto reader that makes its schemas."""

from __future__ import annotations

import json
import struct

import pytest

from lab.services.hadoop.ipc import protogen
from lab.services.hadoop.ipc.protobuf import DecodeError, Schema, decode_varint, encode_varint
from lab.services.hdfs.datatransfer import LAST, SYNC

S = Schema.load()
PERM = "hadoop.hdfs.FsPermissionProto"
STATUS = "hadoop.hdfs.HdfsFileStatusProto"
HEADER = "hadoop.common.RpcRequestHeaderProto"


def test_known_encodings_from_the_protobuf_documentation():
    # The encoding guide's examples: 150 as a varint field 1, "testing" as string field 1.
    assert S.encode(PERM, {"perm": 150}) == b"\x08\x96\x01"
    req = "hadoop.hdfs.GetFileInfoRequestProto"
    assert S.encode(req, {"src": "testing"}) == b"\x0a\x07testing"
    assert S.decode(req, b"\x0a\x07testing")["src"] == "testing"


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**31 - 1, 2**32, 2**63, 2**64 - 1])
def test_varints_round_trip(value):
    data = encode_varint(value)
    assert decode_varint(data, 0) == (value, len(data))


def test_signed_kinds():
    # sint32 is zigzag: -3 (the connection-context call id) is 5 on the wire.
    head = S.encode(HEADER, {"callId": -3, "clientId": b""})
    assert head.startswith(b"\x18\x05")
    assert S.decode(HEADER, head)["callId"] == -3
    # int32 -1 goes out as ten bytes of two's complement and comes back as -1.
    status = {"fileType": "IS_DIR", "path": b"", "length": 0, "permission": {"perm": 0o755}}
    status |= {"owner": "o", "group": "g", "modification_time": 1, "access_time": 2}
    data = S.encode(STATUS, status | {"childrenNum": -1})
    assert S.decode(STATUS, data)["childrenNum"] == -1
    assert encode_varint(-1) == b"\xff" * 9 + b"\x01"


def test_missing_fields_get_defaults_and_presence_is_recorded():
    msg = S.decode(HEADER, S.encode(HEADER, {"callId": 7, "clientId": b"x"}))
    assert msg["retryCount"] == -1  # [default = -1] in RpcHeader.proto
    assert msg["rpcKind"] == "RPC_BUILTIN"  # an enum's first value
    assert msg["traceInfo"] is None
    assert msg.present == {"callId", "clientId"}
    listing = S.decode("hadoop.hdfs.DirectoryListingProto", b"\x10\x00")  # remainingEntries 0
    assert listing["partialListing"] == []


def test_a_message_without_its_required_fields_is_refused():
    # As protobuf-java's parseFrom refuses it (Hadoop's servers never see such a request).
    with pytest.raises(DecodeError, match="Message missing required fields: remainingEntries"):
        S.decode("hadoop.hdfs.DirectoryListingProto", b"")
    with pytest.raises(DecodeError, match="missing required fields: callId, clientId"):
        S.decode(HEADER, b"")


def test_nested_and_repeated_messages_round_trip():
    status = {
        "fileType": "IS_FILE",
        "path": b"f",
        "length": 5,
        "permission": {"perm": 0o644},
        "owner": "alice",
        "group": "users",
        "modification_time": 1_700_000_000_000,
        "access_time": 1_700_000_000_001,
        "block_replication": 3,
        "blocksize": 1 << 27,
    }
    listing = {"partialListing": [status, status | {"path": b"g"}], "remainingEntries": 4}
    back = S.decode(
        "hadoop.hdfs.DirectoryListingProto", S.encode("hadoop.hdfs.DirectoryListingProto", listing)
    )
    assert [s["path"] for s in back["partialListing"]] == [b"f", b"g"]
    assert back["partialListing"][0]["permission"]["perm"] == 0o644
    assert back["remainingEntries"] == 4


def test_packed_and_unpacked_repeated_scalars_both_decode():
    t = "hadoop.hdfs.LocatedBlockProto"
    field = next(f for f in S.messages[t] if f.name == "isCached")
    assert field.packed
    packed = encode_varint(field.n << 3 | 2) + b"\x03\x01\x00\x01"
    unpacked = b"".join(encode_varint(field.n << 3) + bytes([v]) for v in (1, 0, 1))
    for data in (packed, unpacked):  # a fragment: parsed partially, as parsePartialFrom does
        assert S.decode(t, data, partial=True)["isCached"] == [True, False, True]


def test_unknown_fields_are_skipped():
    extra = (
        encode_varint(99 << 3 | 0) + encode_varint(12345)  # varint
        + encode_varint(98 << 3 | 1) + b"\x00" * 8  # 64-bit
        + encode_varint(97 << 3 | 2) + b"\x03abc"  # length-delimited
        + encode_varint(96 << 3 | 5) + b"\x00" * 4  # 32-bit
    )  # fmt: skip
    assert S.decode(PERM, extra + b"\x08\x2a")["perm"] == 42


@pytest.mark.parametrize(
    "data",
    [
        b"\x08",  # a tag and no value
        b"\x08" + b"\xff" * 11,  # a varint longer than ten bytes
        b"\x0a\x05ab",  # a length running past the end
        b"\x0a" + encode_varint(2**40),  # a huge length
        b"\x0b",  # wire type 3 (start group)
        b"\x00\x00",  # field number 0
        b"\x09\x00\x00",  # a truncated fixed64
        b"\x0d\x01",  # perm sent as fixed32: wrong wire type
    ],
)
def test_hostile_bytes_are_a_decode_error(data):
    t = (
        "hadoop.hdfs.FsPermissionProto"
        if data[:1] == b"\x0d"
        else "hadoop.hdfs.GetFileInfoRequestProto"
    )
    with pytest.raises(DecodeError):
        S.decode(t, data)


def test_deep_nesting_is_refused_not_recursed():
    # No Hadoop message contains itself, so a one-field schema that does.
    doc = {"messages": {"N": [{"n": 1, "name": "n", "label": "optional", "type": "N"}]}}
    schema = Schema([doc | {"enums": {}, "services": {}}])
    data = b""
    for _ in range(200):
        data = b"\x0a" + encode_varint(len(data)) + data
    with pytest.raises(DecodeError):
        schema.decode("N", data)


def test_required_fields_are_enforced_on_encode():
    with pytest.raises(ValueError, match="perm is required"):
        S.encode(PERM, {})


def test_the_proto_reader(tmp_path):
    (tmp_path / "a.proto").write_text(
        """
        syntax = "proto2";
        package t.pkg;
        option java_package = "x";
        // a comment
        enum Color { RED = 2; BLUE = 1; }
        message Outer {
          message Inner { optional string s = 1 [default = "hi"]; }
          optional Inner inner = 1;
          repeated uint32 nums = 2 [packed=true];
          optional Color color = 3;
          map<string, int64> counts = 4;
          oneof choice { int32 a = 5; string b = 6; }
          /* block
             comment */
          extensions 1000 to max;
        }
        service Svc { rpc call(Outer) returns (Outer.Inner); }
        """
    )
    old = protogen.FILES
    protogen.FILES = ("a.proto",)
    try:
        [path] = protogen.generate([tmp_path], tmp_path / "out")
    finally:
        protogen.FILES = old
    doc = json.loads(path.read_text())
    fields = {f["name"]: f for f in doc["messages"]["t.pkg.Outer"]}
    assert fields["inner"]["type"] == "t.pkg.Outer.Inner"
    assert fields["nums"]["packed"] is True
    assert fields["color"]["default"] == "RED"  # the first value declared, not the lowest
    assert fields["counts"]["type"] == "t.pkg.Outer.CountsEntry"
    assert {fields["a"]["n"], fields["b"]["n"]} == {5, 6}
    assert doc["messages"]["t.pkg.Outer.Inner"][0]["default"] == "hi"
    assert doc["services"]["t.pkg.Svc"]["call"] == ["t.pkg.Outer", "t.pkg.Outer.Inner"]
    schema = Schema.load(tmp_path / "out")
    value = {"inner": {"s": "x"}, "nums": [1, 300], "counts": [{"key": "k", "value": -5}]}
    back = schema.decode("t.pkg.Outer", schema.encode("t.pkg.Outer", value))
    assert back["nums"] == [1, 300] and back["counts"][0]["value"] == -5
    assert back["color"] == "RED" and back["inner"]["s"] == "x"


def test_the_shipped_schemas_cover_the_client_protocol():
    methods = S.services["hadoop.hdfs.ClientNamenodeProtocol"]
    for name in ("getFileInfo", "getListing", "mkdirs", "create", "addBlock", "complete"):
        req, resp = methods[name]
        assert req in S.messages and resp in S.messages


@pytest.mark.parametrize(
    "header",
    [
        {"offsetInBlock": 0, "seqno": 0, "lastPacketInBlock": False, "dataLen": 65536},
        {"offsetInBlock": 2**40 + 3, "seqno": 12345, "lastPacketInBlock": True, "dataLen": 0},
        {"offsetInBlock": 512, "seqno": -1, "lastPacketInBlock": False, "dataLen": 0},
        {
            "offsetInBlock": 7,
            "seqno": 1,
            "lastPacketInBlock": False,
            "dataLen": 5,
            "syncBlock": True,
        },
    ],
)
def test_packet_headers_read_as_the_schema_reads_them(header):
    # The DataNode reads the fixed-width PacketHeaderProto clients send without the
    # generic decoder; whatever the layout, it must read what the schema reads.
    import asyncio

    from lab.services.hdfs.datatransfer_hadoop import _HadoopPackets

    packets = _HadoopPackets(None, None, S)
    canonical = S.encode("hadoop.hdfs.PacketHeaderProto", header)
    # The same fields in another order (legal protobuf), which takes the general path.
    fields = [canonical[0:9], canonical[9:18], canonical[18:20], canonical[20:25], canonical[25:]]
    shuffled = b"".join([fields[2], fields[0], fields[3], fields[1], fields[4]])
    want = (
        header["offsetInBlock"],
        header["seqno"],
        header["lastPacketInBlock"],
        header["dataLen"],
        header.get("syncBlock", False),  # a writer's hsync: the DataNode syncs before its ack
    )
    for data in (canonical, shuffled):
        assert packets._header(data) == want

    async def one_packet():
        # Over a real connection: the packet reader takes it over from its StreamReader.
        import socket

        ours, theirs = socket.socketpair()
        with theirs:
            reader, writer = await asyncio.open_connection(sock=ours)
            crcs = b"\x00" * 4 * (1 if header["dataLen"] else 0)
            body = crcs + b"x" * header["dataLen"]
            theirs.sendall(struct.pack(">IH", 4 + len(body), len(canonical)) + canonical + body)
            try:
                return await _HadoopPackets(reader, writer.transport, S).recv_packet(512, 10)
            finally:
                writer.close()

    if header["dataLen"] <= 512 and header["offsetInBlock"] % 512 + header["dataLen"] <= 512:
        seqno, offset, flags, _, crcs, data = asyncio.run(one_packet())
        assert (seqno, offset, bool(flags & LAST), bool(flags & SYNC), len(data)) == (
            header["seqno"],
            header["offsetInBlock"],
            header["lastPacketInBlock"],
            header.get("syncBlock", False),
            header["dataLen"],
        )
