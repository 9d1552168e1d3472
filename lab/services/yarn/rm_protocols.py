"""What the ResourceManager's RPCs read from their bodies (ResourceTracker for the
NodeManagers, ApplicationMasterProtocol for the AMs), declared once and checked before a
handler runs, as protobuf's types would check them."""

from __future__ import annotations

from ..hadoop import fields

_ID = fields.Str(255)
_STATUS = fields.Struct(
    _extra=True,
    containerId=_ID,
    state=fields.Str(50, default=""),
    exitStatus=fields.Int(-(2**31), 2**31 - 1, default=-1000),
    diagnostics=fields.Str(1_000_000, default=""),
)
# What each RPC reads from its body (other fields pass through unchecked and unused).
RPC_ARGS = {
    "registerNodeManager": fields.Struct(
        _extra=True,
        nodeId=fields.Str(255, empty=False),
        resource=fields.Any_(default=None),
        httpAddress=fields.Str(255, default=""),
    ),
    "unRegisterNodeManager": fields.Struct(_extra=True, nodeId=_ID),
    "nodeHeartbeat": fields.Struct(
        _extra=True, nodeId=_ID, containersStatuses=fields.List(_STATUS, default=[])
    ),
    "registerApplicationMaster": fields.Struct(
        _extra=True,
        attemptId=_ID,
        trackingUrl=fields.Str(8000, default=""),
        host=fields.Str(255, default=""),
        rpcPort=fields.Int(-1, 65535, default=-1),
    ),
    "allocate": fields.Struct(
        _extra=True,
        attemptId=_ID,
        progress=fields.Float(default=None),
        ask=fields.List(fields.Any_(), default=[]),
        release=fields.List(_ID, default=[]),
        blacklistRequest=fields.Struct(
            _extra=True,
            _default=None,
            blacklistAdditions=fields.List(_ID, default=[]),
            blacklistRemovals=fields.List(_ID, default=[]),
        ),
    ),
    "finishApplicationMaster": fields.Struct(
        _extra=True,
        attemptId=_ID,
        finalApplicationStatus=fields.Str(50, default="UNDEFINED"),
        trackingUrl=fields.Str(8000, default=""),
        diagnostics=fields.Str(1_000_000, default=""),
    ),
    "getApplicationReport": fields.Struct(_extra=True, applicationId=_ID),
}
