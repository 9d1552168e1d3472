"""A userspace delay line for kernels without netem (these machines: no sch_netem, no
modules to load). It runs in the router namespace:

    rack bridge --(ip rule: iif br-X -> table 100)--> tun "delay" --> this process
        holds each packet for delay ± jitter, drops a share for loss -->
    tun "delay" --(packet re-enters, iif delay -> main table)--> other rack's bridge

Only forwarded packets arriving from a rack bridge and going to another rack take the
detour, so traffic inside a rack (switched by its bridge) and traffic between the host
and a node are not delayed; traffic between racks is delayed once per direction, like
netem on the way out of the router.

Packets leave in the order they came (a packet never overtakes the previous one), so
jitter does not reorder TCP segments; netem with jitter would.

    python -m lab.net.delayline --delay 0.002 --jitter 0.0002 --loss 0 --racks br-r1,br-r2
"""

from __future__ import annotations

import argparse
import collections
import fcntl
import os
import random
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
TABLE = 100
TUN_NAME = "delay"


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def route_through(name: str, bridges: list[str], supernet: str, exempt: list[str]) -> None:
    # One `ip -batch` rather than pyroute2: importing pyroute2 is 0.2 s of CPU, and
    # `lab up` waits for this line to be ready before it wires the nodes.
    import subprocess

    for key in ("all", "default", name):
        with open(f"/proc/sys/net/ipv4/conf/{key}/rp_filter", "w") as f:
            f.write("0")  # packets come back in on the tun with rack sources
    batch = [f"link set dev {name} up mtu 1500", f"route add {supernet} dev {name} table {TABLE}"]
    # e.g. the host link: "throw" falls back to the main table
    batch += [f"route add throw {cidr} table {TABLE}" for cidr in exempt]
    batch += [f"rule add iif {br} table {TABLE} priority 1000" for br in bridges]
    res = subprocess.run(["ip", "-batch", "-"], input="\n".join(batch) + "\n",
                         capture_output=True, text=True)  # fmt: skip
    if res.returncode != 0:
        raise RuntimeError(f"ip -batch: {res.stderr.strip()}")


def run(fd: int, delay: float, jitter: float, loss: float, rng: random.Random) -> None:
    queue: collections.deque[tuple[float, bytes]] = collections.deque()
    last_due = 0.0
    drop = loss / 100.0
    while True:
        timeout = None
        if queue:
            timeout = max(0.0, queue[0][0] - time.monotonic())
        readable, _, _ = select.select([fd], [], [], timeout)
        now = time.monotonic()
        if readable:
            # drain what is there now; each packet gets its own due time
            for _ in range(256):
                try:
                    pkt = os.read(fd, 65535)
                except BlockingIOError:
                    break
                if drop and rng.random() < drop:
                    continue
                due = now + delay + (rng.uniform(-jitter, jitter) if jitter else 0.0)
                due = max(due, last_due)  # keep order
                last_due = due
                queue.append((due, pkt))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            os.write(fd, queue.popleft()[1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.net.delayline")
    p.add_argument("--delay", type=float, default=0.0, help="seconds, one way")
    p.add_argument("--jitter", type=float, default=0.0, help="seconds, +/- uniform")
    p.add_argument("--loss", type=float, default=0.0, help="percent")
    p.add_argument("--bridges", required=True, help="comma-separated rack bridges")
    p.add_argument("--supernet", required=True)
    p.add_argument("--exempt", default="", help="comma-separated networks never delayed")
    p.add_argument("--seed", type=int, default=None)
    a = p.parse_args(argv)
    fd = open_tun(TUN_NAME)
    os.set_blocking(fd, False)
    route_through(TUN_NAME, a.bridges.split(","), a.supernet, [c for c in a.exempt.split(",") if c])
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    os.close(1)
    try:
        run(fd, a.delay, a.jitter, a.loss, random.Random(a.seed))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
