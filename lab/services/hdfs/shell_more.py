"""More of Hadoop's FsShell for `lab hdfs dfs`: -stat, -checksum, -head, -text, -df,
-cp, -rmdir, -touch, -getmerge, -chgrp, -find, and the human-readable and header forms of
-du and -count (-h, -v, -q). Output and messages as Hadoop 3's shell prints them
(FsShell's Stat, Display, Head, FsUsage, CopyCommands, Delete.Rmdir, TouchCommands,
Find, Count and their formats). A mixin of shell.Dfs: it uses the same client, streams
and error reporting."""

from __future__ import annotations

import calendar
import fnmatch
import posixpath
import tempfile
import time

from ..hadoop import errors
from .namespace import mode_string

_PREFIXES = "KMGTPE"


def human(n: int) -> str:
    """StringUtils.TraditionalBinaryPrefix.long2String(n, "", 1): 4.8 M, 512, 0."""
    if n < 1024:
        return str(n)
    value, i = float(n), -1
    while value >= 1024 and i < len(_PREFIXES) - 1:
        value, i = value / 1024, i + 1
    return f"{value:.1f} {_PREFIXES[i]}"


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))


def stat_format(fmt: str, st: dict, name: str) -> str:
    """FsShell's Stat: %a %A %b %F %g %n %o %r %u %x %X %y %Y, as Hadoop 3 fills them."""
    out, i = [], 0
    is_dir = st["type"] == "DIRECTORY"
    perm = int(st["permission"], 8)
    fields = {
        "a": format(perm & 0o7777, "o"),
        "A": ("d" if is_dir else "-") + mode_string(perm),
        "b": str(st["length"]),
        "F": "directory" if is_dir else ("regular file" if st["length"] else "regular empty file"),
        "g": st["group"],
        "n": name,
        "o": str(st["blockSize"]),
        "r": str(0 if is_dir else st["replication"]),
        "u": st["owner"],
        "x": _utc(st["accessTime"]),
        "X": str(st["accessTime"]),
        "y": _utc(st["modificationTime"]),
        "Y": str(st["modificationTime"]),
    }
    while i < len(fmt):
        c = fmt[i]
        if c == "%" and i + 1 < len(fmt):
            i += 1
            out.append(fields.get(fmt[i], "%" + fmt[i]))
        elif c == "\\" and i + 1 < len(fmt) and fmt[i + 1] == "n":
            i += 1
            out.append("\n")
        else:
            out.append(c)
        i += 1
    return "".join(out)


class MoreCommands:
    """Hadoop FsShell commands beyond the first set; mixed into shell.Dfs."""

    def handlers(self) -> dict:
        return {
            "-stat": self.stat,
            "-checksum": self.checksum,
            "-head": self.head,
            "-text": self.text,
            "-df": self.df,
            "-cp": self.cp,
            "-rmdir": self.rmdir,
            "-touch": self.touch,
            "-getmerge": self.getmerge,
            "-chgrp": self.chgrp,
            "-find": self.find,
        }

    def stat(self, flags, paths) -> int:
        fmt = "%y"
        if paths and "%" in paths[0] and len(paths) > 1:
            fmt, paths = paths[0], paths[1:]
        rc = 0
        for path in paths:
            try:
                st = self.c.status(path)
                name = posixpath.basename(path.rstrip("/")) or "/"
                self.out.write(stat_format(fmt, st, name) + "\n")
            except errors.HadoopException as exc:
                rc = self._fail("stat", path, exc)
        return rc

    def checksum(self, flags, paths) -> int:
        rc = 0
        for path in paths:
            try:
                st = self.c.status(path)
                if st["type"] == "DIRECTORY":
                    self.err.write(f"checksum: `{path}': Is a directory\n")
                    rc = 1
                    continue
                fc = self.c.checksum(path)
                self.out.write(f"{path}\t{fc['algorithm']}\t{fc['bytes']}\n")
            except errors.HadoopException as exc:
                rc = self._fail("checksum", path, exc)
        return rc

    def head(self, flags, paths) -> int:
        """The first KiB of a file (Head)."""
        try:
            if self.c.status(paths[0])["type"] == "DIRECTORY":
                self.err.write(f"head: `{paths[0]}': Is a directory\n")
                return 1
            data = b"".join(self.c.read(paths[0], length=1024))
            self.out.write(data.decode("utf-8", "replace"))
            return 0
        except errors.HadoopException as exc:
            return self._fail("head", paths[0], exc)

    def text(self, flags, paths) -> int:
        """-text: plain files as -cat prints them (racklab writes no SequenceFiles or
        compressed files, which Hadoop's -text would decode)."""
        return self.cat(flags, paths)

    def df(self, flags, paths) -> int:
        """FsUsage.Df: the file system's capacity, used, remaining and use%."""
        info = self.c.jmx("NameNodeInfo")  # the NameNode's capacity of live DataNodes
        size, used, free = info["Total"], info["Used"], info["Free"]
        pct = f"{100 * used // size if size else 0}%"
        show = human if "-h" in flags else str
        name = f"hdfs://{getattr(self.c, 'address', (self.c.host, self.c.port))[0]}:8020"
        rows = [("Filesystem", "Size", "Used", "Available", "Use%")]
        rows.append((name, show(size), show(used), show(free), pct))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for r in rows:
            cells = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, 5)]
            self.out.write("  ".join(cells) + "\n")
        return 0

    def cp(self, flags, paths) -> int:
        """CopyCommands.Cp: each source's bytes to DST (a directory: DST/name) through
        DST._COPYING_, an existing target refused unless -f; -p keeps owner, group,
        permission and times."""
        if len(paths) < 2:
            self.err.write("cp: Not enough arguments: expected 2 but got 1\n")
            return 255
        *sources, dst = paths
        dst_st = self.c.status(dst, strict=False)
        dst_is_dir = dst_st is not None and dst_st["type"] == "DIRECTORY"
        if len(sources) > 1 and not dst_is_dir:
            self.err.write(f"cp: `{dst}': No such file or directory\n")
            return 1
        rc = 0
        for src in sources:
            target = posixpath.join(dst, posixpath.basename(src)) if dst_is_dir else dst
            try:
                st = self.c.status(src)
                if st["type"] == "DIRECTORY":
                    self.err.write(f"cp: `{src}': Is a directory\n")
                    rc = 1
                    continue
                # Spooled first: the client keeps one connection per DataNode, which a
                # read still streaming would hold while the write needs it.
                with tempfile.SpooledTemporaryFile(max_size=16 << 20) as spool:
                    for piece in self.c.read(src):
                        spool.write(piece)
                    spool.seek(0)
                    if self._copy_in(spool, target, flags, "cp"):
                        rc = 1
                        continue
                if "-p" in flags:
                    self.c.set_permission(target, st["permission"])
                    self.c.set_owner(target, st["owner"], st["group"])
                    self.c.set_times(target, st["modificationTime"], st["accessTime"])
            except errors.HadoopException as exc:
                rc = self._fail("cp", src, exc)
        return rc

    def rmdir(self, flags, paths) -> int:
        rc = 0
        for path in paths:
            try:
                st = self.c.status(path)
                if st["type"] != "DIRECTORY":
                    self.err.write(f"rmdir: `{path}': Is not a directory\n")
                    rc = 1
                elif self.c.list(path):
                    if "--ignore-fail-on-non-empty" not in flags:
                        self.err.write(f"rmdir: `{path}': Directory is not empty\n")
                        rc = 1
                else:
                    self.c.delete(path)
            except errors.HadoopException as exc:
                rc = self._fail("rmdir", path, exc)
        return rc

    def touch(self, flags, paths) -> int:
        """TouchCommands.Touch: create an empty file, or set its times to now (or -t
        yyyyMMdd:HHmmss, UTC): -a access only, -m modification only, -c no creation."""
        when = None
        if "-t" in flags:
            stamp, paths = paths[0], paths[1:]
            try:
                when = calendar.timegm(time.strptime(stamp, "%Y%m%d:%H%M%S")) * 1000
            except ValueError:
                self.err.write(
                    f"touch: Unable to parse the specified timestamp {stamp}\n"
                    "Expected format is yyyyMMdd:HHmmss\n"
                )
                return 1
        now = int(time.time() * 1000) if when is None else when
        rc = 0
        for path in paths:
            try:
                st = self.c.status(path, strict=False)
                if st is None:
                    if "-c" in flags:
                        continue
                    self.c.write(path, b"")
                    if when is None:
                        continue
                elif st["type"] == "DIRECTORY":
                    self.err.write(f"touch: `{path}': Is a directory\n")
                    rc = 1
                    continue
                mtime = -1 if "-a" in flags else now
                atime = -1 if "-m" in flags else now
                self.c.set_times(path, mtime, atime)
            except errors.HadoopException as exc:
                rc = self._fail("touch", path, exc)
        return rc

    def getmerge(self, flags, paths) -> int:
        """CopyCommands.Merge: SRC's files (a directory: its files, in name order) into one
        local file; -nl a newline after each; -skip-empty-file."""
        if len(paths) < 2:
            self.err.write("getmerge: Not enough arguments: expected 2 but got 1\n")
            return 255
        *sources, local = paths
        files = []
        try:
            for src in sources:
                st = self.c.status(src)
                if st["type"] == "DIRECTORY":
                    kids = sorted(self.c.list(src), key=lambda s: s["pathSuffix"])
                    files += [
                        (posixpath.join(src, s["pathSuffix"]), s)
                        for s in kids
                        if s["type"] == "FILE"
                    ]
                else:
                    files.append((src, st))
        except errors.HadoopException as exc:
            return self._fail("getmerge", src, exc)
        with open(local, "wb") as f:
            for path, st in files:
                if st["length"] == 0 and "-skip-empty-file" in flags:
                    continue
                for piece in self.c.read(path):
                    f.write(piece)
                if "-nl" in flags:
                    f.write(b"\n")
        return 0

    def chgrp(self, flags, paths) -> int:
        if len(paths) < 2:
            self.err.write("chgrp: Not enough arguments\n")
            return 255
        rc = 0
        for path in paths[1:]:
            try:
                self.c.set_owner(path, None, paths[0])
            except errors.HadoopException as exc:
                rc = self._fail("chgrp", path, exc)
        return rc

    def find(self, flags, paths) -> int:
        """Find: PATH... [-name PATTERN | -iname PATTERN] [-print]: every path under each
        PATH (itself included) whose name matches, depth first in name order."""
        pattern, fold, roots = None, False, []
        words = list(paths)
        # flags were taken out of paths by the caller: -name/-iname's pattern is the word
        # after it in the original order, which shell.Dfs keeps in self._find_args.
        args = getattr(self, "_find_args", words)
        i = 0
        while i < len(args):
            a = args[i]
            if a in ("-name", "-iname") and i + 1 < len(args):
                pattern, fold = args[i + 1], a == "-iname"
                i += 2
                continue
            if a in ("-print", "-print0"):
                i += 1
                continue
            if a.startswith("-"):
                self.err.write(f"find: Unexpected argument: {a}\n")
                return 255
            roots.append(a)
            i += 1
        rc = 0
        for root in roots or ["."]:
            try:
                self._find(root, self.c.status(root), pattern, fold)
            except errors.HadoopException as exc:
                rc = self._fail("find", root, exc)
        return rc

    def _find(self, path: str, st: dict, pattern: str | None, fold: bool) -> None:
        name = posixpath.basename(path.rstrip("/")) or "/"
        if pattern is None or (
            fnmatch.fnmatchcase(name.lower(), pattern.lower())
            if fold
            else fnmatch.fnmatchcase(name, pattern)
        ):
            self.out.write(path + "\n")
        if st["type"] == "DIRECTORY":
            for item in sorted(self.c.list(path), key=lambda s: s["pathSuffix"]):
                self._find(posixpath.join(path, item["pathSuffix"]), item, pattern, fold)
