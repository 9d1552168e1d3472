"""HDFS ACLs through both front doors, as Hadoop 3's NameNode has them
(dfs.namenode.acls.enabled defaults to true): the unmodified hdfs-native client over
ClientNamenodeProtocol's acl.proto calls and HdfsCLI over WebHDFS's ACL operations, one
namespace behind both; the mask computed as AclTransformation computes it, default ACLs
inherited by new files and directories, access checked through named entries (limited by
the mask), the "+" of an ACL in statuses, Hadoop's AclException words, and the ACLs kept
across a NameNode restart (edit log, then checkpoint)."""

from __future__ import annotations

import json

import pytest
import requests
from hdfs import InsecureClient
from hdfs.util import HdfsError

from lab.services.hdfs import acl
from lab.services.hdfs.minicluster import MiniCluster
from lab.services.hdfs.namespace import Namespace

from .rawipc import RawIpc
from .shellrun import run_shell

hdfs_native = pytest.importorskip("hdfs_native")
AclEntry = hdfs_native.AclEntry


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with MiniCluster(tmp_path_factory.mktemp("dfs"), racks={"/rack1": 1}).running() as c:
        yield c


@pytest.fixture(scope="module")
def url(cluster):
    return f"hdfs://{cluster.nn_ip}:{cluster.nn_rpc}"


def as_user(url, monkeypatch, user):
    # hdfs-native takes a simple-auth user from HADOOP_USER_NAME when it connects.
    monkeypatch.setenv("HADOOP_USER_NAME", user)
    return hdfs_native.Client(url)


def said(err) -> str:
    """What an hdfs-native RuntimeError carries (its text shows quotes escaped)."""
    return str(err.value).replace('\\"', '"')


def entries(status) -> list[str]:
    """hdfs-native's AclEntry objects as Hadoop's stable strings."""
    out = []
    for e in status.entries:
        scope = "default:" if e.scope == "default" else ""
        out.append(f"{scope}{e.type}:{e.name or ''}:{e.permissions}")
    return out


def test_named_user_refused_then_allowed(cluster, url, monkeypatch):
    root = hdfs_native.Client(url)
    root.mkdirs("/acl", permission=0o755)
    root.mkdirs("/acl/team", permission=0o750)
    with root.create("/acl/team/plan.txt") as f:
        f.write(b"the plan\n")
    bob = as_user(url, monkeypatch, "bob")
    with pytest.raises(RuntimeError) as err:
        list(bob.list_status("/acl/team"))
    assert "AccessControlException" in str(err.value)
    assert (
        'Permission denied: user=bob, access=READ_EXECUTE, inode="/acl/team":'
        "root:supergroup:drwxr-x---"
    ) in said(err)
    root.modify_acl_entries("/acl/team", [AclEntry("user", "access", "r-x", "bob")])
    names = [s.path for s in bob.list_status("/acl/team")]
    assert names == ["/acl/team/plan.txt"]
    # The mask is the union of the group class (group r-x, bob r-x) and shows as the
    # group bits; the named entry and the owning group's are the ACL's own entries.
    st = root.get_acl_status("/acl/team")
    assert (st.owner, st.group, st.sticky) == ("root", "supergroup", False)
    assert entries(st) == ["user:bob:r-x", "group::r-x"]
    assert st.permission & 0o777 == 0o750
    # A narrower mask limits the named user: refused again, and the refusal says it came
    # through the ACL ("+").
    root.modify_acl_entries("/acl/team", [AclEntry("mask", "access", "--x")])
    with pytest.raises(RuntimeError) as err:
        list(bob.list_status("/acl/team"))
    assert 'inode="/acl/team":root:supergroup:drwx--x---+' in said(err)
    # Through the other door, the same answers.
    web = InsecureClient(cluster.url, user="root")
    status = web.acl_status("/acl/team")
    assert status == {
        "entries": ["user:bob:r-x", "group::r-x"],
        "group": "supergroup",
        "owner": "root",
        "permission": "710",
        "stickyBit": False,
    }
    assert web.status("/acl/team")["aclBit"] is True
    assert "aclBit" not in web.status("/acl/team/plan.txt")
    with pytest.raises(HdfsError, match="Permission denied: user=bob, access=READ_EXECUTE"):
        InsecureClient(cluster.url, user="bob").list("/acl/team")
    web.set_acl("/acl/team", "mask::r-x", clear=False)  # MODIFYACLENTRIES
    assert InsecureClient(cluster.url, user="bob").list("/acl/team") == ["plan.txt"]
    # The status's permission carries the ACL bit on the RPC door (FsPermissionExtension).
    assert root.get_file_info("/acl/team").permission & 0o777 == 0o750
    root.remove_acl("/acl/team")
    st = root.get_acl_status("/acl/team")
    assert entries(st) == [] and st.permission == 0o750
    assert "aclBit" not in web.status("/acl/team")


def test_default_acl_inherited_by_new_children(cluster, url):
    root = hdfs_native.Client(url)
    root.mkdirs("/acl/shared", permission=0o755, create_parent=True)
    root.set_acl(
        "/acl/shared",
        [
            AclEntry("user", "default", "rwx"),
            AclEntry("user", "default", "rw-", "carol"),
            AclEntry("group", "default", "r-x"),
            AclEntry("other", "default", "---"),
        ],
    )
    st = root.get_acl_status("/acl/shared")
    # The default mask is computed (union of group r-x and carol rw-).
    assert entries(st) == [
        "default:user::rwx",
        "default:user:carol:rw-",
        "default:group::r-x",
        "default:mask::rwx",
        "default:other::---",
    ]
    # A new file: the default entries as its access ACL, the mode it was created with
    # (0644 from hdfs-native) filtering owner, mask and other.
    with root.create("/acl/shared/f") as f:
        f.write(b"x")
    st = root.get_acl_status("/acl/shared/f")
    assert entries(st) == ["user:carol:rw-", "group::r-x"]
    assert st.permission & 0o777 == 0o640  # owner rwx&rw-, mask rwx&r--, other ---
    # A new directory also takes the default ACL itself.
    root.mkdirs("/acl/shared/sub", permission=0o755)
    st = root.get_acl_status("/acl/shared/sub")
    assert entries(st)[:2] == ["user:carol:rw-", "group::r-x"]
    assert "default:user:carol:rw-" in entries(st)
    assert st.permission & 0o777 == 0o750
    # Through WebHDFS too.
    web = InsecureClient(cluster.url, user="root")
    web.makedirs("/acl/shared/webdir")
    assert "default:user:carol:rw-" in web.acl_status("/acl/shared/webdir")["entries"]
    root.remove_default_acl("/acl/shared")
    assert entries(root.get_acl_status("/acl/shared")) == []
    with root.create("/acl/shared/g") as f:
        f.write(b"y")
    assert entries(root.get_acl_status("/acl/shared/g")) == []


def test_hadoop_refusals(cluster, url, monkeypatch):
    root = hdfs_native.Client(url)
    root.mkdirs("/acl/r", permission=0o755, create_parent=True)
    with root.create("/acl/r/file") as f:
        f.write(b"z")
    cases = [
        # Only directories may have a default ACL.
        (
            "/acl/r/file",
            [AclEntry("user", "default", "rwx", "bob")],
            "Invalid ACL: only directories may have a default ACL.",
        ),
        # A mask may not carry a name.
        (
            "/acl/r",
            [AclEntry("mask", "access", "rwx", "bob")],
            "Invalid ACL: this entry type must not have a name: mask:bob:rwx.",
        ),
    ]
    for path, spec, message in cases:
        with pytest.raises(RuntimeError) as err:
            root.modify_acl_entries(path, spec)
        assert "org.apache.hadoop.hdfs.protocol.AclException" in str(err.value)
        assert message in str(err.value)
    with pytest.raises(RuntimeError, match="the user, group and other entries are required"):
        root.set_acl("/acl/r", [AclEntry("user", "access", "rwx", "bob")])
    root.modify_acl_entries("/acl/r", [AclEntry("user", "access", "rwx", "bob")])
    with pytest.raises(RuntimeError, match="mask is required, but it was deleted"):
        root.remove_acl_entries("/acl/r", [AclEntry("mask", "access", "---")])
    # Only the owner (or the superuser) may change an ACL.
    bob = as_user(url, monkeypatch, "bob")
    with pytest.raises(RuntimeError, match="Permission denied. user=bob is not the owner"):
        bob.remove_acl("/acl/r")
    # WebHDFS: a spec Hadoop cannot parse is a 400 with its words.
    web = InsecureClient(cluster.url, user="root")
    with pytest.raises(HdfsError, match="Invalid type of acl in <aclSpec> :bogus:bob:rwx"):
        web.set_acl("/acl/r", "bogus:bob:rwx")
    with pytest.raises(HdfsError, match="Invalid permission in <aclSpec> : user:bob:rwz"):
        web.set_acl("/acl/r", "user:bob:rwz")


def test_acls_survive_a_namenode_restart(cluster, url):
    root = hdfs_native.Client(url)
    root.mkdirs("/acl/kept", permission=0o750, create_parent=True)
    root.modify_acl_entries(
        "/acl/kept",
        [AclEntry("user", "access", "r-x", "dave"), AclEntry("group", "default", "r-x", "ops")],
    )
    before = entries(root.get_acl_status("/acl/kept"))
    assert "user:dave:r-x" in before and "default:group:ops:r-x" in before
    cluster.restart_namenode()  # the edit log replayed
    cluster.wait_active()
    root = hdfs_native.Client(url)
    assert entries(root.get_acl_status("/acl/kept")) == before


def test_acls_in_the_fsimage():
    """A checkpoint keeps every inode's ACL feature, and an image with a damaged one is
    refused as a whole."""
    ns = Namespace("root", "supergroup")
    ns.apply({"op": "OP_MKDIR", "path": "/d", "inodeIds": [ns.last_inode_id + 1],
              "owner": "root", "group": "supergroup", "mode": 0o750, "mtime": 1})  # fmt: skip
    spec = "user::rwx,user:bob:r-x,group::r-x,mask::r-x,other::---,default:user::rwx," \
        "default:group::r-x,default:other::---"  # fmt: skip
    ns.apply({"op": "OP_SET_ACL", "src": "/d", "aclEntries": spec.split(",")})
    image = json.loads(json.dumps(dict(ns.to_image(), txid=1)))
    again = Namespace("root", "supergroup")
    again.load_image(image)
    d = again.get("/d")
    assert d.mode == 0o750 and d.acl == ns.get("/d").acl
    assert [str(e) for e in d.acl] == [
        "user:bob:r-x", "group::r-x", "default:user::rwx", "default:group::r-x",
        "default:other::---",
    ]  # fmt: skip
    image["inodes"][1]["acl"] = ["user:bob:rwz"]
    with pytest.raises(ValueError, match="Invalid permission"):
        Namespace("root", "supergroup").load_image(image)


def test_acls_disabled_refused_with_hadoops_words(tmp_path):
    with MiniCluster(
        tmp_path, racks={"/rack1": 1}, settings={acl.ACLS_KEY: "false"}
    ).running() as c:
        client = hdfs_native.Client(f"hdfs://{c.nn_ip}:{c.nn_rpc}")
        client.mkdirs("/d")
        want = (
            "The ACL operation has been rejected.  Support for ACLs has been disabled by "
            "setting dfs.namenode.acls.enabled to false."
        )
        with pytest.raises(RuntimeError) as err:
            client.get_acl_status("/d")
        assert want in str(err.value) and "AclException" in str(err.value)
        with pytest.raises(HdfsError, match="Support for ACLs has been disabled"):
            InsecureClient(c.url, user="root").set_acl("/d", "user:bob:rwx", clear=False)


@pytest.mark.parametrize(
    "existing,spec,op,want",
    [
        # setfacl -m on a minimal ACL: the mask is the group class's union.
        ("user::rwx,group::r--,other::---", "user:bob:rw-", "merge",
         "user::rwx,user:bob:rw-,group::r--,mask::rw-,other::---"),
        # A given mask is kept.
        ("user::rwx,group::r--,other::---", "user:bob:rw-,mask::r--", "merge",
         "user::rwx,user:bob:rw-,group::r--,mask::r--,other::---"),
        # A default entry alone brings the default base entries from the access ones.
        ("user::rwx,group::r-x,other::r--", "default:user:bob:r-x", "merge",
         "user::rwx,group::r-x,other::r--,default:user::rwx,default:user:bob:r-x,"
         "default:group::r-x,default:mask::r-x,default:other::r--"),
        # Removing the last named entry leaves a minimal ACL: no mask.
        ("user::rwx,user:bob:rw-,group::r--,mask::rw-,other::---", "user:bob:", "filter",
         "user::rwx,group::r--,other::---"),
        # setAcl of access entries keeps the default ones.
        ("user::rwx,group::r-x,other::---,default:user::rwx,default:group::r-x,"
         "default:other::---", "user::rw-,group::r--,other::r--", "replace",
         "user::rw-,group::r--,other::r--,default:user::rwx,default:group::r-x,"
         "default:other::---"),
    ],
)  # fmt: skip
def test_acl_transformation(existing, spec, op, want):
    fn = {
        "merge": acl.merge_entries,
        "filter": acl.filter_by_spec,
        "replace": acl.replace_entries,
    }[op]
    got = fn(acl.parse_spec(existing), acl.parse_spec(spec, with_perm=op != "filter"))
    assert ",".join(map(str, got)) == want


def shell_run(cluster, *argv: str, native: bool) -> tuple[int, str, str]:
    return run_shell(cluster, *argv, native=native)


@pytest.mark.parametrize("native", [False, True], ids=["webhdfs", "native"])
def test_shell_setfacl_getfacl_and_ls(cluster, native):
    """`hdfs dfs -setfacl/-getfacl` as Hadoop prints them, and -ls's "+", the same
    through either door."""
    d = f"/acl/sh-{native}"
    assert shell_run(cluster, "dfs", "-mkdir", "-p", d, native=native)[0] == 0
    assert shell_run(cluster, "dfs", "-chmod", "750", d, native=native)[0] == 0
    assert shell_run(cluster, "dfs", "-setfacl", "-m", "user:bob:rwx", d, native=native) == (
        0,
        "",
        "",
    )
    assert shell_run(cluster, "dfs", "-setfacl", "-m", "mask::r-x", d, native=native)[0] == 0
    assert (
        shell_run(cluster, "dfs", "-setfacl", "-m", "default:group:ops:r-x", d, native=native)[0]
        == 0
    )
    rc, out, err = shell_run(cluster, "dfs", "-getfacl", d, native=native)
    assert (rc, err) == (0, "")
    assert out == (
        f"# file: {d}\n# owner: root\n# group: supergroup\n"
        "user::rwx\nuser:bob:rwx\t#effective:r-x\ngroup::r-x\nmask::r-x\nother::---\n"
        "default:user::rwx\ndefault:group::r-x\ndefault:group:ops:r-x\n"
        "default:mask::r-x\ndefault:other::---\n\n"
    )
    rc, out, _ = shell_run(cluster, "dfs", "-ls", "/acl", native=native)
    line = next(x for x in out.splitlines() if x.endswith(d))
    assert line.startswith("drwxr-x---+  - root supergroup")
    rc, out, err = shell_run(cluster, "dfs", "-setfacl", "-m", "bogus:bob:rwx", d, native=native)
    assert (rc, err.splitlines()[0]) == (
        255,
        "-setfacl: Invalid type of acl in <aclSpec> :bogus:bob:rwx",
    )
    assert shell_run(cluster, "dfs", "-setfacl", "-b", d, native=native)[0] == 0
    rc, out, _ = shell_run(cluster, "dfs", "-getfacl", d, native=native)
    assert out.endswith("user::rwx\ngroup::r-x\nother::---\n\n")


def test_inheritance_uses_the_unmasked_mode(cluster):
    """HDFS-6962: a client that sends the mode it asked for before its umask gets that
    mode filtered by the parent's default ACL; without a default ACL, the umasked one."""
    raw = RawIpc(cluster)
    try:
        raw.call("mkdirs", {"src": "/acl/posix", "masked": {"perm": 0o755}, "createParent": True})
        raw.call(
            "setAcl",
            {
                "src": "/acl/posix",
                "aclSpec": [
                    acl.to_proto(e)
                    for e in acl.parse_spec(
                        "default:user::rwx,default:group::rwx,default:other::r-x"
                    )
                ],
            },
        )

        def mkdir(path: str) -> int:
            masked, unmasked = {"perm": 0o755}, {"perm": 0o777}
            raw.call(
                "mkdirs",
                {"src": path, "masked": masked, "unmasked": unmasked, "createParent": False},
            )
            return raw.call("getFileInfo", {"src": path})["fs"]["permission"]["perm"]

        # The default ACL is minimal (three entries): the child's group bits come from it,
        # filtered by the unmasked group bits (rwx), not the umasked ones (r-x).
        assert mkdir("/acl/posix/kid") & 0o7777 == 0o775
        raw.call("removeDefaultAcl", {"src": "/acl/posix"})
        assert mkdir("/acl/posix/plain") & 0o7777 == 0o755
    finally:
        raw.close()


def test_webhdfs_unmasked_permission(cluster):
    """WebHDFS's unmaskedpermission (MKDIRS, and CREATE through its DataNode) plays the
    part of the RPC door's `unmasked` under a default ACL."""
    web = InsecureClient(cluster.url, user="root")
    web.makedirs("/acl/webposix")
    web.set_acl("/acl/webposix", "default:user::rwx,default:group::rwx,default:other::r-x")
    base = f"{cluster.url}/webhdfs/v1/acl/webposix"
    q = "user.name=root&permission=755&unmaskedpermission=777"
    requests.put(f"{base}/d?op=MKDIRS&{q}").raise_for_status()
    q = "user.name=root&permission=644&unmaskedpermission=666"
    requests.put(f"{base}/f?op=CREATE&{q}", data=b"x").raise_for_status()
    assert web.status("/acl/webposix/d")["permission"] == "775"
    assert web.status("/acl/webposix/f")["permission"] == "664"


def test_shell_setfacl_recursive(cluster):
    """-setfacl -R: the directories take every entry, the files only the access ones;
    -getfacl -R prints the subtree, parents first."""
    assert run_shell(cluster, "dfs", "-mkdir", "-p", "/acl/rec/sub")[0] == 0
    assert run_shell(cluster, "dfs", "-touchz", "/acl/rec/sub/f")[0] == 0
    spec = "user:bob:r-x,default:user:bob:r-x"
    assert run_shell(cluster, "dfs", "-setfacl", "-R", "-m", spec, "/acl/rec") == (0, "", "")
    web = InsecureClient(cluster.url, user="root")
    assert "default:user:bob:r-x" in web.acl_status("/acl/rec/sub")["entries"]
    assert web.acl_status("/acl/rec/sub/f")["entries"] == ["user:bob:r-x", "group::r--"]
    rc, out, _ = run_shell(cluster, "dfs", "-getfacl", "-R", "/acl/rec")
    files = [line for line in out.splitlines() if line.startswith("# file: ")]
    assert (rc, files) == (
        0,
        ["# file: /acl/rec", "# file: /acl/rec/sub", "# file: /acl/rec/sub/f"],
    )
    assert run_shell(cluster, "dfs", "-getfacl", "-R", "/acl/nope")[2] == (
        "getfacl: `/acl/nope': No such file or directory\n"
    )
