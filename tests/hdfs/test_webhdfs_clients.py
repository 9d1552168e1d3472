"""Unmodified public clients against racklab's WebHDFS: the `hdfs` package (client and
its hdfscli command line) and fsspec's WebHDFS filesystem, from 0 bytes to many blocks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fsspec
import pytest
import requests
from hdfs import HdfsError, InsecureClient

BLOCK = 64 * 1024
SIZES = [0, 1, 511, 512, 513, BLOCK - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 12345]


@pytest.fixture(scope="module")
def client(cluster):
    c = InsecureClient(cluster.url, user="root")
    c.makedirs("/t")
    return c


@pytest.mark.parametrize("size", SIZES)
def test_hdfs_client_write_read_roundtrip(client, cluster, size):
    data = os.urandom(size)
    path = f"/t/rt-{size}"
    client.write(path, data, overwrite=True)
    status = client.status(path)
    assert status["length"] == size and status["type"] == "FILE"
    with client.read(path) as r:
        assert r.read() == data
    report = cluster.fsck(path)
    assert report["totals"]["blocks"] == -(-size // BLOCK)
    assert all(b["live"] == 3 for f in report["files"] for b in f["blocks"])


def test_generator_upload_is_chunked_and_stored(client):
    parts = [os.urandom(10_000) for _ in range(30)]  # requests sends a generator chunked
    client.write("/t/gen", (p for p in parts), overwrite=True)
    with client.read("/t/gen") as r:
        assert r.read() == b"".join(parts)


def test_context_manager_writer(client):
    with client.write("/t/ctx", overwrite=True) as w:
        for i in range(1000):
            w.write(f"line {i}\n".encode())
    with client.read("/t/ctx", encoding="utf-8") as r:
        assert r.read().splitlines()[-1] == "line 999"


def test_offsets_and_lengths(client):
    data = os.urandom(3 * BLOCK + 77)
    client.write("/t/ranges", data, overwrite=True)
    for off, length in [
        (0, 10),
        (BLOCK - 5, 10),
        (2 * BLOCK, BLOCK + 77),
        (3 * BLOCK + 70, None),
        (len(data), None),
    ]:
        with client.read("/t/ranges", offset=off, length=length) as r:
            want = data[off:] if length is None else data[off : off + length]
            assert r.read() == want


def test_append_across_block_boundary(client):
    a, b, c = os.urandom(BLOCK - 100), os.urandom(300), os.urandom(2 * BLOCK)
    client.write("/t/app", a, overwrite=True)
    client.write("/t/app", b, append=True)
    client.write("/t/app", c, append=True)
    with client.read("/t/app") as r:
        assert r.read() == a + b + c
    assert client.status("/t/app")["length"] == len(a + b + c)


def test_list_rename_delete_and_summary(client):
    client.makedirs("/t/dir/sub")
    client.write("/t/dir/sub/x", b"hello", overwrite=True)
    client.write("/t/dir/y", b"world!", overwrite=True)
    assert client.list("/t/dir") == ["sub", "y"]
    content = client.content("/t/dir")
    assert (content["fileCount"], content["directoryCount"], content["length"]) == (2, 2, 11)
    client.rename("/t/dir/y", "/t/dir/sub/z")
    assert client.list("/t/dir/sub") == ["x", "z"]
    with client.read("/t/dir/sub/z") as r:
        assert r.read() == b"world!"
    assert client.delete("/t/dir", recursive=True) is True
    assert client.status("/t/dir", strict=False) is None
    assert client.delete("/t/dir") is False


def test_metadata_operations(client):
    client.write("/t/meta", b"abc", overwrite=True)
    client.set_permission("/t/meta", "600")
    client.set_owner("/t/meta", owner="alice", group="staff")
    client.set_replication("/t/meta", 2)
    st = client.status("/t/meta")
    assert (st["permission"], st["owner"], st["group"], st["replication"]) == (
        "600",
        "alice",
        "staff",
        2,
    )
    client.set_times("/t/meta", access_time=1_600_000_000_000, modification_time=1_500_000_000_000)
    st = client.status("/t/meta")
    assert (st["accessTime"], st["modificationTime"]) == (1_600_000_000_000, 1_500_000_000_000)
    cs = client.checksum("/t/meta")
    assert cs["algorithm"] == "MD5-of-0MD5-of-512CRC32C" and cs["length"] == 28
    base = f"{client.url}/webhdfs/v1"
    assert requests.get(f"{base}/?op=GETHOMEDIRECTORY&user.name=bob").json() == {
        "Path": "/user/bob"
    }
    assert requests.get(f"{base}/t?op=GETTRASHROOT&user.name=bob").json() == {
        "Path": "/user/bob/.Trash"
    }


def test_same_content_same_checksum(client):
    data = os.urandom(2 * BLOCK + 5)
    client.write("/t/c1", data, overwrite=True)
    client.write("/t/c2", data, overwrite=True)
    assert client.checksum("/t/c1") == client.checksum("/t/c2")
    client.write("/t/c2", data[:-1] + bytes([data[-1] ^ 0xFF]), overwrite=True)  # one byte differs
    assert client.checksum("/t/c1") != client.checksum("/t/c2")


def test_errors_reach_the_client_with_hadoop_names(client):
    with pytest.raises(HdfsError) as exc:
        client.status("/t/missing")
    assert exc.value.exception == "FileNotFoundException"
    client.write("/t/exists", b"1", overwrite=True)
    with pytest.raises(HdfsError) as exc:
        client.write("/t/exists", b"2")
    assert exc.value.exception == "FileAlreadyExistsException"


def test_permissions_are_enforced(cluster, client):
    client.makedirs("/t/private", permission="700")
    alice = InsecureClient(cluster.url, user="alice")
    with pytest.raises(HdfsError) as exc:
        alice.write("/t/private/f", b"x")
    assert exc.value.exception == "AccessControlException"
    assert "user=alice" in str(exc.value)


def test_noredirect_returns_location(cluster, client):
    r = requests.put(
        f"{cluster.url}/webhdfs/v1/t/nr?op=CREATE&noredirect=true&user.name=root&overwrite=true"
    )
    assert r.status_code == 200
    location = r.json()["Location"]
    put = requests.put(location, data=b"payload")
    assert put.status_code == 201 and put.headers["Location"].startswith("hdfs://")
    r = requests.get(
        f"{cluster.url}/webhdfs/v1/t/nr?op=OPEN&noredirect=true&user.name=root&offset=3"
    )
    assert requests.get(r.json()["Location"]).content == b"load"


def test_fsspec_webhdfs(cluster):
    fs = fsspec.filesystem(
        "webhdfs", host=cluster.nn_ip, port=cluster.nn_http, user="root", use_listings_cache=False
    )
    fs.mkdir("/fs")
    data = os.urandom(4 * BLOCK + 999)
    with fs.open(
        "/fs/a.bin", "wb", block_size=3 * 10_000
    ) as f:  # many POSTs to one append location
        for i in range(0, len(data), 7_000):
            f.write(data[i : i + 7_000])
    assert fs.cat("/fs/a.bin") == data
    assert fs.info("/fs/a.bin")["size"] == len(data)
    with fs.open("/fs/a.bin", "rb") as f:
        f.seek(BLOCK - 3)
        assert f.read(10) == data[BLOCK - 3 : BLOCK + 7]
    # (fsspec's own "ab" mode never sets its upload location, so appends are tested with
    # the hdfs client above; its "wb" mode already appends through repeated POSTs.)
    fs.pipe("/fs/empty", b"")
    assert fs.cat("/fs/empty") == b""
    fs.mv("/fs/a.bin", "/fs/b.bin")
    assert sorted(p.rsplit("/", 1)[1] for p in fs.ls("/fs")) == ["b.bin", "empty"]
    fs.rm("/fs", recursive=True)
    assert not fs.exists("/fs")


def test_hdfscli_command_line(cluster, tmp_path):
    cfg = tmp_path / "hdfscli.cfg"
    cfg.write_text(
        f"[global]\ndefault.alias = lab\n\n[lab.alias]\nurl = {cluster.url}\nuser = root\n"
    )
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(3 * BLOCK + 3))
    env = dict(os.environ, HDFSCLI_CONFIG=str(cfg))
    cli = [sys.executable, "-m", "hdfs"]
    subprocess.run(
        cli + ["upload", "-s", "-f", str(src), "/cli/in.bin"], env=env, check=True, timeout=60
    )
    out = tmp_path / "out.bin"
    subprocess.run(
        cli + ["download", "-s", "/cli/in.bin", str(out)], env=env, check=True, timeout=60
    )
    assert Path(out).read_bytes() == src.read_bytes()
    res = subprocess.run(
        cli + ["download", "/cli/missing", str(tmp_path / "x")],
        env=env,
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1 and "does not exist" in res.stderr


def test_block_locations_ops(client, cluster):
    data = os.urandom(2 * BLOCK + 10)
    client.write("/t/locs", data, overwrite=True)
    base = f"{cluster.url}/webhdfs/v1/t/locs"
    r = requests.get(f"{base}?op=GETFILEBLOCKLOCATIONS&user.name=root", timeout=10).json()
    locs = r["BlockLocations"]["BlockLocation"]
    assert [(b["offset"], b["length"]) for b in locs] == [
        (0, BLOCK),
        (BLOCK, BLOCK),
        (2 * BLOCK, 10),
    ]
    for b in locs:
        assert len(b["hosts"]) == 3 and all(h in cluster.dn_racks for h in b["hosts"])
        assert {p.rsplit("/", 1)[0] for p in b["topologyPaths"]} == {"/rack1", "/rack2"}
    r = requests.get(
        f"{base}?op=GETFILEBLOCKLOCATIONS&offset={BLOCK + 5}&length=1&user.name=root", timeout=10
    ).json()
    assert [b["offset"] for b in r["BlockLocations"]["BlockLocation"]] == [BLOCK]
    lb = requests.get(f"{base}?op=GETBLOCKLOCATIONS&user.name=root", timeout=10).json()[
        "LocatedBlocks"
    ]
    assert lb["fileLength"] == len(data) and len(lb["locatedBlocks"]) == 3
    assert lb["locatedBlocks"][1]["locations"][0]["networkLocation"] in ("/rack1", "/rack2")


def test_delete_to_trash(client):
    client.write("/t/trashme", b"bye", overwrite=True)
    assert client.delete("/t/trashme", skip_trash=False) is True
    assert client.status("/t/trashme", strict=False) is None
    current = "/user/root/.Trash/Current"
    (stamp,) = client.list(current)
    # The client makes Current/<micros> and renames into it: the file moves inside.
    with client.read(f"{current}/{stamp}/trashme") as r:
        assert r.read() == b"bye"


def test_concurrent_writers_and_readers(cluster):
    from concurrent.futures import ThreadPoolExecutor

    def work(i):
        c = InsecureClient(cluster.url, user="root")
        out = {}
        for j in range(6):
            data = os.urandom((i * 7 + j) * 9_000)
            c.write(f"/conc/w{i}/f{j}", data, overwrite=True)
            out[f"/conc/w{i}/f{j}"] = data
        return out

    with ThreadPoolExecutor(8) as pool:
        written = {}
        for out in pool.map(work, range(8)):
            written.update(out)
    c = InsecureClient(cluster.url, user="root")

    def check(item):
        path, data = item
        with InsecureClient(cluster.url, user="root").read(path) as r:
            return r.read() == data

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(check, written.items()))
    assert c.content("/conc")["fileCount"] == 48


def test_concurrent_appends_are_serialised_by_the_lease(cluster):
    import time as _time
    from concurrent.futures import ThreadPoolExecutor

    InsecureClient(cluster.url, user="root").write("/conc/log", b"", overwrite=True)

    def appender(i):
        c = InsecureClient(cluster.url, user="root")
        done = []
        for j in range(5):
            record = f"<{i}:{j}>".encode() * 50
            for _ in range(200):  # bounded retries while another writer holds the lease
                try:
                    c.write("/conc/log", record, append=True)
                    done.append(record)
                    break
                except HdfsError as exc:
                    assert exc.exception == "AlreadyBeingCreatedException", exc
                    _time.sleep(0.02)
        return done

    with ThreadPoolExecutor(6) as pool:
        records = [r for rs in pool.map(appender, range(6)) for r in rs]
    with InsecureClient(cluster.url, user="root").read("/conc/log") as r:
        content = r.read()
    assert len(records) == 30
    assert len(content) == sum(map(len, records))
    for rec in records:  # each acknowledged append is there once, whole
        assert content.count(rec) == 1
