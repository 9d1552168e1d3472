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

from ..hadoop.conf import split_hostport
from ..hadoop.errors import HadoopException
from ..hadoop.fields import FieldError
from ..hadoop.http import serve
from ..hadoop.ipc.protobuf import Schema
from ..hadoop.ipc.server import IpcServer
from ..hadoop.ipc.sniff import serve_sniffing
from .blockreceiver import BlockReceiving
from .blockstore import BlockStore
from .checksum import CRC_SIZE, ChecksumError
from .client import Reader
from .config import Configuration
from .datatransfer import (
    HEADERS,
    PipelineError,
    PipelineWriter,
    encode_packet,
    recv_msg,
    send_msg,
)
from .datatransfer_hadoop import PREFIXES as HADOOP_PREFIXES
from .datatransfer_hadoop import HadoopDataTransfer
from .dn_clientprotocol import PROTOCOL as CLIENT_DATANODE_PROTOCOL
from .dn_clientprotocol import ClientDatanodeProtocol
from .dn_webhdfs import DatanodeWebHdfs
from .rpc import NameNodeClient

log = logging.getLogger("hdfs.datanode")


class DataNode(BlockReceiving, DatanodeWebHdfs):
    """Registration and the service loop, commands, re-replication, the block scanner
    and the data-transfer server's ops; the write pipeline (blockreceiver.py) and WebHDFS
    (dn_webhdfs.py) are its mixins."""

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
        self.sync_on_close = conf.get_bool("dfs.datanode.synconclose")
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
        # ClientDatanodeProtocol over Hadoop IPC, on its own port as in Hadoop. Unset, it
        # listens where the data-transfer server does (Hadoop's 0.0.0.0:9867 in a lab), so
        # DataNodes sharing one machine on their own loopback addresses never collide.
        ipc_addr = self.conf.get("dfs.datanode.ipc.address") or f"{x_host}:9867"
        ipc_host, ipc_port = split_hostport(ipc_addr, 9867)
        ipc = IpcServer.configured(
            self.conf, {CLIENT_DATANODE_PROTOCOL: ClientDatanodeProtocol(self)}
        )
        ipc_srv = await asyncio.start_server(ipc.handle, ipc_host, ipc_port, backlog=128)
        self.servers = [xfer, http, ipc_srv]
        self.xfer_port = xfer.sockets[0].getsockname()[1]
        self.http_port = http.sockets[0].getsockname()[1]
        self.ipc_port = ipc_srv.sockets[0].getsockname()[1]
        self.ip = x_host if x_host not in ("0.0.0.0", "") else self._route_ip()
        self.reader = Reader(self.nn, self.store, self.bpc, self.uuid)
        self.tasks = [
            asyncio.create_task(self._service_loop(), name="dn-bpservice"),
            asyncio.create_task(self._scanner(), name="dn-scanner"),
        ]
        log.info(
            "DataNode %s up: data %s:%d http %s:%d ipc %s:%d, %d replicas",
            self.uuid,
            self.ip,
            self.xfer_port,
            self.ip,
            self.http_port,
            self.ip,
            self.ipc_port,
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
            "ipcPort": self.ipc_port,
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

    # ------------------------------------------------------------ reads and checksums
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

    def readable_replica(self, block_id: int, gen_stamp: int) -> tuple[object, int]:
        """The replica a read names and its visible length (BlockSender's checks): a
        finalized one whole, one being written up to the bytes acknowledged downstream
        (ReplicaBeingWritten.getVisibleLength), one waiting to be recovered not at all.
        Raises OSError with Hadoop's words."""
        rep = self.store.get(block_id)
        if rep is None or rep.gen_stamp < gen_stamp:
            raise OSError(f"Replica not found for blk_{block_id}_{gen_stamp}")
        if rep.state == "finalized":
            return rep, rep.length
        writer = self.writers.get(block_id)
        if rep.state != "rbw" or writer is None:
            raise OSError(
                f"Replica is not readable, block=blk_{block_id}_{gen_stamp}, replica={rep.state.upper()}"
            )
        return rep, min(writer.acked, rep.length)

    async def _read_block(self, header: dict, writer: asyncio.StreamWriter) -> None:
        blk = header["block"]
        try:
            rep, visible = self.readable_replica(int(blk["blockId"]), int(blk["genStamp"]))
        except OSError as exc:
            await send_msg(writer, {"status": "ERROR", "message": str(exc)})
            return
        offset, length = int(header["offset"]), int(header["length"])
        end = min(visible, -(-(offset + length) // self.bpc) * self.bpc)
        await send_msg(writer, {"status": "SUCCESS"})
        # Ship stored CRCs with the data, aligned to chunks: the reader checks them itself.
        pos, seq, slab = offset - offset % self.bpc, 0, 64 * self.bpc
        while pos < end:
            n = min(slab, end - pos)
            data, crcs = self.store.read_raw(rep, pos, n, visible=end)
            hdr = encode_packet(seq, pos, data, False, self.bpc)[0]
            writer.writelines([hdr, crcs, data])
            await asyncio.wait_for(writer.drain(), self.write_timeout)
            pos += len(data)
            seq += 1
            if not data:
                break
        writer.writelines(encode_packet(seq, pos, b"", True, self.bpc))
        await writer.drain()
