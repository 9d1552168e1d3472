"""The AdminServer: Apache ZooKeeper 3.5+'s HTTP port (8080) answering
GET /commands/<name> with JSON, the same facts as the four-letter words under the
names and field names Apache 3.8 uses (/commands/stats, /commands/monitor, ...; the
four-letter word is an alias: /commands/stat). GET /commands lists them.

zoo.cfg keys as Apache's (it reads them as system properties, so the "zookeeper."
spelling works too): admin.enableServer (default true), admin.serverAddress (default
0.0.0.0), admin.serverPort (8080), admin.commandURL (/commands). If the port cannot
be bound the server logs why and goes on serving clients, as Apache's does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import sys
import time
from typing import TYPE_CHECKING

from . import fourletter as flw

if TYPE_CHECKING:
    from .server import ZooKeeperServer

log = logging.getLogger("zookeeper.admin")

MAX_HEAD = 8192  # bytes of request line and headers
READ_TIMEOUT = 5.0


def _signed(x: int) -> int:
    x &= (1 << 64) - 1
    return x - (1 << 64) if x >> 63 else x


def _buffer_stats() -> dict:
    # Apache's BufferStats before any response is measured; racklab measures none
    return {"last_buffer_size": -1, "min_buffer_size": -1, "max_buffer_size": -1}


def _server_stats(s: ZooKeeperServer) -> dict:
    mn, avg, mx = flw._latency(s)
    return {
        "packets_sent": s.packets_sent,
        "packets_received": s.packets_received,
        "fsync_threshold_exceed_count": 0,
        "client_response_stats": _buffer_stats(),
        "provider_null": False,
        "data_dir_size": flw._dir_size(s.cfg.data_dir),
        "log_dir_size": flw._dir_size(s.cfg.log_dir),
        "server_state": s.mode,
        "last_processed_zxid": s.processed_zxid(),
        "outstanding_requests": s.outstanding_requests(),
        "avg_latency": round(avg, 4),
        "max_latency": mx,
        "min_latency": mn,
        "num_alive_client_connections": len(s.connections),
        "uptime": int((time.time() - s.started) * 1000),
        "auth_failed_count": 0,
        "non_mtlsremote_conn_count": 0,
        "non_mtlslocal_conn_count": 0,
    }


def _conn(c, full: bool) -> dict:
    host, port = c.peer
    out = {
        "remote_socket_address": f"{host}:{port}",
        "interest_ops": 1,
        "outstanding_requests": c.outstanding,
        "packets_received": c.received,
        "packets_sent": c.sent,
    }
    if full and c.session is not None:
        out.update(
            session_id=_signed(c.session.id),
            established=int(c.connected_at * 1000),
            session_timeout=c.session.timeout,
            last_zxid=c.last_zxid,
        )
    return out


def srvr(s: ZooKeeperServer) -> dict:
    return {
        "version": f"{s.VERSION}, built on racklab",
        "read_only": False,
        "server_stats": _server_stats(s),
        "client_response": _buffer_stats(),
        "node_count": s.tree.node_count(),
    }


def stat(s: ZooKeeperServer) -> dict:
    out = srvr(s)
    out["connections"] = [_conn(c, False) for c in list(s.connections)]
    out["secure_connections"] = []
    return out


def conf(s: ZooKeeperServer) -> dict:
    c = s.cfg
    port = s.port if s.listening else c.client_port
    return {
        "client_port": port,
        "data_dir": c.data_dir,
        "data_log_dir": c.log_dir,
        "tick_time": c.tick_time,
        "max_client_cnxns": c.max_client_cnxns,
        "min_session_timeout": c.min_timeout,
        "max_session_timeout": c.max_timeout,
        "server_id": c.myid,
        "client_port_listen_backlog": -1,
    }


def monitor(s: ZooKeeperServer) -> dict:
    out = {}
    for k, v in flw.mntr_pairs(s):
        k = k.removeprefix("zk_")
        if k == "avg_latency":
            v = float(v)
        out[k] = v
    return out


def wchs(s: ZooKeeperServer) -> dict:
    conns, paths, total = flw.watch_summary(s)
    return {"num_connections": conns, "num_paths": paths, "num_total_watches": total}


def wchc(s: ZooKeeperServer) -> dict:
    by_watcher = s.tree.watches_of(s.tree.data_manager)
    out: dict[str, list[str]] = {}
    for w, paths in by_watcher.items():
        sess = getattr(w, "session", None)
        out.setdefault(str(_signed(sess.id if sess else 0)), []).extend(sorted(paths))
    return {"session_id_to_watched_paths": out}


def wchp(s: ZooKeeperServer) -> dict:
    out: dict[str, list[int]] = {}
    for w, paths in s.tree.watches_of(s.tree.data_manager).items():
        sess = getattr(w, "session", None)
        for p in paths:
            out.setdefault(p, []).append(_signed(sess.id if sess else 0))
    return {"path_to_session_ids": dict(sorted(out.items()))}


def dump(s: ZooKeeperServer) -> dict:
    # expiry times as Apache's ExpiryQueue keeps them: milliseconds, rounded up to the
    # next tick, on the server's monotonic clock
    tick = s.cfg.tick_time
    expiry: dict[str, list[int]] = {}
    for x in s.sessions.values():
        bucket = (int(x.expires * 1000) // tick + 1) * tick
        expiry.setdefault(str(bucket), []).append(_signed(x.id))
    ephemerals = {
        str(_signed(sid)): paths.java_order() for sid, paths in s.tree.ephemerals.items() if paths
    }
    return {"expiry_time_to_session_ids": expiry, "session_id_to_ephemeral_paths": ephemerals}


def envi(s: ZooKeeperServer) -> dict:
    return {
        "zookeeper.version": f"{s.VERSION}, built on racklab",
        "host.name": platform.node(),
        "python.version": sys.version.split()[0],
        "os.name": platform.system(),
        "os.arch": platform.machine(),
        "os.version": platform.release(),
    }


def leader(s: ZooKeeperServer) -> dict:
    if s.mode not in ("leader", "follower", "observer"):
        return {"error": "server is not initialized"}
    lid = getattr(s, "leader_id", None)
    peer = s.cfg.servers.get(lid) if lid is not None else None
    return {
        "is_leader": s.mode == "leader",
        "leader_id": lid,
        "leader_ip": peer.host if peer else None,
    }


def _reset_stats(s: ZooKeeperServer) -> dict:
    flw.reset_server_stats(s)
    return {}


def _reset_connections(s: ZooKeeperServer) -> dict:
    flw.reset_connection_stats(s)
    return {}


# Apache's command names, their four-letter aliases, and what each answers
COMMANDS = {
    "configuration": (("conf",), conf),
    "connection_stat_reset": (("crst",), _reset_connections),
    "connections": (("cons",), lambda s: {"connections": [_conn(c, True) for c in list(s.connections)], "secure_connections": []}),  # noqa: E501
    "dirs": ((), lambda s: {"datadir_size": flw._dir_size(s.cfg.data_dir), "logdir_size": flw._dir_size(s.cfg.log_dir)}),  # noqa: E501
    "dump": ((), dump),
    "environment": (("envi", "envinfo"), envi),
    "get_trace_mask": (("gtmk",), lambda s: {"tracemask": flw.TRACE_MASK}),
    "hash": ((), lambda s: {"digests": []}),
    "is_read_only": (("isro",), lambda s: {"read_only": False}),
    "leader": (("lead",), leader),
    "monitor": (("mntr",), monitor),
    "ruok": ((), lambda s: {}),
    "server_stats": (("srvr",), srvr),
    "stat_reset": (("srst",), _reset_stats),
    "stats": (("stat",), stat),
    "watch_summary": (("wchs",), wchs),
    "watches": (("wchc",), wchc),
    "watches_by_path": (("wchp",), wchp),
}  # fmt: skip
_BY_NAME = {alias: name for name, (aliases, _) in COMMANDS.items() for alias in (name, *aliases)}


def run_command(s: ZooKeeperServer, name: str) -> dict:
    """A command's JSON object, with Apache's "command" and "error" fields."""
    primary = _BY_NAME.get(name)
    if primary is None:
        return {"command": name, "error": f"Unknown command: {name}"}
    out = COMMANDS[primary][1](s)
    if "error" in out:
        return {**out, "command": primary}
    return {**out, "command": primary, "error": None}


def _index(url: str) -> str:
    return "".join(f'<a href="{url}/{n}">{n}</a>\n<br/>\n' for n in sorted(COMMANDS))


class AdminServer:
    def __init__(self, server: ZooKeeperServer):
        self.server = server
        raw = server.cfg.raw

        def key(name: str, default: str) -> str:
            return raw.get(name, raw.get(f"zookeeper.{name}", default)).strip()

        self.enabled = key("admin.enableServer", "true").lower() == "true"
        self.address = key("admin.serverAddress", "0.0.0.0")
        self.port = int(key("admin.serverPort", "8080"))
        self.url = "/" + key("admin.commandURL", "/commands").strip("/")
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        if not self.enabled:
            return
        try:
            self._server = await asyncio.start_server(
                self._handle, self.address, self.port, reuse_address=True, limit=MAX_HEAD
            )
        except OSError as e:
            log.warning("admin server not started on %s:%d: %s", self.address, self.port, e)
            return
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("admin server on %s:%d%s", self.address, self.port, self.url)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            status, ctype, body = self._answer(head.split(b"\r\n", 1)[0])
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            status, ctype, body = "400 Bad Request", "text/plain", b"bad request\n"
        except ConnectionError:
            writer.close()
            return
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    def _answer(self, line: bytes) -> tuple[str, str, bytes]:
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or len(line) > MAX_HEAD:
            return "400 Bad Request", "text/plain", b"bad request\n"
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method not in ("GET", "POST"):
            return "405 Method Not Allowed", "text/plain", b"GET or POST\n"
        if target.rstrip("/") == self.url:
            return "200 OK", "text/html", _index(self.url).encode()
        if not target.startswith(self.url + "/"):
            return "404 Not Found", "text/plain", b"not found\n"
        out = run_command(self.server, target[len(self.url) + 1 :].strip("/"))
        return "200 OK", "application/json", (json.dumps(out, indent=2) + "\n").encode()


__all__ = ["AdminServer", "COMMANDS", "run_command"]
