"""Network faults for chaos runs: partitions and packet faults, always healable.

Partitions are packet-filter rules on each node's own network stack (its network
namespace, or a VM's guest kernel, reached over SSH), in a chain of racklab's own (RACKLAB-CHAOS, jumped to from INPUT), so healing is "flush
and remove our chain" and never touches anything else. A grudge says, per node,
which nodes it no longer hears from; a two-way partition is a symmetric grudge, a
one-way partition a lopsided one (A hears nothing from B, B still hears A).

Packet faults (delay with jitter, loss, duplication, corruption, reordering) act on
what a node sends, as netem on the node's interface would (Jepsen does exactly that).
Where the kernel has netem it is used. Where it has not (these machines), racklab's
fault line takes its place, in the router namespace:

    node eth0 ===veth=== <node> --tc ingress: mirred redirect--> tap fx-<node>
                                                                  | this process:
                                                                  | delay, jitter, loss,
                                                                  | duplicate, corrupt,
                                                                  v reorder
    rack bridge <--------------- frames written back into the tap (a bridge port)

The tap is a port of the rack bridge with learning off and isolated; the node's MAC is
pinned to its own port so replies go straight to the node, unimpaired, and a filter on
that port's way out (a bridge-family nftables table of the line's own) drops frames
from the node's own MAC (a broadcast it sent, handed back to the bridge through the
tap, would otherwise be flooded back to it). The node's port itself is not isolated:
two impaired nodes of one rack still reach each other.

    python -m lab.net.faults line --router rl<id>-router --port n1 --delay 0.05 ...
"""

from __future__ import annotations

import argparse
import collections
import fcntl
import heapq
import json
import os
import random
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

CHAIN = "RACKLAB-CHAOS"
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


class FaultError(RuntimeError):
    pass


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise FaultError(f"{' '.join(argv)}: {r.stderr.strip() or r.returncode}")
    return r


def in_netns(netns: str, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    """Run a host tool (iptables, tc, ip) inside the network namespace at path ``netns``."""
    return _run(["nsenter", f"--net={netns}", "--", *argv], check)


# Where a node's network stack is: a network namespace's path, or a callable running
# a tool there and returning what subprocess.run would (a node's ``net_exec``, which
# reaches a VM's guest over SSH). Every function below takes either.
Where = str | Callable[[list[str]], object]


def _at(where: Where, argv: list[str], check: bool = True):
    if isinstance(where, str):
        return in_netns(where, argv, check)
    r = where(argv)
    if check and r.returncode != 0:
        raise FaultError(f"{' '.join(argv)}: {(r.stderr or '').strip() or r.returncode}")
    return r


def _gone(where: Where) -> bool:
    """A namespace that no longer exists (its node was killed): nothing left to undo."""
    return isinstance(where, str) and not os.path.exists(where)


def mac_of(where: Where) -> str:
    """The MAC address of the node's eth0 (all zeros when it cannot be read)."""
    try:
        out = _at(where, ["ip", "-j", "link", "show", "eth0"]).stdout
        return json.loads(out)[0]["address"]
    except (FaultError, ValueError, IndexError, KeyError):
        return "00:00:00:00:00:00"


# partitions


def _ipt(where: Where, args: list[str], check: bool = True):
    return _at(where, ["iptables", "-w", "5", *args], check)


def block_from(where: Where, sources: list[str]) -> None:
    """The node (its netns path or runner) stops hearing from the IPv4 ``sources``."""
    if not sources:
        return
    if _ipt(where, ["-N", CHAIN], check=False).returncode == 0:
        _ipt(where, ["-I", "INPUT", "1", "-j", CHAIN])
    for src in sources:
        _ipt(where, ["-A", CHAIN, "-s", src, "-j", "DROP"])


def unblock(where: Where) -> None:
    """Remove racklab's partition rules from one node; idempotent."""
    if _gone(where):
        return
    _ipt(where, ["-D", "INPUT", "-j", CHAIN], check=False)
    _ipt(where, ["-F", CHAIN], check=False)
    _ipt(where, ["-X", CHAIN], check=False)


def blocked(where: Where) -> list[str]:
    """Sources the node currently drops (for tests and status)."""
    if _gone(where):
        return []
    r = _ipt(where, ["-S", CHAIN], check=False)
    out = []
    for line in r.stdout.splitlines():
        parts = line.split()
        if "-s" in parts:
            out.append(parts[parts.index("-s") + 1].split("/")[0])
    return out


def apply_grudge(where: dict, addresses: dict[str, str], grudge: dict) -> None:
    """grudge: node -> nodes it must not hear from. where/addresses: node -> netns path
    or runner / IPv4."""
    for node, enemies in grudge.items():
        block_from(where[node], [addresses[e] for e in sorted(enemies)])


# packet faults


@dataclass
class PacketFault:
    delay: float = 0.0  # seconds
    jitter: float = 0.0  # seconds, +/- around delay
    loss: float = 0.0  # percent
    duplicate: float = 0.0  # percent
    corrupt: float = 0.0  # percent
    reorder: float = 0.0  # percent of packets sent at once, ahead of delayed ones

    def netem_args(self) -> list[str]:
        a: list[str] = []
        if self.delay or self.jitter or self.reorder:
            a += ["delay", f"{self.delay * 1e6:.0f}us"]
            if self.jitter:
                a += [f"{self.jitter * 1e6:.0f}us"]
        if self.loss:
            a += ["loss", f"{self.loss}%"]
        if self.duplicate:
            a += ["duplicate", f"{self.duplicate}%"]
        if self.corrupt:
            a += ["corrupt", f"{self.corrupt}%"]
        if self.reorder:
            a += ["reorder", f"{self.reorder}%"]
        return a

    def describe(self) -> str:
        parts = []
        if self.delay or self.jitter:
            parts.append(f"delay {self.delay * 1000:g}ms±{self.jitter * 1000:g}ms")
        for k in ("loss", "duplicate", "corrupt", "reorder"):
            if getattr(self, k):
                parts.append(f"{k} {getattr(self, k):g}%")
        return ", ".join(parts) or "none"

    def __bool__(self) -> bool:
        return any(asdict(self).values())


_NETEM: bool | None = None


def have_netem() -> bool:
    """Probe once: can this kernel make a netem qdisc? (In a scratch namespace.)"""
    global _NETEM
    if _NETEM is None:
        name = f"rlprobe{os.getpid()}"
        _run(["ip", "netns", "add", name])
        try:
            r = _run(["tc", "-n", name, "qdisc", "add", "dev", "lo", "root", "netem"], False)
            _NETEM = r.returncode == 0
        finally:
            _run(["ip", "netns", "del", name], False)
    return _NETEM


def tap_name(port: str) -> str:
    name = f"fx-{port}"
    return name if len(name) <= 15 else name[:15]


def start_packet_fault(
    router: str, port: str, where: Where, fault: PacketFault, seed: int, log_path: str
) -> dict:
    """Impair what one node sends. router: the router namespace's name; port: the
    node's port in it (its veth, or a VM's tap, named after the node); where: the
    node's netns path or runner. Returns what heal_packet_fault needs."""
    if have_netem():
        _at(where, ["tc", "qdisc", "replace", "dev", "eth0", "root", "netem",
                    *fault.netem_args()])  # fmt: skip
        return {"method": "netem", **({"netns": where} if isinstance(where, str) else {})}
    mac = json.loads(_at(where, ["ip", "-j", "link", "show", "eth0"]).stdout)[0]["address"]
    argv = [
        "ip", "netns", "exec", router, sys.executable, "-m", "lab.net.faults", "line",
        "--port", port, "--mac", mac, "--seed", str(seed), "--fault", json.dumps(asdict(fault)),
    ]  # fmt: skip
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
            start_new_session=True,
        )  # fmt: skip
    line = proc.stdout.readline().decode().strip()
    proc.stdout.close()
    info = {"method": "faultline", "pid": proc.pid, "router": router, "port": port, "mac": mac}
    if line != "ready":
        proc.kill()
        proc.wait()
        undo_line(router, port, mac)
        tail = open(log_path, errors="replace").read().strip().splitlines()
        raise FaultError(f"the fault line for {port} did not start: {tail[-1] if tail else '?'}")
    info["proc"] = proc
    return info


def heal_packet_fault(info: dict, where: Where | None = None) -> None:
    """Undo start_packet_fault; ``where`` (the node's netns path or runner) is needed
    for netem when ``info`` does not name a netns."""
    if info["method"] == "netem":
        where = info.get("netns", where)
        if where is not None and not _gone(where):
            _at(where, ["tc", "qdisc", "del", "dev", "eth0", "root"], check=False)
        return
    proc = info.get("proc")
    if info.get("pid", 0) > 0:
        try:
            os.kill(info["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # the line undoes its own plumbing on SIGTERM; after a SIGKILL it could not, and a
    # redirect to a vanished tap would black-hole the node: so undo it here as well
    undo_line(info["router"], info["port"], info["mac"])


def undo_line(router: str, port: str, mac: str) -> bool:
    """Remove a fault line's plumbing for ``port`` (idempotent; the tap's going makes
    an orphaned line process exit)."""
    if not os.path.exists(f"/run/netns/{router}"):
        return False
    r = _run(["tc", "-n", router, "qdisc", "del", "dev", port, "clsact"], check=False)
    _run(["ip", "netns", "exec", router, "nft", "delete", "table", "bridge", _echo_table(port)],
         check=False)  # fmt: skip
    _run(["bridge", "-n", router, "link", "set", "dev", port, "isolated", "off"], check=False)
    _run(["bridge", "-n", router, "fdb", "del", mac, "dev", port, "master"], check=False)
    _run(["ip", "-n", router, "link", "del", tap_name(port)], check=False)
    return r.returncode == 0  # there was a redirect to undo


# the fault line itself (runs inside the router namespace)


def _open_tap(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def _plumb(port: str, tap: str, mac: str) -> None:
    master = json.loads(_run(["ip", "-j", "link", "show", port]).stdout)[0]["master"]
    _run(["ip", "link", "set", tap, "master", master, "up"])
    _run(["bridge", "link", "set", "dev", tap, "learning", "off", "flood", "off", "isolated", "on"])
    _run(["bridge", "fdb", "replace", mac, "dev", port, "master", "static"])
    _run(["tc", "qdisc", "replace", "dev", port, "clsact"])
    # u32 matching everything: kernels without cls_matchall still have u32
    _run(["tc", "filter", "add", "dev", port, "ingress", "protocol", "all", "u32",
          "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", tap])  # fmt: skip
    # never back to the node what it sent itself (kernels without tc's drop action,
    # like these, have nftables' bridge family)
    table = _echo_table(port)
    _run(["nft", "add", "table", "bridge", table])
    _run(["nft", "add", "chain", "bridge", table, "out",
          "{ type filter hook forward priority 0; }"])  # fmt: skip
    _run(["nft", "add", "rule", "bridge", table, "out", "oifname", port, "ether", "saddr", mac,
          "drop"])  # fmt: skip


def _echo_table(port: str) -> str:
    return f"racklab-fx-{port}"


def _unplumb(port: str, tap: str, mac: str) -> None:
    _run(["tc", "qdisc", "del", "dev", port, "clsact"], check=False)
    _run(["nft", "delete", "table", "bridge", _echo_table(port)], check=False)
    _run(["bridge", "link", "set", "dev", port, "isolated", "off"], check=False)
    _run(["bridge", "fdb", "del", mac, "dev", port, "master"], check=False)


def line(fd: int, fault: PacketFault, rng: random.Random, stop, mac: bytes) -> None:
    """Hold, drop, duplicate, corrupt and reorder the frames read from ``fd`` that the
    node (source ``mac``) sent; anything else the bridge hands the tap is not ours."""
    heap: list[tuple[float, int, bytes]] = []
    seq = 0
    p = {k: getattr(fault, k) / 100.0 for k in ("loss", "duplicate", "corrupt", "reorder")}
    pending = collections.deque()
    while not stop():
        timeout = 0.2
        if heap:
            timeout = min(timeout, max(0.0, heap[0][0] - time.monotonic()))
        readable, _, _ = select.select([fd], [], [], timeout)
        now = time.monotonic()
        if readable:
            for _ in range(256):
                try:
                    frame = os.read(fd, 65535)
                except BlockingIOError:
                    break
                except OSError:
                    return  # the tap was removed under us: healed from outside
                if frame[6:12] != mac:
                    continue
                if p["loss"] and rng.random() < p["loss"]:
                    continue
                copies = 2 if p["duplicate"] and rng.random() < p["duplicate"] else 1
                for _c in range(copies):
                    f = frame
                    if p["corrupt"] and len(f) > 14 and rng.random() < p["corrupt"]:
                        # one flipped bit past the Ethernet header, as netem does; the
                        # IP or TCP checksum then makes the receiver drop it
                        i = rng.randrange(14, len(f))
                        f = f[:i] + bytes([f[i] ^ (1 << rng.randrange(8))]) + f[i + 1 :]
                    if p["reorder"] and rng.random() < p["reorder"]:
                        due = now  # jumps ahead of the delayed ones
                    else:
                        j = rng.uniform(-fault.jitter, fault.jitter) if fault.jitter else 0.0
                        due = now + max(0.0, fault.delay + j)
                    seq += 1
                    heapq.heappush(heap, (due, seq, f))
        now = time.monotonic()
        while heap and heap[0][0] <= now:
            pending.append(heapq.heappop(heap)[2])
        while pending:
            try:
                os.write(fd, pending.popleft())
            except OSError:
                break


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.net.faults")
    sub = ap.add_subparsers(dest="cmd", required=True)
    ln = sub.add_parser("line", help="run a fault line for one node's port (in the router ns)")
    ln.add_argument("--port", required=True)
    ln.add_argument("--mac", required=True)
    ln.add_argument("--fault", required=True, help="JSON of PacketFault fields")
    ln.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    fault = PacketFault(**json.loads(a.fault))
    tap = tap_name(a.port)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    fd = _open_tap(tap)
    os.set_blocking(fd, False)
    try:
        _plumb(a.port, tap, a.mac)
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        os.close(1)
        mac = bytes.fromhex(a.mac.replace(":", ""))
        line(fd, fault, random.Random(a.seed), lambda: bool(stopping), mac)
    finally:
        _unplumb(a.port, tap, a.mac)
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
