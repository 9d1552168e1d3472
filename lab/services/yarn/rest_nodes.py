"""The RM REST API's per-node administration: a node's resource (POST
nodes/{node}/resource, AdminService.updateNodeResource) and node labels, which racklab's
RM has not enabled (yarn.node-labels.enabled=false): the label lists are empty and
changing them is Hadoop's refusal for a cluster without node labels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import http
from .records import Resource
from .rmapp import RMNode

if TYPE_CHECKING:
    from .rm import ResourceManager

# BadRequestException(IOException): the message is the IOException's toString()
LABELS_DISABLED = "Node-label-based scheduling is disabled. Please check yarn.node-labels.enabled"
# read-only label resources -> their (empty) answer; JAXB's empty object is a null
LABEL_READS = {
    "/ws/v1/cluster/get-node-labels": {"nodeLabelsInfo": None},
    "/ws/v1/cluster/get-node-to-labels": {"nodeToLabels": None},
    "/ws/v1/cluster/label-mappings": {"labelsToNodes": None},
}
LABEL_WRITES = (
    "/ws/v1/cluster/add-node-labels",
    "/ws/v1/cluster/remove-node-labels",
    "/ws/v1/cluster/replace-node-to-labels",
)


def find_node(rm: ResourceManager, node_id: str) -> RMNode:
    if ":" not in node_id:
        raise http.bad_request(f"Invalid NodeId [{node_id}]. Expected host:port")
    n = rm.nodes.get(node_id)
    if n is None:
        raise http.not_found(f"nodeId, {node_id}, is not found")
    return n


def _method(req: http.Request, allowed: str) -> None:
    if req.method != allowed and not (allowed == "GET" and req.method == "HEAD"):
        raise http.not_allowed(req.method, req.path)


def update_resource(rm: ResourceManager, req: http.Request, node_id: str) -> http.Response:
    """{"resource": {"memory", "vCores"}, "overCommitTimeout": ms} -> the node's new total;
    the scheduler places containers on it against the new total at once (containers
    already running beyond it keep running, as with Hadoop's overcommit timeout -1)."""
    _method(req, "POST")
    node = find_node(rm, node_id)
    try:
        res = Resource.from_json(req.json().get("resource"), "resource")
    except ValueError as e:
        raise http.bad_request(str(e)) from None
    node.capability = res
    sched_node = rm.scheduler.nodes.get(node.node_id)
    if sched_node is not None:
        sched_node.capability = res
    return http.Response(200, {"resourceInfo": res.json()})


def labels(rm: ResourceManager, req: http.Request, path: str) -> http.Response | None:
    """The node-label resources, or None when ``path`` is none of them."""
    if path in LABEL_READS:
        _method(req, "GET")
        return http.Response(200, LABEL_READS[path])
    if path in LABEL_WRITES:
        _method(req, "POST")
        raise http.bad_request(LABELS_DISABLED, cause="java.io.IOException")
    parts = path.split("/")
    # nodes/{node}/get-labels and replace-labels: Hadoop parses the id with a default
    # port and looks up no node
    if len(parts) == 7 and parts[4] == "nodes" and parts[6] in ("get-labels", "replace-labels"):
        if parts[6] == "get-labels":
            _method(req, "GET")
            return http.Response(200, {"nodeLabelsInfo": None})
        _method(req, "POST")
        raise http.bad_request(LABELS_DISABLED, cause="java.io.IOException")
    return None
