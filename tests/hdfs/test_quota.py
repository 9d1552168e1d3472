"""Directory quotas as Hadoop's NameNode enforces them: `hdfs dfsadmin -setQuota` and
`-setSpaceQuota` (the superuser's), names and bytes refused with Hadoop's
NSQuotaExceededException and DSQuotaExceededException words through hdfs-native and
HdfsCLI, the quotas in content summaries, cleared again, and kept across a restart."""

from __future__ import annotations

import pytest
from hdfs import InsecureClient
from hdfs.util import HdfsError

from lab.services.hdfs.quota import long2string

from .conftest import one_datanode
from .shellrun import run_shell

hdfs_native = pytest.importorskip("hdfs_native")
BLOCK = 256 * 1024


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with one_datanode(tmp_path_factory, BLOCK).running() as c:
        yield c


def admin(cluster, *argv: str, user: str = "root") -> tuple[int, str, str]:
    return run_shell(cluster, "dfsadmin", *argv, user=user)


def test_namespace_quota(cluster):
    client = hdfs_native.Client(f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}")
    client.mkdirs("/q/ns", create_parent=True)
    assert admin(cluster, "-setQuota", "3", "/q/ns") == (0, "", "")
    client.mkdirs("/q/ns/a")
    with client.create("/q/ns/f") as f:
        f.write(b"1")
    # The directory itself counts: 3 names are /q/ns, a and f.
    with pytest.raises(RuntimeError) as err:
        client.mkdirs("/q/ns/b")
    assert "org.apache.hadoop.hdfs.protocol.NSQuotaExceededException" in str(err.value)
    assert (
        "The NameSpace quota (directories and files) of directory /q/ns is exceeded: "
        "quota=3 file count=4"
    ) in str(err.value)
    web = InsecureClient(cluster.url, user="root")
    with pytest.raises(HdfsError, match="quota=3 file count=4"):
        web.write("/q/ns/g", b"x")
    # A rename into it is counted too (the subtree it brings).
    client.mkdirs("/q/elsewhere/d", create_parent=True)
    with pytest.raises(RuntimeError, match="NSQuotaExceededException"):
        client.rename("/q/elsewhere/d", "/q/ns/d")
    summary = client.get_content_summary("/q/ns")
    assert (summary.quota, summary.directory_count, summary.file_count) == (3, 2, 1)
    assert web.content("/q/ns")["quota"] == 3 and web.content("/q/elsewhere")["quota"] == -1
    assert admin(cluster, "-clrQuota", "/q/ns") == (0, "", "")
    client.mkdirs("/q/ns/b")
    assert web.content("/q/ns")["quota"] == -1


def test_space_quota(cluster):
    client = hdfs_native.Client(f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}")
    client.mkdirs("/q/space", create_parent=True)
    assert admin(cluster, "-setSpaceQuota", "512k", "/q/space") == (0, "", "")
    # Two blocks fit; the third addBlock would charge a whole block more.
    with pytest.raises(RuntimeError) as err:
        with client.create("/q/space/big") as f:
            f.write(b"x" * (2 * BLOCK + 1000))
    want = (
        "The DiskSpace quota of /q/space is exceeded: quota = 524288 B = 512 KB but "
        "diskspace consumed = 786432 B = 768 KB"
    )
    assert "DSQuotaExceededException" in str(err.value) and want in str(err.value)
    # The two blocks written still count; once the file is gone a small one fits.
    assert client.delete("/q/space/big")
    with client.create("/q/space/small") as f:
        f.write(b"y" * 1000)
    assert InsecureClient(cluster.url, user="root").content("/q/space")["spaceQuota"] == 524288
    # Kept across a restart (OP_SET_QUOTA replayed).
    cluster.restart_namenode()
    cluster.wait_active()
    client = hdfs_native.Client(f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}")
    assert client.get_content_summary("/q/space").space_quota == 524288
    assert admin(cluster, "-clrSpaceQuota", "/q/space") == (0, "", "")
    assert client.get_content_summary("/q/space").space_quota == (1 << 64) - 1  # -1


def test_quota_refusals(cluster):
    hdfs_native.Client(f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}").mkdirs(
        "/q/r", create_parent=True
    )
    assert admin(cluster, "-setQuota", "5", "/q/r", user="bob") == (
        255,
        "",
        "setQuota: Access denied for user bob. Superuser privilege is required\n",
    )
    rc, _, err = admin(cluster, "-setQuota", "5", "/q/nope")
    assert (rc, err) == (255, "setQuota: Directory does not exist: /q/nope\n")
    rc, _, err = admin(cluster, "-setQuota", "0", "/q/r")
    assert rc == 255 and err.startswith("setQuota: Invalid values for quota : 0\n")
    rc, _, err = admin(cluster, "-setQuota", "abc", "/q/r")
    assert rc == 255 and err.startswith('setQuota: For input string: "abc"\n')


@pytest.mark.parametrize(
    "n,text",
    [
        (1000, "1000 B"),
        (1024, "1 KB"),
        (1536, "1.50 KB"),
        (3 << 20, "3 MB"),
        ((1 << 30) - 1, "1.00 GB"),
    ],
)
def test_long2string(n, text):
    assert long2string(n) == text
