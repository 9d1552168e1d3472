"""The DataNode's side of a write pipeline, Hadoop's BlockReceiver and PacketResponder:
a WRITE_BLOCK's replica opened as its stage and generation stamps allow (FsDatasetImpl's
rules), packets forwarded downstream, written and checked, acks sent upstream once the
nodes downstream have acknowledged, the replica finalized after the last packet, and a
replica whose pipeline broke kept (RBW) for the writer's or the NameNode's recovery.
A mixin of DataNode: it uses the DataNode's block store, writers and NameNode client."""

from __future__ import annotations

import asyncio
import logging
import time

from .checksum import CRC_SIZE, ChecksumError, piece_count
from .datatransfer import (
    ABORT,
    ERROR,
    ERROR_CHECKSUM,
    LAST,
    MAX_MSG,
    PACKET,
    SUCCESS,
    SYNC,
    encode_ack,
    recv_ack,
    recv_msg,
    recv_packet,
    send_msg,
)
from .receivebuffer import ReceiveBuffer

log = logging.getLogger("hdfs.datanode")


class ReplicaError(ValueError):
    """Hadoop's ReplicaAlreadyExistsException / ReplicaNotFoundException family: a write
    request this replica's state or generation stamp does not allow."""


class BlockReceiving:
    def _open_replica(self, header: dict):
        """A replica writer for a checked WRITE_BLOCK header, or ReplicaError. Nothing on
        disk changes unless the stage and generation stamps allow it (FsDatasetImpl's
        rules): a request never replaces or removes a finalized replica on its own word."""
        blk, stage = header["block"], header["stage"]
        bid = int(blk["blockId"])
        previous = self.writers.get(bid)
        writer = self._open_replica_stage(bid, blk, stage, header)
        log.info(
            "Receiving blk_%d_%d (%s, new generation stamp %s)",
            bid,
            blk["genStamp"],
            stage,
            header.get("newGenStamp"),
        )
        if previous is not None and previous is not writer:
            # A newer pipeline for this block wins; the old handler may not have seen its
            # connection end yet: its files are closed before it writes again.
            previous.close_files()
        self.writers[bid] = writer
        return writer

    def _open_replica_stage(self, bid: int, blk: dict, stage: str, header: dict):
        gs, new_gs = blk["genStamp"], header.get("newGenStamp")
        if stage in ("append", "recovery"):
            if new_gs is None:
                raise ReplicaError(f"{stage} of blk_{bid}_{gs} needs newGenStamp")
            if new_gs <= gs:
                raise ReplicaError(
                    f"The new generation stamp {new_gs} should be greater than the "
                    f"replica blk_{bid}_{gs}'s generation stamp"
                )
        if stage == "append":
            return self.store.append(bid, gs, new_gs, blk["numBytes"])
        if stage == "recovery":
            rep = self.store.get(bid)
            if rep is not None and rep.state != "finalized" and not gs <= rep.gen_stamp < new_gs:
                raise ReplicaError(
                    f"Cannot recover blk_{bid}_{rep.gen_stamp}: its generation stamp is outside "
                    f"[{gs}, {new_gs})"
                )
            stalled = self.stalled.pop(bid, None)
            before = stalled[1].before_append if stalled else None
            writer = self.store.recover(bid, new_gs, blk["numBytes"])
            writer.before_append = before or writer.before_append
            return writer
        old = self.store.get(bid)
        if old is not None:
            # Neither a new block nor a re-replication copy takes the place of a replica
            # already here, finished or not: an unfinished one may be a reopened replica
            # of acknowledged bytes waiting for its writer's recovery. The NameNode
            # invalidates a stale replica before it sends a copy to the same node.
            raise ReplicaError(
                f"Block blk_{bid}_{gs} already exists in state "
                f"{'FINALIZED' if old.state == 'finalized' else 'RBW'} and thus cannot be created."
            )
        # A copy from another DataNode is TEMPORARY until it is complete (BlockReceiver's
        # createTemporary for TRANSFER_RBW and TRANSFER_FINALIZED): a restart removes it.
        return self.store.create_rbw(bid, gs, temporary=stage in ("transfer", "transfer_rbw"))

    async def _write_block(self, header: dict, up_reader, up_writer) -> None:
        """BlockReceiver + PacketResponder for one pipeline stage."""
        targets = header["targets"]
        bid = header["block"]["blockId"]
        try:
            replica = self._open_replica(header)
        except (OSError, ValueError) as exc:
            log.warning("refused WRITE_BLOCK (%s) of blk_%d: %s", header["stage"], bid, exc)
            await send_msg(
                up_writer, {"status": "ERROR", "message": str(exc), "firstBadLink": self.uuid}
            )
            return
        down_reader = down_writer = None
        if targets:
            nxt = targets[0]
            try:
                down_reader, down_writer = await asyncio.wait_for(
                    asyncio.open_connection(nxt["ip"], nxt["xferPort"]), 30
                )
                await send_msg(down_writer, dict(header, targets=targets[1:]))
                reply = await asyncio.wait_for(recv_msg(down_reader), 30)
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                reply = {
                    "status": "ERROR",
                    "message": f"{nxt['ip']}: {exc!r}",
                    "firstBadLink": nxt["uuid"],
                }
            if reply.get("status") != "SUCCESS":
                self._suspend(replica)  # the writer may come back with the survivors
                if down_writer:
                    down_writer.close()
                await send_msg(
                    up_writer,
                    {
                        "status": "ERROR",
                        "message": reply.get("message"),
                        "firstBadLink": reply.get("firstBadLink", nxt["uuid"]),
                    },
                )
                return
        await send_msg(up_writer, {"status": "SUCCESS"})
        acks: asyncio.Queue = asyncio.Queue()
        state = {"mirror_ok": down_writer is not None}
        responder = asyncio.create_task(
            self._respond(
                acks, down_reader, up_writer, len(targets), state, replica, header["stage"]
            )
        )
        outcome = "broken"
        # A Hadoop client's packets come through its own reader (datatransfer_hadoop);
        # racklab's own, from a connection, through a ReceiveBuffer.
        recv = getattr(up_reader, "recv_packet", None)
        if recv is None and isinstance(up_reader, asyncio.StreamReader):
            recv = _Packets(up_reader, up_writer.transport).recv_packet
        try:
            while True:
                if recv:  # it times out only when it has to wait for the client
                    packet = await recv(self.bpc, self.read_timeout)
                else:  # asyncio.timeout rather than wait_for: no task made per packet
                    async with asyncio.timeout(self.read_timeout):
                        packet = await recv_packet(up_reader, self.bpc)
                seqno, offset, flags, raw, crcs, data = packet
                if flags & ABORT:
                    outcome = "aborted"
                    if state["mirror_ok"]:
                        down_writer.writelines([raw, crcs, data])
                        await down_writer.drain()
                    break
                if state["mirror_ok"]:
                    try:
                        down_writer.writelines([raw, crcs, data])
                        await down_writer.drain()
                    except OSError:
                        # Keep our copy and tell the writer downstream is gone (Hadoop's mirrorError).
                        state["mirror_ok"] = False
                status = SUCCESS
                if data:
                    if offset != replica.rep.length:
                        status = ERROR
                    else:
                        try:
                            # Only the last DataNode checks CRCs (as Hadoop's BlockReceiver): if
                            # it passes, every upstream copy received the same bytes.
                            replica.write(data, crcs, verify=down_writer is None)
                        except ChecksumError:
                            status = ERROR_CHECKSUM
                if flags & SYNC and status == SUCCESS:
                    # BlockReceiver's syncBlock: this node's copy is on disk before its ack
                    # (which the responder sends once downstream has synced too).
                    await asyncio.to_thread(replica.sync)
                last = bool(flags & LAST)
                await acks.put((seqno, status, last, replica.rep.length))
                if last and status == SUCCESS:
                    # The responder finishes the replica once the nodes downstream have
                    # acknowledged the last packet; a pipeline broken anywhere leaves it
                    # unfinished for the writer's recovery.
                    try:
                        await responder
                    finally:
                        outcome = state.get("outcome", outcome)
                if last or status != SUCCESS:
                    break
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            log.warning("pipeline for blk_%d broke: %r", bid, exc)
        finally:
            if not responder.done():
                responder.cancel()
            if outcome == "aborted":
                if self.writers.get(bid) is replica:
                    replica.abort()
                self._release(replica)
            elif outcome == "finalized":
                self._release(replica)
            elif outcome == "kept":
                self._suspend(replica)  # waits for the writer's recovery pipeline
            elif header["stage"] in ("transfer", "transfer_rbw") or self._untouched_reopen(replica):
                # Nobody recovers a copy for re-replication: drop the partial one now. A
                # reopened finished replica that received nothing goes straight back to
                # what it was, readable, rather than waiting for a recovery: there is
                # nothing to recover, and a writer that does come reopens it again.
                if self.writers.get(bid) is replica:
                    replica.abort()
                self._release(replica)
            else:
                self._suspend(replica)
            if down_writer is not None:
                down_writer.close()

    @staticmethod
    def _untouched_reopen(replica) -> bool:
        return replica.before_append is not None and replica.rep.length == replica.before_append[0]

    def _suspend(self, replica) -> None:
        """A broken pipeline: keep the replica (RBW) for the writer's pipeline recovery or
        the NameNode's block recovery, however long that takes."""
        replica.close_files()
        bid = replica.rep.block_id
        if self.writers.get(bid) is replica:
            self.stalled[bid] = (time.monotonic(), replica)

    def _release(self, replica) -> None:
        bid = replica.rep.block_id
        if self.writers.get(bid) is replica:
            del self.writers[bid]

    def _forget_writer(self, bid: int) -> None:
        """The replica is going (the NameNode invalidated it): its writer, if any, stops."""
        self.stalled.pop(bid, None)
        writer = self.writers.pop(bid, None)
        if writer is not None and not writer.closed:
            writer.close_files()

    async def _respond(
        self,
        acks: asyncio.Queue,
        down_reader,
        up_writer,
        downstream: int,
        state: dict,
        replica,
        stage: str,
    ) -> None:
        """PacketResponder. The ack's statuses are Hadoop's: this node's own, then those
        downstream; when the downstream node cannot be heard (mirrorError) just this
        node's and one ERROR for the next node, and when this node itself failed only
        its own, so the first failure in the list is always the node to blame. Acks of
        packets that arrived together leave together, in one write."""
        out: list[bytes] = []
        acked = replica.acked
        while True:
            seqno, status, last, end = await acks.get()
            if status != SUCCESS:
                statuses = [status]
            elif downstream and state["mirror_ok"]:
                try:
                    dseq, dstatuses = await asyncio.wait_for(recv_ack(down_reader), 60)
                    if dseq != seqno:
                        raise OSError(f"ack for packet {dseq} where {seqno} was expected")
                    statuses = [status] + dstatuses
                except (TimeoutError, OSError, asyncio.IncompleteReadError):
                    state["mirror_ok"] = False
                    statuses = [status, ERROR]
            elif downstream:
                statuses = [status, ERROR]
            else:
                statuses = [status]
            good = all(s == SUCCESS for s in statuses)
            if last and good:
                if stage == "transfer_rbw":
                    # A copy for a writer's pipeline recovery stays unfinished: the
                    # recovery pipeline reopens it (Hadoop's TRANSFER_RBW).
                    self.store.temporary_to_rbw(replica.rep)
                    state["outcome"] = "kept"
                else:
                    rep = await asyncio.to_thread(replica.finalize, self.sync_on_close)
                    state["outcome"] = "finalized"
                    self.notify_received(rep.to_report())
                    try:
                        # Tell the NameNode before the writer hears the last ack: its
                        # complete() comes next and needs this replica known, else it
                        # waits and asks again (hdfs-native after 500 ms).
                        await self._flush_incremental()
                    except Exception:  # the service loop sends it later; complete() retries
                        pass
            out.append(encode_ack(seqno, statuses))
            if good:
                acked = end
            if last or not good or acks.empty():
                up_writer.write(b"".join(out) if len(out) > 1 else out[0])
                out.clear()
                await up_writer.drain()
                # The visible length a recovery transfer copies: what the good acks just
                # sent upstream cover (a failed one may end the batch that holds them).
                replica.acked = acked
            if last or not good:
                return


class _Packets:
    """racklab's packets (datatransfer.recv_packet's framing) read through a
    ReceiveBuffer once the WRITE_BLOCK header is read: the CRCs and the data are views
    into it, and packets already received are returned without waiting for the loop."""

    def __init__(self, reader: asyncio.StreamReader, transport) -> None:
        self.reader, self.transport = reader, transport
        self.buffer: ReceiveBuffer | None = None

    async def recv_packet(self, bpc: int, timeout: float | None = None) -> tuple:
        if self.buffer is None:  # taken over at the first packet: the header was read
            self.buffer = ReceiveBuffer(self.reader, self.transport)
        header = await self.buffer.read(PACKET.size, timeout)
        seqno, offset, length, flags = PACKET.unpack(header)
        if length > MAX_MSG:  # the buffer would be made that large before the bytes came
            raise OSError(f"packet of {length} bytes is larger than {MAX_MSG}")
        crc_len = piece_count(offset, length, bpc) * CRC_SIZE
        body = await self.buffer.read(crc_len + length, timeout)
        return seqno, offset, flags, header, body[:crc_len], body[crc_len:]
