"""The DataNode: replicas on disk, the data-transfer server (pipeline writes, reads,
block checksums), WebHDFS data operations on its HTTP address, and the loops that talk
to the NameNode (registration, heartbeats with commands, block reports, block scanner)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import time
import uuid as uuidlib

from ..hadoop import errors
from ..hadoop.conf import split_hostport
from ..hadoop.errors import HadoopException, IllegalArgumentException
from ..hadoop.fields import FieldError
from ..hadoop.http import BadRequest, Request, Response, serve
from ..hadoop.ipc.protobuf import Schema
from ..hadoop.ipc.sniff import serve_sniffing
from . import webhdfs
from .blockstore import BlockStore
from .checksum import CRC_SIZE, ChecksumError
from .client import FileWriter, Reader, file_checksum
from .config import Configuration
from .datatransfer import (
    ABORT,
    ERROR,
    ERROR_CHECKSUM,
    HEADERS,
    LAST,
    SUCCESS,
    SYNC,
    PipelineError,
    PipelineWriter,
    encode_ack,
    encode_packet,
    recv_ack,
    recv_msg,
    recv_packet,
    send_msg,
)
from .datatransfer_hadoop import PREFIXES as HADOOP_PREFIXES
from .datatransfer_hadoop import HadoopDataTransfer
from .localpipeline import LocalPipelineHead
from .rpc import NameNodeClient

log = logging.getLogger("hdfs.datanode")


class ReplicaError(ValueError):
    """Hadoop's ReplicaAlreadyExistsException / ReplicaNotFoundException family: a write
    request this replica's state or generation stamp does not allow."""


class DataNode:
    def __init__(self, conf: Configuration) -> None:
        self.conf = conf
        self.bpc = conf.get_int("dfs.bytes-per-checksum")
        self.store = BlockStore(conf.data_dir(), self.bpc)
        self.uuid = self._load_uuid()
        self.nn = NameNodeClient(*conf.namenode_rpc_address())
        self.heartbeat_interval = conf.get_seconds("dfs.heartbeat.interval", "s")
        self.report_interval = conf.get_seconds("dfs.blockreport.intervalMsec", "ms")
        self.scan_period = conf.get_seconds("dfs.datanode.scan.period.hours", "h")
        self.packet_size = conf.get_int("dfs.client-write-packet-size")
        self.servers: list[asyncio.AbstractServer] = []
        self.tasks: list[asyncio.Task] = []
        self.received: list[list[int]] = []
        self.deleted: list[int] = []
        self.report_event = asyncio.Event()
        self.registered = asyncio.Event()
        self.xceivers = 0
        # Replicas whose pipeline broke: block id -> (when, writer). Kept as Hadoop keeps
        # an RBW replica whose writer went away: until the writer's pipeline recovery or
        # the NameNode's block recovery takes it, or the NameNode has it deleted.
        self.stalled: dict[int, tuple[float, object]] = {}
        self.writers: dict[int, object] = {}
        self.recovering: dict[int, int] = {}  # block id -> lease recovery id under way
        self.transfers: set[asyncio.Task] = set()  # block id -> the ReplicaWriter that owns it now
        # A peer that stops sending (or reading) is cut off after these, as Hadoop's
        # DataXceiver does, so half-open transfers cannot pile up descriptors.
        self.read_timeout = conf.get_seconds("dfs.client.socket-timeout", "ms")
        self.write_timeout = conf.get_seconds("dfs.datanode.socket.write.timeout", "ms")
        self.max_xceivers = conf.get_int("dfs.datanode.max.transfer.threads")
        self.ip = ""

    def _load_uuid(self) -> str:
        path = self.store.root / "current" / "VERSION"
        if path.exists():
            for line in path.read_text().splitlines():
                if line.startswith("datanodeUuid="):
                    return line.split("=", 1)[1]
        value = str(uuidlib.uuid4())
        path.write_text(f"datanodeUuid={value}\nstorageType=DATA_NODE\nlayoutVersion=-57\n")
        return value

    async def start(self) -> None:
        http_host, http_port = split_hostport(self.conf.get("dfs.datanode.http.address"), 9864)
        x_host, x_port = split_hostport(self.conf.get("dfs.datanode.address"), 9866)
        idle = self.conf.get_seconds("hadoop.http.idle_timeout.ms", "ms")
        # Hadoop clients' DataTransferProtocol and racklab's own share the port, told
        # apart by their first bytes.
        hadoop = HadoopDataTransfer(self, Schema.load())
        xfer = await serve_sniffing(
            x_host,
            x_port,
            dict.fromkeys(HADOOP_PREFIXES, hadoop.handle),
            self.handle_xfer,
            self.read_timeout,
            limit=1 << 20,
            backlog=256,
        )
        http = await serve(http_host, http_port, self.handle_http, idle_timeout=idle)
        self.servers = [xfer, http]
        self.xfer_port = xfer.sockets[0].getsockname()[1]
        self.http_port = http.sockets[0].getsockname()[1]
        self.ip = x_host if x_host not in ("0.0.0.0", "") else self._route_ip()
        self.reader = Reader(self.nn, self.store, self.bpc, self.uuid)
        self.tasks = [
            asyncio.create_task(self._service_loop(), name="dn-bpservice"),
            asyncio.create_task(self._scanner(), name="dn-scanner"),
        ]
        log.info(
            "DataNode %s up: data %s:%d http %s:%d, %d replicas",
            self.uuid,
            self.ip,
            self.xfer_port,
            self.ip,
            self.http_port,
            len(self.store.replicas),
        )

    def _route_ip(self) -> str:
        host, port = self.conf.namenode_rpc_address()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host, port))
            return s.getsockname()[0]

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        for s in self.servers:
            s.close()
        self.nn.close()

    # ------------------------------------------------------------ NameNode conversation
    def info(self) -> dict:
        return {
            "uuid": self.uuid,
            "ip": self.ip,
            "hostName": self.conf.get("dfs.datanode.hostname", "") or socket.gethostname(),
            "xferPort": self.xfer_port,
            "infoPort": self.http_port,
        }

    def stats(self) -> dict:
        capacity, free = self.store.capacity()
        return {
            "capacity": capacity,
            "dfsUsed": self.store.used_bytes(),
            "remaining": free,
            "xceiverCount": self.xceivers,
        }

    async def _register(self) -> None:
        self.registered.clear()
        await self.nn.call("registerDatanode", **self.info())
        await self.nn.call("blockReport", uuid=self.uuid, blocks=self.store.report())
        self.last_report = time.monotonic()
        self.registered.set()
        log.info(
            "registered with the NameNode and sent a report of %d blocks", len(self.store.replicas)
        )

    async def _service_loop(self) -> None:
        """BPServiceActor.offerService: heartbeat, incremental reports, full reports."""
        backoff = 0.2
        while True:
            try:
                if not self.registered.is_set():
                    await self._register()
                    backoff = 0.2
                reply = await self.nn.call("sendHeartbeat", uuid=self.uuid, **self.stats())
                await self._run_commands(reply.get("commands", []))
                if time.monotonic() - self.last_report > self.report_interval:
                    await self.nn.call("blockReport", uuid=self.uuid, blocks=self.store.report())
                    self.last_report = time.monotonic()
                deadline = time.monotonic() + self.heartbeat_interval
                while self.registered.is_set():
                    await self._flush_incremental()
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.report_event.clear()
                    try:
                        await asyncio.wait_for(self.report_event.wait(), left)
                    except TimeoutError:
                        pass
            except asyncio.CancelledError:
                raise
            except (TimeoutError, OSError, HadoopException) as exc:
                log.warning("NameNode unreachable (%s); retrying in %.1fs", exc, backoff)
                self.registered.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, max(1.0, self.heartbeat_interval))

    async def _flush_incremental(self) -> None:
        if not (self.received or self.deleted):
            return
        received, deleted = self.received, self.deleted
        self.received, self.deleted = [], []
        try:
            reply = await self.nn.call(
                "blockReceivedAndDeleted", uuid=self.uuid, received=received, deleted=deleted
            )
        except Exception:
            self.received[:0], self.deleted[:0] = received, deleted
            raise
        await self._run_commands(reply.get("commands", []))

    def notify_received(self, rep: list[int]) -> None:
        self.received.append(rep)
        self.report_event.set()

    async def _run_commands(self, commands: list[dict]) -> None:
        for cmd in commands:
            action = cmd.get("action")
            if action == "DNA_REGISTER":
                self.registered.clear()
            elif action == "DNA_INVALIDATE":
                for bid in cmd["blocks"]:
                    self._forget_writer(bid)
                    if self.store.delete(bid):
                        log.info("deleted blk_%d on the NameNode's command", bid)
                    self.deleted.append(bid)
                self.report_event.set()
            elif action == "DNA_TRANSFER":
                for item in cmd["blocks"]:
                    task = asyncio.create_task(self._transfer(item["block"], item["targets"]))
                    self.transfers.add(task)  # asyncio keeps only weak references to tasks
                    task.add_done_callback(self.transfers.discard)

    async def _transfer(self, blk: dict, targets: list[dict]) -> None:
        """DataTransfer: copy a local replica into a pipeline of new targets."""
        rep = self.store.get(blk["blockId"])
        if rep is None or rep.state != "finalized":
            return
        try:
            await self._copy_replica(rep, rep.length, targets, "transfer")
            log.info("replicated blk_%d to %s", rep.block_id, [t["ip"] for t in targets])
        except ChecksumError as exc:
            log.warning("local replica blk_%d is corrupt (%s), reporting it", rep.block_id, exc)
            await self._report_bad(rep.block_id)
        except (TimeoutError, OSError, PipelineError, asyncio.IncompleteReadError) as exc:
            log.warning(
                "replicating blk_%d to %s failed: %s", rep.block_id, [t["ip"] for t in targets], exc
            )

    async def transfer_for_recovery(
        self, block_id: int, gen_stamp: int, targets: list[dict], client: str
    ) -> int:
        """DataNode.transferReplicaForPipelineRecovery: a writer whose pipeline lost a node
        and got a new one from the NameNode (getAdditionalDatanode) has this DataNode copy
        what it holds of the block to the new node, which keeps it unfinished for the
        writer's recovery pipeline. What is copied is the replica's visible length (the
        bytes acknowledged downstream), never more than the writer saw acknowledged by
        anybody. -> the bytes copied; raises OSError with Hadoop's wording."""
        rep = self.store.get(block_id)
        name = f"blk_{block_id}_{gen_stamp}"
        if rep is None:
            raise OSError(f"{name} not found in datanode.")
        if rep.gen_stamp < gen_stamp:
            raise OSError(f"{rep.gen_stamp} = storedGS < b.getGenerationStamp(), b={name}")
        writer = self.writers.get(block_id)
        visible = writer.acked if rep.state != "finalized" and writer is not None else rep.length
        if not targets:  # nothing to copy to: answered as done, as Hadoop's DataNode does
            return visible
        await self._copy_replica(rep, visible, targets, "transfer_rbw", client)
        log.info(
            "transferred %d bytes of blk_%d_%d to %s for %s's pipeline recovery",
            visible,
            block_id,
            rep.gen_stamp,
            [t["ip"] for t in targets],
            client,
        )
        return visible

    async def _copy_replica(
        self, rep, length: int, targets: list[dict], stage: str, client: str | None = None
    ) -> None:
        header = {
            "block": {"blockId": rep.block_id, "genStamp": rep.gen_stamp, "numBytes": length},
            "stage": stage,
        }
        if client:
            header["client"] = client
        pipe = PipelineWriter(targets, header, self.bpc, self.packet_size)
        try:
            await pipe.open()
            for piece in self._visible_pieces(rep, length):
                await pipe.write(piece)
            await pipe.close()
        finally:
            pipe.abort()

    def _visible_pieces(self, rep, length: int):
        """The first `length` bytes of a replica, whole chunks checked against their stored
        CRCs. A replica still being written may already hold more of its last partial
        chunk than `length`, so that piece is sent as it is (the receiver computes its CRC
        from the packet), as Hadoop's BlockSender does with the last chunk of an RBW."""
        aligned = length - length % self.bpc
        yield from self.store.read_verified(rep, 0, aligned)
        if length > aligned:
            data, _ = self.store.read_raw(rep, aligned, length - aligned)
            if len(data) != length - aligned:
                raise OSError(f"blk_{rep.block_id} is shorter than its visible length {length}")
            yield data

    async def _report_bad(self, block_id: int) -> None:
        try:
            await self.nn.call("reportBadBlocks", blocks=[{"blockId": block_id, "uuid": self.uuid}])
        except Exception as exc:
            log.warning("could not report bad blk_%d: %s", block_id, exc)

    async def _scanner(self) -> None:
        """VolumeScanner: verify every replica once per dfs.datanode.scan.period.hours."""
        while True:
            ids = list(self.store.replicas)
            pause = self.scan_period / max(1, len(ids))
            if not ids:
                await asyncio.sleep(min(self.scan_period, 5))
                continue
            for bid in ids:
                await asyncio.sleep(pause)
                rep = self.store.get(bid)
                if rep is None or rep.state != "finalized":
                    continue
                ok = await asyncio.to_thread(self.store.verify, rep)
                if not ok and self.store.get(bid) is rep:
                    log.warning("block scanner found blk_%d corrupt", bid)
                    await self._report_bad(bid)

    # ------------------------------------------------------------ data transfer server
    async def handle_xfer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.xceivers += 1
        try:
            if self.xceivers > self.max_xceivers:
                log.warning(
                    "Xceiver count %d exceeds the limit of concurrent xceivers: %d",
                    self.xceivers,
                    self.max_xceivers,
                )
                return
            header = await asyncio.wait_for(recv_msg(reader), self.read_timeout)
            op = header.get("op")
            spec = HEADERS.get(op) if isinstance(op, str) else None
            if spec is None:
                await send_msg(writer, {"status": "ERROR", "message": f"unknown op {op!r}"})
                return
            try:
                header = spec.check(header)
            except FieldError as exc:
                await send_msg(writer, {"status": "ERROR", "message": f"{op}: {exc}"})
                return
            if op == "WRITE_BLOCK":
                await self._write_block(header, reader, writer)
            elif op == "READ_BLOCK":
                await self._read_block(header, writer)
            elif op == "INIT_REPLICA_RECOVERY":
                await send_msg(writer, self._init_replica_recovery(header))
            elif op == "UPDATE_REPLICA_UNDER_RECOVERY":
                reply, rep = await asyncio.to_thread(self._update_replica_under_recovery, header)
                if rep is not None:
                    self.notify_received(rep.to_report())
                await send_msg(writer, reply)
            else:
                await send_msg(writer, self._block_checksum(header["block"]))
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            log.debug("data transfer connection ended: %r", exc)
        except Exception:
            log.exception("data transfer failed")
        finally:
            self.xceivers -= 1
            writer.close()

    # ------------------------------------------------------------ lease recovery
    def _init_replica_recovery(self, header: dict) -> dict:
        """FsDatasetImpl.initReplicaRecovery: stop the replica's writer and say what it
        holds. The recovery id must be newer than the replica's stamp."""
        blk, rid = header["block"], header["recoveryId"]
        bid = blk["blockId"]
        rep = self.store.get(bid)
        if rep is None:
            return {"status": "ERROR", "message": f"Replica not found for blk_{bid}"}
        if rep.gen_stamp < blk["genStamp"]:
            return {
                "status": "ERROR",
                "message": f"replica.getGenerationStamp() < block.getGenerationStamp(), "
                f"block=blk_{bid}_{blk['genStamp']}, replica=blk_{bid}_{rep.gen_stamp}",
            }
        if rep.gen_stamp >= rid:
            return {
                "status": "ERROR",
                "message": f"replica.getGenerationStamp() >= recoveryId = {rid}, "
                f"block=blk_{bid}_{blk['genStamp']}, replica=blk_{bid}_{rep.gen_stamp}",
            }
        writer = self.writers.pop(bid, None)
        self.stalled.pop(bid, None)
        if writer is not None:
            writer.close_files()  # the old pipeline's next write fails: it is fenced off
        self.recovering[bid] = rid
        return {
            "status": "SUCCESS",
            "length": rep.length,
            "genStamp": rep.gen_stamp,
            "state": rep.state,
        }

    def _update_replica_under_recovery(self, header: dict) -> tuple[dict, object]:
        """FsDatasetImpl.updateReplicaUnderRecovery: cut the replica to the length the
        recovery chose, give it the recovery id as its stamp, finalize and report it.
        Only after this node's initReplicaRecovery for the same id."""
        blk, rid, length = header["block"], header["recoveryId"], header["newLength"]
        bid = blk["blockId"]
        if self.recovering.get(bid) != rid:
            return {"status": "ERROR", "message": f"blk_{bid} is not under recovery {rid}"}, None
        rep = self.store.get(bid)
        if rep is None:
            return {"status": "ERROR", "message": f"Replica not found for blk_{bid}"}, None
        try:
            # A finalized replica is only re-stamped (its length must be the one chosen);
            # an unfinished one is cut back, its last chunk's CRC recomputed.
            writer = self.store.recover(bid, rid, length)
            rep = writer.finalize()
        except (OSError, ValueError) as exc:
            return {"status": "ERROR", "message": str(exc)}, None
        del self.recovering[bid]
        log.info("blk_%d recovered: length %d, generation stamp %d", bid, rep.length, rid)
        return {"status": "SUCCESS", "length": rep.length}, rep

    def _block_checksum(self, blk: dict) -> dict:
        rep = self.store.get(int(blk["blockId"]))
        if rep is None or rep.state != "finalized":
            return {"status": "ERROR", "message": f"no replica of blk_{blk['blockId']}"}
        with open(rep.meta_path, "rb") as f:
            f.seek(7)
            crcs = f.read(-(-rep.length // self.bpc) * CRC_SIZE)
        crc_per_block = (
            (rep.length // self.bpc) if rep.length % self.bpc == 0 else -(-rep.length // self.bpc)
        )
        return {
            "status": "SUCCESS",
            "md5": hashlib.md5(crcs).hexdigest(),
            "bytesPerCrc": self.bpc,
            "crcPerBlock": crc_per_block,
        }

    async def _read_block(self, header: dict, writer: asyncio.StreamWriter) -> None:
        blk = header["block"]
        rep = self.store.get(int(blk["blockId"]))
        if rep is None or rep.state != "finalized" or rep.gen_stamp < int(blk["genStamp"]):
            await send_msg(
                writer,
                {"status": "ERROR", "message": f"Replica not found for blk_{blk['blockId']}"},
            )
            return
        offset, length = int(header["offset"]), int(header["length"])
        end = min(rep.length, -(-(offset + length) // self.bpc) * self.bpc)
        await send_msg(writer, {"status": "SUCCESS"})
        # Ship stored CRCs with the data, aligned to chunks: the reader checks them itself.
        pos, seq, slab = offset - offset % self.bpc, 0, 64 * self.bpc
        while pos < end:
            n = min(slab, end - pos)
            data, crcs = self.store.read_raw(rep, pos, n)
            hdr = encode_packet(seq, pos, data, False, self.bpc)[0]
            writer.writelines([hdr, crcs, data])
            await asyncio.wait_for(writer.drain(), self.write_timeout)
            pos += len(data)
            seq += 1
            if not data:
                break
        writer.writelines(encode_packet(seq, pos, b"", True, self.bpc))
        await writer.drain()

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
        return self.store.create_rbw(bid, gs)

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
        # A Hadoop client's packets come through its own reader (datatransfer_hadoop).
        recv = getattr(up_reader, "recv_packet", None)
        try:
            while True:
                # asyncio.timeout rather than wait_for: no task made per packet.
                async with asyncio.timeout(self.read_timeout):
                    packet = await (recv(self.bpc) if recv else recv_packet(up_reader, self.bpc))
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
                    state["outcome"] = "kept"
                else:
                    rep = await asyncio.to_thread(replica.finalize)
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
            if last or not good or acks.empty():
                up_writer.write(b"".join(out) if len(out) > 1 else out[0])
                out.clear()
                await up_writer.drain()
                if good:
                    replica.acked = end  # the visible length a recovery transfer copies
            if last or not good:
                return

    # ------------------------------------------------------------ WebHDFS (data side)
    async def handle_http(self, req: Request) -> Response:
        try:
            if not req.path.startswith(webhdfs.PREFIX):
                if req.path == "/":
                    return Response(200, {"Content-Type": "text/plain"}, b"DataNode is running\n")
                raise errors.FileNotFoundException(f"no such resource {req.path}")
            op = webhdfs.parse_op(req.method, req.query)
            path = webhdfs.hdfs_path(req.path)
            user = webhdfs.get_user(req.query, self.conf.get("hadoop.http.staticuser.user"))
            if op == "CREATE":
                return await self._create(req, path, user)
            if op == "APPEND":
                return await self._append(req, path, user)
            if op == "OPEN":
                return await self._open(req, path, user)
            if op == "GETFILECHECKSUM":
                return Response.json(
                    await file_checksum(self.nn, path, user, self._remote_block_checksum)
                )
            raise IllegalArgumentException(f"Invalid operation {op} on a DataNode")
        except HadoopException as exc:
            return Response.json(exc.to_json(), exc.status)
        except (BadRequest, ConnectionError):
            raise  # the server answers these itself, or the client is gone
        except Exception as exc:
            log.exception("WebHDFS %s failed", req.target)
            return Response.json(errors.IOException(repr(exc)).to_json(), 500)

    def _pipeline(self, targets: list[dict], header: dict, bpc: int, packet_size: int):
        if targets and targets[0]["uuid"] == self.uuid:
            return LocalPipelineHead(self, targets, header, bpc, packet_size)
        return PipelineWriter(targets, header, bpc, packet_size)

    def _client_ip(self) -> str:
        return self.ip

    async def _create(self, req: Request, path: str, user: str) -> Response:
        q = req.query
        writer = FileWriter(
            self.nn, path, user, self._client_ip(), self.bpc, self.packet_size, self._pipeline
        )
        opened = writer.create(
            webhdfs.get_bool(q, "overwrite", False),
            webhdfs.get_long(q, "replication", None, 1, 32767),
            webhdfs.get_long(q, "blocksize", None, 1),
            webhdfs.get_permission(q, None),
        )
        await self._pump(req, writer, opened)
        nn_host, nn_port = self.nn.host, self.nn.port
        return Response(
            201,
            {"Location": f"hdfs://{nn_host}:{nn_port}{path}", "Content-Type": "application/json"},
        )

    async def _append(self, req: Request, path: str, user: str) -> Response:
        writer = FileWriter(
            self.nn, path, user, self._client_ip(), self.bpc, self.packet_size, self._pipeline
        )
        await self._pump(req, writer, writer.append())
        return Response(200)

    async def _pump(self, req: Request, writer: FileWriter, opened) -> None:
        try:
            await opened
            async for piece in req.iter_body():
                await writer.write(piece)
            await writer.close()
        except BaseException:
            # Not acknowledged: give the file back to the NameNode as it was before this
            # request's unfinished block, so the lease does not outlive this writer.
            await asyncio.shield(writer.abandon())
            raise

    async def _open(self, req: Request, path: str, user: str) -> Response:
        offset = webhdfs.get_long(req.query, "offset", 0, 0)
        length = webhdfs.get_long(req.query, "length", None, 0)
        located = await self.reader.locate(path, user, offset, length, self._client_ip())
        located["path"] = path
        available = max(0, located["fileLength"] - offset)
        n = available if length is None else min(length, available)
        return Response(
            200,
            {"Content-Type": "application/octet-stream"},
            stream=self.reader.stream(located, offset, n),
            length=n,
        )

    async def _remote_block_checksum(self, loc: dict, blk: dict) -> dict:
        if loc["uuid"] == self.uuid:
            res = self._block_checksum(blk)
        else:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(loc["ip"], loc["xferPort"]), 30
            )
            try:
                await send_msg(writer, {"op": "BLOCK_CHECKSUM", "block": blk})
                res = await asyncio.wait_for(recv_msg(reader), 60)
            finally:
                writer.close()
        if res.get("status") != "SUCCESS":
            raise errors.IOException(res.get("message", "block checksum failed"))
        return res
