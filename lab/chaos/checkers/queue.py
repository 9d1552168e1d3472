"""Kafka-style queue checks per partition (after Jepsen's Kafka checker).

History ops:
  send  invoke value v (unique per run); ok value [partition, offset]
  poll  ok value [[partition, offset, v], ...]; extra.rebalanced true when the
        consumer's assignment changed during this poll; extra.final true for the
        drain after healing that reads every partition from its start to its end.

Anomalies:
  lost          an acknowledged send whose value is not in the final read of its
                partition (or, with no final read, never seen while later offsets were)
  duplicated    one value stored at two or more offsets
  inconsistent  one offset seen holding different values (logs diverged)
  reordered     a producer's acknowledged sends stored in the opposite order
  skipped       a consumer jumped over offsets that hold values, with no rebalance
  nonmonotonic  a consumer went back to an earlier offset with no rebalance
"""

from __future__ import annotations

from collections import defaultdict

from lab.chaos.history import OK, History, pairs

from .base import Verdict, judged

MAX_LISTED = 50  # anomalies of one type listed in full; the rest are counted


def check(history: History) -> Verdict:
    ps = sorted(pairs(history), key=lambda p: p.invoke.index)
    acked: dict = {}  # value -> (partition, offset, pair)
    attempted = 0
    seen: dict = defaultdict(dict)  # partition -> offset -> set(values)
    where: dict = defaultdict(set)  # value -> {(partition, offset)}
    final: dict = defaultdict(dict)  # partition -> offset -> value (final read)
    polled: set = set()  # values some consumer read
    anomalies: dict[str, list] = defaultdict(list)

    for p in ps:
        if p.f == "send":
            attempted += 1
            if p.type == OK and p.complete.value is not None:
                part, off = p.complete.value
                acked[p.invoke.value] = (part, off, p)
                seen[part].setdefault(off, set()).add(p.invoke.value)
                where[p.invoke.value].add((part, off))
        elif p.f == "poll" and p.type == OK:
            for part, off, v in p.complete.value or []:
                seen[part].setdefault(off, set()).add(v)
                where[v].add((part, off))
                polled.add(v)
                if p.complete.extra.get("final"):
                    final[part][off] = v
            if p.complete.extra.get("final"):
                # partitions this final read covered, even those it found empty
                for part in p.complete.extra.get("partitions", []):
                    final.setdefault(part, {})

    # lost
    for v, (part, off, p) in acked.items():
        if part in final:
            missing = v not in final[part].values()
        else:
            later = [o for o in seen[part] if o > off and seen[part][o] - {v}]
            missing = bool(later) and v not in polled
        if missing:
            anomalies["lost"].append(
                {
                    "type": "lost",
                    "value": v,
                    "partition": part,
                    "offset": off,
                    "send_index": p.invoke.index,
                    "message": f"value {v} was acknowledged at {part}:{off} but is not in "
                    + (
                        "the final read" if part in final else "any read, though later offsets were"
                    ),
                }
            )

    # duplicated and inconsistent
    for v, locs in where.items():
        if len(locs) > 1:
            anomalies["duplicated"].append(
                {
                    "type": "duplicated",
                    "value": v,
                    "at": sorted(locs),
                    "message": f"value {v} is stored at {len(locs)} offsets: {sorted(locs)}",
                }
            )
    for part, offs in seen.items():
        for off, vals in sorted(offs.items()):
            if len(vals) > 1:
                anomalies["inconsistent"].append(
                    {
                        "type": "inconsistent",
                        "partition": part,
                        "offset": off,
                        "values": sorted(vals, key=str),
                        "message": f"offset {part}:{off} was seen holding {sorted(vals, key=str)}",
                    }
                )

    # reordered: per producer, per partition, ack order vs offset order
    by_producer: dict = defaultdict(list)
    for v, (part, off, p) in acked.items():
        by_producer[(p.process, part)].append((p.invoke.index, p.complete.index, off, v))
    for (proc, part), sends in by_producer.items():
        sends.sort()
        for (_, done_a, off_a, va), (inv_b, _, off_b, vb) in zip(sends, sends[1:], strict=False):
            if done_a < inv_b and off_b < off_a:
                anomalies["reordered"].append(
                    {
                        "type": "reordered",
                        "process": proc,
                        "partition": part,
                        "values": [va, vb],
                        "offsets": [off_a, off_b],
                        "message": f"process {proc} sent {va} then {vb} to partition {part}, "
                        f"but they are stored at offsets {off_a} and {off_b}",
                    }
                )

    # skipped / nonmonotonic, per consumer and partition
    position: dict = {}
    for p in ps:
        if p.f != "poll" or p.type != OK or p.complete.extra.get("final"):
            continue
        if p.complete.extra.get("rebalanced"):
            for key in [k for k in position if k[0] == p.process]:
                del position[key]
        for part, off, _v in p.complete.value or []:
            key = (p.process, part)
            prev = position.get(key)
            if prev is not None:
                if off <= prev:
                    anomalies["nonmonotonic"].append(
                        {
                            "type": "nonmonotonic",
                            "process": p.process,
                            "partition": part,
                            "offsets": [prev, off],
                            "poll_index": p.complete.index,
                            "message": f"consumer {p.process} read {part}:{off} after {part}:{prev}",
                        }
                    )
                elif off > prev + 1:
                    gap = [o for o in range(prev + 1, off) if o in seen[part]]
                    if gap:
                        anomalies["skipped"].append(
                            {
                                "type": "skipped",
                                "process": p.process,
                                "partition": part,
                                "offsets": gap[:20],
                                "poll_index": p.complete.index,
                                "message": f"consumer {p.process} jumped from {part}:{prev} to "
                                f"{part}:{off}, skipping {len(gap)} stored offsets",
                            }
                        )
            position[key] = off

    flat: list[dict] = []
    counts = {}
    for kind, items in anomalies.items():
        counts[kind] = len(items)
        flat.extend(items[:MAX_LISTED])
    stats = {
        "sent": attempted,
        "acknowledged": len(acked),
        "partitions": len(seen),
        "final_read": bool(final),
        "read_values": len(where),
        "anomaly_counts": counts,
    }
    summary = ", ".join(f"{n} {k}" for k, n in counts.items()) or "no anomaly"
    return judged("kafka-queue", flat, stats, summary)


__all__ = ["check", "Verdict"]
