"""The head of a write pipeline kept inside the DataNode that serves the WebHDFS upload.

Hadoop's DataNode writes a client's upload through its own DataXceiver over a loopback
connection when it is the first target. This does the same work in process: the first
replica is written directly (its CRCs computed once, as a receiver that got them from a
packet would store them) and the rest of the pipeline is an ordinary PipelineWriter.
It keeps PipelineWriter's contract (open, write, close -> length, unacknowledged, cancel,
abort, targets), so pipeline recovery treats both the same way; a failure downstream is
reported with its index in the whole pipeline.
"""

from __future__ import annotations

import asyncio

from . import checksum
from .datatransfer import PipelineError, PipelineWriter


class LocalPipelineHead:
    def __init__(
        self, datanode, targets: list[dict], header: dict, bpc: int, packet_size: int
    ) -> None:
        self.dn = datanode
        self.targets = targets
        self.header = header
        self.bpc = bpc
        resumes = header.get("stage") in ("append", "recovery")
        self.offset = header["block"].get("numBytes", 0) if resumes else 0
        self.acked_offset = self.offset
        self.down = (
            PipelineWriter(targets[1:], header, bpc, packet_size) if len(targets) > 1 else None
        )
        self.replica = None
        self.finalized = False
        self.failure: PipelineError | None = None

    @staticmethod
    def _shift(exc: PipelineError) -> PipelineError:
        return PipelineError(str(exc), (exc.bad_index or 0) + 1)

    async def open(self) -> None:
        try:
            self.replica = self.dn._open_replica(self.header)
        except (OSError, ValueError) as exc:
            raise PipelineError(
                f"local replica of blk_{self.header['block']['blockId']}: {exc}", 0
            ) from exc
        if self.down is not None:
            try:
                await self.down.open()
            except PipelineError as exc:
                self.dn._suspend(self.replica)
                raise self._shift(exc) from exc

    async def write(self, data: bytes | memoryview) -> None:
        if self.failure:
            raise self.failure
        try:
            self.replica.write(data, checksum.piece_crcs(data, self.offset, self.bpc), verify=False)
        except (OSError, ValueError) as exc:
            self.failure = PipelineError(f"local write failed: {exc}", 0)
            raise self.failure from exc
        self.offset += len(data)
        if self.down is None:
            self.acked_offset = self.offset
            return
        try:
            await self.down.write(data)
        except PipelineError as exc:
            raise self._shift(exc) from exc

    async def close(self) -> int:
        if self.failure:
            raise self.failure
        if self.down is not None:
            try:
                await self.down.close()
            except PipelineError as exc:
                raise self._shift(exc) from exc
        try:
            rep = await asyncio.to_thread(self.replica.finalize, self.dn.sync_on_close)
        except OSError as exc:
            self.failure = PipelineError(f"local finalize failed: {exc}", 0)
            raise self.failure from exc
        self.finalized = True
        self.dn._release(self.replica)
        self.dn.notify_received(rep.to_report())
        try:
            # Tell the NameNode now rather than at the service loop's next turn: the
            # writer's complete() needs this replica known, else it waits and retries.
            await self.dn._flush_incremental()
        except Exception:  # the service loop sends it later; complete() retries
            pass
        self.acked_offset = self.offset
        return self.offset

    def unacknowledged(self) -> tuple[int, bytes]:
        if self.down is not None:
            return self.down.unacknowledged()
        return self.offset, b""

    def abort(self) -> None:
        if self.down is not None:
            self.down.abort()
        if self.replica is not None and not self.finalized:
            self.dn._suspend(self.replica)  # kept for a recovery (the writer's or the NameNode's)

    async def cancel(self) -> None:
        if self.down is not None:
            await self.down.cancel()
        if self.replica is not None and not self.finalized:
            if self.dn.writers.get(self.replica.rep.block_id) is self.replica:
                self.replica.abort()
            self.dn._release(self.replica)
