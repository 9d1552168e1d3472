"""OP_WRITE_BLOCK from the client's side, blocking, as Hadoop's DataStreamer writes a new
block down a pipeline the NameNode chose: the request (PIPELINE_SETUP_CREATE, the rest of
the pipeline as targets, CRC32C per bytes-per-checksum), the first DataNode's
BlockOpResponseProto, packets of PacketHeaderProto, chunk CRCs and data, an empty last
packet, and a PipelineAckProto for every packet with every DataNode's status; or, for an
append, PIPELINE_SETUP_APPEND of the file's reopened last block. No pipeline
recovery: a failed DataNode fails the write (Hadoop's client would rebuild the pipeline).
For racklab's own tools (`lab hdfs`); the DataNode's side is datatransfer_hadoop.py."""

from __future__ import annotations

import socket
import struct

from ..hadoop.ipc.protobuf import Schema
from . import checksum
from .blockreader import BlockOpError, read_delimited
from .datatransfer_hadoop import SCHEMA, WRITE_BLOCK, request_bytes


class PipelineFailed(OSError):
    pass


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
    ) -> None:
        """`append`: the block is the last one of a file reopened by append, under the
        generation stamp the NameNode allotted; writing resumes at its length."""
        self.schema, self.block, self.bpc = schema, dict(located["b"]), bpc
        # Whole chunks per packet, as DFSOutputStream sizes them.
        self.packet_data = max(bpc, (packet_size // (bpc + checksum.CRC_SIZE)) * bpc)
        targets = located["locs"]
        first = targets[0]["id"]
        self.sock = socket.create_connection((first["ipAddr"], first["xferPort"]), timeout)
        self.file = self.sock.makefile("rb")
        self.sock.sendall(
            request_bytes(
                schema,
                WRITE_BLOCK,
                "OpWriteBlockProto",
                {
                    "header": {"baseHeader": {"block": self.block}, "clientName": client},
                    "targets": targets[1:],
                    "stage": "PIPELINE_SETUP_APPEND" if append else "PIPELINE_SETUP_CREATE",
                    "pipelineSize": len(targets),
                    "minBytesRcvd": self.block["numBytes"] if append else 0,
                    "maxBytesRcvd": self.block["numBytes"] if append else 0,
                    "latestGenerationStamp": self.block["generationStamp"],
                    "requestedChecksum": {"type": "CHECKSUM_CRC32C", "bytesPerChecksum": bpc},
                },
            )
        )
        resp = schema.decode(SCHEMA + "BlockOpResponseProto", read_delimited(self.file))
        if resp["status"] != "SUCCESS":
            self.sock.close()
            raise BlockOpError(resp)
        self.offset, self.seqno = self.block["numBytes"] if append else 0, 0
        self.pending = bytearray()

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
            self._packet(b"", last=True)
            for seqno in range(self.seqno):
                ack = self.schema.decode(SCHEMA + "PipelineAckProto", read_delimited(self.file))
                bad = [s for s in ack["reply"] if s != "SUCCESS"]
                if ack["seqno"] != seqno or bad:
                    raise PipelineFailed(
                        f"Bad response {bad or ack['seqno']} for "
                        f"blk_{self.block['blockId']}_{self.block['generationStamp']}"
                    )
        finally:
            self.sock.close()
        return dict(self.block, numBytes=self.offset)

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
        frame = struct.pack(">IH", 4 + len(crcs) + len(data), len(header))
        self.sock.sendall(frame + header + crcs + data)
        self.offset += len(data)
        self.seqno += 1
