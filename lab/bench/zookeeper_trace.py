"""Where one synchronous write's time goes in a 3-server racklab ensemble: each member
stamps its events (a client's read and its reply written, a peer link's read and
write with the frame types, the log's fsync) with the wall clock, and the three
members' stamps are merged into one timeline per request, from the request reaching
the follower the client is connected to until its reply is written.

    python -m lab.bench.zookeeper_trace [--op set|create] [--ops 2000] [--source DIR]

It prints the most common order of events with the median time of each since the
request arrived (F the client's follower, L the leader, O the other follower; frame
types as in lab/services/zookeeper/peerwire.py), and the spread of a request's time
in the servers. The stamps cost a few microseconds each, so the times are a little
longer than untraced ones; use it to see where the time goes, and
`python -m lab.bench.zookeeper` for figures. --source DIR traces the `lab` package
in DIR instead (another version).
"""

from __future__ import annotations

import argparse
import atexit
import collections
import gc
import os
import statistics
import sys
import tempfile
import time

TRACE_FILE = "trace.txt"  # beside each member's zoo.cfg


# --- inside a member: stamps around a few methods ------------------------------------


def serve(source: str | None, cfg: str) -> int:
    """Run a member from zoo.cfg `cfg` with its events stamped into TRACE_FILE."""
    if source:
        # the `lab` this module came from must not be the one the member runs
        for name in [m for m in sys.modules if m == "lab" or m.startswith("lab.")]:
            del sys.modules[name]
        sys.path.insert(0, os.path.abspath(source))
    from lab.services.zookeeper import connection, framelink, persistence
    from lab.services.zookeeper.__main__ import main as zk_main

    out = open(os.path.join(os.path.dirname(cfg), TRACE_FILE), "w", buffering=1 << 20)
    atexit.register(out.flush)
    clock = time.time_ns

    def stamp(cls, name: str, label: str, detail=None) -> None:
        inner = getattr(cls, name)

        def wrapper(self, *args):
            out.write(f"{clock()} {label}> {detail(self, *args) if detail else ''}\n")
            try:
                return inner(self, *args)
            finally:
                out.write(f"{clock()} {label}<\n")

        setattr(cls, name, wrapper)

    def frame_types(link, data: bytes) -> str:
        buf, types, i = bytes(link.buf) + data, [], 0
        while i + 5 <= len(buf):
            types.append(str(buf[i + 4]))
            i += 4 + int.from_bytes(buf[i : i + 4], "big")
        return ",".join(types)

    stamp(framelink.FrameLink, "data_received", "peer_read", frame_types)
    stamp(framelink.FrameLink, "flush", "peer_write")
    stamp(connection.ClientConnection, "data_received", "client_read")
    stamp(connection.ClientConnection, "flush", "client_write")
    stamp(persistence.TxnLog, "sync", "fsync")

    def collected(phase: str, info: dict) -> None:  # Python's cyclic GC, by generation
        out.write(f"{clock()} gc{'>' if phase == 'start' else '<'} {info['generation']}\n")

    gc.callbacks.append(collected)
    return zk_main([cfg, "--log-level", "WARNING"])


# --- outside: the run and the timeline ----------------------------------------------


def read_events(path: str, role: str) -> list[tuple[int, str, str, str]]:
    events = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            events.append((int(parts[0]), role, parts[1], parts[2] if len(parts) > 2 else ""))
    return events


def timelines(events: list[tuple[int, str, str, str]]) -> list[list[tuple[int, str, str, str]]]:
    """One list of events per request: from F reading it to F writing its reply."""
    out, current = [], None
    for e in sorted(events):
        if e[1] == "F" and e[2] == "client_read>":
            current = [e]
        elif current is not None:
            current.append(e)
            if e[1] == "F" and e[2] == "client_write<":
                out.append(current)
                current = None
    return out


def gc_report(events: list[tuple[int, str, str, str]], requests) -> list[str]:
    """What Python's cyclic GC cost each member over the whole run (its collections by
    generation and their time), and the requests that had a collection in them."""
    lines, started = [], {}
    per_role: dict[str, dict[str, list[float]]] = {}
    for t, role, event, gen in sorted(events):
        if event == "gc>":
            started[role] = t
        elif event == "gc<" and role in started:
            per_role.setdefault(role, {}).setdefault(gen, []).append((t - started.pop(role)) / 1000)
    for role in sorted(per_role):
        gens = per_role[role]
        lines.append(
            f"GC in {role}: "
            + ", ".join(
                f"gen{g} {len(d)} x, {sum(d) / 1000:.1f} ms (max {max(d):.0f} us)"
                for g, d in sorted(gens.items())
            )
        )
    hit = [r for r in requests if any(e[2] == "gc>" for e in r)]
    if requests:
        lines.append(f"requests with a collection in a member: {len(hit)} of {len(requests)}")
    return lines


def report(requests: list[list[tuple[int, str, str, str]]], events=()) -> str:
    if not requests:
        return "no request was traced\n"
    shapes = collections.Counter(tuple(e[1:] for e in r) for r in requests)
    shape, count = shapes.most_common(1)[0]
    offsets: list[list[float]] = [[] for _ in shape]
    for r in requests:
        if tuple(e[1:] for e in r) == shape:
            for k, e in enumerate(r):
                offsets[k].append((e[0] - r[0][0]) / 1000)
    lines = [f"most common order of events: {count} of {len(requests)} requests"]
    lines += [
        f"{statistics.median(offsets[k]):8.1f} us  {role} {event} {detail}"
        for k, (role, event, detail) in enumerate(shape)
    ]
    spans = sorted((r[-1][0] - r[0][0]) / 1000 for r in requests)
    n = len(spans)
    lines.append(
        f"request in the servers: p10 {spans[n // 10]:.0f} us, median {spans[n // 2]:.0f} us,"
        f" p90 {spans[9 * n // 10]:.0f} us"
    )
    lines += gc_report(list(events), requests)
    return "\n".join(lines) + "\n"


def run(op: str, ops: int, source: str | None) -> str:
    from kazoo.client import KazooClient

    from lab.services.zookeeper.minicluster import Ensemble

    def argv(cfg: str) -> list[str]:
        extra = ["--source", os.path.abspath(source)] if source else []
        return [sys.executable, "-m", "lab.bench.zookeeper_trace", "--serve", cfg, *extra]

    with tempfile.TemporaryDirectory(prefix="zktrace-") as root:
        ens = Ensemble(root, 3, 60, 2000, argv)
        ens.start()
        try:
            leader = ens.wait_leader(60)
            follower = ens.follower(60)
            zk = KazooClient(hosts=ens.servers[follower].hosts, timeout=10)
            zk.start(30)
            zk.ensure_path("/trace")
            for i in range(200):
                zk.create(f"/trace/n{i}", b"v" * 100)
            for i in range(ops):
                if op == "set":
                    zk.set(f"/trace/n{i % 200}", b"v" * 100)
                else:
                    zk.create(f"/trace/c{i}", b"v" * 100)
            zk.stop()
            zk.close()
        finally:
            for s in ens.servers.values():
                s.stop()  # SIGTERM: each member writes out its stamps
        roles = {leader: "L", follower: "F"}
        events = []
        for i, s in ens.servers.items():
            path = os.path.join(os.path.dirname(s.conf_path), TRACE_FILE)
            events += read_events(path, roles.get(i, "O"))
        # the requests before the workload (the 200 creates) warm up the path
        return report(timelines(events)[-ops:], events)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lab.bench.zookeeper_trace",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--op", choices=("set", "create"), default="set")
    ap.add_argument("--ops", type=int, default=2000, help="synchronous writes traced")
    ap.add_argument("--source", metavar="DIR", help="trace the `lab` package in DIR")
    ap.add_argument("--serve", metavar="ZOO_CFG", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        return serve(args.source, args.serve)
    sys.stdout.write(run(args.op, args.ops, args.source))
    return 0


if __name__ == "__main__":
    sys.exit(main())
