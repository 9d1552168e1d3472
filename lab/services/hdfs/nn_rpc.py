"""The NameNode's daemon RPC (Hadoop's NameNodeRpcServer): ClientProtocol,
DatanodeProtocol and NamenodeProtocol calls as JSON over POST /rpc/<method> on the
fs.defaultFS address. Each method declares its arguments' types and ranges; a call is
checked against them before it touches the namespace."""

from __future__ import annotations

import logging

from ..hadoop import errors, fields
from ..hadoop.errors import HadoopException, IllegalArgumentException, IOException
from ..hadoop.fields import Bool, Checked, Int, List, Str, Struct, args
from ..hadoop.http import BadRequest, Request, Response
from .namespace import BLOCK_JSON, INodeFile, normalize

log = logging.getLogger("hdfs.namenode")

# The RPC arguments' types, shared by the methods' declarations below.
PATH = Str(8000, empty=False)
USER = Str(255, empty=False)
CLIENT = Str(255, empty=False)
HOST = Str(255, default=None)
# A replica in a block report: [blockId, genStamp, numBytes], and its ReplicaState when it is
# not finalized (1 RBW, 2 RWR).
REPORTED = Checked(
    List(Int(0), 4),
    lambda v: (
        None
        if len(v) == 3 or (len(v) == 4 and v[3] in (1, 2))
        else "expected [blockId, genStamp, numBytes] or [blockId, genStamp, numBytes, state 1|2]"
    ),
)


class NameNodeRpcServer:
    def __init__(self, nn) -> None:
        self.nn = nn

    async def handle(self, req: Request) -> Response:
        try:
            if req.method != "POST" or not req.path.startswith("/rpc/"):
                raise errors.UnsupportedOperationException(
                    f"{req.method} {req.path}: use POST /rpc/<method>"
                )
            method = req.path[len("/rpc/") :]
            fn = getattr(self, "rpc_" + method, None)
            spec = getattr(fn, "arg_spec", None)
            if spec is None:
                raise errors.UnsupportedOperationException(f"Unknown RPC method {method}")
            try:
                # Every argument is checked against the method's declared types and ranges
                # before anything runs: nothing of the wrong type reaches the edit log.
                params = spec.check(fields.parse_json(await req.read_body() or b"{}", "RPC body"))
            except fields.FieldError as exc:
                raise IllegalArgumentException(f"{method}: {exc}") from None
            result = fn(req.peer, **params)
            return Response.json(result if isinstance(result, dict) else {"result": result})
        except HadoopException as exc:
            return Response.json(exc.to_json(), exc.status)
        except (BadRequest, ConnectionError):
            raise  # the server answers these itself, or the client is gone
        except Exception as exc:
            log.exception("RPC %s failed", req.path)
            return Response.json(IOException(repr(exc)).to_json(), 500)

    # ClientProtocol
    @args(
        src=PATH,
        user=USER,
        clientName=CLIENT,
        overwrite=Bool(default=False),
        replication=Int(1, 32767, default=None),
        blockSize=Int(1, default=None),
        permission=Int(0, 0o1777, default=None),
        unmasked=Int(0, 0o1777, default=None),
        clientMachine=HOST,
    )
    def rpc_create(
        self,
        peer,
        src,
        user,
        clientName,
        overwrite=False,
        replication=None,
        blockSize=None,
        permission=None,
        clientMachine=None,
        unmasked=None,
    ):
        return self.nn.create(
            src,
            user,
            clientName,
            overwrite,
            replication,
            blockSize,
            permission,
            clientMachine or peer,
            unmasked,
        )

    @args(
        src=PATH,
        clientName=CLIENT,
        previous=BLOCK_JSON.or_none(),
        excludeNodes=List(Str(100), 10_000, default=[]),
        clientMachine=HOST,
    )
    def rpc_addBlock(
        self, peer, src, clientName, previous=None, excludeNodes=(), clientMachine=None
    ):
        return self.nn.add_block(
            src, clientName, previous, list(excludeNodes), clientMachine or peer
        )

    @args(src=PATH, clientName=CLIENT, block=BLOCK_JSON)
    def rpc_abandonBlock(self, peer, src, clientName, block):
        self.nn.abandon_block(src, clientName, block)
        return {}

    @args(src=PATH, clientName=CLIENT, last=BLOCK_JSON.or_none())
    def rpc_complete(self, peer, src, clientName, last=None):
        return {"result": self.nn.complete(src, clientName, last)}

    @args(src=PATH, clientName=CLIENT, block=BLOCK_JSON, newNodes=List(Str(100), 32))
    def rpc_updatePipeline(self, peer, src, clientName, block, newNodes):
        """After a pipeline failure: a new generation stamp for the block being written,
        so replicas left behind on the failed node are recognisably stale."""
        f = self.nn._uc_file(normalize(src), clientName)
        if not f.blocks or f.blocks[-1].block_id != int(block["blockId"]):
            raise IOException(
                f"updatePipeline: blk_{block['blockId']} is not the last block of {src}"
            )
        new_gs = self.nn.ns.gen_stamp + 1
        blocks = [b.to_json() for b in f.blocks]
        blocks[-1]["genStamp"] = new_gs
        self.nn.log_apply({"op": "OP_UPDATE_BLOCKS", "path": f.path(), "blocks": blocks})
        self.nn.bm.add_file_blocks(f)
        info = self.nn.bm.blocks.get(f.blocks[-1].block_id)
        if info is not None:
            info.expected_uc = list(newNodes)
            # Replicas outside the new pipeline keep the old generation stamp: stale now.
            for uuid in list(info.locations - set(newNodes)):
                self.nn.bm.replica_deleted(self.nn.bm.datanodes[uuid], info.block.block_id)
                self.nn.bm.datanodes[uuid].invalidate_queue.add(info.block.block_id)
        return {"newGenStamp": new_gs}

    @args(src=PATH, clientName=CLIENT, last=BLOCK_JSON.or_none())
    def rpc_abandonFile(self, peer, src, clientName, last=None):
        path = normalize(src)
        node = self.nn.ns.lookup(path)
        if isinstance(node, INodeFile) and node.client_name == clientName:
            self.nn.abandon_file(node, last, f"{clientName} gave up")
        return {}

    @args(src=PATH, user=USER, clientName=CLIENT, clientMachine=HOST)
    def rpc_append(self, peer, src, user, clientName, clientMachine=None):
        return self.nn.append(src, user, clientName, clientMachine or peer)

    @args(
        src=PATH,
        user=USER,
        offset=Int(0, default=0),
        length=Int(0, default=1 << 62),
        clientMachine=HOST,
    )
    def rpc_getBlockLocations(self, peer, src, user, offset=0, length=1 << 62, clientMachine=None):
        return self.nn.located_blocks(src, user, offset, length, clientMachine or peer)

    @args(blocks=List(Struct(blockId=Int(0), uuid=Str(100)), 100_000))
    def rpc_reportBadBlocks(self, peer, blocks):
        for b in blocks:
            log.warning("corrupt replica of blk_%s reported on %s", b["blockId"], b["uuid"])
            self.nn.bm.mark_corrupt(int(b["blockId"]), b["uuid"])
        return {}

    # DatanodeProtocol
    @args(
        uuid=Str(100, empty=False),
        ip=Str(255, empty=False),
        hostName=Str(255, default=""),
        xferPort=Int(1, 65535),
        infoPort=Int(1, 65535),
        ipcPort=Int(0, 65535, default=0),
    )
    def rpc_registerDatanode(self, peer, **info):
        d = self.nn.bm.register(info)
        log.info("registered DataNode %s:%s on rack %s", d.ip, d.xfer_port, d.rack)
        return {
            "namespaceID": self.nn.version.get("namespaceID"),
            "blockpoolID": self.nn.version.get("blockpoolID"),
            "rack": d.rack,
        }

    @args(
        uuid=Str(100),
        capacity=Int(0, default=0),
        dfsUsed=Int(0, default=0),
        remaining=Int(0, default=0),
        xceiverCount=Int(0, default=0),
    )
    def rpc_sendHeartbeat(self, peer, uuid, **stats):
        d = self.nn.bm.datanodes.get(uuid)
        if d is None or not d.alive:
            return {"commands": [{"action": "DNA_REGISTER"}]}
        return {"commands": self.nn.bm.heartbeat(d, stats, safemode=self.nn.safemode_on)}

    @args(uuid=Str(100), blocks=List(REPORTED, 10**8))
    def rpc_blockReport(self, peer, uuid, blocks):
        d = self.nn.bm.datanodes.get(uuid)
        if d is None or not d.alive:
            return {"commands": [{"action": "DNA_REGISTER"}]}
        self.nn.bm.full_report(d, blocks)
        return {"commands": []}

    @args(
        uuid=Str(100),
        received=List(REPORTED, 10**6, default=[]),
        deleted=List(Int(0), 10**6, default=[]),
    )
    def rpc_blockReceivedAndDeleted(self, peer, uuid, received=(), deleted=()):
        d = self.nn.bm.datanodes.get(uuid)
        if d is None or not d.alive:
            return {"commands": [{"action": "DNA_REGISTER"}]}
        for rep in received:
            if self.nn.bm.replica_received(d, rep) == "invalidate":
                d.invalidate_queue.add(rep[0])
        for bid in deleted:
            self.nn.bm.replica_deleted(d, bid)
        return {}

    # NamenodeProtocol (the secondary)
    @args()
    def rpc_getTransactionId(self, peer):
        return {
            "txid": self.nn.editlog.last_txid,
            "mostRecentCheckpointTxId": self.nn.storage.images()[-1],
        }

    @args()
    def rpc_rollEditLog(self, peer):
        start = self.nn.editlog.roll()
        image = self.nn.storage.images()[-1]
        segs = [[a, b] for a, b, _ in self.nn.storage.segments() if b is not None and b > image]
        # Like Hadoop's CheckpointSignature: the upload must present this namespace's
        # storage info, so an image can only come back from whoever was given it.
        return {
            "segmentTxId": start,
            "imageTxId": image,
            "segments": segs,
            "storageInfo": self.nn.storage.storage_info(),
        }

    @args(action=Str(choices=("enter", "leave", "get")))
    def rpc_setSafeMode(self, peer, action):
        if action == "enter":
            self.nn.safemode_on, self.nn.safemode_reached = True, None
            self.nn.safemode_manual = True
        elif action == "leave":
            self.nn.safemode_on = self.nn.safemode_manual = False
            self.nn.bm.recheck_all()
        return {"safemode": self.nn.safemode_on}
