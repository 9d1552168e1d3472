"""The ShuffleHandler aux service (on mapreduce.shuffle.port): a reducer fetches its
partition of finished maps' outputs from the node that ran them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

from . import http
from .nmcontainer import SAFE_ID


class ShuffleHandler:
    def __init__(self, app_dir: Callable[[str], Path | None]):
        """app_dir: an application id -> its app cache directory on this node, or None."""
        self.app_dir = app_dir

    async def handle(self, req: http.Request) -> http.Response:
        """GET /mapOutput?job=job_<ts>_<seq>&reduce=<n>&map=attempt_... -> that map's partition."""
        if req.path.rstrip("/") != "/mapOutput":
            raise http.not_found(f"Cannot find resource {req.path}")
        job, reduce_, maps = (
            req.query.get("job", ""),
            req.query.get("reduce", ""),
            req.query.get("map", ""),
        )
        m = re.match(r"^job_(\d+)_(\d+)$", job)
        if not m or not reduce_.isdigit() or not maps:
            raise http.bad_request(
                "mapOutput needs job=job_<ts>_<seq>, reduce=<n> and map=<attempt id>"
            )
        app_dir = self.app_dir(f"application_{m.group(1)}_{m.group(2)}")
        chunks = []
        for attempt in maps.split(","):
            if not SAFE_ID.match(attempt):
                raise http.bad_request(f"invalid map attempt id {attempt!r}")
            f = app_dir / "output" / attempt / f"part-{int(reduce_)}" if app_dir else None
            if f is None or not f.is_file():
                raise http.not_found(
                    f"map output of {attempt} for reduce {reduce_} is not on this node"
                )
            chunks.append(await asyncio.to_thread(f.read_bytes))
        return http.Response(200, b"".join(chunks), "application/octet-stream")
