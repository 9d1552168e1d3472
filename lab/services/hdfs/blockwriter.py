"""OP_WRITE_BLOCK from the client's side, blocking, as Hadoop's DataStreamer writes a block
down a pipeline the NameNode chose: the request (PIPELINE_SETUP_CREATE, the rest of the
pipeline as targets, CRC32C per bytes-per-checksum), the first DataNode's
BlockOpResponseProto, packets of PacketHeaderProto, chunk CRCs and data, an empty last
packet, and a PipelineAckProto for every packet with every DataNode's status; or, for an
append, PIPELINE_SETUP_APPEND of the file's reopened last block.

Acknowledgements are read as packets go, and the packets not yet acknowledged are kept
(at most dfs.client.write.max-packets-in-flight of them), so that a DataNode failing
mid-block is recovered from as DataStreamer does: the bad node is the one an ack names
(the last non-SUCCESS reply, as ResponseProcessor scans them) or, when the connection
itself broke, the first; it is dropped from the pipeline, a replacement is asked for
when the ReplaceDatanodeOnFailure policy says so (getAdditionalDatanode, then
OP_TRANSFER_BLOCK of what was acknowledged from a survivor to it), the NameNode allots a
new generation stamp (updateBlockForPipeline), the pipeline is set up again with
PIPELINE_SETUP_STREAMING_RECOVERY under it, the unacknowledged packets are sent again,
and the NameNode is told the new pipeline (updatePipeline).

One difference, on the wire only: a failure while the block is closing (its last packet
sent) is recovered with STREAMING_RECOVERY and the last packet sent again, where Hadoop's
client sends PIPELINE_CLOSE_RECOVERY and the DataNodes finalize without it; the policy
still sees the closing stage, as Hadoop's does (no replacement then).

For racklab's own tools (`lab hdfs`); the DataNode's side is datatransfer_hadoop.py."""

from __future__ import annotations

import logging
import select
import socket
import struct
from collections import deque
from collections.abc import Callable

from ..hadoop.errors import HadoopException
from ..hadoop.ipc.protobuf import DecodeError, Schema, decode_varint
from . import checksum
from .blockreader import BlockOpError, read_delimited
from .datatransfer_hadoop import SCHEMA, TRANSFER_BLOCK, WRITE_BLOCK, request_bytes
from .replacedatanode import BEST_EFFORT_KEY, POLICY_KEY, replacement_wanted

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 80  # dfs.client.write.max-packets-in-flight
MAX_RECOVERIES = 5  # DataStreamer: recoveries in a row for the same packet
HEARTBEAT_SEQNO = -1
CLOSING = ("PIPELINE_CLOSE", "PIPELINE_CLOSE_RECOVERY")


class PipelineFailed(OSError):
    pass


class SetupFailed(OSError):
    """A new block's pipeline could not be set up; `bad` is the index of the DataNode to
    blame (DataStreamer.createBlockOutputStream: the firstBadLink, else the first)."""

    def __init__(self, message: str, bad: int) -> None:
        super().__init__(message)
        self.bad = bad


class _Broken(Exception):
    """The pipeline failed while streaming: `bad` is the DataNode's index."""

    def __init__(self, bad: int, reason: str) -> None:
        super().__init__(reason)
        self.bad = bad


def node_name(d: dict) -> str:
    return f"{d['id']['ipAddr']}:{d['id']['xferPort']}"


class BlockWriter:
    def __init__(
        self,
        schema: Schema,
        located: dict,
        client: str,
        bpc: int,
        packet_size: int,
        timeout: float = 60.0,
        append: bool = False,
        namenode: Callable[..., dict] | None = None,
        src: str = "",
        file_id: int = 0,
        replication: int = 3,
        policy: str = "DEFAULT",
        appending: bool | None = None,
        best_effort: bool = False,
    ) -> None:
        """`append`: the block is the last one of a file reopened by append, under the
        generation stamp the NameNode allotted; writing resumes at its length.
        `namenode(method, **request)` makes the recovery's calls (without it a failed
        DataNode fails the write); `appending`: the stream was opened by append (the
        replacement policy's isAppend; it defaults to `append`); `best_effort`: a
        replacement that cannot be had leaves the write going on with the nodes left
        (dfs.client.block.write.replace-datanode-on-failure.best-effort)."""
        self.schema, self.client, self.bpc, self.timeout = schema, client, bpc, timeout
        self.namenode, self.src, self.file_id = namenode, src, file_id
        self.replication, self.policy, self.best_effort = replication, policy, best_effort
        self.is_append = append if appending is None else appending
        # Whole chunks per packet, as DFSOutputStream sizes them.
        self.packet_data = max(bpc, (packet_size // (bpc + checksum.CRC_SIZE)) * bpc)
        # block["numBytes"] is what the pipeline has acknowledged (DataStreamer's
        # block.getNumBytes()), `offset` what has been sent (bytesSent).
        self.block = dict(located["b"])
        self.offset = self.block["numBytes"] if append else 0
        self.block["numBytes"] = self.offset
        self.nodes = list(located["locs"])
        self.storage_ids = list(located.get("storageIDs") or [""] * len(self.nodes))
        self.failed: list[dict] = []
        self.stage = "PIPELINE_SETUP_APPEND" if append else "PIPELINE_SETUP_CREATE"
        self.seqno, self.last_acked = 0, -1
        self.unacked: deque[tuple[int, int, bytes]] = deque()  # seqno, end offset, frame
        self.inbox = bytearray()
        self.recoveries = 0
        self.sock: socket.socket | None = None
        self.pending = bytearray()
        bad, reason = self._connect(self.block["generationStamp"], self.stage)
        if bad is not None:
            if not append or namenode is None:
                raise SetupFailed(reason, bad)
            self._recover(bad, reason)  # an append's pipeline is recovered, not abandoned

    # ------------------------------------------------------------ the stream
    def write(self, data: bytes | memoryview) -> None:
        self.pending += data
        while True:
            # A packet ends on a chunk boundary: after an append into a partial chunk,
            # the first one only completes that chunk's worth of whole chunks.
            size = self.packet_data - self.offset % self.bpc
            if len(self.pending) < size:
                return
            self._packet(bytes(self.pending[:size]))
            del self.pending[:size]

    def close(self) -> dict:
        """The last packets, then every acknowledgement: -> the block as written."""
        try:
            if self.pending:
                self._packet(bytes(self.pending))
            # As DataStreamer: every data packet acknowledged before the last packet goes
            # (the stage turns PIPELINE_CLOSE only then), so a failure found now is
            # recovered from as one while streaming.
            self._drain()
            self._packet(b"", last=True)
            self._drain()
        finally:
            self._close_socket()
        return dict(self.block, numBytes=self.offset)

    def _drain(self) -> None:
        while self.unacked:
            self._guarded(lambda: self._acks(wait=True))

    def abort(self) -> None:
        self._close_socket()

    def _packet(self, data: bytes, last: bool = False) -> None:
        header = self.schema.encode(
            SCHEMA + "PacketHeaderProto",
            {
                "offsetInBlock": self.offset,
                "seqno": self.seqno,
                "lastPacketInBlock": last,
                "dataLen": len(data),
                "syncBlock": False,
            },
        )
        crcs = checksum.piece_crcs(data, self.offset, self.bpc) if data else b""
        frame = struct.pack(">IH", 4 + len(crcs) + len(data), len(header)) + header + crcs + data
        self.offset += len(data)
        self.unacked.append((self.seqno, self.offset, frame))
        self.seqno += 1
        self.stage = "PIPELINE_CLOSE" if last else "DATA_STREAMING"

        def send() -> None:
            self._send(frame)
            self._acks(wait=len(self.unacked) >= MAX_IN_FLIGHT)

        # After a recovery every unacknowledged packet, this one too, has been sent again.
        self._guarded(send)

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except _Broken as err:
            self._recover(err.bad, str(err))

    def _send(self, frame: bytes) -> None:
        try:
            self.sock.sendall(frame)
        except OSError as exc:
            # The head may have said which node failed just before it closed: an ack
            # already here names it; otherwise the head itself is to blame.
            try:
                self._acks(wait=False)
            except _Broken as err:
                raise err from exc
            raise _Broken(0, f"Broken pipe to {node_name(self.nodes[0])}: {exc}") from exc

    def _acks(self, wait: bool) -> None:
        """Take the acknowledgements that have arrived; with `wait`, at least one."""
        while self.unacked:
            ack = self._next_ack(wait)
            if ack is None:
                return
            replies = ack["reply"]
            for i in range(len(replies) - 1, -1, -1):  # as ResponseProcessor scans them
                if replies[i] != "SUCCESS":
                    name = node_name(self.nodes[i]) if i < len(self.nodes) else f"#{i}"
                    raise _Broken(
                        i, f"Bad response {replies[i]} for {self._name()} from datanode {name}"
                    )
            if ack["seqno"] == HEARTBEAT_SEQNO:
                continue
            seqno, end, _ = self.unacked[0]
            if ack["seqno"] != seqno:
                raise _Broken(
                    0,
                    f"ResponseProcessor: Expecting seqno {seqno} for block {self._name()} "
                    f"but received {ack['seqno']}",
                )
            self.unacked.popleft()
            self.block["numBytes"], self.last_acked, self.recoveries = end, seqno, 0
            wait = False

    def _next_ack(self, wait: bool) -> dict | None:
        while True:
            body = self._take_message()
            if body is not None:
                try:
                    return self.schema.decode(SCHEMA + "PipelineAckProto", body)
                except DecodeError as exc:
                    raise _Broken(0, f"Bad ack from {node_name(self.nodes[0])}: {exc}") from exc
            try:
                if not wait and not select.select([self.sock], [], [], 0)[0]:
                    return None
                data = self.sock.recv(65536)
            except OSError as exc:
                raise _Broken(
                    0, f"Error reading acks from {node_name(self.nodes[0])}: {exc}"
                ) from exc
            if not data:
                raise _Broken(0, f"{node_name(self.nodes[0])} closed the pipeline")
            self.inbox += data

    def _take_message(self) -> bytes | None:
        """One varint-delimited message off the front of what has arrived, if whole."""
        try:
            size, pos = decode_varint(self.inbox, 0)
        except DecodeError as exc:
            if len(self.inbox) >= 10:  # not a truncated varint: a broken stream
                raise _Broken(0, f"Bad ack from {node_name(self.nodes[0])}: {exc}") from exc
            return None
        if len(self.inbox) < pos + size:
            return None
        body = bytes(self.inbox[pos : pos + size])
        del self.inbox[: pos + size]
        return body

    # ------------------------------------------------------------ recovery
    def _recover(self, bad: int, reason: str) -> None:
        """DataStreamer.processDatanodeOrExternalError and setupPipelineInternal."""
        if self.namenode is None:
            raise PipelineFailed(reason)
        while True:
            log.warning("Error Recovery for %s: %s", self._name(), reason)
            self._close_socket()
            self.recoveries += 1
            if self.recoveries > MAX_RECOVERIES:
                raise PipelineFailed(
                    "Failing write. Tried pipeline recovery 5 times without success."
                )
            while True:  # until a pipeline is set up, or too few nodes are left
                if len(self.nodes) <= 1:
                    raise PipelineFailed(
                        f"All datanodes [{', '.join(map(node_name, self.nodes))}] are bad. "
                        "Aborting..."
                    )
                log.warning(
                    "Error Recovery for %s in pipeline [%s]: datanode %d(%s) is bad.",
                    self._name(),
                    ", ".join(map(node_name, self.nodes)),
                    bad,
                    node_name(self.nodes[bad]),
                )
                self.failed.append(self.nodes.pop(bad))
                self.storage_ids.pop(bad)
                try:
                    self._replace_datanode()
                except (OSError, HadoopException) as exc:
                    if not self.best_effort:  # handleDatanodeReplacement
                        raise
                    log.warning(
                        "Failed to replace datanode. Continue with the remaining datanodes "
                        "since %s is set to true: %s",
                        BEST_EFFORT_KEY,
                        exc,
                    )
                updated = self.namenode(
                    "updateBlockForPipeline", block=dict(self.block), clientName=self.client
                )["block"]
                new_gs = updated["b"]["generationStamp"]
                stage = "PIPELINE_SETUP_STREAMING_RECOVERY"
                if self.stage == "PIPELINE_SETUP_APPEND":
                    stage = "PIPELINE_SETUP_APPEND_RECOVERY"
                bad, reason = self._connect(new_gs, stage)
                if bad is None:
                    break
            old = dict(self.block)
            self.block["generationStamp"] = new_gs
            self.namenode(
                "updatePipeline",
                clientName=self.client,
                oldBlock=old,
                newBlock=dict(self.block),
                newNodes=[d["id"] for d in self.nodes],
                storageIDs=self.storage_ids,
            )
            try:
                for _, _, frame in list(self.unacked):
                    self._send(frame)
                return
            except _Broken as err:
                bad, reason = err.bad, str(err)

    def _replace_datanode(self) -> None:
        """handleDatanodeReplacement and addDatanode2ExistingPipeline."""
        if not replacement_wanted(
            self.policy, self.replication, len(self.nodes), self.is_append, False
        ):
            return
        if self.stage in CLOSING:
            return  # the NameNode re-replicates a closed block
        if not self.is_append and self.last_acked < 0 and self.stage == "PIPELINE_SETUP_CREATE":
            return  # nothing written yet
        original, original_ids = list(self.nodes), list(self.storage_ids)
        known = {d["id"]["datanodeUuid"] for d in original}
        exclude, caught = list(self.failed), None
        for tried in range(3):
            lb = self.namenode(
                "getAdditionalDatanode",
                src=self.src,
                fileId=self.file_id,
                blk=dict(self.block),
                existings=self.nodes,
                existingStorageUuids=self.storage_ids,
                excludes=exclude,
                numAdditionalNodes=1,
                clientName=self.client,
            )["block"]
            new = [i for i, d in enumerate(lb["locs"]) if d["id"]["datanodeUuid"] not in known]
            if len(lb["locs"]) != len(original) + 1 or not new:
                raise PipelineFailed(
                    "Failed to replace a bad datanode on the existing pipeline due to no "
                    "more good datanodes being available to try. (Nodes: current=["
                    f"{', '.join(map(node_name, lb['locs']))}], original=["
                    f"{', '.join(map(node_name, original))}]). The current failed datanode "
                    f"replacement policy is {self.policy}, and a client may configure this "
                    f"via '{POLICY_KEY}' in its configuration."
                )
            self.nodes, self.storage_ids = list(lb["locs"]), list(lb["storageIDs"])
            target = self.nodes[new[0]]
            try:
                self._transfer(original[tried % len(original)], target, lb)
                return
            except OSError as exc:
                log.warning("Error transferring data to %s: %s", node_name(target), exc)
                caught = exc
                exclude.append(target)
                self.nodes, self.storage_ids = list(original), list(original_ids)
        raise caught

    def _transfer(self, source: dict, target: dict, lb: dict) -> None:
        """OP_TRANSFER_BLOCK: `source` copies what was acknowledged to `target`."""
        i = lb["locs"].index(target)
        request = request_bytes(
            self.schema,
            TRANSFER_BLOCK,
            "OpTransferBlockProto",
            {
                "header": {"baseHeader": {"block": dict(self.block)}, "clientName": self.client},
                "targets": [target],
                "targetStorageTypes": [lb["storageTypes"][i]],
                "targetStorageIds": [lb["storageIDs"][i]],
            },
        )
        address = (source["id"]["ipAddr"], source["id"]["xferPort"])
        with socket.create_connection(address, self.timeout) as s:
            s.sendall(request)
            resp = self.schema.decode(
                SCHEMA + "BlockOpResponseProto", read_delimited(s.makefile("rb"))
            )
        if resp["status"] != "SUCCESS":
            raise BlockOpError(resp)

    # ------------------------------------------------------------ the connection
    def _connect(self, new_gs: int, stage: str) -> tuple[int | None, str]:
        """createBlockOutputStream: -> (None, "") once the head answers SUCCESS, else the
        index of the DataNode to blame and why."""
        first = self.nodes[0]
        request = request_bytes(
            self.schema,
            WRITE_BLOCK,
            "OpWriteBlockProto",
            {
                "header": {"baseHeader": {"block": dict(self.block)}, "clientName": self.client},
                "targets": self.nodes[1:],
                "stage": stage,
                "pipelineSize": len(self.nodes),
                "minBytesRcvd": self.block["numBytes"],
                "maxBytesRcvd": self.offset,
                "latestGenerationStamp": new_gs,
                "requestedChecksum": {"type": "CHECKSUM_CRC32C", "bytesPerChecksum": self.bpc},
            },
        )
        bad_link = ""
        try:
            self.sock = socket.create_connection(
                (first["id"]["ipAddr"], first["id"]["xferPort"]), self.timeout
            )
            self.sock.sendall(request)
            resp = self.schema.decode(
                SCHEMA + "BlockOpResponseProto", read_delimited(self.sock.makefile("rb"))
            )
            bad_link = resp.get("firstBadLink") or ""
            if resp["status"] != "SUCCESS":
                raise BlockOpError(resp)
        except OSError as exc:
            self._close_socket()
            names = [node_name(d) for d in self.nodes]
            bad = names.index(bad_link) if bad_link in names else 0
            return bad, f"Exception in createBlockOutputStream (firstBadLink {bad_link!r}): {exc}"
        self.inbox.clear()
        return None, ""

    def _close_socket(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _name(self) -> str:
        b = self.block
        return f"{b['poolId']}:blk_{b['blockId']}_{b['generationStamp']}"
