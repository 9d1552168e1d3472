"""Hadoop IPC, server side, as Hadoop 3's ipc.Server speaks it to ProtobufRpcEngine2
clients (the Java client, hdfs-native, libhdfs3...).

A connection opens with the 7-byte preamble "hrpc", version 9, service class, auth
protocol (0 = SIMPLE; 0xDF = SASL, answered with SUCCESS since this lab runs without
Kerberos, as an insecure Hadoop server does). Then frames: a 4-byte big-endian length,
and inside it varint-delimited messages — RpcRequestHeaderProto, then for callId -3 the
IpcConnectionContextProto (who the user is), for ordinary calls RequestHeaderProto
(method and protocol) and the request. Every answer is a frame holding
RpcResponseHeaderProto and, on success, the response message. A failed call is ERROR
with the Java exception's class name and message, and the connection stays open; a
frame that cannot be understood is FATAL and the connection is closed."""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass, field

from .protobuf import DecodeError, Schema

log = logging.getLogger("hadoop.ipc")

VERSION = 9
AUTH_SIMPLE, AUTH_SASL = 0, 0xDF
CONNECTION_CONTEXT_CALL_ID, PING_CALL_ID, SASL_CALL_ID = -3, -4, -33
MAX_DATA_LENGTH = 128 * 1024 * 1024  # ipc.maximum.data.length
RPC_HEADER = "hadoop.common.RpcRequestHeaderProto"
RESPONSE_HEADER = "hadoop.common.RpcResponseHeaderProto"
REQUEST_HEADER = "hadoop.common.RequestHeaderProto"
CONTEXT = "hadoop.common.IpcConnectionContextProto"
SASL = "hadoop.common.RpcSaslProto"


class RpcError(Exception):
    """An error answered with Hadoop's exception class and error code."""

    def __init__(self, java: str, message: str, code: str = "ERROR_RPC_SERVER") -> None:
        super().__init__(message)
        self.java, self.code = java, code


class FatalRpcError(RpcError):
    """The connection cannot go on: answered FATAL, then closed."""


@dataclass
class CallContext:
    """Who is calling: the connection's user (IpcConnectionContextProto) and address."""

    user: str
    peer_ip: str
    real_user: str | None = None
    protocol: str = ""
    call_id: int = 0
    client_id: bytes = b""
    extra: dict = field(default_factory=dict)


class IpcServer:
    """Serves protocol handlers over Hadoop IPC. `handlers` maps a Java protocol name
    (RequestHeaderProto.declaringClassProtocolName) to an object with `service` (the
    protobuf service it implements) and one method per RPC, called as
    `method(request, ctx)` and returning the response message as a dict."""

    def __init__(
        self,
        schema: Schema,
        handlers: dict[str, object],
        max_data_length: int = MAX_DATA_LENGTH,
        idle_timeout: float = 20.0,
    ) -> None:
        self.schema = schema
        self.handlers = handlers
        self.max_data_length = max_data_length
        self.idle_timeout = idle_timeout

    @classmethod
    def configured(cls, conf, handlers: dict[str, object]) -> IpcServer:
        """A server bounded by a daemon's configuration, as Hadoop's ipc.Server reads it:
        ipc.maximum.data.length, and a connection idle for twice the client's
        ipc.client.connection.maxidletime closed."""
        return cls(
            Schema.load(),
            handlers,
            max_data_length=conf.get_size("ipc.maximum.data.length", MAX_DATA_LENGTH),
            idle_timeout=2 * conf.get_seconds("ipc.client.connection.maxidletime", "ms", 10.0),
        )

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        peer_ip = peer[0] if peer else "?"
        try:
            await self._serve(reader, writer, peer_ip)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client went away, sent half a frame, or stayed silent too long
        except FatalRpcError as exc:
            log.info("IPC connection from %s closed: %s", peer_ip, exc)
        except asyncio.CancelledError:
            pass  # the server is shutting down
        except Exception:  # a bug in one connection must not take the server down
            log.exception("IPC connection from %s failed", peer_ip)
        finally:
            writer.close()

    async def _read(self, reader: asyncio.StreamReader, n: int) -> bytes:
        async with asyncio.timeout(self.idle_timeout):
            return await reader.readexactly(n)

    async def _serve(self, reader, writer, peer_ip: str) -> None:
        magic, version, _service_class, auth = struct.unpack(">4sBBB", await self._read(reader, 7))
        if magic != b"hrpc":
            return  # not Hadoop IPC at all: nothing sensible to answer
        if version != VERSION:
            # Hadoop answers an old client in its own framing; a modern header is the most
            # any client of version >= 9 can read.
            await self._send(
                writer,
                {
                    "callId": 0xFFFFFFFF,
                    "status": "FATAL",
                    "serverIpcVersionNum": VERSION,
                    "exceptionClassName": "org.apache.hadoop.ipc.RPC$VersionMismatch",
                    "errorMsg": f"Server IPC version {VERSION} cannot communicate with client "
                    f"version {version}",
                    "errorDetail": "FATAL_VERSION_MISMATCH",
                },
            )
            return
        if auth not in (AUTH_SIMPLE, AUTH_SASL):
            await self._fatal(writer, -1, b"", FatalRpcError(
                "org.apache.hadoop.security.AccessControlException",
                f"Unknown auth protocol {auth}", "FATAL_UNAUTHORIZED"))  # fmt: skip
            return
        ctx: CallContext | None = None
        while True:
            size = struct.unpack(">i", await self._read(reader, 4))[0]
            if size < 0 or size > self.max_data_length:
                # Hadoop's checkDataLength: logged, and the connection dropped.
                log.warning(
                    "Requested data length %d is longer than maximum configured RPC length "
                    "%d.  RPC came from %s", size, self.max_data_length, peer_ip,
                )  # fmt: skip
                return
            frame = memoryview(await self._read(reader, size))
            try:
                header, pos = self.schema.decode_delimited(RPC_HEADER, frame)
            except DecodeError as exc:
                await self._fatal(writer, -1, b"", FatalRpcError(
                    "org.apache.hadoop.ipc.RpcServerException",
                    f"Invalid RPC header: {exc}", "FATAL_DESERIALIZING_REQUEST"))  # fmt: skip
                return
            call_id, client_id = header["callId"], header["clientId"]
            if header["rpcOp"] == "RPC_CLOSE_CONNECTION":
                return
            try:
                if call_id == PING_CALL_ID:
                    continue
                if call_id == SASL_CALL_ID:
                    await self._sasl(writer, frame, pos)
                    continue
                if call_id == CONNECTION_CONTEXT_CALL_ID:
                    ctx = self._context(frame, pos, peer_ip)
                    continue
                if ctx is None:
                    raise FatalRpcError(
                        "org.apache.hadoop.ipc.RpcServerException",
                        "Connection context not established",
                        "FATAL_INVALID_RPC_HEADER",
                    )
                if header["rpcKind"] != "RPC_PROTOCOL_BUFFER":
                    raise FatalRpcError(
                        "org.apache.hadoop.ipc.RpcServerException",
                        f"Unknown rpc kind {header['rpcKind']}",
                        "FATAL_UNSUPPORTED_SERIALIZATION",
                    )
                ctx.call_id, ctx.client_id = call_id, client_id
                body = self._call(frame, pos, ctx)
                await self._send(writer, self._ok(call_id, client_id), body)
            except FatalRpcError as exc:
                await self._fatal(writer, call_id, client_id, exc)
                return
            except RpcError as exc:
                await self._send(writer, self._error(call_id, client_id, exc, "ERROR"))

    # ------------------------------------------------------------ one call
    def _call(self, frame, pos: int, ctx: CallContext) -> bytes:
        try:
            req_header, pos = self.schema.decode_delimited(REQUEST_HEADER, frame, pos)
        except DecodeError as exc:
            raise FatalRpcError(
                "org.apache.hadoop.ipc.RpcServerException",
                f"Invalid request header: {exc}",
                "FATAL_DESERIALIZING_REQUEST",
            ) from None
        protocol, method = req_header["declaringClassProtocolName"], req_header["methodName"]
        handler = self.handlers.get(protocol)
        if handler is None:
            raise RpcError(
                "org.apache.hadoop.ipc.RpcNoSuchProtocolException",
                f"Unknown protocol: {protocol}",
                "ERROR_NO_SUCH_PROTOCOL",
            )
        types = self.schema.services[handler.service].get(method)
        fn = getattr(handler, method, None) if types else None
        if fn is None:
            raise RpcError(
                "org.apache.hadoop.ipc.RpcNoSuchMethodException",
                f"Unknown method {method} called on {protocol} protocol.",
                "ERROR_NO_SUCH_METHOD",
            )
        req_type, resp_type = types
        try:
            request = self.schema.decode_delimited(req_type, frame, pos)[0]
        except DecodeError as exc:
            raise FatalRpcError(
                "org.apache.hadoop.ipc.RpcServerException",
                f"Invalid {req_type}: {exc}",
                "FATAL_DESERIALIZING_REQUEST",
            ) from None
        try:
            response = fn(request, ctx)
            return self.schema.encode_delimited(resp_type, response)
        except RpcError:
            raise
        except Exception as exc:
            java = getattr(exc, "java", None)
            if java is None:  # not one of the service's own (Java-named) exceptions: a bug
                log.exception("%s.%s failed", protocol, method)
                java, exc = "java.io.IOException", repr(exc)
            raise RpcError(java, str(exc), "ERROR_APPLICATION") from None

    def _context(self, frame, pos: int, peer_ip: str) -> CallContext:
        try:
            context = self.schema.decode_delimited(CONTEXT, frame, pos)[0]
        except DecodeError as exc:
            raise FatalRpcError(
                "org.apache.hadoop.ipc.RpcServerException",
                f"Invalid connection context: {exc}",
                "FATAL_DESERIALIZING_REQUEST",
            ) from None
        info = context["userInfo"] or {}
        user = info.get("effectiveUser") or info.get("realUser")
        if not user:
            raise FatalRpcError(
                "org.apache.hadoop.security.AccessControlException",
                "Authentication is required",
                "FATAL_UNAUTHORIZED",
            )
        return CallContext(
            user=user,
            peer_ip=peer_ip,
            real_user=info.get("realUser") or None,
            protocol=context["protocol"] or "",
        )

    async def _sasl(self, writer, frame, pos: int) -> None:
        """Security is off: a client that starts SASL is told SUCCESS at once, which makes
        it fall back to SIMPLE (Hadoop's server does the same when auth is simple)."""
        try:
            msg = self.schema.decode_delimited(SASL, frame, pos)[0]
        except DecodeError as exc:
            raise FatalRpcError(
                "org.apache.hadoop.security.AccessControlException",
                f"Invalid SASL message: {exc}",
                "FATAL_UNAUTHORIZED",
            ) from None
        if msg["state"] != "NEGOTIATE":
            raise FatalRpcError(
                "org.apache.hadoop.security.AccessControlException",
                f"SASL {msg['state']} without a negotiation",
                "FATAL_UNAUTHORIZED",
            )
        body = self.schema.encode_delimited(SASL, {"state": "SUCCESS"})
        await self._send(writer, {"callId": SASL_CALL_ID & 0xFFFFFFFF, "status": "SUCCESS"}, body)

    # ------------------------------------------------------------ answers
    @staticmethod
    def _ok(call_id: int, client_id: bytes) -> dict:
        return {
            "callId": call_id & 0xFFFFFFFF,  # uint32 on the way back, sint32 on the way in
            "status": "SUCCESS",
            "serverIpcVersionNum": VERSION,
            "clientId": client_id,
            "retryCount": -1,
        }

    def _error(self, call_id: int, client_id: bytes, exc: RpcError, status: str) -> dict:
        return {
            **self._ok(call_id, client_id),
            "status": status,
            "exceptionClassName": exc.java,
            "errorMsg": str(exc),
            "errorDetail": exc.code,
        }

    async def _fatal(self, writer, call_id: int, client_id: bytes, exc: RpcError) -> None:
        await self._send(writer, self._error(call_id, client_id, exc, "FATAL"))

    async def _send(self, writer, header: dict, body: bytes = b"") -> None:
        payload = self.schema.encode_delimited(RESPONSE_HEADER, header) + body
        writer.write(struct.pack(">i", len(payload)) + payload)
        await writer.drain()
