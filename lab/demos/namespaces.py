"""`lab demo namespaces`: each namespace type, the host's view beside a node's view.

The same probe (``probe`` below) runs twice: once as a plain process on the host and
once inside a fresh process node (through nsenter, like `lab exec`). Each looks at
itself and at one "subject" process, the node's PID 1, which the host knows by its
host PID and the node knows as PID 1, so both views describe the very same process.
Whether a namespace isolates anything is then computed from the two views, never
assumed: the namespace ids must differ and the node must see something different.

This file runs as a script inside the node (``python -E -s -S namespaces.py probe``),
so its top level imports only the standard library.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import socket
import subprocess
import sys
import time

NS_TYPES = ("pid", "uts", "net", "mnt", "ipc", "user", "cgroup", "time")
# Where the process node mounts something of its own (lab/ns/init.py)
MOUNTPOINTS = (
    "/proc",
    "/sys",
    "/sys/fs/cgroup",
    "/run",
    "/dev/shm",
    "/tmp",
    "/etc/hosts",
    "/etc/hostname",
    "/srv/node",
)
IPC_CREAT = 0o1000
IPC_EXCL = 0o2000
SYSVIPC = ("msg", "shm", "sem")


# --- the probe: stdlib only, runs on the host and in the node -------------------------


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _ns_ids(pid: str) -> dict[str, str | None]:
    out = {}
    for ns in NS_TYPES:
        try:
            out[ns] = os.readlink(f"/proc/{pid}/ns/{ns}")
        except OSError:
            out[ns] = None  # the kernel lacks this namespace type
    return out


def _status(pid: str) -> dict[str, str]:
    out = {}
    for line in _read(f"/proc/{pid}/status").splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def _processes() -> list[tuple[int, str]]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            comm = _read(f"/proc/{entry}/comm").strip()
            if comm:  # gone meanwhile otherwise
                out.append((int(entry), comm))
    return sorted(out)


def _cmdline(pid: str) -> str:
    return _read(f"/proc/{pid}/cmdline").replace("\0", " ").strip()


def _ip_json(*args: str) -> list:
    try:
        res = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, timeout=10)
        return json.loads(res.stdout or "[]")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return []


def _interfaces() -> list[dict]:
    links = _ip_json("addr", "show")
    if links:
        return [
            {
                "name": link["ifname"],
                "state": link.get("operstate", "?"),
                "addrs": [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])],
            }
            for link in links
        ]
    # no iproute2: /proc/net/dev still lists this network namespace's interfaces
    names = [line.split(":")[0].strip() for line in _read("/proc/net/dev").splitlines()[2:]]
    return [{"name": n, "state": "?", "addrs": []} for n in names]


def _routes() -> list[str]:
    routes = _ip_json("route", "show")
    if routes:
        return [
            " ".join(
                [r.get("dst", "?")]
                + ([f"via {r['gateway']}"] if "gateway" in r else [])
                + ([f"dev {r['dev']}"] if "dev" in r else [])
            )
            for r in routes
        ]
    out = []
    for line in _read("/proc/net/route").splitlines()[1:]:
        f = line.split()
        if len(f) >= 8:
            dst = socket.inet_ntoa(int(f[1], 16).to_bytes(4, "little"))
            bits = bin(int(f[7], 16)).count("1")
            out.append(f"{dst}/{bits} dev {f[0]}")
    return out


def _mounts() -> list[dict]:
    out = []
    for line in _read("/proc/self/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        f, r = left.split(), right.split()
        out.append({"at": f[4], "dev": f[2], "root": f[3], "fstype": r[0], "source": r[1]})
    return out


def _sysvipc() -> dict[str, list[int]]:
    """SysV IPC keys this IPC namespace holds (what ipcs(1) shows)."""
    out = {}
    for kind in SYSVIPC:
        lines = _read(f"/proc/sysvipc/{kind}").splitlines()[1:]
        out[kind] = [int(line.split()[0]) for line in lines if line.split()]
    return out


def _make_sysvipc(key: int) -> dict[str, int]:
    """A message queue and a shared memory segment under ``key`` (die with the namespace)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
    ids = {
        "msg": libc.msgget(key, IPC_CREAT | IPC_EXCL | 0o600),
        "shm": libc.shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0o600),
    }
    for kind, ident in ids.items():
        if ident < 0:
            raise OSError(ctypes.get_errno(), f"{kind}get: {os.strerror(ctypes.get_errno())}")
    return ids


def _cgroup_lines(pid: str) -> dict[str, str]:
    """Hierarchy name ("" for v2) -> the process's cgroup path, as /proc/PID/cgroup says."""
    out = {}
    for line in _read(f"/proc/{pid}/cgroup").splitlines():
        _id, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            out[c] = path
    return out


def probe(subject: int, ipc_key: int | None = None) -> dict:
    """Everything the demo compares, seen from where this process runs.

    ``subject`` is the node's PID 1 under the PID this process knows it by;
    ``ipc_key``: first create SysV IPC objects under that key here.
    """
    made = _make_sysvipc(ipc_key) if ipc_key is not None else None
    s = str(subject)
    status = _status(s)
    procs = _processes()
    clocks = {}
    for name in ("CLOCK_MONOTONIC", "CLOCK_BOOTTIME"):
        if hasattr(time, name):
            clocks[name] = time.clock_gettime(getattr(time, name))
    return {
        "self_pid": os.getpid(),
        "ns": _ns_ids("self"),
        "subject": {
            "pid": subject,
            "comm": _read(f"/proc/{s}/comm").strip(),
            "cmdline": _cmdline(s),
            "nspid": status.get("NSpid", "").split(),
            "cgroup": _cgroup_lines(s),
            "ns": _ns_ids(s),
        },
        "pid1": {"comm": _read("/proc/1/comm").strip(), "cmdline": _cmdline("1")},
        "processes": procs,
        "hostname": socket.gethostname(),
        "domainname": _read("/proc/sys/kernel/domainname").strip(),
        "interfaces": _interfaces(),
        "routes": _routes(),
        "mounts": _mounts(),
        "sysvipc": _sysvipc(),
        "sysvipc_made": made,
        "uid": os.getuid(),
        "uid_map": " ".join(_read("/proc/self/uid_map").split()),
        "gid_map": " ".join(_read("/proc/self/gid_map").split()),
        "cgroup": _cgroup_lines("self"),
        "timens_offsets": [
            " ".join(x.split()) for x in _read("/proc/self/timens_offsets").splitlines()
        ],
        "clocks": clocks,
    }


# --- comparing the two views ----------------------------------------------------------


def _same_ns(host: dict, node: dict, ns: str) -> bool | None:
    a, b = host["ns"].get(ns), node["ns"].get(ns)
    if a is None or b is None:
        return None
    return a == b


def _mounted_at(view: dict, path: str) -> str | None:
    found = None
    for m in view["mounts"]:  # the last mount at a path is the one in use
        if m["at"] == path:
            # the device number tells two instances of one file system type apart (each
            # /proc is its own), the root a bind mount's source directory
            root = m["root"]
            if root.count("/") > 2:  # a bind mount of a node file: its last parts say enough
                root = ".../" + "/".join(root.rsplit("/", 2)[-2:])
            found = f"{m['fstype']} dev {m['dev']}" + (f" {root}" if root != "/" else "")
    return found


def _cgroup_key(view: dict) -> str:
    """The hierarchy to show: v2's single one, else the memory controller's."""
    lines = view["subject"]["cgroup"]
    for key in ("memory", ""):
        if key in lines:
            return key
    return next(iter(lines), "")


def _short(items: list, n: int = 6) -> str:
    items = [str(i) for i in items]
    return ", ".join(items[:n]) + (f", ... ({len(items)} in all)" if len(items) > n else "")


def compare(host: dict, node: dict, ipc_key: int) -> list[dict]:
    rows = []

    def row(ns: str, host_view: dict, node_view: dict, differs: bool, evidence: str) -> None:
        same = _same_ns(host, node, ns)
        host_view = {"ns_id": host["ns"].get(ns), **host_view}
        node_view = {"ns_id": node["ns"].get(ns), **node_view}
        if same is None:
            rows.append(
                {
                    "ns": ns,
                    "host": host_view,
                    "node": node_view,
                    "isolated": False,
                    "evidence": f"this kernel has no {ns} namespace",
                }  # fmt: skip
            )
            return
        if same:
            evidence = f"same namespace ({host['ns'][ns]}) on both sides: " + evidence
        rows.append(
            {
                "ns": ns,
                "host": host_view,
                "node": node_view,
                "isolated": (not same) and differs,
                "evidence": evidence,
            }  # fmt: skip
        )

    # pid: the node's PID 1 is an ordinary process on the host
    nspid = host["subject"]["nspid"]  # the kernel's list: host PID ... innermost PID
    node_procs, host_procs = node["processes"], host["processes"]
    row(
        "pid",
        {
            "PID 1": host["pid1"]["comm"],
            "processes": len(host_procs),
            "node init is PID": host["subject"]["pid"],
        },  # fmt: skip
        {
            "PID 1": node["pid1"]["comm"],
            "processes": len(node_procs),
            "process list": [f"{p} {c}" for p, c in node_procs],
        },  # fmt: skip
        # the kernel's NSpid line lists the process's PID in each PID namespace it is in
        differs=len(nspid) >= 2
        and nspid[-1] == "1"
        and nspid[0] == str(host["subject"]["pid"]) != "1"
        and len(node_procs) < len(host_procs),
        evidence=f"the same process is PID {host['subject']['pid']} on the host and PID 1 in "
        f"the node (kernel NSpid: {' '.join(nspid)}); the node sees {len(node_procs)} "
        f"processes, the host {len(host_procs)}",
    )

    # uts: host name
    row(
        "uts",
        {"hostname": host["hostname"]},
        {"hostname": node["hostname"]},
        differs=host["hostname"] != node["hostname"],
        evidence=f"host name {node['hostname']!r} in the node, {host['hostname']!r} on the host",
    )

    # net: interfaces and routes
    def ifaces(view):
        return [
            f"{i['name']} {i['state']} {' '.join(i['addrs'])}".strip() for i in view["interfaces"]
        ]

    host_if = {i["name"] for i in host["interfaces"]}
    node_if = {i["name"] for i in node["interfaces"]}
    hidden = sorted(host_if - node_if)
    row(
        "net",
        {"interfaces": ifaces(host), "routes": host["routes"]},
        {"interfaces": ifaces(node), "routes": node["routes"]},
        differs=ifaces(host) != ifaces(node) or host["routes"] != node["routes"],
        evidence=f"the node sees {_short(sorted(node_if)) or 'no interface'} and "
        f"{len(node['routes'])} routes; the host's {_short(hidden) or 'interfaces'} "
        f"and {len(host['routes'])} routes are not visible inside",
    )

    # mnt: what is mounted where
    def key(m):
        return (m["at"], m["dev"], m["root"], m["fstype"], m["source"])

    host_keys = {key(m) for m in host["mounts"]}
    node_only = sorted({m["at"] for m in node["mounts"] if key(m) not in host_keys})
    own = {p: (_mounted_at(host, p), _mounted_at(node, p)) for p in MOUNTPOINTS}
    differing = [p for p, (h, n) in own.items() if h != n]
    row(
        "mnt",
        {
            "mounts": len(host["mounts"]),
            **{p: h or "(not a mount point)" for p, (h, _n) in own.items() if p in differing},
        },  # fmt: skip
        {
            "mounts": len(node["mounts"]),
            **{p: n or "(not a mount point)" for p, (_h, n) in own.items() if p in differing},
        },  # fmt: skip
        differs=bool(node_only),
        evidence=f"{len(node_only)} mounts exist only in the node ({_short(node_only, 8)}); "
        f"the host has {len(host['mounts'])} mounts, the node {len(node['mounts'])}",
    )

    # ipc: SysV objects made inside are invisible outside
    made = node["sysvipc_made"] or {}
    in_node = {k: ipc_key in node["sysvipc"][k] for k in made}
    on_host = {k: ipc_key in host["sysvipc"][k] for k in made}
    row(
        "ipc",
        {f"SysV {k} objects": len(v) for k, v in host["sysvipc"].items()}
        | {f"key {ipc_key:#x} visible": any(on_host.values())},
        {f"SysV {k} objects": len(v) for k, v in node["sysvipc"].items()}
        | {f"key {ipc_key:#x} visible": all(in_node.values())},
        differs=bool(made) and all(in_node.values()) and not any(on_host.values()),
        evidence=f"a message queue and a shared memory segment with key {ipc_key:#x} made in "
        f"the node are in its /proc/sysvipc ({', '.join(k for k, v in in_node.items() if v)}) "
        f"and {'also' if any(on_host.values()) else 'not'} in the host's",
    )

    # user: racklab's process nodes keep the host's user namespace
    row(
        "user",
        {"uid": host["uid"], "uid_map": host["uid_map"], "gid_map": host["gid_map"]},
        {"uid": node["uid"], "uid_map": node["uid_map"], "gid_map": node["gid_map"]},
        differs=host["uid_map"] != node["uid_map"],
        evidence=f"uid_map {node['uid_map']!r} in the node, {host['uid_map']!r} on the host: "
        f"uid {node['uid']} in the node is uid {node['uid']} on the host "
        "(process nodes do not make a user namespace)"
        if host["uid_map"] == node["uid_map"]
        else f"uid_map {node['uid_map']!r} in the node maps its ids onto other host ids",
    )

    # cgroup: the node's cgroup is the root of the tree it sees
    k = _cgroup_key(host)
    h_path = host["subject"]["cgroup"].get(k, "?")
    n_path = node["subject"]["cgroup"].get(k, "?")
    label = f"{k or 'v2'} cgroup of the node's init"
    row(
        "cgroup",
        {label: h_path},
        {label: n_path, "this probe's cgroup": node["cgroup"].get(k, "?")},
        differs=h_path != n_path and h_path.endswith(n_path),
        evidence=f"the same process is in {h_path} as the host sees it and in {n_path} as the "
        f"node sees it: the node's cgroup {h_path[: len(h_path) - len(n_path)] or '/'} is its root",
    )

    # time: a namespace of its own, offsets still zero
    offsets = node["timens_offsets"]
    row(
        "time",
        {
            "offsets": "; ".join(host["timens_offsets"]) or "n/a",
            "monotonic": round(host["clocks"].get("CLOCK_MONOTONIC", 0), 1),
        },  # fmt: skip
        {
            "offsets": "; ".join(offsets) or "n/a",
            "monotonic": round(node["clocks"].get("CLOCK_MONOTONIC", 0), 1),
        },  # fmt: skip
        differs=True,  # a separate time namespace is the isolation; its offsets are a choice
        evidence="own time namespace; its clock offsets are "
        + (
            "zero, so the clocks read the same"
            if all(o.endswith(" 0 0") for o in offsets)
            else "set: " + "; ".join(offsets)
        ),  # fmt: skip
    )
    return rows


# --- the demo -------------------------------------------------------------------------


def _run_probe(argv_prefix: list[str], subject: int, ipc_key: int | None, runner) -> dict:
    argv = [*argv_prefix, os.path.abspath(__file__), "probe", str(subject)]
    if ipc_key is not None:
        argv.append(str(ipc_key))
    res = runner(argv)
    if res.returncode != 0:
        raise RuntimeError(f"namespace probe failed ({res.returncode}): {res.stderr.strip()}")
    return json.loads(res.stdout)


def run() -> dict:
    """Make a node, probe the host and the node, compare, remove the node."""
    from lab import cgroups
    from lab.demos.demonode import demo_node

    python = [sys.executable, "-E", "-s", "-S"]
    ipc_key = 0x524C0000 | random.randrange(1, 0xFFFF)  # "RL" and a random tail
    with demo_node("demo-ns", "nsdemo") as node:
        host_pid = node.describe()["pid"]  # the node's init, as the host numbers it
        # the node first: it makes the IPC objects the host then looks for
        inside = _run_probe(python, 1, ipc_key, lambda argv: node.exec(argv, timeout=30))
        outside = _run_probe(
            python,
            host_pid,
            None,
            lambda argv: subprocess.run(argv, capture_output=True, text=True, timeout=30),
        )
        rows = compare(outside, inside, ipc_key)
        info = {"name": node.name, "host_pid": host_pid, "cgroup": node.cgroup()}
    return {
        "node": info,
        "kernel": os.uname().release,
        "cgroup_version": cgroups.version(),
        "namespaces": rows,
        "isolated": [r["ns"] for r in rows if r["isolated"]],
        "not_isolated": [r["ns"] for r in rows if not r["isolated"]],
    }


def show(data: dict, console) -> None:
    from rich.table import Table

    t = Table(
        title=f"namespaces: the host beside node {data['node']['name']} "
        f"(host PID {data['node']['host_pid']}, kernel {data['kernel']})",
        show_lines=True,
    )
    t.add_column("ns", style="bold")
    t.add_column("host")
    t.add_column("node")
    t.add_column("isolated?")

    def cell(view: dict) -> str:
        lines = []
        for k, v in view.items():
            if isinstance(v, list):
                v = _short(v, 4) or "none"
            lines.append(f"[dim]{k}:[/] {v}")
        return "\n".join(lines)

    for r in data["namespaces"]:
        verdict = "[green]yes[/]" if r["isolated"] else "[red]no[/]"
        t.add_row(r["ns"], cell(r["host"]), cell(r["node"]), f"{verdict}\n{r['evidence']}")
    console.print(t)
    console.print(
        f"isolated: {', '.join(data['isolated']) or 'none'}; "
        f"not isolated: {', '.join(data['not_isolated']) or 'none'}"
    )


if __name__ == "__main__" and len(sys.argv) >= 3 and sys.argv[1] == "probe":
    key = int(sys.argv[3]) if len(sys.argv) > 3 else None
    json.dump(probe(int(sys.argv[2]), key), sys.stdout)
