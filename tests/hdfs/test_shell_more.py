"""The rest of FsShell in `lab hdfs dfs`: -stat, -checksum, -head, -text, -df, -cp,
-rmdir, -touch, -getmerge, -chgrp, -find, -du/-count with -h, -v, -q; through both
doors (WebHDFS, and Hadoop IPC with the data-transfer protocol as `lab hdfs` uses)."""

from __future__ import annotations

import io
import re

import pytest

from lab.services.hdfs.shell import run
from lab.services.hdfs.shell_more import human, stat_format


@pytest.fixture(params=["web", "native"])
def sh(request, cluster):
    rpc = f"{cluster.nn_ip}:{cluster.nn_rpc}" if request.param == "native" else None
    base = f"/more-{request.param}"

    def call(*argv):
        out, err = io.StringIO(), io.StringIO()
        rc = run(cluster.url, ["dfs", *argv], out, err, user="root", rpc=rpc)
        return rc, out.getvalue(), err.getvalue()

    call("-rm", "-r", "-f", base)
    call("-mkdir", "-p", base)
    call.base = base
    return call


def test_human_sizes_as_hadoop_prints_them():
    assert [human(n) for n in (0, 512, 1023, 1024, 5000000, 3 << 30)] == [
        "0", "512", "1023", "1.0 K", "4.8 M", "3.0 G"
    ]  # fmt: skip


def test_stat_format_fields():
    st = {
        "type": "FILE", "permission": "644", "length": 10, "group": "g", "owner": "o",
        "blockSize": 1024, "replication": 3, "accessTime": 0, "modificationTime": 86_400_000,
    }  # fmt: skip
    assert stat_format("%a %A %b %F %g %n %o %r %u %y %Y", st, "f") == (
        "644 -rw-r--r-- 10 regular file g f 1024 3 o 1970-01-02 00:00:00 86400000"
    )


def test_stat_checksum_head_text_getmerge(sh, tmp_path):
    b = sh.base
    local = tmp_path / "a.txt"
    local.write_bytes(b"line\n" * 1000)
    assert sh("-put", str(local), f"{b}/a.txt")[0] == 0
    rc, out, _ = sh("-stat", "%n %b %r %F", f"{b}/a.txt")
    assert (rc, out) == (0, "a.txt 5000 3 regular file\n")
    rc, out, _ = sh("-stat", f"{b}/a.txt")
    assert rc == 0 and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n", out)
    rc, out, _ = sh("-checksum", f"{b}/a.txt")
    path, algorithm, digest = out.rstrip("\n").split("\t")
    assert rc == 0 and path == f"{b}/a.txt" and algorithm.endswith("CRC32C")
    assert re.fullmatch(r"[0-9a-f]+", digest)
    assert sh("-checksum", b)[2] == f"checksum: `{b}': Is a directory\n"
    rc, out, _ = sh("-head", f"{b}/a.txt")
    assert rc == 0 and out == ("line\n" * 1000)[:1024]
    assert sh("-text", f"{b}/a.txt")[1] == "line\n" * 1000
    (tmp_path / "b.txt").write_bytes(b"second")
    sh("-put", str(tmp_path / "b.txt"), f"{b}/b.txt")
    merged = tmp_path / "merged"
    assert sh("-getmerge", "-nl", b, str(merged))[0] == 0
    assert merged.read_bytes() == b"line\n" * 1000 + b"\n" + b"second\n"


def test_cp_rmdir_touch_chgrp_find(sh):
    b = sh.base
    sh("-touchz", f"{b}/empty")
    assert sh("-cp", f"{b}/empty", f"{b}/copy")[0] == 0
    rc, _, err = sh("-cp", f"{b}/empty", f"{b}/copy")
    assert rc == 1 and err == f"cp: `{b}/copy': File exists\n"
    assert sh("-cp", "-f", f"{b}/empty", f"{b}/copy")[0] == 0
    sh("-mkdir", f"{b}/d")
    assert sh("-cp", f"{b}/empty", f"{b}/copy", f"{b}/d")[0] == 0
    assert sh("-ls", f"{b}/d")[1].startswith("Found 2 items")
    rc, _, err = sh("-rmdir", f"{b}/d")
    assert rc == 1 and err == f"rmdir: `{b}/d': Directory is not empty\n"
    assert sh("-rmdir", "--ignore-fail-on-non-empty", f"{b}/d")[0] == 0
    sh("-mkdir", f"{b}/gone")
    assert sh("-rmdir", f"{b}/gone")[0] == 0
    assert sh("-test", "-e", f"{b}/gone")[0] == 1
    assert sh("-touch", f"{b}/new")[0] == 0 and sh("-test", "-z", f"{b}/new")[0] == 0
    assert sh("-touch", "-c", f"{b}/never")[0] == 0 and sh("-test", "-e", f"{b}/never")[0] == 1
    assert sh("-touch", "-m", "-t", "20200102:030405", f"{b}/new")[0] == 0
    assert sh("-stat", "%y", f"{b}/new")[1] == "2020-01-02 03:04:05\n"
    rc, _, err = sh("-touch", "-t", "yesterday", f"{b}/new")
    assert rc == 1 and "Unable to parse the specified timestamp yesterday" in err
    assert sh("-chgrp", "staff", f"{b}/new")[0] == 0
    assert sh("-stat", "%g", f"{b}/new")[1] == "staff\n"
    rc, out, _ = sh("-find", b, "-name", "co*", "-print")
    assert rc == 0 and out.splitlines() == [f"{b}/copy", f"{b}/d/copy"]
    rc, out, _ = sh("-find", b, "-iname", "EMPTY")
    assert out.splitlines() == [f"{b}/d/empty", f"{b}/empty"]


def test_du_count_df_human_and_headers(sh, tmp_path):
    b = sh.base
    local = tmp_path / "big"
    local.write_bytes(b"x" * 5000)
    sh("-put", str(local), f"{b}/big")
    assert sh("-du", "-s", "-h", b)[1] == f"4.9 K  14.6 K  {b}\n"
    rc, out, _ = sh("-du", "-v", b)
    assert out.splitlines() == [
        "SIZE  DISK_SPACE_CONSUMED_WITH_ALL_REPLICAS  FULL_PATH_NAME",
        f"5000  15000  {b}/big",
    ]
    rc, out, _ = sh("-count", "-q", "-v", b)
    head, line = out.splitlines()
    assert head.split() == [
        "QUOTA", "REM_QUOTA", "SPACE_QUOTA", "REM_SPACE_QUOTA",
        "DIR_COUNT", "FILE_COUNT", "CONTENT_SIZE", "PATHNAME",
    ]  # fmt: skip
    assert line.split() == ["none", "inf", "none", "inf", "1", "1", "5000", b]
    rc, out, _ = sh("-df", "-h")
    head, line = out.splitlines()
    assert rc == 0 and head.split() == ["Filesystem", "Size", "Used", "Available", "Use%"]
    assert line.startswith("hdfs://") and line.endswith("%")


def test_a_refusal_is_printed_as_the_namenode_said_it(cluster):
    """Command.displayError: a remote exception's message after `cmd: `, with no path
    of the shell's own in front (only FsShell's path errors name the path)."""
    for rpc in (None, f"{cluster.nn_ip}:{cluster.nn_rpc}"):
        out, err = io.StringIO(), io.StringIO()
        rc = run(cluster.url, ["dfs", "-mkdir", "/bob-was-here"], out, err, user="bob", rpc=rpc)
        assert rc == 1
        assert err.getvalue().startswith(
            'mkdir: Permission denied: user=bob, access=WRITE, inode="/":'
        ), err.getvalue()
