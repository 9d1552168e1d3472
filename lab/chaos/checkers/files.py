"""HDFS file integrity: every acknowledged file is readable and intact, and its blocks
are back at full replication after the faults are healed.

History ops:
  write       invoke value {path, sha256, size}
  read        invoke value path; ok value {sha256, size}
  final-read  after healing, one per acknowledged file; ok value {sha256, size,
              replication: live replicas of the least replicated block, expected}
"""

from __future__ import annotations

from lab.chaos.history import OK, History, pairs

from .base import Verdict, judged


def check(history: History) -> Verdict:
    ps = sorted(pairs(history), key=lambda p: p.invoke.index)
    written = {}  # path -> {sha256, size}, acknowledged writes
    maybe = set()  # paths with a write of unknown outcome
    for p in ps:
        if p.f == "write":
            if p.type == OK:
                written[p.invoke.value["path"]] = p.invoke.value
            elif p.type != "fail":
                maybe.add(p.invoke.value["path"])
    anomalies = []
    finals = {}
    reads = 0
    for p in ps:
        if p.f not in ("read", "final-read"):
            continue
        path = p.invoke.value
        if p.f == "final-read":
            finals[path] = p
        if p.type != OK:
            continue
        reads += 1
        want = written.get(path)
        got = p.complete.value or {}
        if want is not None and got.get("sha256") != want["sha256"]:
            anomalies.append(
                {
                    "type": "corrupt",
                    "path": path,
                    "read_index": p.complete.index,
                    "expected": want["sha256"],
                    "got": got.get("sha256"),
                    "message": f"{path} read back with checksum {str(got.get('sha256'))[:12]}, "
                    f"written as {want['sha256'][:12]}",
                }
            )
    for path in written:
        f = finals.get(path)
        if f is None or f.type != OK:
            why = (
                "was never read back after healing"
                if f is None
                else (
                    f"cannot be read after healing: {f.complete.error if f.complete else 'no answer'}"
                )
            )
            anomalies.append(
                {"type": "lost", "path": path, "message": f"{path} was acknowledged but {why}"}
            )
            continue
        v = f.complete.value or {}
        rep, expected = v.get("replication"), v.get("expected")
        if rep is not None and expected is not None and rep < expected:
            anomalies.append(
                {
                    "type": "under-replicated",
                    "path": path,
                    "replication": rep,
                    "expected": expected,
                    "message": f"{path} has a block with {rep} live replicas after healing, "
                    f"{expected} expected",
                }
            )
    stats = {
        "written": len(written),
        "unknown_writes": len(maybe - set(written)),
        "reads_ok": reads,
        "final_reads": len(finals),
    }
    summary = (
        f"{len(anomalies)} anomalies"
        if anomalies
        else f"all {len(written)} acknowledged files intact and fully replicated"
    )
    return judged("hdfs-files", anomalies, stats, summary)


__all__ = ["check", "Verdict"]
