"""Daemon-to-NameNode calls (ClientProtocol, DatanodeProtocol, NamenodeProtocol) as JSON
over HTTP POST /rpc/<method> on the NameNode's RPC address (fs.defaultFS). Errors travel
as the same RemoteException JSON WebHDFS uses, and are raised again on the caller's side
with their Hadoop class."""

from __future__ import annotations

import json

from ..hadoop import errors
from ..hadoop.http import HttpClient


class NameNodeClient:
    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host, self.port = host, port
        self.http = HttpClient(timeout)

    async def call(self, method: str, **params) -> dict:
        body = json.dumps(params, separators=(",", ":")).encode()
        status, _, data = await self.http.request(
            "POST",
            self.host,
            self.port,
            f"/rpc/{method}",
            body=body,
            headers={"Content-Type": "application/json"},
        )
        try:
            obj = json.loads(data) if data else {}
        except ValueError:
            raise errors.IOException(
                f"NameNode {self.host}:{self.port} answered {status} with no JSON"
            ) from None
        if status != 200:
            raise errors.from_json(obj, f"NameNode answered {status}")
        return obj

    def close(self) -> None:
        self.http.close()
