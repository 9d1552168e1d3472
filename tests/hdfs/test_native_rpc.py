"""Hadoop IPC on the NameNode's fs.defaultFS address, seen by the unmodified hdfs-native
client (Rust, PyPI) and, for the calls its Python API does not expose and for hostile
frames, by a plain socket speaking the protocol byte by byte."""

from __future__ import annotations

import gc
import os
import socket
import struct
import weakref

import pytest
import requests
from hdfs import HdfsError, InsecureClient

from lab.services.hdfs import datatransfer_hadoop
from lab.services.hdfs.minicluster import MiniCluster

from .rawipc import (
    CLIENT_PROTOCOL,
    RawIpc,
    S,
    datanode_ipc,
    located_blocks,
    native_file_checksum,
)

hdfs_native = pytest.importorskip("hdfs_native")

BLOCK = 64 * 1024


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # dfs.ls.limit 3: every listing of more than three entries takes several pages.
    with MiniCluster(
        tmp_path_factory.mktemp("dfs"),
        racks={"/rack1": 2, "/rack2": 2},
        settings={"dfs.blocksize": "64k", "dfs.ls.limit": "3"},
    ).running() as c:
        yield c


@pytest.fixture(scope="module")
def url(cluster):
    return f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}"


@pytest.fixture(scope="module")
def native(url):
    return hdfs_native.Client(url)


def as_user(url, monkeypatch, user):
    # hdfs-native takes a simple-auth user from HADOOP_USER_NAME when it connects.
    monkeypatch.setenv("HADOOP_USER_NAME", user)
    return hdfs_native.Client(url)


# ---------------------------------------------------------------- hdfs-native
def test_mkdirs_status_and_listing(native):
    native.mkdirs("/n/a/b", permission=0o750, create_parent=True)
    st = native.get_file_info("/n/a/b")
    assert st.isdir and st.permission == 0o750 and st.owner == "root"
    assert st.group == "supergroup"
    assert [s.path for s in native.list_status("/n")] == ["/n/a"]
    with pytest.raises(FileNotFoundError):
        native.get_file_info("/n/missing")
    with pytest.raises(FileNotFoundError):
        list(native.list_status("/n/missing"))


def test_listing_takes_several_pages(native):
    names = [f"d{i:02d}" for i in range(10)]
    for n in names:
        native.mkdirs(f"/pages/{n}", create_parent=True)
    # dfs.ls.limit is 3: the client follows remainingEntries/startAfter to the end.
    assert [s.path for s in native.list_status("/pages")] == [f"/pages/{n}" for n in names]
    rec = {s.path for s in native.list_status("/pages", recursive=True)}
    assert len(rec) == 10


def test_mkdirs_without_parent(native):
    with pytest.raises(FileNotFoundError, match="Parent directory doesn't exist"):
        native.mkdirs("/nopar/x/y", create_parent=False)


def test_rename_and_delete(native):
    native.mkdirs("/r/src/inner", create_parent=True)
    native.rename("/r/src", "/r/dst")
    assert native.get_file_info("/r/dst/inner").isdir
    with pytest.raises(FileNotFoundError):
        native.get_file_info("/r/src")
    native.mkdirs("/r/other", create_parent=True)
    # org.apache.hadoop.fs.FileAlreadyExistsException, which hdfs-native maps to Python's own.
    with pytest.raises(FileExistsError, match="rename destination /r/other already exists"):
        native.rename("/r/dst", "/r/other")  # rename2 without OVERWRITE
    with pytest.raises(FileNotFoundError, match="rename source /r/none is not found"):
        native.rename("/r/none", "/r/x")
    with pytest.raises(RuntimeError, match="org.apache.hadoop.fs.PathIsNotEmptyDirectoryException"):
        native.delete("/r/dst")
    assert native.delete("/r/dst", recursive=True) is True
    assert native.delete("/r/dst", recursive=True) is False


def test_permissions_owner_and_times(cluster, native, url, monkeypatch):
    native.mkdirs("/p/locked", permission=0o755, create_parent=True)
    native.set_permission("/p/locked", 0o700)
    assert native.get_file_info("/p/locked").permission == 0o700
    native.set_owner("/p", owner="acc", group="staff")
    st = native.get_file_info("/p")
    assert (st.owner, st.group) == ("acc", "staff")
    native.set_times("/p/locked", 1_600_000_000_000, 1_600_000_000_001)
    assert native.get_file_info("/p/locked").modification_time == 1_600_000_000_000
    acc = as_user(url, monkeypatch, "acc")
    with pytest.raises(RuntimeError) as err:
        acc.mkdirs("/p/locked/inside")
    assert "org.apache.hadoop.security.AccessControlException" in str(err.value)
    # Hadoop's text, FsAction name and all (the same on the WebHDFS door): the walk
    # into /p/locked (drwx------) is refused first.
    assert "Permission denied: user=acc, access=EXECUTE, inode=" in str(err.value)
    assert "/p/locked" in str(err.value) and ":root:supergroup:drwx------" in str(err.value)
    with pytest.raises(RuntimeError, match="AccessControlException"):
        acc.set_permission("/", 0o777)
    acc.mkdirs("/p/mine")  # acc owns /p
    with pytest.raises(HdfsError, match="Permission denied: user=acc, access=EXECUTE, inode="):
        InsecureClient(cluster.url, user="acc").makedirs("/p/locked/inside")
    assert native.get_file_info("/p/mine").owner == "acc"


def test_permission_denied_is_hadoops_text_on_both_doors(cluster, url, monkeypatch):
    want = 'Permission denied: user=acc, access=WRITE, inode="/":root:supergroup:drwxr-xr-x'
    acc = as_user(url, monkeypatch, "acc")
    with pytest.raises(RuntimeError, match="org.apache.hadoop.security.AccessControlException"):
        acc.mkdirs("/by-acc")
    # The message as it is on the wire (hdfs-native quotes it when it raises).
    raw = RawIpc(cluster, user="acc")
    try:
        request = {"src": "/by-acc", "masked": {"perm": 0o755}, "createParent": True}
        header = raw.call("mkdirs", request)
    finally:
        raw.close()
    assert header["exceptionClassName"] == "org.apache.hadoop.security.AccessControlException"
    assert header["errorMsg"] == want
    with pytest.raises(HdfsError) as err:
        InsecureClient(cluster.url, user="acc").makedirs("/by-acc")
    assert err.value.exception == "AccessControlException"
    assert str(err.value) == want


def test_a_user_name_no_user_database_holds(cluster):
    # Found by the fuzz campaign: a NUL in the connection context's user threw in the
    # group lookup. Such a user has no groups, like any unknown one.
    raw = RawIpc(cluster, user="a\x00b")
    try:
        assert raw.call("getFileInfo", {"src": "/"})["fs"]["fileType"] == "IS_DIR"
        request = {"src": "/nul-user", "masked": {"perm": 0o755}, "createParent": True}
        err = raw.call("mkdirs", request)
        assert err["exceptionClassName"] == "org.apache.hadoop.security.AccessControlException"
    finally:
        raw.close()


def test_content_summary(native):
    native.mkdirs("/cs/a/b", create_parent=True)
    s = native.get_content_summary("/cs")
    assert (s.directory_count, s.file_count, s.length) == (3, 0, 0)


def test_file_written_over_webhdfs_is_seen_over_rpc(cluster, native):
    data = os.urandom(2 * BLOCK + 10)
    InsecureClient(cluster.url, user="root").write("/both/f", data, overwrite=True, replication=3)
    st = native.get_file_info("/both/f")
    assert not st.isdir and st.length == len(data) and st.replication == 3
    assert st.blocksize == BLOCK
    assert [s.path for s in native.list_status("/both")] == ["/both/f"]
    # Block locations, as a client reading the file would ask for them.
    raw = RawIpc(cluster)
    try:
        resp = raw.call("getBlockLocations", {"src": "/both/f", "offset": 0, "length": len(data)})
        located = resp["locations"]
        assert located["fileLength"] == len(data) and not located["underConstruction"]
        assert [b["offset"] for b in located["blocks"]] == [0, BLOCK, 2 * BLOCK]
        assert [b["b"]["numBytes"] for b in located["blocks"]] == [BLOCK, BLOCK, 10]
        for b in located["blocks"]:
            ips = {d["id"]["ipAddr"] for d in b["locs"]}
            assert len(ips) == 3 and ips <= set(cluster.dn_racks)
            assert {d["location"] for d in b["locs"]} == {"/rack1", "/rack2"}
            assert b["b"]["poolId"].startswith("BP-")
        # The same listing with locations attached (getListing needLocation).
        listing = raw.call("getListing", {"src": "/both", "startAfter": b"", "needLocation": True})
        [entry] = listing["dirList"]["partialListing"]
        assert entry["path"] == b"f" and len(entry["locations"]["blocks"]) == 3
        assert native.set_replication("/both/f", 2) is True
        assert native.get_file_info("/both/f").replication == 2
        missing = raw.call("getBlockLocations", {"src": "/both/none", "offset": 0, "length": 1})
        assert missing["exceptionClassName"] == "java.io.FileNotFoundException"
    finally:
        raw.close()


def test_file_written_over_webhdfs_is_read_by_the_native_client(cluster, native):
    # hdfs-native reads through Hadoop's DataTransferProtocol (OP_READ_BLOCK, packets with
    # CRC32C chunk checksums it verifies itself) from the DataNodes the NameNode names.
    data = os.urandom(3 * BLOCK + 777)
    InsecureClient(cluster.url, user="root").write("/both/read", data, overwrite=True)
    with native.read("/both/read") as r:
        assert r.read() == data
    with native.read("/both/read") as r:
        assert r.read_range(BLOCK - 5, 20) == data[BLOCK - 5 : BLOCK + 15]
        assert r.read_range(3 * BLOCK + 1, 10) == data[3 * BLOCK + 1 : 3 * BLOCK + 11]
    # The same bytes through the other door.
    with InsecureClient(cluster.url, user="root").read("/both/read") as r:
        assert r.read() == data


@pytest.mark.parametrize("replication", [1, 3])
def test_native_write_through_the_pipeline(cluster, native, replication):
    # create, addBlock per block, OP_WRITE_BLOCK down a pipeline of `replication`
    # DataNodes with PacketHeaderProto packets and PipelineAckProto acks, complete.
    data = os.urandom(3 * BLOCK + 1000)
    path = f"/written/r{replication}"
    with native.create(path, hdfs_native.WriteOptions(replication=replication)) as f:
        f.write(data[:1000])
        f.write(data[1000:])
    st = native.get_file_info(path)
    assert st.length == len(data) and st.replication == replication
    with native.read(path) as r:
        assert r.read() == data
    # Through the other door: the same bytes, every block on `replication` DataNodes.
    with InsecureClient(cluster.url, user="root").read(path) as r:
        assert r.read() == data
    report = cluster.fsck(path)
    assert report["status"] == "HEALTHY" and report["totals"]["blocks"] == 4
    assert all(b["live"] == replication for b in report["files"][0]["blocks"])
    if replication == 3:  # rack-aware placement: both racks hold every block
        for b in report["files"][0]["blocks"]:
            assert {loc["rack"] for loc in b["locations"]} == {"/rack1", "/rack2"}


@pytest.mark.parametrize("door", ["webhdfs", "native"])
def test_one_file_through_both_doors(cluster, native, door):
    # Written through one door, seen through the other: the same bytes, status, file
    # checksum (WebHDFS GETFILECHECKSUM against OP_BLOCK_CHECKSUM per block over Hadoop's
    # data transfer) and block locations.
    data = os.urandom(2 * BLOCK + 4321)
    path = f"/doors/{door}"
    web = InsecureClient(cluster.url, user="root")
    if door == "webhdfs":
        web.write(path, data, overwrite=True, replication=3)
    else:
        with native.create(path, hdfs_native.WriteOptions(replication=3)) as f:
            f.write(data)
    with native.read(path) as r:
        assert r.read() == data
    with web.read(path) as r:
        assert r.read() == data
    st, ws = native.get_file_info(path), web.status(path)
    assert (
        st.length,
        st.owner,
        st.group,
        st.permission,
        st.replication,
        st.blocksize,
        st.modification_time,
        st.access_time,
    ) == (
        ws["length"],
        ws["owner"],
        ws["group"],
        int(ws["permission"], 8),
        ws["replication"],
        ws["blockSize"],
        ws["modificationTime"],
        ws["accessTime"],
    )
    located = located_blocks(cluster, path)
    assert native_file_checksum(located) == web.checksum(path)
    web_blocks = requests.get(
        f"{cluster.url}/webhdfs/v1{path}",
        params={"op": "GETFILEBLOCKLOCATIONS", "user.name": "root"},
        timeout=10,
    ).json()["BlockLocations"]["BlockLocation"]
    native_blocks = [
        (
            b["offset"],
            b["b"]["numBytes"],
            sorted(f"{d['id']['ipAddr']}:{d['id']['xferPort']}" for d in b["locs"]),
        )
        for b in located["blocks"]
    ]
    assert native_blocks == [(b["offset"], b["length"], sorted(b["names"])) for b in web_blocks]
    assert [n for _, n, locs in native_blocks if len(locs) == 3] == [BLOCK, BLOCK, 4321]


def test_native_append(cluster, native):
    # append reopens the partial last block under a new generation stamp; the client
    # first fills the open chunk, then writes whole chunks and more blocks.
    first, more = os.urandom(BLOCK + 1000), os.urandom(BLOCK + 3333)
    with native.create("/app/f", hdfs_native.WriteOptions(replication=3)) as f:
        f.write(first)
    with native.append("/app/f") as f:
        f.write(more)
    with native.read("/app/f") as r:
        assert r.read() == first + more
    # A file written over WebHDFS, appended to natively, read back over WebHDFS.
    web = InsecureClient(cluster.url, user="root")
    web.write("/app/web", first[:777], overwrite=True)
    with native.append("/app/web") as f:
        f.write(b"tail")
    with web.read("/app/web") as r:
        assert r.read() == first[:777] + b"tail"
    report = cluster.fsck("/app/f")
    assert report["totals"]["blocks"] == 3
    assert all(b["live"] == 3 for b in report["files"][0]["blocks"])
    with pytest.raises(FileNotFoundError):
        native.append("/app/none")


def test_native_create_refusals(native, url, monkeypatch):
    native.mkdirs("/cr", create_parent=True)
    with native.create("/cr/f") as f:
        f.write(b"x")
    with pytest.raises(FileExistsError):
        native.create("/cr/f")  # no overwrite
    with native.create("/cr/f", hdfs_native.WriteOptions(overwrite=True)) as f:
        f.write(b"yy")
    assert native.get_file_info("/cr/f").length == 2
    native.set_permission("/cr", 0o755)
    acc = as_user(url, monkeypatch, "acc")
    with pytest.raises(RuntimeError, match="org.apache.hadoop.security.AccessControlException"):
        acc.create("/cr/g")


def test_datanode_refuses_hadoop_reads_it_cannot_serve(cluster):
    dn_ip = sorted(cluster.dn_racks)[0]
    raw = RawIpc(cluster)
    try:
        report = raw.call("getDatanodeReport", {"type": "LIVE"})["di"]
    finally:
        raw.close()
    port = next(d["id"]["xferPort"] for d in report if d["id"]["ipAddr"] == dn_ip)
    block = {"poolId": "BP-1", "blockId": 999_999_999, "generationStamp": 1}
    request = datatransfer_hadoop.request_bytes(
        S,
        datatransfer_hadoop.READ_BLOCK,
        "OpReadBlockProto",
        {"header": {"baseHeader": {"block": block}, "clientName": "t"}, "offset": 0, "len": 1},
    )
    with socket.create_connection((dn_ip, port), timeout=10) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    resp, _ = S.decode_delimited("hadoop.hdfs.BlockOpResponseProto", reply)
    assert resp["status"] == "ERROR"
    assert resp["message"] == "Replica not found for BP-1:blk_999999999_1"


def test_a_read_without_checksums_gets_the_data_alone(cluster, native):
    """OpReadBlockProto.sendChecksums false: BlockSender answers checksum type NULL in
    512-byte chunks and sends packets of data without CRCs."""
    from lab.services.hdfs import blockreader

    data = os.urandom(3000)
    with native.create("/nocrc/f", hdfs_native.WriteOptions(replication=1)) as f:
        f.write(data)
    [block] = located_blocks(cluster, "/nocrc/f")["blocks"]
    loc = block["locs"][0]["id"]
    answers: list[dict] = []
    got = b"".join(
        blockreader.read_block(S, (loc["ipAddr"], loc["xferPort"]), block["b"], 700, 1500,
                               "t", 10, on_response=answers.append, send_checksums=False)
    )  # fmt: skip
    assert got == data[700:2200]
    info = answers[0]["readOpChecksumInfo"]
    assert info["checksum"] == {"type": "CHECKSUM_NULL", "bytesPerChecksum": 512}
    assert info["chunkOffset"] == 512
    # the same read with checksums still gets CRC32C, and the DataNode kept serving
    answers.clear()
    again = b"".join(
        blockreader.read_block(S, (loc["ipAddr"], loc["xferPort"]), block["b"], 700, 1500,
                               "t", 10, on_response=answers.append)
    )  # fmt: skip
    assert (
        again == got and answers[0]["readOpChecksumInfo"]["checksum"]["type"] == "CHECKSUM_CRC32C"
    )


def hadoop_xfer(address: tuple[str, int], *pieces: bytes) -> bytes:
    """Send Hadoop data-transfer bytes to a DataNode; -> all it answers until it closes."""
    with socket.create_connection(address, timeout=10) as sock:
        for piece in pieces:
            sock.sendall(piece)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def test_datanode_answers_bad_transfers_as_hadoop_does(cluster, native):
    # Found by the fuzz campaign; each was a traceback in the DataNode's log.
    data = os.urandom(1000)
    with native.create("/xfer/f", hdfs_native.WriteOptions(replication=1)) as f:
        f.write(data)
    [block] = located_blocks(cluster, "/xfer/f")["blocks"]
    loc = block["locs"][0]["id"]
    address = (loc["ipAddr"], loc["xferPort"])
    dn = next(d for d in cluster.datanodes if d.ip == loc["ipAddr"])
    header = {"baseHeader": {"block": block["b"]}, "clientName": "t"}
    # OP_TRANSFER_BLOCK with no targets: nothing to copy, SUCCESS (DataXceiver.transferBlock).
    request = datatransfer_hadoop.request_bytes(
        S, datatransfer_hadoop.TRANSFER_BLOCK, "OpTransferBlockProto", {"header": header}
    )
    resp, _ = S.decode_delimited("hadoop.hdfs.BlockOpResponseProto", hadoop_xfer(address, request))
    assert resp["status"] == "SUCCESS"
    # A request missing required fields: refused as protobuf-java refuses to parse it.
    request = datatransfer_hadoop.request_bytes(
        S,
        datatransfer_hadoop.READ_BLOCK,
        "OpReadBlockProto",
        {"header": header, "offset": 0, "len": 1},
    )
    body = S.encode("hadoop.hdfs.OpReadBlockProto", {"header": header, "offset": 0, "len": 1})
    partial = body[: len(body) - 2]  # without its last field, len
    request = request[:3] + bytes([len(partial)]) + partial
    resp, _ = S.decode_delimited("hadoop.hdfs.BlockOpResponseProto", hadoop_xfer(address, request))
    assert resp["status"] == "ERROR" and "missing required fields: len" in resp["message"]
    # A packet whose payload length lies after an OP_WRITE_BLOCK: the pipeline ends.
    new_block = {
        "poolId": block["b"]["poolId"],
        "blockId": 2**40 + 7,
        "generationStamp": 1,
        "numBytes": 0,
    }
    write = {
        "header": {"baseHeader": {"block": new_block}, "clientName": "t"},
        "stage": "PIPELINE_SETUP_CREATE",
        "pipelineSize": 1,
        "minBytesRcvd": 0,
        "maxBytesRcvd": 0,
        "latestGenerationStamp": 1,
        "requestedChecksum": {"type": "CHECKSUM_CRC32C", "bytesPerChecksum": 512},
    }
    request = datatransfer_hadoop.request_bytes(
        S, datatransfer_hadoop.WRITE_BLOCK, "OpWriteBlockProto", write
    )
    reply = hadoop_xfer(address, request, struct.pack(">IH", 2**32 - 1, 4) + b"\x00" * 4)
    resp, _ = S.decode_delimited("hadoop.hdfs.BlockOpResponseProto", reply)
    assert resp["status"] == "SUCCESS"  # the setup; then the connection closes
    with native.read("/xfer/f") as r:  # and the DataNode keeps serving
        assert r.read() == data
    assert "Traceback" not in dn.log_path.read_text(errors="replace")


# ---------------------------------------------------------------- the protocol by hand
def test_cluster_wide_calls(cluster):
    raw = RawIpc(cluster)
    try:
        defaults = raw.call("getServerDefaults", {})["serverDefaults"]
        assert defaults["blockSize"] == BLOCK and defaults["bytesPerChecksum"] == 512
        report = raw.call("getDatanodeReport", {"type": "LIVE"})["di"]
        assert {d["id"]["ipAddr"] for d in report} == set(cluster.dn_racks)
        assert all(d["capacity"] > 0 for d in report)
        stats = raw.call("getFsStats", {})
        assert stats["capacity"] == sum(d["capacity"] for d in report)
        assert raw.call("renewLease", {"clientName": "DFSClient_x"}) == {}
    finally:
        raw.close()


def test_calls_on_one_connection_keep_their_ids(cluster):
    raw = RawIpc(cluster)
    try:
        for _ in range(5):
            assert raw.call("getFileInfo", {"src": "/"})["fs"]["fileType"] == "IS_DIR"
        # A ping (call id -4) gets no answer and changes nothing.
        raw.send_frame(raw.header(-4))
        assert raw.call("getFileInfo", {"src": "/"})["fs"]["fileType"] == "IS_DIR"
    finally:
        raw.close()


def test_unknown_method_and_protocol_are_errors_not_hangs(cluster):
    raw = RawIpc(cluster)
    try:
        err = raw.call("noSuchCall", {})
        assert err["status"] == "ERROR"
        assert err["exceptionClassName"] == "org.apache.hadoop.ipc.RpcNoSuchMethodException"
        err = raw.call("getFileInfo", {"src": "/"}, protocol="org.example.Nope")
        assert err["exceptionClassName"] == "org.apache.hadoop.ipc.RpcNoSuchProtocolException"
        # The connection is still good after a non-fatal error.
        assert raw.call("getFileInfo", {"src": "/"})["fs"]["fileType"] == "IS_DIR"
    finally:
        raw.close()


def test_wrong_version_is_refused(cluster):
    raw = RawIpc(cluster, preamble=b"hrpc\x07\x00\x00")
    try:
        header, _ = raw.read_frame()
        assert header["status"] == "FATAL"
        assert header["exceptionClassName"] == "org.apache.hadoop.ipc.RPC$VersionMismatch"
    finally:
        raw.close()


def test_sasl_negotiation_falls_back_to_simple(cluster):
    sock = socket.create_connection((cluster.nn_ip, cluster.nn_rpc), timeout=10)
    raw = RawIpc.__new__(RawIpc)
    raw.sock, raw.call_id = sock, 0
    try:
        sock.sendall(b"hrpc\x09\x00\xdf")
        raw.send_frame(
            raw.header(-33)
            + S.encode_delimited("hadoop.common.RpcSaslProto", {"state": "NEGOTIATE"})
        )
        header, body = raw.read_frame()
        assert S.decode_delimited("hadoop.common.RpcSaslProto", body)[0]["state"] == "SUCCESS"
        context = {"userInfo": {"effectiveUser": "root"}, "protocol": CLIENT_PROTOCOL}
        raw.send_frame(
            raw.header(-3) + S.encode_delimited("hadoop.common.IpcConnectionContextProto", context)
        )
        assert raw.call("getFileInfo", {"src": "/"})["fs"]["fileType"] == "IS_DIR"
    finally:
        sock.close()


GARBAGE = [
    b"hrpc",  # a preamble cut short
    b"hrpc\x09\x00\x00" + b"\x00\x00",  # a length cut short
    b"hrpc\x09\x00\x00" + struct.pack(">i", 1000) + b"\x01\x02",  # a frame cut short
    b"hrpc\x09\x00\x00" + struct.pack(">i", 0x7FFFFFFF),  # beyond ipc.maximum.data.length
    b"hrpc\x09\x00\x00" + struct.pack(">i", -5),  # a negative length
    b"hrpc\x09\x00\x00" + struct.pack(">i", 12) + b"\x0b" + b"\xff" * 11,  # a huge varint
    b"hrpc\x09\x00\x00" + struct.pack(">i", 3) + b"\x02\x18\x02",  # a call before the context
    b"hrpc\x09\x00\x07",  # an unknown auth protocol
    b"\x00\x01\x02\x03" + os.urandom(64),  # neither IPC nor HTTP
]


@pytest.mark.parametrize("data", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_and_truncated_frames(cluster, native, data):
    sock = socket.create_connection((cluster.nn_ip, cluster.nn_rpc), timeout=10)
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := sock.recv(65536):  # answered or closed, never left hanging
            got += chunk
            if len(got) > 1 << 20:
                break
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    assert native.get_file_info("/").isdir  # and the server still serves


# ---------------------------------------------------------------- ClientDatanodeProtocol
NO_TOKEN = {"identifier": b"", "password": b"", "kind": "", "service": ""}


def test_datanodes_serve_client_datanode_protocol(cluster, native):
    """What a Java client asks a DataNode itself: a replica's visible length (finalized
    here: its length), and the legacy short-circuit path, refused as Hadoop refuses it
    with dfs.block.local-path-access.user empty; errors carry Hadoop's classes and words."""
    path = "/cdp/file"
    data = os.urandom(BLOCK + 1000)
    with native.create(path, hdfs_native.WriteOptions(replication=3)) as f:
        f.write(data)
    located = located_blocks(cluster, path)
    report = RawIpc(cluster).call("getDatanodeReport", {"type": "LIVE"})["di"]
    ports = {d["id"]["ipAddr"]: d["id"]["ipcPort"] for d in report}
    assert all(ports.values()) and len(ports) == len(cluster.dn_racks), ports
    for lb in located["blocks"]:
        block = lb["b"]
        for loc in lb["locs"]:
            assert loc["id"]["ipcPort"] == ports[loc["id"]["ipAddr"]]
            raw = datanode_ipc(loc)
            try:
                got = raw.call("getReplicaVisibleLength", {"block": block})
                assert got == {"length": block["numBytes"]}
                refused = raw.call("getBlockLocalPathInfo", {"block": block, "token": NO_TOKEN})
                assert refused["status"] == "ERROR"
                assert (
                    refused["exceptionClassName"]
                    == "org.apache.hadoop.security.AccessControlException"
                )
                assert refused["errorMsg"] == (
                    "Can't continue with getBlockLocalPathInfo() authorization. The user root "
                    "is not configured in dfs.block.local-path-access.user"
                )
                unknown = dict(block, blockId=block["blockId"] + 1_000_000)
                missing = raw.call("getReplicaVisibleLength", {"block": unknown})
                assert missing["exceptionClassName"] == (
                    "org.apache.hadoop.hdfs.server.datanode.ReplicaNotFoundException"
                )
                assert missing["errorMsg"] == (
                    f"Replica does not exist {block['poolId']}:{unknown['blockId']}"
                )
                newer = dict(block, generationStamp=block["generationStamp"] + 1)
                stale = raw.call("getReplicaVisibleLength", {"block": newer})
                assert stale["exceptionClassName"] == "java.io.IOException"
                assert stale["errorMsg"].startswith(
                    "replica.getGenerationStamp() < block.getGenerationStamp()"
                )
                info = raw.call("getDatanodeInfo", {})["localInfo"]
                assert info["softwareVersion"].startswith("3.") and info["uptime"] >= 0
                # Still answering on the same connection after the errors.
                assert raw.call("getReplicaVisibleLength", {"block": block}) == got
            finally:
                raw.close()
    # WebHDFS's block locations advertise the same port.
    r = requests.get(
        f"{cluster.url}/webhdfs/v1{path}?op=GETBLOCKLOCATIONS&user.name=root", timeout=10
    ).json()["LocatedBlocks"]["locatedBlocks"][0]["locations"]
    assert all(d["ipcPort"] == ports[d["ipAddr"]] for d in r)


def test_datanode_ipc_survives_malformed_frames(cluster, native):
    """Random bytes, a wrong preamble, lying lengths, huge varints, a call before the
    connection context: each answered or closed, and the DataNode keeps serving."""
    with native.create("/cdp/small") as f:
        f.write(b"abc")
    lb = located_blocks(cluster, "/cdp/small")["blocks"][0]
    loc = lb["locs"][0]
    address = (loc["id"]["ipAddr"], loc["id"]["ipcPort"])
    for data in GARBAGE + [b"GET / HTTP/1.1\r\n\r\n"]:
        sock = socket.create_connection(address, timeout=10)
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):  # answered or closed, never left hanging
                pass
        except ConnectionResetError:
            pass
        finally:
            sock.close()
    raw = datanode_ipc(loc)
    try:
        assert raw.call("getReplicaVisibleLength", {"block": lb["b"]}) == {"length": 3}
        # A method of the service racklab does not serve, and one of no service.
        err = raw.call("refreshNamenodes", {})
        assert err["exceptionClassName"] == "org.apache.hadoop.ipc.RpcNoSuchMethodException"
        err = raw.call("getReplicaVisibleLength", {"block": lb["b"]}, protocol=CLIENT_PROTOCOL)
        assert err["exceptionClassName"] == "org.apache.hadoop.ipc.RpcNoSuchProtocolException"
    finally:
        raw.close()


def test_daemon_rpc_still_answers_on_the_same_port(cluster):
    r = requests.post(f"http://{cluster.nn_ip}:{cluster.nn_rpc}/rpc/getTransactionId", timeout=10)
    assert r.status_code == 200 and r.json()["txid"] > 0
    r = requests.post(f"http://{cluster.nn_ip}:{cluster.nn_rpc}/rpc/noSuch", timeout=10)
    assert "UnsupportedOperationException" in r.text


def test_a_writer_left_open_is_finalized_while_its_cluster_answers(tmp_path):
    """hdfs-native's FileWriter is an io.RawIOBase, whose finalizer calls close(): a writer
    a test leaves open in a reference cycle, finalized only after its cluster stopped,
    retries the absent NameNode for about three minutes in whatever later test the cyclic
    collector runs (the 180 s stalls seen in tests/hdfs/test_webhdfs_clients.py). The
    MiniCluster finalizes such garbage before it stops its daemons."""
    gc.disable()  # no automatic collection: only the MiniCluster's own may free the cycle
    try:
        with MiniCluster(
            tmp_path, racks={"/rack1": 1}, settings={"dfs.replication": "1"}
        ).running() as c:
            writer = hdfs_native.Client(f"hdfs://{c.nn_ip}:{c.nn_rpc}").create("/left/open")
            writer.write(b"never closed")
            holder = {"writer": writer}
            holder["self"] = holder  # only the cyclic collector can free it
            gone = weakref.ref(writer)
            del writer, holder
            assert gone() is not None
        assert gone() is None  # finalized before the daemons stopped, not in a later test
    finally:
        gc.enable()
