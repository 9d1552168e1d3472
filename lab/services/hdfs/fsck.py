"""Text rendering of an fsck report, in the shape of `hdfs fsck PATH -files -blocks -locations -racks`."""

from __future__ import annotations


def render_fsck(report: dict) -> str:
    lines = [f"FSCK started for path {report['path']}"]
    for f in report["files"]:
        uc = " (under construction)" if f["underConstruction"] else ""
        lines.append(
            f"{f['path']} {f['length']} bytes, replicated: replication={f['replication']}, "
            f"{len(f['blocks'])} block(s){uc}:  {'OK' if all(b['status'] == 'HEALTHY' for b in f['blocks']) else 'PROBLEM'}"
        )
        for i, b in enumerate(f["blocks"]):
            locs = ", ".join(f"[{loc['rack']}/{loc['addr']}]" for loc in b["locations"])
            bad = "".join(
                f" corrupt:[{loc['rack']}/{loc['addr']}]" for loc in b["corruptLocations"]
            )
            lines.append(
                f"{i}. {b['block']} len={b['len']} Live_repl={b['live']} {b['status']} [{locs}]{bad}"
            )
    t = report["totals"]
    avg = t["replicas"] / t["blocks"] if t["blocks"] else 0.0
    lines += [
        "",
        "Status: " + report["status"],
        f" Number of data-nodes:\t{report['datanodes']}",
        f" Number of racks:\t\t{report['racks']}",
        f" Total dirs:\t\t\t{t['dirs']}",
        f" Total files:\t\t\t{t['files']}",
        f" Total size:\t\t\t{t['size']} B",
        f" Total blocks (validated):\t{t['blocks']}",
        f" Under-replicated blocks:\t{t['under']}",
        f" Mis-replicated blocks:\t\t{t['misreplicated']}",
        f" Missing blocks:\t\t{t['missing']}",
        f" Corrupt blocks:\t\t{t['corrupt']}",
        f" Average block replication:\t{avg:.1f}",
        "",
        f"The filesystem under path '{report['path']}' is {report['status']}",
    ]
    return "\n".join(lines) + "\n"
