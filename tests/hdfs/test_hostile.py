"""Requests made to do harm: a forged data-transfer header must not replace or remove a
finalized replica, an uploaded image must come from this namespace's checkpointer and
load, a NameNode whose newest image does not load starts from the one before, and RPC
arguments of the wrong type are refused before anything is logged. After each, every
acknowledged byte is still there, on disk and through a real client."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct

import pytest
import requests
from hdfs import InsecureClient

from lab.services.hdfs.minicluster import MiniCluster
from lab.services.hdfs.storage import NNStorage
from tests.httpbounds import check_bounds, seconds_until_closed

BLOCK = 64 * 1024
IDLE = 2.0  # seconds: the lab's HTTP idle timeout and data-transfer socket timeout


@pytest.fixture(scope="module")
def hc(tmp_path_factory):
    with MiniCluster(
        tmp_path_factory.mktemp("hostile"),
        racks={"/rack1": 2, "/rack2": 1},
        secondary=True,
        settings={
            "dfs.blocksize": "64k",
            "dfs.namenode.safemode.extension": "500",
            "dfs.namenode.checkpoint.txns": "40",
            "dfs.namenode.checkpoint.check.period": "0.3s",
            "hadoop.http.idle_timeout.ms": str(int(IDLE * 1000)),
            "dfs.client.socket-timeout": str(int(IDLE * 1000)),
        },
    ).running() as c:
        yield c


@pytest.fixture(scope="module")
def victim(hc):
    data = os.urandom(2 * BLOCK + 777)
    InsecureClient(hc.url, user="root").write("/victim", data, overwrite=True)
    return data


def xfer(ip: str, port: int, header: dict) -> dict:
    """One data-transfer request; -> the DataNode's reply header."""
    body = json.dumps(header).encode()
    with socket.create_connection((ip, port), timeout=10) as s:
        s.sendall(struct.pack(">I", len(body)) + body)
        (n,) = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))
        return json.loads(s.recv(n, socket.MSG_WAITALL))


def located_blocks(hc, path: str) -> list[dict]:
    r = requests.get(
        f"{hc.url}/webhdfs/v1{path}?op=GETBLOCKLOCATIONS&user.name=root", timeout=10
    ).json()
    return r["LocatedBlocks"]["locatedBlocks"]


def datanode(hc, ip: str):
    return next(d for d in hc.datanodes if d.ip == ip)


def replica_on_disk(hc, ip: str, block_id: int) -> bytes:
    return (hc.root / f"data-{ip}" / "current" / "finalized" / f"blk_{block_id}").read_bytes()


def assert_intact(hc, path: str, data: bytes) -> None:
    """Every replica of every block is on its DataNode's disk with the right bytes, fsck
    counts them all, and the hdfs client reads the file back."""
    for lb in located_blocks(hc, path):
        b = lb["block"]
        want = data[lb["startOffset"] : lb["startOffset"] + b["numBytes"]]
        assert len(lb["locations"]) == 3
        for loc in lb["locations"]:
            assert replica_on_disk(hc, loc["ipAddr"], b["blockId"]) == want
    blocks = hc.fsck(path)["files"][0]["blocks"]
    assert all(b["live"] == 3 and not b["corruptLocations"] for b in blocks)
    with InsecureClient(hc.url, user="root").read(path) as r:
        assert r.read() == data


def forged_headers(b: dict) -> list[dict]:
    blk = {"blockId": b["blockId"], "genStamp": b["generationStamp"], "numBytes": b["numBytes"]}
    newer = dict(blk, genStamp=blk["genStamp"] + 1)
    return [
        # H1 as found: a "create" one generation stamp ahead.
        {"op": "WRITE_BLOCK", "stage": "create", "targets": [], "block": dict(newer, numBytes=0)},
        {"op": "WRITE_BLOCK", "stage": "create", "targets": [], "block": blk},
        # A re-replication copy may not take the place of a finalized replica either.
        {"op": "WRITE_BLOCK", "stage": "transfer", "targets": [], "block": newer},
        # An append or recovery whose new generation stamp is not newer.
        {"op": "WRITE_BLOCK", "stage": "append", "block": blk, "newGenStamp": blk["genStamp"]},
        {"op": "WRITE_BLOCK", "stage": "recovery", "block": blk, "newGenStamp": 1},
        # A recovery cutting the finalized replica back to nothing.
        {
            "op": "WRITE_BLOCK",
            "stage": "recovery",
            "block": dict(blk, numBytes=0),
            "newGenStamp": blk["genStamp"] + 5,
        },
    ]


def test_forged_write_block_headers_leave_finalized_replicas_alone(hc, victim):
    first = located_blocks(hc, "/victim")[0]
    for loc in first["locations"]:
        for header in forged_headers(first["block"]):
            reply = xfer(loc["ipAddr"], loc["xferPort"], header)
            assert reply["status"] == "ERROR", (header, reply)
    reply = xfer(
        first["locations"][0]["ipAddr"],
        first["locations"][0]["xferPort"],
        forged_headers(first["block"])[0],
    )
    assert "already exists in state FINALIZED" in reply["message"]
    assert_intact(hc, "/victim", victim)


@pytest.mark.parametrize(
    "header,complaint",
    [
        (
            {
                "op": "READ_BLOCK",
                "block": {"blockId": 1, "genStamp": 1},
                "offset": 2**64,
                "length": 1,
            },
            "offset",
        ),
        (
            {
                "op": "READ_BLOCK",
                "block": {"blockId": "1", "genStamp": 1},
                "offset": 0,
                "length": 1,
            },
            "block.blockId",
        ),
        ({"op": "WRITE_BLOCK", "block": {"blockId": 1, "genStamp": 1}, "stage": "bogus"}, "stage"),
        (
            {"op": "WRITE_BLOCK", "block": {"blockId": 1, "genStamp": 1}, "targets": [{"ip": 5}]},
            "targets[0].ip",
        ),
        ({"op": "WRITE_BLOCK", "block": [], "targets": []}, "block"),
        ({"op": "BLOCK_CHECKSUM", "block": {"blockId": -1, "genStamp": 1}}, "block.blockId"),
        ({"op": ["READ_BLOCK"]}, "unknown op"),
    ],
)
def test_mistyped_transfer_headers_get_an_error_reply_not_a_traceback(hc, header, complaint):
    d = hc.datanodes[0]
    reply = xfer(d.ip, d.ready["xfer"], header)
    assert reply["status"] == "ERROR" and complaint in reply["message"], reply
    assert "Traceback" not in d.log_path.read_text()


def rpc(hc, method: str, body) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body)
    return requests.post(f"http://{hc.nn_ip}:{hc.nn_rpc}/rpc/{method}", data=data, timeout=10)


BAD_RPC = [
    (
        "create",
        {"src": "/h3/f", "user": "root", "clientName": "c", "permission": "abc"},
        "permission",
    ),
    (
        "create",
        {"src": "/h3/f", "user": "root", "clientName": "c", "replication": "3"},
        "replication",
    ),
    (
        "create",
        {"src": "/h3/f", "user": "root", "clientName": "c", "blockSize": 2**64},
        "blockSize",
    ),
    (
        "create",
        {"src": "/h3/f", "user": "root", "clientName": "c", "overwrite": "yes"},
        "overwrite",
    ),
    ("create", {"src": 5, "user": "root", "clientName": "c"}, "src"),
    ("create", {"src": "/h3/f", "user": "ro\x00ot", "clientName": "c"}, "user"),
    ("create", {"src": "/h3/f", "user": "root"}, "clientName"),
    (
        "addBlock",
        {"src": "/h3/f", "clientName": "c", "previous": {"blockId": "x"}},
        "previous.blockId",
    ),
    ("getBlockLocations", {"src": "/h3", "user": "root", "offset": 2**63}, "offset"),
    ("blockReport", {"uuid": "u", "blocks": [[1, 2]]}, "blocks[0]"),
    ("sendHeartbeat", {"uuid": "u", "capacity": -1}, "capacity"),
    ("registerDatanode", {"uuid": "u", "ip": "1.2.3.4", "xferPort": 0, "infoPort": 1}, "xferPort"),
    ("setSafeMode", {"action": "sideways"}, "action"),
    ("complete", b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    ("complete", [1, 2], "expected an object"),
]


@pytest.mark.parametrize("method,body,field", BAD_RPC)
def test_rpc_arguments_of_the_wrong_type_are_refused(hc, method, body, field):
    r = rpc(hc, method, body)
    assert r.status_code == 400, r.text
    e = r.json()["RemoteException"]
    assert e["exception"] == "IllegalArgumentException" and field in e["message"], e


def test_refused_rpc_leaves_the_namespace_listable_after_a_restart(hc, victim):
    client = InsecureClient(hc.url, user="root")
    client.makedirs("/h3")
    for method, body, _ in BAD_RPC:
        assert rpc(hc, method, body).status_code == 400
    hc.restart_namenode()
    hc.wait_active()
    assert client.list("/h3") == []
    assert client.status("/h3")["type"] == "DIRECTORY"
    assert_intact(hc, "/victim", victim)


def storage_info(hc) -> str:
    return NNStorage(hc.root / "name").storage_info()


def test_image_upload_is_refused_unless_from_this_namespaces_checkpointer(hc, victim):
    url = f"{hc.url}/imagetransfer"
    junk = b"junk"
    # H2 as found: no storage info at all.
    r = requests.put(f"{url}?txid=99999", data=junk, timeout=10)
    assert r.status_code == 403 and "storage info" in r.json()["RemoteException"]["message"]
    # The right storage info, but a body that is not an image of this namespace.
    info = storage_info(hc)
    last = requests.post(f"http://{hc.nn_ip}:{hc.nn_rpc}/rpc/getTransactionId", data="{}").json()
    txid = last["txid"]
    for body, headers in [
        (junk, {}),
        (json.dumps({"txid": txid, "inodes": [{"type": "FILE"}]}).encode(), {}),
        (b"{}", {"X-MD5-Digest": hashlib.md5(b"other").hexdigest()}),
    ]:
        r = requests.put(
            url, params={"txid": txid, "storageInfo": info}, data=body, headers=headers, timeout=10
        )
        assert r.status_code == 403, r.text
    # Not a txid this namespace has reached; not numeric; already checkpointed.
    r = requests.put(url, params={"txid": txid + 10**6, "storageInfo": info}, data=junk)
    assert r.status_code == 400
    r = requests.put(url, params={"txid": "x", "storageInfo": info}, data=junk)
    assert r.status_code == 400
    r = requests.put(url, params={"txid": 0, "storageInfo": info}, data=junk)
    assert r.status_code == 409
    images = NNStorage(hc.root / "name").images()
    assert txid not in images and 99999 not in images
    hc.restart_namenode()
    hc.wait_active()
    assert_intact(hc, "/victim", victim)


def test_namenode_starts_from_the_previous_image_when_the_newest_does_not_load(hc, victim):
    client = InsecureClient(hc.url, user="root")
    storage = NNStorage(hc.root / "name")
    before = storage.images()[-1]
    for i in range(45):  # more transactions than checkpoint.txns: the secondary checkpoints
        client.makedirs(f"/many/d{i}")
    hc.wait(lambda: storage.images()[-1] > before, 30, "a checkpoint by the secondary")
    client.write("/after-checkpoint", b"edits after the newest image", overwrite=True)
    newest = storage.images()[-1]
    hc.kill(hc.namenode)
    # The newest image is garbage with a matching MD5, as a forged upload once left it.
    storage.store_image_bytes(newest, b"garbage, not an image")
    hc._spawn(hc.namenode, 30)
    hc.wait_active()
    assert len(client.list("/many")) == 45
    with client.read("/after-checkpoint") as r:
        assert r.read() == b"edits after the newest image"
    assert_intact(hc, "/victim", victim)
    assert (storage.current / f"fsimage_{newest:019d}.corrupt").exists()
    assert "Failed to load image" in hc.namenode.log_path.read_text()


@pytest.mark.parametrize("user", ["%00", "a%20b", "..%2Fetc", "x" * 300])
def test_user_names_outside_hadoops_domain_are_400(hc, user):
    d = hc.datanodes[0]
    for url in (
        f"{hc.url}/webhdfs/v1/?op=GETFILESTATUS&user.name={user}",
        f"http://{d.ip}:{d.ready['http']}/webhdfs/v1/victim?op=OPEN&user.name={user}",
    ):
        r = requests.get(url, timeout=10)
        assert r.status_code == 400, r.text
        assert "does not belong to the domain" in r.json()["RemoteException"]["message"]


def test_http_servers_are_bounded(hc):
    d = hc.datanodes[0]
    check_bounds(hc.nn_ip, hc.nn_http, "/webhdfs/v1/?op=GETFILESTATUS", IDLE)
    check_bounds(hc.nn_ip, hc.nn_rpc, "/rpc/getTransactionId", IDLE)
    check_bounds(d.ip, d.ready["http"], "/webhdfs/v1/victim?op=OPEN", IDLE)


def test_a_writer_that_stops_mid_packet_is_cut_off(hc):
    d = hc.datanodes[0]
    header = json.dumps(
        {"op": "WRITE_BLOCK", "stage": "create", "block": {"blockId": 7, "genStamp": 1}}
    ).encode()
    # The header, then a packet head promising 512 bytes and sending 10.
    partial = struct.pack(">I", len(header)) + header + struct.pack(">qqIB", 0, 0, 512, 0)
    took = seconds_until_closed(d.ip, d.ready["xfer"], partial + b"0123456789", IDLE + 15)
    assert IDLE * 0.5 <= took <= IDLE + 15
    # A header that never comes whole.
    took = seconds_until_closed(d.ip, d.ready["xfer"], b"\x00\x00\x01\x00{", IDLE + 15)
    assert IDLE * 0.5 <= took <= IDLE + 15
    assert "Traceback" not in d.log_path.read_text()


def test_a_packet_claiming_gigabytes_is_refused_before_any_memory_is_taken(hc):
    """A DataNode reads a packet into a buffer made for its stated length: a packet head
    of racklab's framing saying 4 GiB ends the connection instead (Hadoop's framing is
    held to 16 MiB as Hadoop's PacketReceiver holds it)."""
    d = hc.datanodes[0]
    header = json.dumps(
        {"op": "WRITE_BLOCK", "stage": "create", "block": {"blockId": 8, "genStamp": 1}}
    ).encode()
    lying = struct.pack(">I", len(header)) + header + struct.pack(">qqIB", 0, 0, 2**32 - 1, 0)
    assert seconds_until_closed(d.ip, d.ready["xfer"], lying + b"0123", IDLE + 15) < IDLE + 15
    with open(f"/proc/{d.proc.pid}/status") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    assert peak < 1 << 20  # KiB: the DataNode never held a GiB
    assert "Traceback" not in d.log_path.read_text()


def test_a_reopened_replica_cannot_be_replaced_and_goes_back_at_once(hc, victim):
    """Found by the fuzz campaign: a WRITE_BLOCK that reopens a finalized replica the way a
    writer's recovery would, then hangs up, left it unfinished for a minute; a transfer
    with a newer generation stamp then replaced it, destroying acknowledged bytes."""
    lb = located_blocks(hc, "/victim")[0]
    b, loc = lb["block"], lb["locations"][0]
    blk = {"blockId": b["blockId"], "genStamp": b["generationStamp"], "numBytes": b["numBytes"]}
    body = json.dumps(
        {
            "op": "WRITE_BLOCK",
            "stage": "recovery",
            "block": blk,
            "newGenStamp": blk["genStamp"] + 50,
        }
    ).encode()
    with socket.create_connection((loc["ipAddr"], loc["xferPort"]), timeout=10) as s:
        s.sendall(struct.pack(">I", len(body)) + body)
        (n,) = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))
        assert json.loads(s.recv(n, socket.MSG_WAITALL))["status"] == "SUCCESS"
    transfer = {
        "op": "WRITE_BLOCK",
        "stage": "transfer",
        "targets": [],
        "block": dict(blk, genStamp=blk["genStamp"] + 99),
    }
    reply = xfer(loc["ipAddr"], loc["xferPort"], transfer)
    assert reply["status"] == "ERROR" and "already exists" in reply["message"], reply
    hc.wait(
        lambda: (
            hc.root / f"data-{loc['ipAddr']}" / "current" / "finalized" / f"blk_{b['blockId']}"
        ).exists(),
        10,
        "the untouched replica to be finalized again",
    )
    assert_intact(hc, "/victim", victim)
