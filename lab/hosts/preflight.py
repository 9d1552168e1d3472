"""Checks of every host before anything is made on any: the first problem found stops
the command with one sentence naming the host and the problem.

In order, on every host at once: login (host key, key, reachability), root or
passwordless sudo, Python 3.11+ with pip, namespaces, the cgroup version, VXLAN, the
clock; then a UDP probe between every pair of hosts on the lab's VXLAN port, in both
directions. Nothing is left behind: the namespace and VXLAN probes run in a throwaway
network namespace, the UDP probe is a process that ends by itself.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import asdict, dataclass

from lab.hosts.ssh import Host, HostError, each

MIN_PYTHON = (3, 11)
MAX_SKEW = 2.0  # seconds: more and chaos histories from several hosts do not line up
PROBE_SECONDS = 6.0
VXLAN_PORT_BASE = 47000  # a lab's VXLAN port: BASE + (its id % 1000), see vxlan_port


def vxlan_port(labid: str) -> int:
    """The lab's own UDP port for VXLAN (not the IANA 4789 others use)."""
    return VXLAN_PORT_BASE + int(labid, 16) % 1000


@dataclass
class Facts:
    host: str
    address: str
    user: str
    root: str  # "login" or "sudo"
    python: str
    glibc: str
    arch: str
    cgroup: str  # "v1", "v2" or "hybrid"
    kernel: str
    skew: float  # host clock minus this machine's, seconds
    rtt_ms: float

    def target(self) -> dict:
        """What wheels must fit on this host (lab/images/wheels.py)."""
        return {"python": self.python, "glibc": self.glibc, "arch": self.arch}

    def as_dict(self) -> dict:
        return asdict(self)


# One round trip gathers every fact; each line is key=value, "fail" lines say what broke.
_FACTS = r"""
echo "kernel=$(uname -r)"
if command -v python3 >/dev/null; then
  python3 -c 'import platform, sys; print("python=%d.%d" % sys.version_info[:2]); print("glibc=" + platform.libc_ver()[1]); print("arch=" + platform.machine())'
  python3 -m pip --version >/dev/null 2>&1 && echo pip=yes || echo pip=no
else
  echo python=none
fi
fs=$(stat -fc %T /sys/fs/cgroup 2>/dev/null)
if [ "$fs" = cgroup2fs ]; then echo cgroup=v2
elif [ -d /sys/fs/cgroup/memory ] && [ -d /sys/fs/cgroup/unified ]; then echo cgroup=hybrid
elif [ -d /sys/fs/cgroup/memory ]; then echo cgroup=v1
else echo cgroup=none; fi
if out=$(unshare --net --mount --pid --uts --ipc --fork true 2>&1); then echo ns=yes
else echo "ns=no $out"; fi
if out=$(unshare --net sh -c 'ip link add name rlprobe0 type vxlan id 42 dstport 4789 local 127.0.0.1 && ip link del rlprobe0' 2>&1); then echo vxlan=yes
else echo "vxlan=no $out"; fi
command -v ip >/dev/null && echo ip=yes || echo ip=no
"""


def _facts(host: Host) -> Facts:
    spec = host.spec
    root = "login"
    if not host.is_root:
        r = host.run(["sudo", "-n", "true"], root=False)
        if r.code != 0:
            why = "a password is required" if "password" in r.err else r.last_error
            raise HostError(
                spec,
                f"{spec.user} has no passwordless sudo ({why}); racklab needs root or "
                "sudo without a password (NOPASSWD)",
            )
        root = "sudo"
    r = host.run(_FACTS)
    got: dict[str, str] = {}
    for line in r.out.splitlines():
        k, _, v = line.partition("=")
        got[k.strip()] = v.strip()
    py = got.get("python", "none")
    if py == "none":
        raise HostError(spec, "has no python3; the racklab agent needs Python 3.11 or newer")
    if tuple(int(x) for x in py.split(".")) < MIN_PYTHON:
        raise HostError(spec, f"python3 is {py}; the racklab agent needs Python 3.11 or newer")
    if got.get("pip") != "yes":
        raise HostError(spec, "python3 has no pip (Debian: install python3-pip)")
    if got.get("ip") != "yes":
        raise HostError(spec, "has no `ip` command (Debian: install iproute2)")
    if got.get("ns") != "yes":
        detail = got.get("ns", "")[3:]
        raise HostError(spec, f"cannot make namespaces as root: {detail or 'unshare failed'}")
    cg = got.get("cgroup", "none")
    if cg == "none":
        raise HostError(spec, "has no cgroup file system under /sys/fs/cgroup")
    if got.get("vxlan") != "yes":
        detail = got.get("vxlan", "")[4:]
        raise HostError(
            spec, f"cannot make VXLAN links (kernel module vxlan?): {detail or 'ip link failed'}"
        )
    # the clock on a round trip of its own, short, so that its middle is a fair estimate
    sent = time.time()
    clock = host.run(["date", "+%s.%N"], root=False).out.strip()
    back = time.time()
    try:
        skew = float(clock) - (sent + back) / 2
    except ValueError:
        raise HostError(spec, "did not tell its clock (`date +%s.%N`)") from None
    if abs(skew) > MAX_SKEW + (back - sent) / 2:
        raise HostError(
            spec,
            f"its clock is {skew:+.1f} s off this machine's; synchronise the clocks (NTP)",
        )
    return Facts(
        host=spec.name,
        address=spec.address,
        user=spec.user,
        root=root,
        python=py,
        glibc=got.get("glibc", ""),
        arch=got.get("arch", ""),
        cgroup=cg,
        kernel=got.get("kernel", ""),
        skew=round(skew, 3),
        rtt_ms=round((back - sent) * 1000, 1),
    )


# Each host listens on the port and sends to every other until it has heard them all
# (and a little longer, for those still waiting on it) or the time is up; prints whom it
# heard. A port already taken is reported as such.
_PROBE = r"""
import json, socket, sys, time
port, me, peers, limit = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.bind(("0.0.0.0", port))
except OSError as e:
    print(json.dumps({"error": "UDP port %d is taken on it (%s)" % (port, e.strerror)})); sys.exit()
s.settimeout(0.1)
heard, start, done = set(), time.time(), None
while time.time() - start < limit and (done is None or time.time() - done < 1.5):
    for name, addr in peers.items():
        try:
            s.sendto(("racklab-probe " + me).encode(), (addr, port))
        except OSError:
            pass
    try:
        while True:
            data, _ = s.recvfrom(200)
            word, _, who = data.decode(errors="replace").partition(" ")
            if word == "racklab-probe" and who in peers:
                heard.add(who)
    except (socket.timeout, OSError):
        pass
    if done is None and len(heard) == len(peers):
        done = time.time()
print(json.dumps({"heard": sorted(heard)}))
"""


def udp_probe(hosts: list[Host], port: int) -> None:
    """Every host hears every other on UDP ``port`` (the lab's VXLAN port), or HostError
    for the first host that did not hear one."""
    if len(hosts) < 2:
        return
    addrs = {h.name: h.spec.address for h in hosts}

    def one(h: Host) -> dict:
        peers = {n: a for n, a in addrs.items() if n != h.name}
        argv = ["python3", "-c", _PROBE, str(port), h.name, json.dumps(peers), str(PROBE_SECONDS)]
        r = h.run(shlex.join(argv), root=False, timeout=PROBE_SECONDS + 10)
        try:
            return json.loads(r.out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise HostError(h.spec, f"the UDP probe failed: {r.last_error}") from None

    results = each(hosts, one)
    for h in hosts:
        res = results[h.name]
        if "error" in res:
            raise HostError(h.spec, res["error"])
        for other in hosts:
            if other.name != h.name and other.name not in res["heard"]:
                raise HostError(
                    h.spec,
                    f"no UDP from host {other.name} ({other.spec.address}) reached it on "
                    f"port {port}, the lab's VXLAN port; open UDP {port} between the hosts",
                )


def check(hosts: list[Host], labid: str) -> dict[str, Facts]:
    """Every check on every host; HostError for the first problem (hosts in file order)."""
    facts = each(hosts, _facts)
    udp_probe(hosts, vxlan_port(labid))
    return {h.name: facts[h.name] for h in hosts}
