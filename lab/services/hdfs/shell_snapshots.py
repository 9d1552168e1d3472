"""`hdfs lsSnapshottableDir` and `hdfs snapshotDiff DIR FROM TO`, printed as Hadoop's
SnapshottableDirectoryStatus.print and SnapshotDiffReport.toString print them, from
WebHDFS's GETSNAPSHOTTABLEDIRECTORYLIST and GETSNAPSHOTDIFF (the NameNode answers both
itself, whichever door the shell otherwise uses)."""

from __future__ import annotations

import time
from typing import TextIO

from ..hadoop import errors
from .namespace import mode_string

LABELS = {"CREATE": "+", "MODIFY": "M", "DELETE": "-", "RENAME": "R"}


def ls_snapshottable(client, args: list[str], out: TextIO, err: TextIO) -> int:
    """Columns padded to their widest value, as Hadoop's print does: permission,
    replication (0), owner, group, length (0), modification time, snapshots, quota,
    path."""
    try:
        listing = client.call("GET", "/", "GETSNAPSHOTTABLEDIRECTORYLIST")
    except errors.HadoopException as exc:
        err.write(f"lsSnapshottableDir: {str(exc).splitlines()[0]}\n")
        return 1
    rows = []
    for d in listing.get("SnapshottableDirectoryList") or []:
        st = d["dirStatus"]
        parent = d["parentFullPath"]
        name = st["pathSuffix"]
        path = "/" if not name else f"{parent.rstrip('/')}/{name}"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(st["modificationTime"] / 1000))
        rows.append(
            ("d" + mode_string(int(st["permission"], 8)), "0", st["owner"], st["group"], "0",
             when, str(d["snapshotNumber"]), str(d["snapshotQuota"]), path)
        )  # fmt: skip
    if not rows:
        return 0
    width = [max(len(r[i]) for r in rows) for i in range(9)]
    for r in rows:
        out.write(
            f"{r[0]} {r[1]:>{width[1]}} {r[2]:<{width[2]}} {r[3]:<{width[3]}} "
            f"{r[4]:>{width[4]}} {r[5]} {r[6]:>{width[6]}} {r[7]:>{width[7]}} {r[8]}\n"
        )
    return 0


def snapshot_diff(client, args: list[str], out: TextIO, err: TextIO) -> int:
    """`snapshotDiff DIR FROM TO`; "." (or an empty name) is the directory as it is now."""
    if len(args) != 3:
        err.write("Usage: hdfs snapshotDiff <snapshotDir> <from> <to>:\n")
        return 255
    root, old, new = args
    old, new = ("" if s == "." else s for s in (old, new))
    try:
        report = client.call("GET", root, "GETSNAPSHOTDIFF", oldsnapshotname=old, snapshotname=new)[
            "SnapshotDiffReport"
        ]
    except errors.HadoopException as exc:
        err.write(f"snapshotDiff: {str(exc).splitlines()[0]}\n")
        return 1

    def name(s: str) -> str:
        return f"snapshot {s}" if s else "current directory"

    def rel(p: str) -> str:
        return "./" + p if p else "."

    out.write(f"Difference between {name(old)} and {name(new)} under directory {root}:\n")
    for e in report["diffList"]:
        line = f"{LABELS[e['type']]}\t{rel(e['sourcePath'])}"
        if e.get("targetPath") is not None:
            line += f" -> {rel(e['targetPath'])}"
        out.write(line + "\n")
    return 0
