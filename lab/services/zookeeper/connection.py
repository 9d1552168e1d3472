"""One client connection: framing, the connect handshake, parsing requests, running
reads, and writing replies and watch events in order.

A connection whose bytes do not make sense (length prefix beyond jute.maxbuffer,
a record that does not decode, an unknown opcode, a request before the handshake)
is closed; nothing it sent can harm the other connections.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from typing import TYPE_CHECKING

from . import acl as acls
from .fourletter import FOUR_LETTER_WORDS
from .javaorder import auth_order
from .jute import JuteError, Reader, Writer
from .proto import (
    REQUEST_TYPES,
    WRITE_OPS,
    AuthPacket,
    ConnectRequest,
    ConnectResponse,
    Create2Response,
    CreateResponse,
    Err,
    ErrorResponse,
    GetDataResponse,
    Id,
    KeeperState,
    MultiHeader,
    Op,
    RequestHeader,
    SetACLResponse,
    SetDataResponse,
    SetWatches,
    SetWatches2,
    WatcherEvent,
    Xid,
    ZKError,
    decode_multi_read,
    decode_request,
)
from .reads import ReadRequests

if TYPE_CHECKING:
    from .server import Entry, ZooKeeperServer

log = logging.getLogger("zookeeper.connection")

_LEN = struct.Struct(">i")
_REPLY = struct.Struct(">iqi")
# How many requests one connection may have in flight before we stop reading from it
# (ZooKeeper's globalOutstandingLimit plays this part).
MAX_OUTSTANDING = 1000
HANDSHAKE_TIMEOUT = 10.0
OUT_FLUSH_BYTES = 256 * 1024

NEW, CONNECTING, CONNECTED, CLOSED = range(4)


class ClientConnection(ReadRequests, asyncio.Protocol):
    def __init__(self, server: ZooKeeperServer):
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.state = NEW
        self.session = None
        self.auth: list[Id] = []
        self.outstanding = 0
        self.read_paused = False
        self.write_paused = False
        self.peer = ("?", 0)
        self.received = 0
        self.sent = 0
        self.connected_at = time.time()
        self.last_zxid = 0
        self.handshake_timer = None
        self.refused = False
        self.out: list[bytes] = []
        self.out_bytes = 0

    # --- asyncio plumbing ----------------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        if not self.server.serving:
            # Not part of a working quorum (electing, syncing): only four-letter words
            # are answered; a client is hung up on (ZooKeeper's "ZooKeeperServer not
            # running"), so it tries another server.
            self.refused = True
            asyncio.get_running_loop().call_later(1.0, self.close)
            return
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = peer[:2]
        limit = self.server.cfg.max_client_cnxns
        per_ip = self.server.connections_per_ip
        if limit > 0 and per_ip.get(self.peer[0], 0) >= limit:
            # ZooKeeper's maxClientCnxns: one address cannot take every slot (or all memory).
            log.warning("too many connections from %s - max is %d", self.peer[0], limit)
            self.refused = True
            self.state = CLOSED
            transport.close()
            return
        per_ip[self.peer[0]] = per_ip.get(self.peer[0], 0) + 1
        self.auth = [Id("ip", str(self.peer[0]))]
        self.server.connections.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        # A client that never completes its handshake must not hold a slot forever.
        self.handshake_timer = asyncio.get_running_loop().call_later(
            HANDSHAKE_TIMEOUT, self._handshake_timeout
        )
        transport.set_write_buffer_limits(high=4 * 1024 * 1024)

    def _handshake_timeout(self):
        if self.state in (NEW, CONNECTING):
            log.info("%s: no handshake within %ss; closing", self.peer, HANDSHAKE_TIMEOUT)
            self.close()

    def connection_lost(self, exc):
        if self.refused:
            return  # never registered
        self.state = CLOSED
        if self.handshake_timer:
            self.handshake_timer.cancel()
        self.server.connection_closed(self)

    def pause_writing(self):
        # The client is not reading its replies: stop reading its requests so its
        # unsent replies cannot grow without bound.
        self.write_paused = True
        self._update_reading()

    def resume_writing(self):
        self.write_paused = False
        self._update_reading()

    def _update_reading(self):
        if self.transport is None or self.state == CLOSED:
            return
        want_pause = self.write_paused or self.outstanding >= MAX_OUTSTANDING
        if want_pause and not self.read_paused:
            self.transport.pause_reading()
            self.read_paused = True
        elif not want_pause and self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
            if self.buf:
                self._process_buffer()

    def close(self):
        if self.state != CLOSED and self.transport is not None:
            self.flush()
            self.state = CLOSED
            self.transport.close()

    def data_received(self, data):
        self.buf += data
        self._process_buffer()
        # Replies to what this read brought (and any proposal or forward it caused)
        # leave now, together, rather than at a later turn of the loop.
        self.server.outbox.flush()

    def _process_buffer(self):
        buf = self.buf
        maxbuffer = self.server.cfg.jute_maxbuffer
        try:
            while not self.read_paused and self.state in (NEW, CONNECTED):
                if len(buf) < 4:
                    return
                if self.state == NEW and bytes(buf[:4]) in FOUR_LETTER_WORDS:
                    self._four_letter(bytes(buf[:4]).decode())
                    return
                if self.refused:
                    self.close()
                    return
                (n,) = _LEN.unpack_from(buf, 0)
                if n < 0 or n > maxbuffer:
                    log.warning(
                        "%s: frame length %d outside 0..%d (jute.maxbuffer); closing",
                        self.peer,
                        n,
                        maxbuffer,
                    )
                    self.close()
                    return
                if len(buf) < 4 + n:
                    return
                frame = bytes(buf[4 : 4 + n])
                del buf[: 4 + n]
                self.received += 1
                self.server.packets_received += 1
                if self.state == NEW:
                    self._connect(frame)
                else:
                    self._request(frame)
        except (JuteError, UnicodeDecodeError, KeyError, TypeError) as e:
            log.warning("%s: undecodable request (%s); closing", self.peer, e)
            self.close()

    # --- sending -------------------------------------------------------------------

    def _send(self, payload: bytes) -> None:
        # Replies produced by one piece of work (a pipelined burst, a commit batch)
        # leave in one write when it ends (server.outbox): one system call, not one
        # per reply.
        if self.state == CLOSED or self.transport is None:
            return
        if not self.out:
            self.server.outbox.mark(self)
        self.out.append(_LEN.pack(len(payload)) + payload)
        self.out_bytes += len(payload) + 4
        self.sent += 1
        self.server.packets_sent += 1
        if self.out_bytes >= OUT_FLUSH_BYTES:
            # Big replies go at once, so transport flow control (pause_writing)
            # still stops us reading from a client that does not read.
            self.flush()

    def flush(self) -> None:
        if self.out:
            data = b"".join(self.out) if len(self.out) > 1 else self.out[0]
            self.out.clear()
            self.out_bytes = 0
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(data)

    def send_reply(self, xid: int, zxid: int, err: int, body: bytes = b"") -> None:
        self.last_zxid = zxid
        self._send(_REPLY.pack(xid, zxid, err) + body)

    def send_event(self, type_: int, path: str, zxid: int) -> None:
        ev = WatcherEvent(type_, KeeperState.SYNC_CONNECTED, path).serialize()
        self._send(_REPLY.pack(Xid.NOTIFICATION, zxid, 0) + ev)

    # --- four-letter words -----------------------------------------------------------

    def _four_letter(self, word: str) -> None:
        from .fourletter import respond

        # Apache counts a four-letter word as a packet in and one out, before answering
        self.server.packets_received += 1
        self.server.packets_sent += 1
        text = respond(self.server, word)
        self.state = CLOSED
        self.transport.write(text.encode())
        self.transport.close()

    # --- handshake -------------------------------------------------------------------

    def _connect(self, frame: bytes) -> None:
        r = Reader(frame)
        req = ConnectRequest.read(r)
        read_only = r.bool() if r.remaining() > 0 else None
        self.has_read_only = read_only is not None
        self.state = CONNECTING
        self.server.connect(self, req)

    def finish_connect(self, session, timeout: int) -> None:
        """Send the ConnectResponse; timeout 0 means the session is invalid."""
        if self.state == CLOSED:
            return
        if session is None:
            resp = ConnectResponse(0, 0, 0, b"\0" * 16).serialize()
        else:
            resp = ConnectResponse(0, timeout, session.id, session.passwd).serialize()
        if self.has_read_only:
            resp += b"\0"
        self._send(resp)
        if self.handshake_timer:
            self.handshake_timer.cancel()
            self.handshake_timer = None
        if session is None:
            # As ZooKeeper: tell the client its session is gone, then hang up.
            self.close()
            return
        self.session = session
        self.state = CONNECTED
        if self.buf:
            self._process_buffer()

    # --- requests ------------------------------------------------------------------------

    def _request(self, frame: bytes) -> None:
        r = Reader(frame)
        hdr = RequestHeader.read(r)
        op = hdr.type
        xid = hdr.xid
        session = self.session
        server = self.server
        session.touch()
        if op == Op.PING:
            self.ordered(xid, op, None)
            return
        if op == Op.AUTH:
            self._auth(xid, AuthPacket.read(r))
            return
        if op == Op.SET_WATCHES:
            self.ordered(xid, op, SetWatches.read(r))
            return
        if op == Op.SET_WATCHES2:
            self.ordered(xid, Op.SET_WATCHES, SetWatches2.read(r))
            return
        if op == Op.CLOSE_SESSION:
            server.submit_write(self, xid, op, None)
            return
        if op == Op.MULTI:
            try:
                ops = decode_request(op, r)
            except ZKError as e:
                server._reply_error(self, xid, op, e.code)
                return
            server.submit_write(self, xid, op, ops)
            return
        if op == Op.WHO_AM_I:
            self.ordered(xid, op, None)
            return
        if op == Op.MULTI_READ:
            self.ordered(xid, op, decode_multi_read(r))
            return
        rtype = REQUEST_TYPES.get(op)
        if rtype is None:
            log.warning("%s: unknown opcode %d; replying Unimplemented and closing", self.peer, op)
            self.send_reply(xid, server.tree.last_zxid, Err.UNIMPLEMENTED)
            self.close()
            return
        req = rtype.read(r)
        if op == Op.SASL and req.token is None:
            # Apache's SASL handling fails on a null token and drops the connection
            # (the session stays).
            log.info("%s: SASL request without a token; closing", self.peer)
            self.close()
            return
        if op == Op.SYNC:
            server.submit_sync(self, xid, req)
        elif op in WRITE_OPS:
            server.submit_write(self, xid, op, req)
        else:
            self.ordered(xid, op, req)

    def ordered(self, xid, op, req) -> None:
        """A read: run now unless earlier requests of this connection are still in flight."""
        if self.outstanding == 0:
            self.run_read(xid, op, req)
        else:
            self.server.enqueue_read(self, xid, op, req)

    def track(self, delta: int) -> None:
        self.outstanding += delta
        if (delta > 0 and self.outstanding >= MAX_OUTSTANDING) or (delta < 0 and self.read_paused):
            self._update_reading()

    def _auth(self, xid: int, pkt: AuthPacket) -> None:
        if pkt.scheme == "digest" and pkt.auth is not None:
            ident = Id("digest", acls.digest(pkt.auth.decode("utf-8", "replace")))
            if ident not in self.auth:
                self.auth.append(ident)
            # the operator's superDigest makes this client the super user, as Apache's
            # DigestAuthenticationProvider does
            if self.server.cfg.super_digest == ident.id and Id("super", "") not in self.auth:
                self.auth.append(Id("super", ""))
            self.auth = auth_order(self.auth)
            self.send_reply(Xid.AUTH, 0, Err.OK)
            return
        if pkt.scheme == "ip":
            # IPAuthenticationProvider: the identity is the client's address, whatever
            # the packet says.
            ident = Id("ip", self.peer[0])
            if ident not in self.auth:
                self.auth.append(ident)
            self.auth = auth_order(self.auth)
            self.send_reply(Xid.AUTH, 0, Err.OK)
            return
        log.info("%s: auth with unsupported scheme %r", self.peer, pkt.scheme)
        self.send_reply(Xid.AUTH, 0, Err.AUTH_FAILED)
        self.close()

    # --- replies to writes -----------------------------------------------------------------

    def reply_write(self, entry: Entry, result) -> None:
        zxid = entry.zxid or self.server.tree.last_zxid
        if entry.err:
            self.send_reply(entry.xid, zxid, entry.err)
            return
        if result.err:
            self.send_reply(entry.xid, zxid, result.err)
            return
        if entry.op == Op.CHECK:
            # check alone (not in a multi) has no reply in Apache's FinalRequestProcessor:
            # a failing one is answered from the prepare step; a passing one ends the
            # connection and its session (a reattach is refused as expired), and so here.
            log.info("%s: check outside a multi passed; closing as Apache does", self.peer)
            if self.session is not None and not self.session.closing:
                self.server.close_session(self.session)
            self.close()
            return
        self.send_reply(entry.xid, zxid, 0, _write_body(entry.op, result))
        if entry.op == Op.CLOSE_SESSION:
            self.close()


# Creates answered with path and Stat (FinalRequestProcessor: create2, createTTL and
# createContainer all reply Create2Response).
CREATE2_REPLIES = frozenset({Op.CREATE2, Op.CREATE_CONTAINER, Op.CREATE_TTL})


def _write_body(op: int, result) -> bytes:
    if op == Op.CREATE:
        return CreateResponse(result.path).serialize()
    if op in CREATE2_REPLIES:
        return Create2Response(result.path, result.stat).serialize()
    if op == Op.SET_DATA:
        return SetDataResponse(result.stat).serialize()
    if op == Op.RECONFIG:
        return GetDataResponse(result.data, result.stat).serialize()
    if op == Op.SET_ACL:
        return SetACLResponse(result.stat).serialize()
    if op == Op.MULTI:
        w = Writer()
        for sub in result.subs:
            if sub.op == Op.ERROR:
                MultiHeader(Op.ERROR, False, sub.err).write(w)
                ErrorResponse(sub.err).write(w)
                continue
            # A container's or TTL node's result is a CreateResult with a Stat, which
            # Apache's MultiResponse writes as create2.
            # createContainer and createTTL answer as create2 (path and Stat) and, in
            # Apache 3.8's multi, create2 answers as create (path only).
            if sub.op in (Op.CREATE_CONTAINER, Op.CREATE_TTL):
                MultiHeader(Op.CREATE2, False, 0).write(w)
                Create2Response(sub.path, sub.stat).write(w)
                continue
            if sub.op == Op.CREATE2:
                MultiHeader(Op.CREATE, False, 0).write(w)
                CreateResponse(sub.path).write(w)
                continue
            MultiHeader(sub.op, False, 0).write(w)
            if sub.op == Op.CREATE:
                CreateResponse(sub.path).write(w)
            elif sub.op in CREATE2_REPLIES:
                Create2Response(sub.path, sub.stat).write(w)
            elif sub.op == Op.SET_DATA:
                SetDataResponse(sub.stat).write(w)
        MultiHeader(-1, True, -1).write(w)
        return w.getvalue()
    return b""


__all__ = ["ClientConnection"]
