"""Four-letter words on the client port (ruok, srvr, stat, mntr, conf, cons, dump,
wchc, wchp, dirs, crst, srst, gtmk, hash, ...), answered in Apache ZooKeeper 3.8's
text formats so existing monitoring scripts can read them."""

from __future__ import annotations

import math
import os
import time
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .server import ZooKeeperServer

FOUR_LETTER_WORDS = {
    w.encode()
    for w in (
        "ruok",
        "srvr",
        "stat",
        "mntr",
        "conf",
        "cons",
        "envi",
        "wchs",
        "isro",
        "crst",
        "srst",
        "dump",
        "wchc",
        "wchp",
        "dirs",
        "gtmk",
        "hash",
    )
}

# The trace mask Apache starts with (ZooTrace: CLIENT_REQUEST | CLIENT_PING |
# SERVER_PACKET_TRACE | WARNING ... = 306); racklab has no trace levels to set.
TRACE_MASK = 306


def _java_date(epoch_ms: float) -> str:
    """java.util.Date.toString, as Apache prints expiry times."""
    return time.strftime("%a %b %d %H:%M:%S %Z %Y", time.localtime(epoch_ms / 1000.0))


def _sid(x: int) -> str:
    return f"0x{x & (2**64 - 1):x}"


def _expiry_sets(items, tick: int) -> list[str]:
    """ExpiryQueue.dump: entries grouped by expiry rounded up to the next tick."""
    groups: dict[int, list[str]] = {}
    for expires_ms, line in items:
        bucket = (int(expires_ms) // tick + 1) * tick
        groups.setdefault(bucket, []).append(line)
    out = [f"Sets ({len(groups)})/({sum(len(v) for v in groups.values())}):"]
    for t in sorted(groups):
        out.append(f"{len(groups[t])} expire at {_java_date(t)}:")
        out.extend(f"\t{line}" for line in groups[t])
    return out


def _dump(s: ZooKeeperServer) -> str:
    now_wall, now_mono = time.time() * 1000.0, time.monotonic()
    sessions = [
        (now_wall + (x.expires - now_mono) * 1000.0, _sid(x.id)) for x in s.sessions.values()
    ]
    lines = ["SessionTracker dump:", "Session " + _expiry_sets(sessions, s.cfg.tick_time)[0]]
    lines += _expiry_sets(sessions, s.cfg.tick_time)[1:]
    lines.append("ephemeral nodes dump:")
    lines.append(f"Sessions with Ephemerals ({len(s.tree.ephemerals)}):")
    for sid, paths in s.tree.ephemerals.items():
        lines.append(f"{_sid(sid)}:")
        lines.extend(f"\t{p}" for p in sorted(paths))
    conns = []
    # NIOServerCnxnFactory: a connection without a session expires after ten ticks,
    # one with a session after its timeout; its queue's buckets are ten ticks wide.
    for c in list(s.connections):
        host, port = c.peer
        timeout = c.session.timeout if c.session else 10 * s.cfg.tick_time
        sid = _sid(c.session.id) if c.session else "0x0"
        conns.append((now_wall + timeout, f"ip: /{host}:{port} sessionId: {sid}"))
    lines.append("Connections dump:")
    sets = _expiry_sets(conns, 10 * s.cfg.tick_time)
    lines.append("Connections " + sets[0])
    lines += sets[1:]
    return "\n".join(lines) + "\n"


def _watches_by(s: ZooKeeperServer, by_session: bool) -> str:
    """wchc / wchp: Apache reports its data-watch manager only (one-shot, persistent
    and recursive watches alike)."""
    by_watcher = s.tree.watches_of(s.tree.data_manager)
    out = []
    if by_session:
        for w, paths in by_watcher.items():
            sess = getattr(w, "session", None)
            out.append(_sid(sess.id if sess else 0))
            out.extend(f"\t{p}" for p in sorted(paths))
    else:
        by_path: dict[str, list] = {}
        for w, paths in by_watcher.items():
            for p in paths:
                by_path.setdefault(p, []).append(w)
        for path, ws in sorted(by_path.items()):
            out.append(path)
            for w in ws:
                sess = getattr(w, "session", None)
                out.append(f"\t{_sid(sess.id if sess else 0)}")
    return "".join(line + "\n" for line in out) + "\n"


def watch_summary(s: ZooKeeperServer) -> tuple[int, int, int]:
    """Connections, paths and watches of the data manager, as Apache's wchs counts."""
    by_watcher = s.tree.watches_of(s.tree.data_manager)
    paths = set().union(*by_watcher.values()) if by_watcher else set()
    return len(by_watcher), len(paths), sum(len(p) for p in by_watcher.values())


def _watch_summary(s: ZooKeeperServer) -> str:
    """wchs: the data manager's toString(), as Apache's dumpWatchesSummary."""
    conns, paths, total = watch_summary(s)
    return f"{conns} connections watching {paths} paths\nTotal watches:{total}\n"


def _watch_count(s: ZooKeeperServer) -> int:
    """mntr's zk_watch_count: both managers' sizes, persistent and recursive included."""
    return sum(t.count() for t in (*s.tree.data_manager, *s.tree.child_manager))


def _dir_size(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def _latency(s: ZooKeeperServer) -> tuple[int, float, int]:
    """min/avg/max in ms. Apache times requests in whole milliseconds; racklab's
    sub-millisecond times show min rounded down and max up, so max is never below
    the average."""
    mn, mx, n = s.latency
    avg = s.latency_total / n if n else 0.0
    return math.floor(mn), avg, math.ceil(mx)


def _java_double(x: float) -> str:
    """Java's Double.toString of the 4-place average Apache prints: "0.0", "2.2308",
    and below 10^-3 in E notation ("5.0E-4")."""
    x = round(x, 4)
    if x == 0 or abs(x) >= 1e-3:
        return repr(float(x))
    _, digits, exp = Decimal(repr(x)).normalize().as_tuple()
    mantissa = f"{digits[0]}." + ("".join(map(str, digits[1:])) or "0")
    return f"{mantissa}E{len(digits) - 1 + exp}"


def _conn_line(c) -> str:
    host, port = c.peer
    sid = c.session.id & (2**64 - 1) if c.session else 0
    return (
        f" /{host}:{port}[1](queued={c.outstanding},recved={c.received},sent={c.sent},"
        f"sid=0x{sid:x},lop=NA,est={int(c.connected_at * 1000)},"
        f"to={c.session.timeout if c.session else 0},lzxid=0x{c.last_zxid:x})"
    )


def _srvr(s: ZooKeeperServer, clients: bool) -> str:
    mn, avg, mx = _latency(s)
    lines = [f"Zookeeper version: {s.VERSION}, built on racklab"]
    if clients:
        lines.append("Clients:")
        lines.extend(_conn_line(c) for c in list(s.connections))
        lines.append("")
    lines += [
        f"Latency min/avg/max: {mn}/{_java_double(avg)}/{mx}",
        f"Received: {s.packets_received}",
        f"Sent: {s.packets_sent}",
        f"Connections: {len(s.connections)}",
        f"Outstanding: {s.outstanding_requests()}",
        f"Zxid: 0x{s.processed_zxid():x}",
        f"Mode: {s.mode}",
        f"Node count: {s.tree.node_count()}",
    ]
    return "\n".join(lines) + "\n"


def _mntr(s: ZooKeeperServer) -> str:
    return "".join(f"{k}\t{v}\n" for k, v in mntr_pairs(s))


def mntr_pairs(s: ZooKeeperServer) -> list[tuple[str, object]]:
    """mntr's keys and values (the admin server's monitor command shares them)."""
    mn, avg, mx = _latency(s)
    try:
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        fds = -1
    import resource

    max_fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    pairs = [
        ("zk_version", f"{s.VERSION}, built on racklab"),
        ("zk_server_state", s.mode),
        ("zk_avg_latency", _java_double(avg)),
        ("zk_max_latency", mx),
        ("zk_min_latency", mn),
        ("zk_packets_received", s.packets_received),
        ("zk_packets_sent", s.packets_sent),
        ("zk_num_alive_connections", len(s.connections)),
        ("zk_outstanding_requests", s.outstanding_requests()),
        ("zk_znode_count", s.tree.node_count()),
        ("zk_watch_count", _watch_count(s)),
        ("zk_ephemerals_count", sum(len(v) for v in s.tree.ephemerals.values())),
        ("zk_approximate_data_size", s.tree.approximate_data_size()),
        ("zk_open_file_descriptor_count", fds),
        ("zk_max_file_descriptor_count", max_fds),
        ("zk_global_sessions", len(s.sessions)),
        ("zk_local_sessions", 0),  # no local sessions (localSessionsEnabled)
        ("zk_uptime", int((time.time() - s.started) * 1000)),
        ("zk_outstanding_tls_handshake", 0),  # no TLS port
    ]
    pairs += list(getattr(s, "extra_mntr", lambda: [])())
    return pairs


def _conf(s: ZooKeeperServer) -> str:
    c = s.cfg
    # where clients are taken now, as Apache's (its connection factory's address):
    # a reconfig may have moved it from zoo.cfg's
    host, port = s.listening or (c.client_port_address, c.client_port)
    lines = [
        # Apache 3.8's ZKConfig keys and order (no clientPortAddress: it names the
        # port only); no TLS port and the default listen backlog, hence the -1s
        f"clientPort={s.port if s.listening else port}",
        "secureClientPort=-1",
        f"dataDir={c.data_dir}",
        f"dataDirSize={_dir_size(c.data_dir)}",
        f"dataLogDir={c.log_dir}",
        f"dataLogSize={_dir_size(c.log_dir)}",
        f"tickTime={c.tick_time}",
        f"maxClientCnxns={c.max_client_cnxns}",
        f"minSessionTimeout={c.min_timeout}",
        f"maxSessionTimeout={c.max_timeout}",
        "clientPortListenBacklog=-1",
        f"serverId={c.myid}",
    ]
    if not c.standalone:
        me = c.servers.get(c.myid)
        # QuorumPeerConfig's lines: fast leader election (3), this member's ports, a
        # participant (peerType 0), then the membership and its version in hex
        lines += [
            f"initLimit={c.init_limit}",
            f"syncLimit={c.sync_limit}",
            "electionAlg=3",
            f"electionPort={me.election_port if me else -1}",
            f"quorumPort={me.peer_port if me else -1}",
            f"peerType={1 if me and me.role == 'observer' else 0}",
            "membership: ",
        ]
        for sid, p in sorted(c.servers.items()):
            lines.append(f"server.{sid}={p.host}:{p.peer_port}:{p.election_port}:{p.role}")
        lines.append(f"version={c.config_version:x}")
        return "\n".join(lines)  # the membership is print()ed: no newline after it
    return "\n".join(lines) + "\n"


def reset_connection_stats(s: ZooKeeperServer) -> None:
    for c in list(s.connections):
        c.received = c.sent = 0


def reset_server_stats(s: ZooKeeperServer) -> None:
    s.packets_received = s.packets_sent = 0
    s.latency = [0.0, 0.0, 0]
    s.latency_total = 0.0


def respond(s: ZooKeeperServer, word: str) -> str:
    allowed = s.cfg.four_letter_words
    if allowed is not None and word not in allowed:
        return f"{word} is not executed because it is not in the whitelist.\n"
    if word == "ruok":
        return "imok"
    if not s.serving and word in ("srvr", "stat", "mntr", "cons", "wchs"):
        return "This ZooKeeper instance is not currently serving requests\n"
    if word == "srvr":
        return _srvr(s, clients=False)
    if word == "stat":
        return _srvr(s, clients=True)
    if word == "mntr":
        return _mntr(s)
    if word == "conf":
        return _conf(s)
    if word == "cons":
        return "\n".join(_conn_line(c) for c in list(s.connections)) + "\n\n"
    if word == "isro":
        return "rw"
    if word == "crst":
        reset_connection_stats(s)
        return "Connection stats reset.\n"
    if word == "srst":
        reset_server_stats(s)
        return "Server stats reset.\n"
    if word == "gtmk":
        return str(TRACE_MASK)
    if word == "hash":
        return ""  # Apache lists tree digests here; racklab keeps none
    if word == "dirs":
        return (
            f"datadir_size: {_dir_size(s.cfg.data_dir)}\nlogdir_size: {_dir_size(s.cfg.log_dir)}\n"
        )
    if word in ("dump", "wchc", "wchp") and not s.serving:
        return "This ZooKeeper instance is not currently serving requests\n"
    if word == "dump":
        return _dump(s)
    if word == "wchc":
        return _watches_by(s, by_session=True)
    if word == "wchp":
        return _watches_by(s, by_session=False)
    if word == "wchs":
        return _watch_summary(s)
    if word == "envi":
        import platform
        import sys

        return (
            "Environment:\n"
            f"zookeeper.version={s.VERSION}\nhost.name={platform.node()}\n"
            f"python.version={sys.version.split()[0]}\nos.name={platform.system()}\n"
        )
    return f"{word} is not executed because it is not in the whitelist.\n"
