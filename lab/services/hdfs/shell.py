"""`lab hdfs dfs|fsck|dfsadmin`: Hadoop's FsShell, fsck and dfsadmin -report over WebHDFS,
/fsck and /jmx, with Hadoop's output layout and error messages. Given the NameNode's RPC
address, FsShell talks as Hadoop's own shell does instead (nativeclient.py: metadata over
Hadoop IPC, file contents over DataTransferProtocol); what it prints is the same.

Call `run(namenode_url, argv, out, err)` with argv as Hadoop's `hdfs` command takes it,
e.g. ["dfs", "-ls", "/"], ["fsck", "/", "-files", "-blocks"], ["dfsadmin", "-report"].
Also runnable alone: python -m lab.services.hdfs.shell --namenode HOST:9870 [--rpc HOST:8020]
dfs -ls /
"""

from __future__ import annotations

import contextlib
import fnmatch
import http.client
import json
import posixpath
import re
import sys
import time
from functools import partial
from pathlib import Path
from typing import TextIO

from ..hadoop import errors
from ..hadoop.conf import parse_size
from ..hadoop.webclient import WebHdfsClient
from . import acl
from .namespace import mode_string
from .nativeclient import NativeClient
from .replacedatanode import BEST_EFFORT_KEY, ENABLE_KEY, POLICIES, POLICY_KEY
from .shell_more import MoreCommands, human
from .shell_snapshots import ls_snapshottable, snapshot_diff

USAGE = """Usage: hdfs [--user NAME] COMMAND
  dfs [-D KEY=VALUE]... one of:
      -ls [-R] PATH... | -mkdir [-p] PATH... | -put [-f] [-d] LOCAL... DST | -get SRC... LOCALDST
      -cat PATH... | -rm [-r] [-f] [-skipTrash] PATH... | -mv SRC... DST | -touchz PATH...
      -appendToFile LOCAL... DST | -tail PATH | -setrep [-w] N PATH... | -chmod MODE PATH...
      -chown OWNER[:GROUP] PATH... | -chgrp GROUP PATH... | -du [-s] [-h] [-v] PATH...
      -count [-q] [-h] [-v] PATH... | -test -e|-d|-f|-z PATH | -stat [FORMAT] PATH...
      -checksum PATH... | -head PATH | -text PATH... | -df [-h] | -cp [-f] [-p] SRC... DST
      -rmdir [--ignore-fail-on-non-empty] DIR... | -touch [-a] [-m] [-c] [-t TIME] PATH...
      -getmerge [-nl] [-skip-empty-file] SRC... LOCALDST | -find PATH... -name PATTERN
      -getfacl [-R] PATH... | -setfacl [-R] {-b|-k} PATH | -setfacl [-R] {-m|-x|--set} SPEC PATH
      -createSnapshot DIR [NAME] | -deleteSnapshot DIR NAME | -renameSnapshot DIR OLD NEW
  fsck PATH [-files [-blocks [-locations | -racks]]]
  dfsadmin -report [-live] [-dead] | -safemode get|enter|leave
  dfsadmin -setQuota N DIR... | -clrQuota DIR...
  dfsadmin -setSpaceQuota SIZE DIR... | -clrSpaceQuota DIR...
  dfsadmin -allowSnapshot DIR | -disallowSnapshot DIR
  lsSnapshottableDir
  snapshotDiff DIR FROM TO
"""
COMMANDS = ("dfs", "fsck", "dfsadmin", "lsSnapshottableDir", "snapshotDiff")


def run(
    namenode: str,
    argv: list[str],
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    user: str | None = None,
    rpc: str | None = None,
) -> int:
    """-> exit status: 0 done, 1 an operation failed, 255 bad usage (as Hadoop's shell).
    With `rpc` (the NameNode's fs.defaultFS address), dfs goes over Hadoop IPC and the
    DataNodes' data-transfer protocol as Hadoop's shell does; fsck and dfsadmin stay on
    HTTP, as Hadoop's do."""
    if argv and argv[0] == "--user" and len(argv) > 1:
        user, argv = argv[1], argv[2:]
    client = WebHdfsClient(namenode, user=user or _default_user())
    try:
        if rpc is not None:
            client = NativeClient(rpc, client)
        if not argv:
            err.write(USAGE)
            return 255
        cmd, args = argv[0], argv[1:]
        if cmd == "dfs":
            return Dfs(client, out, err).run(args)
        if cmd == "fsck":
            return fsck(client, args, out, err)
        if cmd == "dfsadmin":
            return dfsadmin(client, args, out, err)
        if cmd == "lsSnapshottableDir":
            return ls_snapshottable(client, args, out, err)
        if cmd == "snapshotDiff":
            return snapshot_diff(client, args, out, err)
        err.write(f"{cmd}: Unknown command\n{USAGE}")
        return 255
    except OSError as exc:
        err.write(f"Call to NameNode {rpc or namenode} failed: {exc}\n")
        return 1
    finally:
        client.close()


# How many arguments each snapshot command takes (at least, at most).
SNAPSHOT_ARGS = {"-createSnapshot": (1, 2), "-deleteSnapshot": (2, 2), "-renameSnapshot": (3, 3)}
_GLOB = re.compile(r"[*?\[{]")


def _braces(pattern: str) -> list[str]:
    """{a,b} alternatives spelled out (not nested): /x/{a,b}.txt -> /x/a.txt, /x/b.txt."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    return [
        x
        for alt in m.group(1).split(",")
        for x in _braces(pattern[: m.start()] + alt + pattern[m.end() :])
    ]


def _default_user() -> str:
    import getpass

    return getpass.getuser()


class Dfs(MoreCommands):
    def __init__(self, client: WebHdfsClient, out: TextIO, err: TextIO) -> None:
        self.c, self.out, self.err = client, out, err
        self.conf: dict[str, str] = {}  # -D options

    def run(self, args: list[str]) -> int:
        args = self._generic_options(args)
        if args is None:
            return 255
        if not args:
            self.err.write(USAGE)
            return 255
        cmd, rest = args[0], args[1:]
        flags = {a for a in rest if a.startswith("-") and len(a) > 1}
        paths = [a for a in rest if a not in flags]
        handler = {
            "-ls": self.ls,
            "-mkdir": self.mkdir,
            "-put": self.put,
            "-copyFromLocal": self.put,
            "-get": self.get,
            "-copyToLocal": self.get,
            "-cat": self.cat,
            "-rm": self.rm,
            "-mv": self.mv,
            "-touchz": self.touchz,
            "-appendToFile": self.append_to_file,
            "-tail": self.tail,
            "-setrep": self.setrep,
            "-chmod": self.chmod,
            "-chown": self.chown,
            "-du": self.du,
            "-count": self.count,
            "-test": self.test,
            "-getfacl": self.getfacl,
            "-setfacl": self.setfacl,
            **{c: partial(self.snapshot_cmd, c) for c in SNAPSHOT_ARGS},
            **self.handlers(),
        }.get(cmd)
        if handler is None:
            self.err.write(f"{cmd}: Unknown command\n")
            return 255
        if cmd == "-find":  # its own grammar: PATH... -name PATTERN -print
            return self.find(set(), rest)
        if not paths and cmd not in ("-ls", "-df"):
            self.err.write(f"{cmd}: Not enough arguments\n")
            return 255
        paths, missing, matched = self._globbed(cmd, paths)
        if missing and not matched:  # every glob matched nothing: said so, nothing to do
            return 1
        return handler(flags, paths) or (1 if missing else 0)

    def _generic_options(self, args: list[str]) -> list[str] | None:
        """GenericOptionsParser's -D key=value (or -Dkey=value) before the command: the
        client's configuration for this run (dfs.replication, dfs.blocksize,
        dfs.client.block.write.replace-datanode-on-failure.policy)."""
        while args and args[0].startswith("-D"):
            pair = args[0][2:] or (args[1] if len(args) > 1 else "")
            args = args[1:] if args[0][2:] else args[2:]
            key, eq, value = pair.partition("=")
            if not key or not eq:
                self.err.write(f"-D: expected key=value, got '{pair}'\n{USAGE}")
                return None
            self.conf[key] = value
        policy = self.conf.get(POLICY_KEY, "DEFAULT").upper()
        if policy not in POLICIES:  # Policy.valueOf, at the client's start
            self.err.write(
                f"Illegal value for {POLICY_KEY}: {self.conf[POLICY_KEY]} (one of "
                f"{', '.join(POLICIES)})\n"
            )
            return None
        if hasattr(self.c, "replace_policy"):  # the native door's writer
            self.c.replace_policy = policy
            if self.conf.get(ENABLE_KEY, "true").lower() == "false":
                self.c.replace_policy = "NEVER"  # ReplaceDatanodeOnFailure's DISABLE
            self.c.replace_best_effort = self.conf.get(BEST_EFFORT_KEY, "").lower() == "true"
        return args

    # Which arguments FsShell reads as HDFS globs: (leading words that are not paths,
    # trailing ones that are a destination); commands not listed take no globs.
    GLOBS = {"-ls": (0, 0), "-cat": (0, 0), "-rm": (0, 0), "-du": (0, 0), "-count": (0, 0),
             "-tail": (0, 0), "-test": (0, 0), "-setrep": (1, 0), "-chmod": (1, 0),
             "-chown": (1, 0), "-get": (0, 1), "-copyToLocal": (0, 1), "-mv": (0, 1)}  # fmt: skip

    def _globbed(self, cmd: str, paths: list[str]) -> tuple[list[str], list[str], list[str]]:
        """Paths with each glob replaced by what it matches, as Hadoop's shell does
        (*, ?, [abc], [^abc], {a,b}); a glob matching nothing is reported like a
        missing file. Returns (paths, the globs that matched nothing, the paths left)."""
        if cmd not in self.GLOBS:
            return paths, [], paths
        head, tail = self.GLOBS[cmd]
        body = paths[head : len(paths) - tail]
        out, missing = [], []
        for p in body:
            if not _GLOB.search(p):
                out.append(p)
                continue
            hits = self._expand(p)
            if not hits:
                self.err.write(f"{cmd[1:]}: `{p}': No such file or directory\n")
                missing.append(p)
            out += hits
        return paths[:head] + out + paths[len(paths) - tail :], missing, out

    def _expand(self, pattern: str) -> list[str]:
        hits: list[str] = []
        for alt in _braces(pattern):
            absolute = alt.startswith("/")
            base = "/" if absolute else f"/user/{self.c.user}"
            found = [base]
            for part in [x for x in alt.split("/") if x]:
                if not _GLOB.search(part):
                    found = [posixpath.join(b, part) for b in found]
                    continue
                nxt = []
                for b in found:
                    try:
                        items = self.c.list(b)
                    except errors.HadoopException:
                        continue
                    nxt += [posixpath.join(b, i["pathSuffix"]) for i in items
                            if i["pathSuffix"] and fnmatch.fnmatchcase(
                                i["pathSuffix"], part.replace("[^", "[!"))]  # fmt: skip
                found = nxt
            for f in sorted(found):
                if _GLOB.search(alt) and f not in hits:
                    hits.append(f if absolute else posixpath.relpath(f, base))
        return hits

    def _fail(self, cmd: str, path: str, exc: Exception) -> int:
        """Command.displayError: `cmd: ` and the exception's first line. FsShell's own
        path errors (PathNotFoundException, PathExistsException) name the path; anything
        else the NameNode or a DataNode said (Permission denied ..., a quota, All
        datanodes ... are bad) is printed as it came."""
        if isinstance(exc, errors.FileNotFoundException):
            self.err.write(f"{cmd}: `{path}': No such file or directory\n")
        elif isinstance(exc, errors.FileAlreadyExistsException):
            self.err.write(f"{cmd}: `{path}': File exists\n")
        else:
            self.err.write(f"{cmd}: {str(exc).splitlines()[0]}\n")
        return 1

    def _line(self, st: dict, path: str) -> str:
        kind = "d" if st["type"] == "DIRECTORY" else "-"
        mode = mode_string(int(st["permission"], 8))
        repl = "-" if st["type"] == "DIRECTORY" else str(st["replication"])
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(st["modificationTime"] / 1000))
        acl_mark = "+" if st.get("aclBit") else " "  # Ls: the permission, then + for an ACL
        return f"{kind}{mode}{acl_mark}  {repl:>1} {st['owner']} {st['group']} {st['length']:>10} {when} {path}\n"

    def ls(self, flags: set[str], paths: list[str]) -> int:
        rc = 0
        for path in paths or [f"/user/{self.c.user}"]:
            try:
                self._ls(path, "-R" in flags, top=True)
            except errors.HadoopException as exc:
                rc = self._fail("ls", path, exc)
        return rc

    def _ls(self, path: str, recursive: bool, top: bool) -> None:
        st = self.c.status(path)
        if st["type"] != "DIRECTORY":
            self.out.write(self._line(st, path))
            return
        items = self.c.list(path)
        if top and not recursive:
            self.out.write(f"Found {len(items)} items\n")
        for item in items:
            child = posixpath.join(path, item["pathSuffix"])
            self.out.write(self._line(item, child))
            if recursive and item["type"] == "DIRECTORY":
                self._ls(child, True, False)

    def mkdir(self, flags: set[str], paths: list[str]) -> int:
        rc = 0
        for path in paths:
            try:
                if "-p" not in flags:
                    try:
                        self.c.status(path)
                        raise errors.FileAlreadyExistsException(path)
                    except errors.FileNotFoundException:
                        pass
                    parent = posixpath.dirname(path.rstrip("/")) or "/"
                    try:
                        self.c.status(parent)
                    except errors.FileNotFoundException:
                        self.err.write(f"mkdir: `{parent}': No such file or directory\n")
                        rc = 1
                        continue
                self.c.mkdirs(path)
            except errors.HadoopException as exc:
                rc = self._fail("mkdir", path, exc)
        return rc

    def put(self, flags: set[str], paths: list[str]) -> int:
        if len(paths) < 2:
            self.err.write("put: Not enough arguments: expected 2 but got 1\n")
            return 255
        *sources, dst = paths
        try:
            dst_is_dir = self.c.status(dst)["type"] == "DIRECTORY"
        except errors.FileNotFoundException:
            dst_is_dir = False
        if len(sources) > 1 and not dst_is_dir:
            self.err.write(f"put: `{dst}': No such file or directory\n")
            return 1
        rc = 0
        for src in sources:
            target = posixpath.join(dst, Path(src).name) if dst_is_dir else dst
            try:
                with open(src, "rb") as f:
                    rc = self._copy_in(f, target, flags) or rc
            except FileNotFoundError:
                self.err.write(f"put: `{src}': No such file or directory\n")
                rc = 1
            except errors.HadoopException as exc:
                rc = self._fail("put", target, exc)
        return rc

    def _copy_in(self, f, target: str, flags: set[str], cmd: str = "put") -> int:
        """CommandWithDestination.copyStreamToTarget: an existing target is refused unless
        -f (a directory always); the bytes go to TARGET._COPYING_ (created with
        overwrite, so one left by a killed put is replaced), which is renamed to TARGET
        once whole and deleted if the copy fails; -d writes to TARGET directly."""
        st = self.c.status(target, strict=False)
        if st is not None and (st["type"] == "DIRECTORY" or "-f" not in flags):
            self.err.write(f"{cmd}: `{target}': File exists\n")
            return 1
        direct = "-d" in flags
        temp = target if direct else target + "._COPYING_"
        try:
            self.c.write(
                temp,
                iter(lambda: f.read(1 << 20), b""),
                overwrite=True,
                replication=int(self.conf["dfs.replication"])
                if "dfs.replication" in self.conf
                else None,
                blocksize=parse_size(self.conf["dfs.blocksize"])
                if "dfs.blocksize" in self.conf
                else None,
            )
        except BaseException:
            if not direct:
                with contextlib.suppress(errors.HadoopException, OSError):
                    self.c.delete(temp)
            raise
        if direct:
            return 0
        if st is not None:
            self.c.delete(target)
        if not self.c.rename(temp, target):
            self.err.write(f"{cmd}: rename `{temp}' to `{target}': Input/output error\n")
            return 1
        return 0

    def get(self, flags: set[str], paths: list[str]) -> int:
        if len(paths) < 2:
            self.err.write("get: Not enough arguments: expected 2 but got 1\n")
            return 255
        *sources, dst = paths
        rc = 0
        for src in sources:
            local = Path(dst) / posixpath.basename(src) if Path(dst).is_dir() else Path(dst)
            if local.exists():
                self.err.write(f"get: `{local}': File exists\n")
                rc = 1
                continue
            tmp = local.with_name(local.name + "._COPYING_")
            try:
                with open(tmp, "wb") as f:
                    for piece in self.c.read(src):
                        f.write(piece)
                tmp.rename(local)
            except errors.HadoopException as exc:
                tmp.unlink(missing_ok=True)
                rc = self._fail("get", src, exc)
        return rc

    def cat(self, flags: set[str], paths: list[str]) -> int:
        rc = 0
        stream = getattr(self.out, "buffer", None)
        for path in paths:
            try:
                for piece in self.c.read(path):
                    if stream is not None:
                        stream.write(piece)
                    else:
                        self.out.write(piece.decode("utf-8", "replace"))
                if stream is not None:
                    stream.flush()
            except errors.HadoopException as exc:
                rc = self._fail("cat", path, exc)
        return rc

    def rm(self, flags: set[str], paths: list[str]) -> int:
        rc = 0
        for path in paths:
            try:
                st = self.c.status(path)
                if st["type"] == "DIRECTORY" and "-r" not in flags and "-R" not in flags:
                    self.err.write(f"rm: `{path}': Is a directory\n")
                    rc = 1
                    continue
                if "-skipTrash" not in flags and self._to_trash(path):
                    continue
                self.c.delete(path, recursive=True)
                self.out.write(f"Deleted {path}\n")
            except errors.FileNotFoundException as exc:
                if "-f" not in flags:
                    rc = self._fail("rm", path, exc)
            except errors.HadoopException as exc:
                rc = self._fail("rm", path, exc)
        return rc

    def _to_trash(self, path: str) -> bool:
        """Trash.moveToAppropriateTrash with the NameNode's fs.trash.interval (its
        getServerDefaults, which Hadoop's shell lets win over its own): into
        /user/USER/.Trash/Current/PATH (made 700), a name already there taken with the
        time appended; False (deleted instead) when trash is off or PATH is in the trash
        already; refused for a PATH that holds the trash."""
        interval = getattr(self.c, "trash_interval", lambda: 0)()
        if not interval:
            return False
        path = posixpath.normpath(posixpath.join(f"/user/{self.c.user}", path))
        root = f"/user/{self.c.user}/.Trash"
        if path == root or path.startswith(root + "/"):
            return False
        if root.startswith(path + "/") or path == "/":
            raise errors.IOException(f'Cannot move "{path}" to the trash, as it contains the trash')
        target = f"{root}/Current{path}"
        self.c.mkdirs(posixpath.dirname(target), "700")
        if self.c.status(target, strict=False) is not None:
            target += str(int(time.time() * 1000))
        if not self.c.rename(path, target):
            raise errors.IOException(f"Failed to move to trash: {self.c.uri}{path}")
        self.err.write(
            f"INFO fs.TrashPolicyDefault: Moved: '{self.c.uri}{path}' to trash at: "
            f"{self.c.uri}{target}\n"
        )
        return True

    def mv(self, flags: set[str], paths: list[str]) -> int:
        if len(paths) < 2:
            self.err.write("mv: Not enough arguments: expected 2 but got 1\n")
            return 255
        *sources, dst = paths
        rc = 0
        for src in sources:
            try:
                self.c.status(src)
                if not self.c.rename(src, dst):
                    self.err.write(f"mv: `{src}' to `{dst}': Input/output error\n")
                    rc = 1
            except errors.HadoopException as exc:
                rc = self._fail("mv", src, exc)
        return rc

    def touchz(self, flags: set[str], paths: list[str]) -> int:
        rc = 0
        for path in paths:
            try:
                try:
                    if self.c.status(path)["length"] != 0:
                        self.err.write(f"touchz: `{path}': Not a zero-length file\n")
                        rc = 1
                    continue
                except errors.FileNotFoundException:
                    self.c.write(path, b"")
            except errors.HadoopException as exc:
                rc = self._fail("touchz", path, exc)
        return rc

    def append_to_file(self, flags: set[str], paths: list[str]) -> int:
        if len(paths) < 2:
            self.err.write("appendToFile: Not enough arguments: expected 2 but got 1\n")
            return 255
        *sources, dst = paths
        try:
            try:
                self.c.status(dst)
            except errors.FileNotFoundException:
                self.c.write(dst, b"")
            for src in sources:
                with open(src, "rb") as f:
                    self.c.write(dst, iter(lambda f=f: f.read(1 << 20), b""), append=True)
            return 0
        except FileNotFoundError as exc:
            self.err.write(f"appendToFile: `{exc.filename}': No such file or directory\n")
            return 1
        except errors.HadoopException as exc:
            return self._fail("appendToFile", dst, exc)

    def tail(self, flags: set[str], paths: list[str]) -> int:
        try:
            length = self.c.status(paths[0])["length"]
            data = b"".join(self.c.read(paths[0], offset=max(0, length - 1024)))
            self.out.write(data.decode("utf-8", "replace"))
            return 0
        except errors.HadoopException as exc:
            return self._fail("tail", paths[0], exc)

    def setrep(self, flags: set[str], paths: list[str]) -> int:
        if len(paths) < 2 or not paths[0].isdigit():
            self.err.write("setrep: Usage: -setrep [-w] <rep> <path> ...\n")
            return 255
        rep, rc = int(paths[0]), 0
        for path in paths[1:]:
            try:
                self.c.set_replication(path, rep)
                self.out.write(f"Replication {rep} set: {path}\n")
                if "-w" in flags:
                    self._wait_replication(path, rep)
            except errors.HadoopException as exc:
                rc = self._fail("setrep", path, exc)
        return rc

    def _wait_replication(self, path: str, rep: int, timeout: float = 600) -> None:
        """-w: until every block has `rep` live replicas, as `hdfs dfs -setrep -w` waits."""
        self.out.write(f"Waiting for {path} ...")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            report = self.c.fsck(path, as_json=True)
            if all(b["live"] == rep for f in report["files"] for b in f["blocks"]):
                self.out.write(" done\n")
                return
            self.out.write(".")
            time.sleep(1)
        self.out.write(" timed out\n")

    def chmod(self, flags: set[str], paths: list[str]) -> int:
        if len(paths) < 2:
            self.err.write("chmod: Not enough arguments\n")
            return 255
        mode, rc = paths[0], 0
        for path in paths[1:]:
            try:
                self.c.set_permission(path, mode)
            except errors.HadoopException as exc:
                rc = self._fail("chmod", path, exc)
        return rc

    def chown(self, flags: set[str], paths: list[str]) -> int:
        if len(paths) < 2:
            self.err.write("chown: Not enough arguments\n")
            return 255
        owner, _, group = paths[0].partition(":")
        rc = 0
        for path in paths[1:]:
            try:
                self.c.set_owner(path, owner or None, group or None)
            except errors.HadoopException as exc:
                rc = self._fail("chown", path, exc)
        return rc

    def getfacl(self, flags: set[str], paths: list[str]) -> int:
        """AclCommands.GetfaclCommand: the file, its owner and group, the sticky flag,
        then the whole ACL, a named or group entry the mask limits with its effective
        permission as a comment; -R, the subtree too."""
        rc, targets = 0, []
        for top in paths:
            try:
                targets += self._subtrees([top]) if "-R" in flags else [top]
            except errors.HadoopException as exc:
                rc = self._fail("getfacl", top, exc)
        for path in targets:
            try:
                st = self.c.status(path)
                status = self.c.acl_status(path) if st.get("aclBit") else None
            except errors.HadoopException as exc:
                rc = self._fail("getfacl", path, exc)
                continue
            mode = int(st["permission"], 8)
            self.out.write(f"# file: {path}\n# owner: {st['owner']}\n# group: {st['group']}\n")
            if mode & 0o1000:
                self.out.write(f"# flags: --{'t' if mode & 1 else 'T'}\n")
            feature = [acl.parse_entry(e) for e in status["entries"]] if status else None
            whole = acl.logical(mode, feature)
            for scope in (acl.ACCESS, acl.DEFAULT):
                entries = [e for e in whole if e.scope == scope]
                masks = [e.perm for e in entries if e.type == acl.MASK]
                mask = (mode >> 3) & 7 if scope == acl.ACCESS else (masks or [7])[0]
                for e in entries:
                    shown = str(e)
                    limited = e.perm & mask
                    if not acl.is_minimal(entries) and (e.name or e.type == acl.GROUP):
                        if limited != e.perm:
                            shown += f"\t#effective:{acl.SYMBOLS[limited]}"
                    self.out.write(shown + "\n")
            self.out.write("\n")
        return rc

    def snapshot_cmd(self, cmd: str, flags: set[str], paths: list[str]) -> int:
        """SnapshotCommands: -createSnapshot DIR [NAME] ("Created snapshot PATH"),
        -deleteSnapshot DIR NAME, -renameSnapshot DIR OLD NEW."""
        low, high = SNAPSHOT_ARGS[cmd]
        if not low <= len(paths) <= high:
            self.err.write(
                f"{cmd}: {'Too many' if len(paths) > high else 'Not enough'} arguments\n"
            )
            return 255
        path = paths[0]
        try:
            if cmd == "-createSnapshot":
                name = {"snapshotname": paths[1]} if len(paths) > 1 else {}
                made = self.c.snapshot_op("CREATESNAPSHOT", path, **name)["Path"]
                self.out.write(f"Created snapshot {made}\n")
            elif cmd == "-deleteSnapshot":
                self.c.snapshot_op("DELETESNAPSHOT", path, snapshotname=paths[1])
            else:
                self.c.snapshot_op(
                    "RENAMESNAPSHOT", path, oldsnapshotname=paths[1], snapshotname=paths[2]
                )
        except errors.HadoopException as exc:
            self.err.write(f"{cmd[1:]}: {str(exc).splitlines()[0]}\n")
            return 1
        return 0

    def setfacl(self, flags: set[str], paths: list[str]) -> int:
        """AclCommands.SetfaclCommand: -b (remove the ACL), -k (the default ACL), -m SPEC
        (modify), -x SPEC (remove entries), --set SPEC (replace)."""
        ops = {"-b": "REMOVEACL", "-k": "REMOVEDEFAULTACL", "-m": "MODIFYACLENTRIES",
               "-x": "REMOVEACLENTRIES", "--set": "SETACL"}  # fmt: skip
        chosen = [f for f in ops if f in flags]
        with_spec = bool(chosen) and chosen[0] in ("-m", "-x", "--set")
        if len(chosen) != 1 or len(paths) != (2 if with_spec else 1):
            self.err.write(
                "-setfacl: Specified flags contains both remove and modify flags\n"
                if len(chosen) > 1
                else "-setfacl: <path> is missing\n"
                if not paths
                else "-setfacl: Too many arguments\n"
            )
            self.err.write(
                "Usage: hadoop fs [generic options] -setfacl [-R] [{-b|-k} {-m|-x <acl_spec>} "
                "<path>]|[--set <acl_spec> <path>]\n"
            )
            return 255
        spec, path = (paths[0], paths[1]) if with_spec else (None, paths[0])
        try:
            entries = None
            if spec is not None:  # parsed here first, as AclEntry.parseAclSpec in the shell
                entries = acl.parse_spec(spec, with_perm=chosen[0] != "-x")
            targets = self._subtrees([path], with_type=True) if "-R" in flags else [(path, True)]
            for target, is_dir in targets:
                if entries is not None and not is_dir:
                    # -R: a file takes only the access entries (SetfaclCommand.getAclEntries).
                    kept = [e for e in entries if e.scope == acl.ACCESS]
                    if not kept:
                        continue
                    if len(kept) != len(entries):
                        spec_for = ",".join(e.spec(chosen[0] != "-x") for e in kept)
                        self.c.acl_change(target, ops[chosen[0]], spec_for)
                        continue
                self.c.acl_change(target, ops[chosen[0]], spec)
        except errors.HadoopException as exc:
            if isinstance(exc, errors.HadoopIllegalArgumentException):
                self.err.write(f"-setfacl: {exc}\n")
                return 255
            return self._fail("setfacl", path, exc)
        return 0

    def _subtrees(self, paths: list[str], with_type: bool = False) -> list:
        """Each path and everything below it, parents first (-R of the ACL commands);
        with_type, as (path, is a directory)."""
        found = []
        for top in paths:
            stack = [(top, self.c.status(top)["type"] == "DIRECTORY")]
            while stack:
                path, is_dir = stack.pop()
                found.append((path, is_dir) if with_type else path)
                if is_dir:
                    children = sorted(self.c.list(path), key=lambda s: s["pathSuffix"])
                    stack.extend(
                        (posixpath.join(path, c["pathSuffix"]), c["type"] == "DIRECTORY")
                        for c in reversed(children)
                    )
        return found

    def du(self, flags: set[str], paths: list[str]) -> int:
        rc, size = 0, human if "-h" in flags else str
        if "-v" in flags:
            self.out.write("SIZE  DISK_SPACE_CONSUMED_WITH_ALL_REPLICAS  FULL_PATH_NAME\n")
        for path in paths:
            try:
                st = self.c.status(path)
                if "-s" in flags or st["type"] != "DIRECTORY":
                    items = [(path, self.c.content_summary(path))]
                else:
                    items = [
                        (
                            posixpath.join(path, i["pathSuffix"]),
                            self.c.content_summary(posixpath.join(path, i["pathSuffix"])),
                        )
                        for i in self.c.list(path)
                    ]
                for p, cs in items:
                    self.out.write(f"{size(cs['length'])}  {size(cs['spaceConsumed'])}  {p}\n")
            except errors.HadoopException as exc:
                rc = self._fail("du", path, exc)
        return rc

    def count(self, flags: set[str], paths: list[str]) -> int:
        """ContentSummary.toString's columns: with -q the quotas first ("none" and "inf"
        where none is set), -h sizes in K/M/G, -v a header line."""
        rc, size, quotas = 0, human if "-h" in flags else str, "-q" in flags
        if "-v" in flags:
            self.out.write(
                (f"{'QUOTA':>12} {'REM_QUOTA':>15} {'SPACE_QUOTA':>15} {'REM_SPACE_QUOTA':>15} "
                 if quotas else "")
                + f"{'DIR_COUNT':>12} {'FILE_COUNT':>12} {'CONTENT_SIZE':>18} PATHNAME\n"
            )  # fmt: skip
        for path in paths:
            try:
                cs = self.c.content_summary(path)
                line = ""
                if quotas:
                    q, sq = cs["quota"], cs["spaceQuota"]
                    used = cs["directoryCount"] + cs["fileCount"]
                    line = (
                        f"{'none' if q < 0 else q:>12} {'inf' if q < 0 else q - used:>15} "
                        f"{'none' if sq < 0 else size(sq):>15} "
                        f"{'inf' if sq < 0 else size(sq - cs['spaceConsumed']):>15} "
                    )
                self.out.write(
                    line + f"{cs['directoryCount']:>12} {cs['fileCount']:>12} "
                    f"{size(cs['length']):>18} {path}\n"
                )
            except errors.HadoopException as exc:
                rc = self._fail("count", path, exc)
        return rc

    def test(self, flags: set[str], paths: list[str]) -> int:
        """Exit status only, as Hadoop's: 0 when the test holds."""
        try:
            st = self.c.status(paths[0])
        except errors.FileNotFoundException:
            return 1
        if "-d" in flags:
            return 0 if st["type"] == "DIRECTORY" else 1
        if "-f" in flags:
            return 0 if st["type"] == "FILE" else 1
        if "-z" in flags:
            return 0 if st["length"] == 0 else 1
        return 0


def fsck(client: WebHdfsClient, args: list[str], out: TextIO, err: TextIO) -> int:
    paths = [a for a in args if not a.startswith("-")]
    if len(paths) != 1:
        err.write("Usage: hdfs fsck <path> [-files [-blocks [-locations | -racks]]]\n")
        return 255
    try:
        report = client.fsck(paths[0], as_json=True)
    except errors.HadoopException as exc:
        err.write(f"FSCK ended: {exc}\n")
        return 1
    if "-json" in args:
        out.write(json.dumps(report, indent=2) + "\n")
    else:
        from .fsck import render_fsck

        files, blocks = "-files" in args, "-blocks" in args
        text = render_fsck(report).splitlines(keepends=True)
        for line in text:
            is_file = any(line.startswith(f["path"] + " ") for f in report["files"])
            is_block = line[:1].isdigit() and ". blk_" in line
            if (is_file and not files) or (is_block and not blocks):
                continue
            if is_block and "-locations" not in args and "-racks" not in args:
                line = line.split(" [", 1)[0] + "\n"
            out.write(line)
    return 0 if report["status"] == "HEALTHY" else 1


def _size(n: int) -> str:
    units = ["B", "KB", "MB", "GB", "TB", "PB"]
    value, unit = float(n), 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{n} ({value:.2f} {units[unit]})"


def dfsadmin(client: WebHdfsClient, args: list[str], out: TextIO, err: TextIO) -> int:
    if args[:1] == ["-safemode"] and args[1:2] in (["enter"], ["leave"]):
        # dfsadmin talks to the NameNode's RPC address, which its status bean names.
        host, _, port = client.jmx("NameNodeStatus")["HostAndPort"].rpartition(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request(
                "POST",
                "/rpc/setSafeMode",
                body=json.dumps({"action": args[1]}),
                headers={"Content-Type": "application/json"},
            )
            reply = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        out.write("Safe mode is ON\n" if reply.get("safemode") else "Safe mode is OFF\n")
        return 0
    if args[:2] == ["-safemode", "get"]:
        tip = client.jmx("NameNodeInfo")["Safemode"]
        out.write("Safe mode is ON\n" if tip else "Safe mode is OFF\n")
        return 0
    if args[:1] in (["-setQuota"], ["-clrQuota"], ["-setSpaceQuota"], ["-clrSpaceQuota"]):
        return _quota(client, args, err)
    if args[:1] in (["-allowSnapshot"], ["-disallowSnapshot"]) and len(args) == 2:
        # DFSAdmin.allowSnapshot / disallowSnapshot and what they print.
        allow = args[0] == "-allowSnapshot"
        try:
            client.snapshot_op("ALLOWSNAPSHOT" if allow else "DISALLOWSNAPSHOT", args[1])
        except errors.HadoopException as exc:
            err.write(f"{args[0][1:]}: {str(exc).splitlines()[0]}\n")
            return 255
        out.write(f"{'Allowing' if allow else 'Disallowing'} snapshot on {args[1]} succeeded\n")
        return 0
    if not args or args[0] != "-report":
        err.write(DFSADMIN_USAGE)
        return 255
    info, fs = client.jmx("NameNodeInfo"), client.jmx("FSNamesystem")
    live, dead = json.loads(info["LiveNodes"]), json.loads(info["DeadNodes"])
    total, used, free = info["Total"], info["Used"], info["Free"]
    pct = 100.0 * used / total if total else 0.0
    out.write(
        f"Configured Capacity: {_size(total)}\nPresent Capacity: {_size(used + free)}\n"
        f"DFS Remaining: {_size(free)}\nDFS Used: {_size(used)}\nDFS Used%: {pct:.2f}%\n"
        f"Replicated Blocks:\n\tUnder replicated blocks: {fs['UnderReplicatedBlocks']}\n"
        f"\tBlocks with corrupt replicas: {fs['CorruptBlocks']}\n\tMissing blocks: 0\n"
        f"\tPending replication blocks: {fs['PendingReplicationBlocks']}\n"
    )
    if info["Safemode"]:
        out.write(info["Safemode"] + "\n")
    out.write("\n-------------------------------------------------\n")
    sections = [("Live", live)] if "-dead" not in args else []
    if "-live" not in args:
        sections.append(("Dead", dead))
    for title, nodes in sections:
        out.write(f"{title} datanodes ({len(nodes)}):\n\n")
        for name, n in sorted(nodes.items()):
            cap, u = n["capacity"], n["used"]
            out.write(
                f"Name: {n['xferaddr']} ({name.split(':')[0]})\nHostname: {name.split(':')[0]}\n"
                f"Rack: {n['location']}\nDecommission Status : Normal\n"
                f"Configured Capacity: {_size(cap)}\nDFS Used: {_size(u)}\n"
                f"DFS Remaining: {_size(n['remaining'])}\n"
                f"DFS Used%: {100.0 * u / cap if cap else 0:.2f}%\nNum of Blocks: {n['numBlocks']}\n"
                f"Last contact: {n['lastContact']}s ago\n\n"
            )
    return 0


DFSADMIN_USAGE = (
    "Usage: hdfs dfsadmin [-report [-live] [-dead]] [-safemode get|enter|leave]\n"
    "\t[-setQuota <quota> <dirname>...<dirname>] [-clrQuota <dirname>...<dirname>]\n"
    "\t[-setSpaceQuota <quota> <dirname>...<dirname>] [-clrSpaceQuota <dirname>...<dirname>]\n"
)


def _quota(client: WebHdfsClient, args: list[str], err: TextIO) -> int:
    """DFSAdmin's quota commands: -setQuota N (names), -setSpaceQuota N[kmgtp] (bytes,
    replicas included), -clrQuota, -clrSpaceQuota, each on every directory named; a
    failure is said per directory, and the exit code is 255 if any failed."""
    cmd, rest = args[0], args[1:]
    name = cmd[1:]
    setting = cmd.startswith("-set")
    if len(rest) < (2 if setting else 1):
        err.write(f"{cmd}: Not enough arguments\n{DFSADMIN_USAGE}")
        return 255
    value = None
    if setting:
        raw, rest = rest[0], rest[1:]
        try:
            value = parse_size(raw) if cmd == "-setSpaceQuota" else int(raw)
        except ValueError:
            err.write(f'{name}: For input string: "{raw}"\n{DFSADMIN_USAGE}')
            return 255
        if value <= 0 and cmd == "-setQuota" or value < 0:
            err.write(f"{name}: Invalid values for quota : {value}\n{DFSADMIN_USAGE}")
            return 255
    else:
        value = -1
    rc = 0
    for path in rest:
        try:
            if cmd in ("-setQuota", "-clrQuota"):
                client.set_quota(path, value, None)
            else:
                client.set_quota(path, None, value)
        except errors.HadoopException as exc:
            err.write(f"{name}: {str(exc).splitlines()[0]}\n")
            rc = 255
    return rc


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m lab.services.hdfs.shell")
    p.add_argument("--namenode", required=True, help="NameNode HTTP address, host:9870")
    p.add_argument("--rpc", help="NameNode fs.defaultFS address (host:8020): metadata over IPC")
    p.add_argument("--user")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    return run(a.namenode, a.command, user=a.user, rpc=a.rpc)


if __name__ == "__main__":
    sys.exit(main())
