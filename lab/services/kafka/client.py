"""A minimal Kafka protocol client over the same generated codecs: followers use
it to fetch from leaders, and the admin commands to talk to a cluster."""

from __future__ import annotations

import asyncio
import itertools

from .protocol.api import APIS, decode_response, encode_request


class KafkaError(Exception):
    pass


class Connection:
    def __init__(self, host: str, port: int, client_id: str = "racklab"):
        self.host, self.port, self.client_id = host, port, client_id
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self.versions: dict[int, tuple[int, int]] = {}

    async def connect(self, timeout: float = 5) -> None:
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout
        )

    async def request(self, api_key: int, version: int, body: dict, timeout: float = 30) -> dict:
        """One request, its response; requests on a connection go one at a time."""
        api = APIS[api_key]
        async with self._lock:
            if self.writer is None:
                await self.connect()
            cid = next(self._ids) & 0x7FFFFFFF
            self.writer.write(encode_request(api, version, cid, self.client_id, body))
            await self.writer.drain()
            size = int.from_bytes(
                await asyncio.wait_for(self.reader.readexactly(4), timeout), "big"
            )
            payload = await asyncio.wait_for(self.reader.readexactly(size), timeout)
        got, resp = decode_response(api, version, payload)
        if got != cid:
            raise KafkaError(f"correlation id {got} does not match request {cid}")
        return resp

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
            self.writer = None
