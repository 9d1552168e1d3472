"""The racklab agent's side of the conversation, run on a host as root over SSH:

    <agent venv>/bin/python -m lab.hosts.agentd

It reads one JSON request per line on stdin and answers one JSON line on stdout, until
stdin closes (the SSH channel with it). A request names an operation:

    hello                         who answers: its Python, racklab's version
    router  lab labid racks backbone impairment
                                  the host's router namespace, its rack bridges, the
                                  VXLAN backbone and the inter-rack impairment
    rtt     labid peers           round trips from the host's router over the backbone
    machinery kinds               each kind's Backend.facts() here, or the one sentence
                                  saying its machinery does not answer
    create  specs                 nodes of any kind by the host's own backends, plugged
                                  into their racks
    node    spec saved method args kwargs
                                  one call of the node contract (lab/backends/base.py)
                                  on a node of this host; "service_cgroup" with
                                  args [service, op, ...] freezes, thaws or asks about
                                  the service's cgroup there (chaos's pause)
    down    lab labid kinds       everything the lab made on this host

``agentd run BLOB -- ARGV`` instead runs one command in a node with its input and
output on the SSH channel (see ``run``).

Bytes travel as {"b64": ...}; a failure answers {"ok": false, "error": one sentence}.
The agent keeps nothing in memory between requests: every node is found again from
what the controller recorded (``saved``), as a local `lab` command finds its nodes.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

# node contract calls the controller may make, and nothing else
NODE_METHODS = {
    "start", "stop", "kill", "pause", "resume", "destroy", "alive", "exec", "put_file",
    "get_file", "logs", "start_service", "stop_service", "service_running",
    "remove_service", "kill_service", "stats", "describe", "memory_used", "set_limits",
    "restore_limits", "net_exec", "attach_network", "cgroup", "netns",
    "start_packet_fault", "heal_packet_fault", "clear_packet_faults",
}  # fmt: skip
# what may be asked of a service's cgroup (pause and resume, as lab/chaos does)
CGROUP_OPS = {"exists", "freeze", "frozen"}


def encode(value):
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"dataclass": type(value).__name__, "fields": encode(dataclasses.asdict(value))}
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def decode(value):
    if isinstance(value, dict):
        if set(value) == {"b64"}:
            return base64.b64decode(value["b64"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def _spec(d: dict):
    from lab.backends.base import NodeSpec
    from lab.orchestrator.state import lab_dir

    d = dict(d)
    d["state_dir"] = lab_dir(d["lab"]) / "nodes" / d["name"]  # this host's own state dir
    return NodeSpec(**d)


def op_hello() -> dict:
    from lab.images.cache import source_digest

    try:
        version = source_digest()
    except FileNotFoundError:  # installed from a wheel: no source tree beside it
        from importlib.metadata import version as dist_version

        version = dist_version("racklab")
    return {"python": sys.executable, "version": version, "pid": os.getpid()}


def op_router(lab: str, labid: str, racks: dict, backbone: dict, impairment: dict) -> dict:
    import ipaddress
    import types

    from lab import cgroups
    from lab.net import backbone as bb
    from lab.net import fabric
    from lab.orchestrator.state import lab_dir

    bb.create_host_router(labid, {r: (g, p) for r, (g, p) in racks.items()})
    bb.join(labid, fabric.router_ns(labid), backbone["port"], None, backbone["cidr"],
            backbone["peers"], backbone["routes"])  # fmt: skip
    imp = fabric.Impairment(**impairment)
    plan = types.SimpleNamespace(
        racks={r: ipaddress.IPv4Network(f"{g}/{p}", strict=False) for r, (g, p) in racks.items()},
        supernet=ipaddress.IPv4Network(backbone["supernet"]),
        host_link=ipaddress.IPv4Network(backbone["host_link"]),
    )
    d = lab_dir(lab)
    d.mkdir(parents=True, exist_ok=True)
    router_cg = cgroups.lab_cgroup(lab).create().child(cgroups.ROUTER_CGROUP).create()
    return fabric.impair_inter_rack(labid, plan, imp, router_cg, str(d / "delayline.log"))


def op_rtt(labid: str, peers: dict[str, str]) -> dict[str, float | None]:
    """The round trip from this host's router to each peer's backbone address (ms, the
    minimum of three pings; None: no answer)."""
    import re
    import subprocess

    from lab.net import fabric

    out: dict[str, float | None] = {}
    for name, ip in peers.items():
        r = subprocess.run(["ip", "netns", "exec", fabric.router_ns(labid), "ping", "-c", "3",
                            "-i", "0.2", "-W", "1", ip], capture_output=True, text=True)  # fmt: skip
        times = [float(t) for t in re.findall(r"time=([\d.]+) ms", r.stdout)]
        out[name] = min(times) if times else None
    return out


def _backend(kind: str):
    """A host builds no image: each kind's nodes run what the controller sent for its
    ``host_image`` (the node image in the host's engine, lab/hosts/images.py; the VM
    image recorded in this agent's folder, lab/hosts/vmimages.py)."""
    from lab.backends import backend_class
    from lab.backends.base import VM_IMAGE
    from lab.hosts.vmimages import sent_image

    cls = backend_class(kind)
    if cls.host_image == VM_IMAGE:
        return cls.with_sent_image(sent_image(Path(sys.prefix).parent))
    return cls.with_sent_image()


def op_machinery(kinds: list[str]) -> dict[str, dict]:
    """Each kind's facts on this host (Backend.facts), or {"error": its backend's one
    sentence} when the machinery under it does not answer (lab/hosts/machinery.py)."""
    out = {}
    for kind in kinds:
        try:
            out[kind] = _backend(kind).facts()
        except Exception as e:  # noqa: BLE001 - each kind's answer, whatever it raised
            out[kind] = {"error": str(e) or type(e).__name__}
    return out


def op_create(specs: list[dict]) -> list[dict]:
    by_kind: dict[str, list] = {}
    for d in specs:
        by_kind.setdefault(d["kind"], []).append(_spec(d))
    made = []
    for kind, group in by_kind.items():
        backend = _backend(kind)
        backend.prepare(group)
        made += backend.create_many(group)
    for node in made:
        node.attach_network()
    return [node.describe() for node in made]


def op_node(spec: dict, saved: dict, method: str, args: list, kwargs: dict):
    if method not in NODE_METHODS | {"python", "service_cgroup"}:
        raise ValueError(f"the agent does not do {method!r} on nodes")
    node = _backend(saved.get("backend", saved["kind"])).attach(_spec(spec), saved)
    if method == "python":  # a property of the contract
        return node.python
    if method == "service_cgroup":  # what chaos does with it: None where there is none
        name, op, *rest = args
        cg = node.service_cgroup(name)
        if cg is None or op not in CGROUP_OPS:
            return None
        return getattr(cg, op)(*rest)
    result = getattr(node, method)(*args, **kwargs)
    if isinstance(result, dict):
        # a handle of a process started here (a fault line) stays here: it is found
        # again by its pid, which goes back with the rest
        result = {k: v for k, v in result.items() if not isinstance(v, subprocess.Popen)}
    return result


def op_down(lab: str, labid: str, kinds: list[str]) -> list[str]:
    """What `lab down` does on one machine, for the kinds the lab has on this host: a
    kind whose library this host lacks cannot have made anything here."""
    import shutil

    from lab import cgroups
    from lab.net import fabric
    from lab.orchestrator.state import lab_dir

    removed = []
    for kind in sorted(set(kinds) | {"process"}):
        try:
            removed += _backend(kind).cleanup(lab, labid)
        except Exception as e:  # noqa: BLE001 - one kind failing must not stop the rest
            removed.append(f"could not clean {kind} nodes: {e}")
    removed += fabric.destroy(labid)
    cg = cgroups.lab_cgroup(lab)
    if cg.exists():
        cg.remove()
        removed.append(f"cgroup {cg.rel}")
    d = lab_dir(lab)
    if d.exists():
        shutil.rmtree(d, ignore_errors=True)
        removed.append(f"state {d}")
    return removed


OPS = {"hello": op_hello, "router": op_router, "rtt": op_rtt, "machinery": op_machinery,
       "create": op_create, "node": op_node, "down": op_down}  # fmt: skip


def _answer(line: bytes) -> dict:
    try:
        req = json.loads(line)
        op = OPS[req.pop("op")]
        return {"ok": True, "result": encode(op(**decode(req)))}
    except Exception as e:  # noqa: BLE001 - every failure goes back as an answer
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


def serve(fd: int, out) -> None:
    """Answer requests from ``fd`` until it closes. While an operation runs, the channel
    is watched: the controller gone (its `lab up` killed) ends the agent at once, so
    nothing is made on the host after the lab's controller stopped asking for it."""
    import select
    import threading

    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        if not line.strip():
            continue
        result: list[dict] = []
        worker = threading.Thread(target=lambda ln=line, r=result: r.append(_answer(ln)))
        worker.daemon = True
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
            if worker.is_alive() and select.select([fd], [], [], 0)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    os._exit(1)  # the controller is gone: stop making things for it
                buf += chunk
        out.write(json.dumps(result[0]) + "\n")
        out.flush()


def run(blob: str, argv: list[str]) -> int:
    """``agentd run BLOB -- ARGV``: ARGV inside a node of this host, its input, output
    and exit status those of this process (the SSH channel): `lab exec` and the shell.
    BLOB is base64 JSON {"spec": ..., "saved": ...}."""
    d = json.loads(base64.b64decode(blob))
    saved = d["saved"]
    node = _backend(saved.get("backend", saved["kind"])).attach(_spec(d["spec"]), saved)
    env = {**os.environ, **d.get("env", {})} if d.get("env") else None
    return node.popen(argv, env=env).wait()


def main() -> int:
    if sys.argv[1:2] == ["run"]:
        return run(sys.argv[2], sys.argv[sys.argv.index("--") + 1 :])
    # The protocol has stdout to itself: anything a library prints goes to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(0, proto)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
