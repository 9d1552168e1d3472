"""The shape of a topology file, as pydantic models that refuse unknown fields."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from .units import parse_duration, parse_percent, parse_rate, parse_size

Size = Annotated[int, BeforeValidator(parse_size)]
Rate = Annotated[int, BeforeValidator(parse_rate)]
Duration = Annotated[float, BeforeValidator(parse_duration)]
Percent = Annotated[float, BeforeValidator(parse_percent)]

NODE_KINDS = ("process", "container", "pod", "vm", "k8s")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NodeSettings(_Strict):
    """What a node may set; `defaults` and each entry of `nodes` share it."""

    kind: str | None = None
    cpus: float | None = Field(default=None, gt=0, le=1024)
    memory: Size | None = None
    pids: int | None = Field(default=None, gt=0)
    io: Rate | None = None  # read and write limit on the node's data disk, bytes/s
    image: str | None = None


class Impairment(_Strict):
    delay: Duration = 0.0
    jitter: Duration = 0.0
    loss: Percent = 0.0


class Network(_Strict):
    supernet: str = "auto"
    inter_rack: Impairment = Impairment()


class Host(_Strict):
    """A machine the lab spreads over, reached over SSH (see hosts.py)."""

    address: str
    user: str = "root"
    port: int = Field(default=22, ge=1, le=65535)
    key: str | None = None
    known_hosts: str | None = None


class K8s(_Strict):
    """Where `kind: k8s` nodes run: the cluster a kubeconfig names, else podman here."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None  # default: racklab-<lab>
    # host: podman's pods plugged into racklab's router here; overlay: the pods carry
    # the rack network themselves (router pod, VXLAN), as they always do on a cluster
    network: Literal["host", "overlay"] | None = None


class Rack(_Strict):
    host: str | None = None  # a name in hosts; none: this machine
    nodes: list[str]


class TopologyFile(_Strict):
    name: str
    defaults: NodeSettings = NodeSettings()
    network: Network = Network()
    hosts: dict[str, Host | None] = {}
    racks: dict[str, Rack]
    nodes: dict[str, NodeSettings | None] = {}
    services: dict[str, dict[str, Any]] = {}
    k8s: K8s = K8s()
    terraform: str | None = None  # a rendered DIR whose VMs are this lab's (docs/TERRAFORM.md)
