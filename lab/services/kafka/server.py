"""TCP side: size-prefixed frames in, one request at a time per connection (as
Kafka mutes a channel while its request is in flight), responses out in order.

Malformed input never takes the broker down: a frame above
socket.request.max.bytes, an unparsable header or body, or an API we do not
serve closes that one connection; ApiVersions at a version we do not know gets
UNSUPPORTED_VERSION with our ranges in a v0 body, so the client can downgrade.
Produce v0-v2 and Fetch v0-v3 (the old message formats) are answered, at their
version, with UNSUPPORTED_VERSION for each partition (oldversions.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from . import handlers, oldversions
from .logthrottle import Throttle
from .protocol.api import ApiKey, encode_response, read_request_header
from .protocol.errors import Error
from .protocol.primitives import DecodeError, Reader

if TYPE_CHECKING:
    from .broker import Broker

log = logging.getLogger("lab.kafka.server")


async def serve(broker: Broker) -> asyncio.base_events.Server:
    lst = broker.config.listener

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handle_connection(broker, reader, writer)

    # bound now (so the port is known), accepting only once the broker is
    # registered: an open port then means a broker ready to answer
    return await asyncio.start_server(
        on_client, lst.host or None, lst.port, limit=1 << 20, start_serving=False
    )


async def handle_connection(broker: Broker, reader, writer) -> None:
    peer = writer.get_extra_info("peername")
    host = peer[0] if peer else "?"
    max_bytes = broker.config.socket_request_max_bytes
    # connections.max.idle.ms: a connection that sends no request, reads no response
    # or waits on one request for that long is closed, as Kafka's selector does, so
    # abandoned sockets do not hold descriptors forever
    idle = broker.config.connections_max_idle_ms / 1000
    try:
        while True:
            try:
                head = await asyncio.wait_for(reader.readexactly(4), idle)
            except TimeoutError:
                log.info("closing connection from %s: idle for %d ms", host, idle * 1000)
                return
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            size = int.from_bytes(head, "big", signed=True)
            if size < 0 or size > max_bytes:
                log.warning(
                    "closing connection from %s: frame of %d bytes is larger than "
                    "socket.request.max.bytes (%d) or negative",
                    host,
                    size,
                    max_bytes,
                )
                return
            try:
                payload = await asyncio.wait_for(reader.readexactly(size), idle)
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                return
            try:
                # as Kafka's selector, the idle clock runs while a request waits too: a
                # long poll (max_wait_ms up to 24 days) from a client that went away
                # must not hold its socket longer than connections.max.idle.ms
                frame = await asyncio.wait_for(dispatch(broker, payload, host), idle)
            except TimeoutError:
                log.info(
                    "closing connection from %s: request unanswered for %d ms", host, idle * 1000
                )
                return
            if frame is None:
                continue
            if frame is CLOSE:
                return
            writer.write(frame)
            try:
                await asyncio.wait_for(writer.drain(), idle)
            except TimeoutError:
                log.info("closing connection from %s: response unread for %d ms", host, idle * 1000)
                return
    except (ConnectionError, asyncio.CancelledError):
        pass
    except Exception:  # noqa: BLE001 - one connection's bug must not stop the broker
        log.exception("connection from %s failed", host)
    finally:
        writer.close()


CLOSE = object()

# one line per client address and API, not one per request of a retrying old client
_said = Throttle()


def _decode_body(api, header, r: Reader, host: str):
    """The request body, or CLOSE for one that does not decode (as Kafka, which closes
    the connection on a malformed request)."""
    try:
        return api.request.decode(r, header.api_version)
    except DecodeError as e:
        log.warning(
            "closing connection from %s: malformed %s v%d: %s",
            host,
            api.name,
            header.api_version,
            e,
        )
        return CLOSE


def _refuse_old(api, header, r: Reader, host: str):
    """Produce v0-v2 / Fetch v0-v3: answered at the client's version with
    UNSUPPORTED_VERSION for each partition (see oldversions)."""
    body = _decode_body(api, header, r, host)
    if body is CLOSE:
        return CLOSE
    if _said.due((host, api.key)):
        log.warning(
            "%s v%d from %s (client id %s) refused with UNSUPPORTED_VERSION: this broker "
            "serves %s v%d-v%d, record batches (message format v2) only; the client must "
            "use Kafka 0.11's protocol or later",
            api.name,
            header.api_version,
            host,
            header.client_id,
            api.name,
            api.min_version,
            api.max_version,
        )
    resp = oldversions.refusal(api.key, body)
    if resp is None:
        return None
    return encode_response(api, header.api_version, header.correlation_id, resp)


async def dispatch(broker: Broker, payload: bytes, host: str):
    r = Reader(payload)
    try:
        header, api = read_request_header(r)
    except DecodeError as e:
        log.warning("closing connection from %s: unreadable request header: %s", host, e)
        return CLOSE
    if api is None:
        log.warning("closing connection from %s: unknown API key %d", host, header.api_key)
        return CLOSE
    if not api.supports(header.api_version):
        if api.key == ApiKey.API_VERSIONS:
            return encode_response(
                api,
                0,
                header.correlation_id,
                {"error_code": Error.UNSUPPORTED_VERSION, "api_keys": handlers.api_ranges()},
            )
        if oldversions.refused(api.key, header.api_version):
            return _refuse_old(api, header, r, host)
        log.warning(
            "closing connection from %s: %s v%d is not supported (%d-%d)",
            host,
            api.name,
            header.api_version,
            api.min_version,
            api.max_version,
        )
        return CLOSE
    body = _decode_body(api, header, r, host)
    if body is CLOSE:
        return CLOSE
    resp = await handlers.HANDLERS[api.key](broker, body, header, host)
    if resp is None:  # acks=0 produce: no response at all
        return None
    return encode_response(api, header.api_version, header.correlation_id, resp)
