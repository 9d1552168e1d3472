"""Bad requests get Hadoop's RemoteException with the right class and HTTP status, and
every daemon keeps serving afterwards."""

from __future__ import annotations

import http.client
import json
import os
import socket
from urllib.parse import urlsplit

import pytest
import requests
from hdfs import HdfsError, InsecureClient


@pytest.fixture(scope="module")
def base(cluster):
    c = InsecureClient(cluster.url, user="root")
    c.makedirs("/bad/dir")
    c.write("/bad/file", b"0123456789", overwrite=True)
    return f"{cluster.url}/webhdfs/v1"


def remote(r):
    body = r.json()["RemoteException"]
    return r.status_code, body["exception"]


CASES = [
    ("GET", "/bad/file?op=FROBNICATE", 400, "IllegalArgumentException"),
    ("GET", "/bad/file", 400, "IllegalArgumentException"),  # no op at all
    ("GET", "/bad/dir?op=MKDIRS", 400, "IllegalArgumentException"),  # PUT op sent as GET
    ("PUT", "/bad/file?op=OPEN", 400, "IllegalArgumentException"),
    ("GET", "/bad/file?op=OPEN&offset=-1", 400, "IllegalArgumentException"),
    ("GET", "/bad/file?op=OPEN&offset=abc", 400, "IllegalArgumentException"),
    ("GET", "/bad/file?op=OPEN&length=-5", 400, "IllegalArgumentException"),
    ("GET", "/bad/file?op=OPEN&offset=11", 403, "IOException"),  # past the end
    ("PUT", "/bad/new?op=CREATE&overwrite=maybe", 400, "IllegalArgumentException"),
    ("PUT", "/bad/new?op=CREATE&replication=0", 400, "IllegalArgumentException"),
    ("PUT", "/bad/new?op=CREATE&permission=999", 400, "IllegalArgumentException"),
    ("PUT", "/bad/new?op=CREATE&blocksize=-1", 400, "IllegalArgumentException"),
    ("PUT", "/bad/file?op=RENAME", 400, "IllegalArgumentException"),  # no destination
    ("PUT", "/bad/file?op=RENAME&destination=relative/path", 400, "InvalidPathException"),
    ("PUT", "/bad/dir?op=CREATE", 403, "FileAlreadyExistsException"),  # write to a directory
    ("PUT", "/bad/dir?op=CREATE&overwrite=true", 403, "FileAlreadyExistsException"),
    ("POST", "/bad/dir?op=APPEND", 404, "FileNotFoundException"),
    ("GET", "/bad/dir?op=OPEN", 404, "FileNotFoundException"),
    ("GET", "/bad/nothing?op=OPEN", 404, "FileNotFoundException"),
    ("GET", "/bad/nothing?op=GETFILESTATUS", 404, "FileNotFoundException"),
    ("PUT", "/bad/file/child?op=MKDIRS", 403, "ParentNotDirectoryException"),
    ("PUT", "/bad/file?op=MKDIRS", 403, "FileAlreadyExistsException"),
    ("DELETE", "/bad?op=DELETE&recursive=false", 403, "PathIsNotEmptyDirectoryException"),
    ("PUT", "/bad/file?op=SETREPLICATION&replication=100000", 400, "IllegalArgumentException"),
    ("PUT", "/bad/file?op=SETOWNER", 400, "IllegalArgumentException"),
    ("PUT", "/bad/file?op=CONCAT", 400, "IllegalArgumentException"),  # POST op sent as PUT
    ("POST", "/bad/file?op=TRUNCATE&newlength=1", 400, "UnsupportedOperationException"),
]


@pytest.mark.parametrize("method,target,status,exception", CASES)
def test_bad_request_gets_remote_exception(base, cluster, method, target, status, exception):
    r = requests.request(
        method,
        f"{base}{target}{'&' if '?' in target else '?'}user.name=root",
        allow_redirects=False,
        timeout=10,
    )
    assert remote(r) == (status, exception), r.text
    assert r.json()["RemoteException"]["javaClassName"].endswith(exception)
    # ... and the NameNode still answers.
    assert (
        requests.get(f"{base}/bad/file?op=GETFILESTATUS", timeout=10).json()["FileStatus"]["length"]
        == 10
    )


@pytest.mark.parametrize(
    "method,target",
    [
        ("PUT", "/webhdfs/v1/bad/../etc?op=MKDIRS"),
        ("GET", "/webhdfs/v1/bad/./file?op=GETFILESTATUS"),
        ("PUT", "/webhdfs/v1/bad/%2E%2E/x?op=CREATE"),
        ("PUT", "/webhdfs/v1/bad/file?op=RENAME&destination=/bad/../../etc"),
    ],
)
def test_dot_segments_are_invalid_paths(base, cluster, method, target):
    # requests would normalise dot segments away, so send the request line as written.
    conn = http.client.HTTPConnection(cluster.nn_ip, cluster.nn_http, timeout=10)
    conn.request(method, target + "&user.name=root")
    resp = conn.getresponse()
    body = json.loads(resp.read())["RemoteException"]
    conn.close()
    assert (resp.status, body["exception"]) == (400, "InvalidPathException")
    assert "Invalid path name" in body["message"]


def test_permission_denied_is_403(base):
    r = requests.put(
        f"{base}/bad/dir/x?op=CREATE&user.name=mallory", allow_redirects=False, timeout=10
    )
    assert remote(r) == (403, "AccessControlException")


def datanode_url(cluster):
    d = cluster.datanodes[0]
    return f"http://{d.ip}:{d.ready['http']}/webhdfs/v1"


def test_datanode_rejects_bad_requests_and_keeps_serving(base, cluster):
    dn = datanode_url(cluster)
    assert remote(requests.get(f"{dn}/bad/file?op=LISTSTATUS", timeout=10)) == (
        400,
        "IllegalArgumentException",
    )
    assert remote(requests.get(f"{dn}/bad/file?op=OPEN&offset=-3", timeout=10)) == (
        400,
        "IllegalArgumentException",
    )
    assert remote(
        requests.put(f"{dn}/bad/dir?op=CREATE&user.name=root", data=b"x", timeout=10)
    ) == (403, "FileAlreadyExistsException")
    assert remote(requests.get(f"{dn}/bad/dir?op=OPEN&user.name=root", timeout=10)) == (
        404,
        "FileNotFoundException",
    )
    assert (
        requests.get(f"{dn}/bad/file?op=OPEN&user.name=root&offset=2&length=3", timeout=10).content
        == b"234"
    )


def raw_exchange(ip: str, port: int, payload: bytes) -> bytes:
    with socket.create_connection((ip, port), timeout=10) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00\x01\x02garbage\r\n\r\n",
        b"GET /webhdfs/v1/ HTTP/9.9\r\n\r\n",
        b"PUT /webhdfs/v1/x?op=CREATE HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        b"PUT /webhdfs/v1/x?op=CREATE HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"GET /webhdfs/v1/ HTTP/1.1\r\nno-colon-header\r\n\r\n",
    ],
)
def test_malformed_http_gets_400_and_servers_survive(base, cluster, payload):
    for ip, port in [
        (cluster.nn_ip, cluster.nn_http),
        (cluster.datanodes[0].ip, cluster.datanodes[0].ready["http"]),
    ]:
        reply = raw_exchange(ip, port, payload)
        assert reply.startswith(b"HTTP/1.1 400 ")
    assert requests.get(f"{base}/bad/file?op=GETFILESTATUS", timeout=10).status_code == 200


def test_garbage_on_data_transfer_and_rpc_ports(base, cluster):
    d = cluster.datanodes[0]
    raw_exchange(d.ip, d.ready["xfer"], b"\xff\xff\xff\xffnot a frame")
    raw_exchange(d.ip, d.ready["xfer"], b"\x00\x00\x00\x05[1,2]")
    r = requests.post(
        f"http://{cluster.nn_ip}:{cluster.nn_rpc}/rpc/addBlock", data=b"{not json", timeout=10
    )
    assert remote(r) == (400, "IllegalArgumentException")
    r = requests.post(
        f"http://{cluster.nn_ip}:{cluster.nn_rpc}/rpc/complete",
        data=json.dumps({"bogus": 1}),
        timeout=10,
    )
    assert remote(r) == (400, "IllegalArgumentException")
    # The cluster still writes and reads through that DataNode.
    c = InsecureClient(base.rsplit("/webhdfs", 1)[0], user="root")
    c.write("/bad/after", b"still fine", overwrite=True)
    with c.read("/bad/after") as r:
        assert r.read() == b"still fine"


def cut_upload(base, method, path, op, sent: bytes, declared: int) -> None:
    """Start an upload at the DataNode the NameNode redirects to, then hang up mid-body."""
    r = requests.request(
        method,
        f"{base}{path}?op={op}&user.name=root&overwrite=true",
        allow_redirects=False,
        timeout=10,
    )
    loc = urlsplit(r.headers["Location"])
    with socket.create_connection((loc.hostname, loc.port), timeout=10) as s:
        s.sendall(
            f"{method} {loc.path}?{loc.query} HTTP/1.1\r\nHost: dn\r\nContent-Length: {declared}\r\n\r\n".encode()
            + sent
        )


def test_cut_upload_keeps_acknowledged_blocks_and_frees_the_file(base, cluster):
    data = os.urandom(3 * 65536 + 5000)
    cut_upload(base, "PUT", "/bad/cut", "CREATE", data, 10 * 65536)
    c = InsecureClient(cluster.url, user="root")
    # The writer's DataNode gives the file back: the three blocks it finished stay, the fourth goes.
    cluster.wait(
        lambda: (c.status("/bad/cut", strict=False) or {}).get("length") == 3 * 65536,
        20,
        "the cut file to be closed at its last full block",
    )
    c.write("/bad/cut", b"more", append=True)  # no lease left behind
    with c.read("/bad/cut") as r:
        assert r.read() == data[: 3 * 65536] + b"more"


def test_cut_append_rolls_back_to_the_acknowledged_bytes(base, cluster):
    c = InsecureClient(cluster.url, user="root")
    original = os.urandom(1000)
    c.write("/bad/app-cut", original, overwrite=True)
    cut_upload(base, "POST", "/bad/app-cut", "APPEND", os.urandom(30_000), 100_000)

    def appendable():
        try:
            c.write("/bad/app-cut", b"!", append=True)
            return True
        except HdfsError as exc:
            assert exc.exception in (
                "AlreadyBeingCreatedException",
                "RecoveryInProgressException",
            ), exc
            return False

    cluster.wait(appendable, 20, "the file to be appendable again")
    for _ in range(3):  # whichever replica serves it
        with c.read("/bad/app-cut") as r:
            assert r.read() == original + b"!"
    blocks = cluster.fsck("/bad/app-cut")["files"][0]["blocks"]
    cluster.wait(
        lambda: all(
            b["live"] == 3 and not b["corruptLocations"]
            for b in cluster.fsck("/bad/app-cut")["files"][0]["blocks"]
        ),
        20,
        "three good replicas after the rollback",
    )
    assert len(blocks) == 1
