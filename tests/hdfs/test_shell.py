"""`lab hdfs dfs / fsck / dfsadmin` through lab.services.hdfs.shell.run."""

from __future__ import annotations

import io
import os

from lab.services.hadoop.webclient import WebHdfsClient
from lab.services.hdfs.shell import run


def sh(cluster, *argv):
    out, err = io.StringIO(), io.StringIO()
    rc = run(cluster.url, list(argv), out, err, user="root")
    return rc, out.getvalue(), err.getvalue()


def test_put_ls_cat_get_rm(cluster, tmp_path):
    local = tmp_path / "data.txt"
    local.write_text("hello from the shell\n" * 5000)
    assert sh(cluster, "dfs", "-mkdir", "-p", "/sh/in")[0] == 0
    assert sh(cluster, "dfs", "-put", str(local), "/sh/in")[0] == 0
    rc, out, err = sh(cluster, "dfs", "-put", str(local), "/sh/in/data.txt")
    assert rc == 1 and err == "put: `/sh/in/data.txt': File exists\n"
    rc, out, _ = sh(cluster, "dfs", "-ls", "/sh/in")
    lines = out.splitlines()
    assert rc == 0 and lines[0] == "Found 1 items"
    assert lines[1].startswith("-rw-r--r--   3 root ") and lines[1].endswith(" /sh/in/data.txt")
    assert f" {local.stat().st_size} " in lines[1]
    rc, out, _ = sh(cluster, "dfs", "-cat", "/sh/in/data.txt")
    assert rc == 0 and out == local.read_text()
    got = tmp_path / "back.txt"
    assert sh(cluster, "dfs", "-get", "/sh/in/data.txt", str(got))[0] == 0
    assert got.read_bytes() == local.read_bytes()
    rc, _, err = sh(cluster, "dfs", "-rm", "/sh/in")
    assert rc == 1 and "Is a directory" in err
    rc, out, _ = sh(cluster, "dfs", "-rm", "-r", "/sh")
    assert rc == 0 and out == "Deleted /sh\n"
    rc, _, err = sh(cluster, "dfs", "-ls", "/sh")
    assert rc == 1 and err == "ls: `/sh': No such file or directory\n"


def test_mkdir_without_parents_fails(cluster):
    rc, _, err = sh(cluster, "dfs", "-mkdir", "/nope/deeper")
    assert rc == 1 and "`/nope': No such file or directory" in err


def test_fsck_reports_blocks_racks_and_health(cluster, tmp_path):
    local = tmp_path / "big"
    local.write_bytes(os.urandom(3 * 64 * 1024 + 10))
    assert sh(cluster, "dfs", "-put", str(local), "/fsck-me")[0] == 0
    rc, out, _ = sh(cluster, "fsck", "/fsck-me", "-files", "-blocks", "-racks")
    assert rc == 0
    assert "/fsck-me 196618 bytes, replicated: replication=3, 4 block(s):  OK" in out
    block_lines = [line for line in out.splitlines() if ". blk_" in line]
    assert len(block_lines) == 4 and all(
        "/rack1/" in line and "/rack2/" in line for line in block_lines
    )
    assert "The filesystem under path '/fsck-me' is HEALTHY" in out


def test_dfsadmin_report_lists_live_nodes(cluster):
    rc, out, _ = sh(cluster, "dfsadmin", "-report")
    assert rc == 0
    assert "Live datanodes (4):" in out and "Dead datanodes (0):" in out
    assert out.count("Rack: /rack1") == 2 and out.count("Rack: /rack2") == 2
    assert sh(cluster, "dfsadmin", "-safemode", "get")[1] == "Safe mode is OFF\n"


def test_usage_errors(cluster):
    assert sh(cluster, "dfs", "-frob")[0] == 255
    assert sh(cluster, "nothing")[0] == 255


def test_dfsadmin_safemode_enter_and_leave(cluster):
    assert sh(cluster, "dfsadmin", "-safemode", "enter") == (0, "Safe mode is ON\n", "")
    assert sh(cluster, "dfsadmin", "-safemode", "get")[1] == "Safe mode is ON\n"
    rc, _, err = sh(cluster, "dfs", "-mkdir", "-p", "/while-safe")
    assert rc == 1 and "safe mode" in err
    assert sh(cluster, "dfsadmin", "-safemode", "leave") == (0, "Safe mode is OFF\n", "")
    assert sh(cluster, "dfs", "-mkdir", "-p", "/while-safe")[0] == 0


def test_more_fs_shell_commands(cluster, tmp_path):
    local = tmp_path / "part"
    local.write_text("one\n")
    assert sh(cluster, "dfs", "-touchz", "/more/empty")[0] == 0
    assert sh(cluster, "dfs", "-test", "-z", "/more/empty")[0] == 0
    assert sh(cluster, "dfs", "-test", "-d", "/more")[0] == 0
    assert sh(cluster, "dfs", "-test", "-e", "/more/nothing")[0] == 1
    assert sh(cluster, "dfs", "-appendToFile", str(local), str(local), "/more/log")[0] == 0
    assert sh(cluster, "dfs", "-cat", "/more/log")[1] == "one\none\n"
    assert sh(cluster, "dfs", "-tail", "/more/log")[1] == "one\none\n"
    assert sh(cluster, "dfs", "-mv", "/more/log", "/more/log2")[0] == 0
    assert sh(cluster, "dfs", "-test", "-f", "/more/log2")[0] == 0
    assert sh(cluster, "dfs", "-chmod", "600", "/more/log2")[0] == 0
    assert sh(cluster, "dfs", "-chown", "alice:staff", "/more/log2")[0] == 0
    line = sh(cluster, "dfs", "-ls", "/more/log2")[1]
    assert line.startswith("-rw-------   3 alice staff ")
    rc, out, _ = sh(cluster, "dfs", "-setrep", "-w", "2", "/more/log2")
    assert rc == 0 and out.startswith("Replication 2 set: /more/log2\nWaiting for /more/log2 ...")
    assert out.endswith(" done\n")
    assert sh(cluster, "dfs", "-du", "-s", "/more")[1] == "8  16  /more\n"  # 8 bytes, twice
    assert sh(cluster, "dfs", "-count", "/more")[1].split() == ["1", "2", "8", "/more"]


def sh_native(cluster, *argv):
    """The shell with the NameNode's RPC address: metadata over Hadoop IPC."""
    out, err = io.StringIO(), io.StringIO()
    rpc = f"{cluster.nn_ip}:{cluster.nn_rpc}"
    rc = run(cluster.url, list(argv), out, err, user="root", rpc=rpc)
    return rc, out.getvalue(), err.getvalue()


def test_native_door_prints_what_webhdfs_prints(cluster, tmp_path):
    """With the NameNode's fs.defaultFS address the shell works as Hadoop's `hdfs dfs`
    does: metadata over Hadoop IPC, files written (and appended to) down DataNode
    pipelines with OP_WRITE_BLOCK and read with OP_READ_BLOCK; its output, errors and
    exit codes are the same as through WebHDFS."""
    local = tmp_path / "f.txt"
    local.write_text("".join(f"native door {i}\n" for i in range(12_000)))  # 4 blocks
    assert sh(cluster, "dfs", "-mkdir", "-p", "/door/a/b")[0] == 0
    assert sh(cluster, "dfs", "-put", str(local), "/door/a/f.txt")[0] == 0
    reads = [
        ("-ls", "/door"),
        ("-ls", "-R", "/door"),
        ("-du", "/door"),
        ("-du", "-s", "/door"),
        ("-count", "/door"),
        ("-test", "-d", "/door/a"),
        ("-test", "-e", "/door/nope"),
        ("-cat", "/door/a/f.txt"),
        ("-tail", "/door/a/f.txt"),
        ("-cat", "/door/a/nope"),
        ("-ls", "/door/nope"),
        ("-rm", "/door/a"),
        ("-mkdir", "/door/x/y"),
        ("-chmod", "755", "/door/nope"),
        ("-mv", "/door/nope", "/door/z"),
    ]
    for argv in reads:
        web, native = sh(cluster, "dfs", *argv), sh_native(cluster, "dfs", *argv)
        assert native == web, argv
    assert sh_native(cluster, "dfs", "-ls", "/door/nope")[0] == 1  # an error, not a pass
    # Contents come from the DataNodes over OP_READ_BLOCK, byte for byte.
    got = tmp_path / "got.txt"
    assert sh_native(cluster, "dfs", "-get", "/door/a/f.txt", str(got))[0] == 0
    assert got.read_bytes() == local.read_bytes()
    # Changes: each door on its own tree, the same words (the tree's name aside).
    changes = [
        ("-mkdir", "-p", "{p}/d"),
        ("-put", str(local), "{p}/d/f"),
        ("-chmod", "600", "{p}/d/f"),
        ("-chown", "alice:staff", "{p}/d/f"),
        ("-setrep", "2", "{p}/d/f"),
        ("-mv", "{p}/d/f", "{p}/d/g"),
        ("-put", str(local), "{p}/d/g"),  # refused: it exists
        ("-cat", "{p}/d/g"),
        ("-appendToFile", str(local), "{p}/d/g"),  # into its last block's partial chunk
        ("-tail", "{p}/d/g"),
        ("-touchz", "{p}/d/e"),
        ("-mkdir", "{p}/d"),
    ]
    said = {}
    for prefix, shell in (("/web", sh), ("/native", sh_native)):
        said[prefix] = [
            tuple(
                x.replace(prefix, "{p}") if isinstance(x, str) else x
                for x in shell(cluster, "dfs", *(a.format(p=prefix) for a in argv))
            )
            for argv in changes
        ]
    assert said["/native"] == said["/web"]
    assert said["/native"][-1][0] == 1  # mkdir of an existing directory is refused
    cat = changes.index(("-cat", "{p}/d/g"))
    assert said["/native"][cat][1] == local.read_text()  # written and read back natively
    got = tmp_path / "appended.txt"
    assert sh_native(cluster, "dfs", "-get", "/native/d/g", str(got))[0] == 0
    assert got.read_text() == local.read_text() * 2
    client = WebHdfsClient(cluster.url, user="root")
    try:
        for prefix in ("/web", "/native"):
            st = client.status(f"{prefix}/d/g")
            assert (st["permission"], st["owner"], st["group"], st["replication"]) == (
                "600",
                "alice",
                "staff",
                2,
            )
            assert client.status(f"{prefix}/d/e")["length"] == 0
    finally:
        client.close()
    assert sh_native(cluster, "dfs", "-rm", "-r", "/native")[1] == "Deleted /native\n"
