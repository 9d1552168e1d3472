"""``lab hosts simulate N``: spare machines on this one, to try a multi-host lab and to
test it for real.

A simulated host is what racklab meets on a real spare machine, made of namespaces:

    this machine                 switch ns rlh<set>-sw          host ns rlh<set>-<i> (each)
    rlh<set>-c 10.254.K.1 ====== ctl --+ sw                      own mount, UTS, IPC, PID ns
                                       +-- h1 ================== eth0 10.254.K.11
                                       +-- h2 ================== eth0 10.254.K.12

Each host runs Debian's real sshd (from its own root filesystem: racklab's Debian
rootfs with openssh-server, lab/images/simhost.py, under an overlay of its own, so
what one host installs the others do not see) as the child of tini, PID 1 of the
host's own PID namespace; it listens on the host's own address. The switch is a
namespace of its own for the reason the lab's racks are (lab/net/fabric.py): a Docker
host's br_netfilter would drop frames bridged in the main namespace.

Each set gets a client key and a known_hosts file holding every host's key (made here,
a new one per host), and prints the ``hosts:`` section a topology file uses. The set
is recorded before anything is made, and everything is found again by its names, so
``--remove`` undoes it also after a crash.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab.images import simhost
from lab.net.addressing import host_networks
from lab.sshkeys import known_hosts_line, write_ed25519

NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")  # names of interfaces must fit 15 characters
POOL = ipaddress.IPv4Network("10.254.0.0/16")  # outside the /16s labs pick (10.50-10.249)
FIRST = 11  # host i gets .(10 + i); .1 is this machine
MAX_HOSTS = 32
SSH_PORT = 22
READY_TIMEOUT = 30.0


class SimulateError(Exception):
    """A user mistake or a failure, in one sentence."""


def sets_dir() -> Path:
    # beside the labs' state dirs, under a name no lab can have (lab names start with a letter)
    return Path(os.environ.get("RACKLAB_HOME", "/var/lib/racklab")) / ".simhosts"


def switch_ns(name: str) -> str:
    return f"rlh{name}-sw"


def host_ns(name: str, i: int) -> str:
    return f"rlh{name}-{i}"


def controller_if(name: str) -> str:
    return f"rlh{name}-c"


@dataclass
class SimHost:
    name: str  # the host's name in a topology file: <set><i>
    address: str
    netns: str
    dir: Path  # its overlay's upper and work dirs, its sshd log


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SimulateError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


def _sysctl_in(ns: str, key: str, value: str) -> None:
    _ip("netns", "exec", ns, "sysctl", "-q", "-w", f"{key}={value}")


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise SimulateError(
            f"simulated hosts' name {name!r} must be a lower-case letter and up to 7 more "
            "letters or digits (it prefixes interface names)"
        )


def choose_subnet() -> ipaddress.IPv4Network:
    """The first /24 of the pool that nothing on this machine routes or uses."""
    taken = host_networks()
    for net in POOL.subnets(new_prefix=24):
        if not any(net.overlaps(t) for t in taken):
            return net
    raise SimulateError(f"no free /24 left in {POOL} on this machine for simulated hosts")


def load(name: str) -> dict | None:
    try:
        return json.loads((sets_dir() / name / "set.json").read_text())
    except (OSError, ValueError):
        return None


def _save(data: dict) -> None:
    d = sets_dir() / data["name"]
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / ".set.json.tmp"
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, d / "set.json")


def known_sets() -> list[str]:
    d = sets_dir()
    return sorted(p.name for p in d.iterdir() if (p / "set.json").is_file()) if d.is_dir() else []


def simulate(count: int, name: str = "sim", progress=lambda msg: None) -> dict:
    """Make ``count`` simulated hosts named <name>1..<name><count>; returns the set
    (what ``hosts_section`` prints). Undoes what it made when a step fails."""
    check_name(name)
    if not 1 <= count <= MAX_HOSTS:
        raise SimulateError(f"simulate between 1 and {MAX_HOSTS} hosts, not {count}")
    if exists(name):
        raise SimulateError(
            f"simulated hosts {name!r} exist already; `lab hosts simulate --remove --name "
            f"{name}` first, or pick another --name"
        )
    progress("preparing the hosts' root filesystem")
    tree = simhost.ensure_simhost_root(lambda line: None)
    net = choose_subnet()
    d = sets_dir() / name
    data = {
        "name": name,
        "subnet": str(net),
        "controller": str(net.network_address + 1),
        "tree": str(tree),
        "key": str(d / "id_ed25519"),
        "known_hosts": str(d / "known_hosts"),
        "hosts": {
            f"{name}{i}": {
                "address": str(net.network_address + FIRST - 1 + i),
                "netns": host_ns(name, i),
            }  # fmt: skip
            for i in range(1, count + 1)
        },
    }
    _save(data)  # before anything is made: --remove finds it all after a crash
    try:
        _make(data, progress)
    except BaseException:
        remove(name)
        raise
    return data


def _make(data: dict, progress) -> None:
    name = data["name"]
    d = sets_dir() / name
    tree = Path(data["tree"])
    (tree.parent / simhost.IN_USE).mkdir(exist_ok=True)
    (tree.parent / simhost.IN_USE / name).write_text(str(d) + "\n")
    public = write_ed25519(Path(data["key"]), f"racklab-simulated-{name}")
    prefix = ipaddress.IPv4Network(data["subnet"]).prefixlen

    progress(f"switch {switch_ns(name)} on {data['subnet']}")
    sw = switch_ns(name)
    _ip("netns", "add", sw)
    _ip("-n", sw, "link", "set", "lo", "up")
    _ip("-n", sw, "link", "add", "name", "sw", "type", "bridge")
    _ip("-n", sw, "link", "set", "sw", "up")
    _sysctl_in(sw, "net.ipv6.conf.all.disable_ipv6", "1")
    ctl = controller_if(name)
    _ip("link", "add", "name", ctl, "type", "veth", "peer", "name", "ctl", "netns", sw)
    _ip("-n", sw, "link", "set", "ctl", "master", "sw", "up")
    _ip("addr", "add", f"{data['controller']}/{prefix}", "dev", ctl)
    _ip("link", "set", ctl, "up")

    known = []
    procs = {}
    for i, (host, h) in enumerate(data["hosts"].items(), start=1):
        progress(f"host {host} at {h['address']}")
        ns = h["netns"]
        _ip("netns", "add", ns)
        _ip(
            "-n",
            sw,
            "link",
            "add",
            "name",
            f"h{i}",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns,
        )
        _ip("-n", sw, "link", "set", f"h{i}", "master", "sw", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "addr", "add", f"{h['address']}/{prefix}", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _sysctl_in(ns, "net.ipv6.conf.all.disable_ipv6", "1")
        hdir = d / host
        host_public = _prepare_root(tree, hdir, host, h["address"], public)
        known.append(known_hosts_line(h["address"], SSH_PORT, host_public))
        procs[host] = _boot(tree, hdir, host, ns)
    Path(data["known_hosts"]).write_text("\n".join(known) + "\n")
    for host, h in data["hosts"].items():
        _wait_ssh(host, h["address"], procs[host], d / host / "sshd.log")
        if (tree / "usr" / "sbin" / "dockerd").exists():
            _wait_docker(host, h["netns"], d / host / "docker.log")


def _mkdirs_like(tree: Path, upper: Path, rel: str) -> Path:
    """Make ``rel`` in the overlay's upper dir with each part's owner and mode as in the
    lower tree: an upper dir shadows the lower one's attributes, and sshd refuses a home
    or .ssh owned by anyone else or writable by others."""
    path = upper
    for part in Path(rel).parts:
        path = path / part
        lower = tree / path.relative_to(upper)
        if not path.is_dir():
            path.mkdir()
            if lower.is_dir():
                st = lower.stat()
                os.chown(path, st.st_uid, st.st_gid)
                os.chmod(path, stat.S_IMODE(st.st_mode))
    return path


def _owner_of(tree: Path, user: str) -> tuple[int, int]:
    for line in (tree / "etc" / "passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == user:
            return int(f[2]), int(f[3])
    raise SimulateError(f"the simulated hosts' root filesystem has no user {user}")


def _prepare_root(tree: Path, hdir: Path, host: str, address: str, client_public: str) -> str:
    """The host's own files, written into its overlay before it boots: hostname, hosts,
    a host key of its own, the set's key for root and the other logins. -> host key line"""
    upper, work = hdir / "upper", hdir / "work"
    for p in (upper, work, hdir / "root"):
        p.mkdir(parents=True, exist_ok=True)
    etc = _mkdirs_like(tree, upper, "etc")
    (etc / "hostname").write_text(host + "\n")
    (etc / "hosts").write_text(f"127.0.0.1 localhost\n{address} {host}\n")
    ssh = _mkdirs_like(tree, upper, "etc/ssh")
    host_public = write_ed25519(ssh / "ssh_host_ed25519_key", f"root@{host}")
    for user, home in [("root", "root")] + [(u, f"home/{u}") for u in simhost.users()]:
        uid, gid = _owner_of(tree, user)
        home_dir = _mkdirs_like(tree, upper, home)
        dot = home_dir / ".ssh"
        dot.mkdir(mode=0o700, exist_ok=True)
        (dot / "authorized_keys").write_text(client_public + "\n")
        for p in (dot, dot / "authorized_keys"):
            os.chown(p, uid, gid)
        os.chmod(dot / "authorized_keys", 0o600)
    return host_public


# Runs in the host's network namespace, after unshare made its mount, UTS, IPC, PID and
# cgroup namespaces (this shell is PID 1 there until it execs tini): mount the host's own root,
# give it /proc, /sys (this namespace's network devices), the cgroup trees and /dev,
# fresh /run and /tmp, then pivot into it so nothing of this machine's tree stays
# reachable, and exec sshd under tini (which reaps what the host's sessions orphan).
_BOOT = r"""
set -e
lower=$1; upper=$2; work=$3; R=$4; name=$5
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$R"
mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
# each cgroup tree of this machine: only the host's own subtree, as its root ($6: a
# script of mount and ln lines made by _cgroup_script), and this shell in it
eval "$6"
mount --rbind /dev "$R/dev"
mount -t tmpfs -o mode=0755,size=64m tmpfs "$R/run"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
mkdir -p "$R/run/sshd" "$R/.oldroot"
# Docker's engine where the tree has one: its data on this machine's disk ($7), since
# overlay2 cannot stack its layers on the host's overlay root; its log ($7.log) open
# before the pivot hides this machine's tree
docker=
if [ -x "$R/usr/sbin/dockerd" ]; then
  mkdir -p "$7" "$R/var/lib/docker"
  mount --bind "$7" "$R/var/lib/docker"
  exec 3>>"$7.log"
  docker=1
fi
# libvirt's daemons where the tree has them, as on a spare machine prepared for VM
# nodes (QEMU emulates: the host's own /dev/kvm may not boot stock kernels); their
# log (libvirtd.log beside $7) opened before the pivot too
libvirt=
if [ -x "$R/usr/sbin/libvirtd" ]; then
  exec 4>>"${7%/*}/libvirtd.log"
  libvirt=1
fi
hostname "$name"
cd "$R"
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
if [ -n "$docker" ]; then
  # no bridge, NAT or forwarding: racklab's nodes start with no network and are
  # plugged into their racks by racklab
  /usr/sbin/dockerd --bridge=none --iptables=false --ip6tables=false --ip-forward=false \
    --ip-masq=false --storage-driver=overlay2 --log-level=warn </dev/null >&3 2>&3 &
  exec 3>&-
fi
if [ -n "$libvirt" ]; then
  mkdir -p /run/libvirt
  /usr/sbin/virtlogd </dev/null >&4 2>&4 &
  /usr/sbin/libvirtd </dev/null >&4 2>&4 &
  exec 4>&-
fi
exec /usr/bin/tini -- /usr/sbin/sshd -D -e
"""


def _boot(tree: Path, hdir: Path, host: str, ns: str) -> subprocess.Popen:
    log = open(hdir / "sshd.log", "ab")
    subtrees = cgroup_subtrees(ns)
    # Into the host's own cgroups first, so that the cgroup namespace unshare makes is
    # rooted there: the host's racklab sees its subtree as /, as on a machine of its own.
    enter = "; ".join(f"echo $$ > {shlex.quote(path + '/cgroup.procs')}" for path, _ in subtrees)
    argv = [
        "nsenter", f"--net=/run/netns/{ns}", "--", "/bin/sh", "-c", enter + '; exec "$@"', "sh",
        "unshare", "--mount", "--uts", "--ipc", "--pid", "--cgroup", "--fork",
        "--propagation", "private",
        "--", "/bin/sh", "-c", _BOOT, "sh",
        str(tree), str(hdir / "upper"), str(hdir / "work"), str(hdir / "root"), host,
        _cgroup_script(subtrees), str(hdir / "docker"),
    ]  # fmt: skip
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # outlives this command: `--remove` ends it
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
        )
    finally:
        log.close()


CGROUP_TOP = "racklab-simhosts"  # every simulated host's cgroups, in each tree
CGROUP_ROOT = "/sys/fs/cgroup"


def _cgroup_mounts() -> list[tuple[str, str]]:
    """(mount point, type) of this machine's cgroup trees: /sys/fs/cgroup itself on a
    v2-only machine, its subfolders on a v1 or hybrid one."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        point, fstype = left.split()[4], right.split()[0]
        if fstype in ("cgroup", "cgroup2") and (
            point == CGROUP_ROOT or point.startswith(CGROUP_ROOT + "/")
        ):
            found.append((point, fstype))
    return found


def cgroup_subtrees(ns: str) -> list[tuple[str, str]]:
    """Make the host's own cgroup in every tree (<tree>/racklab-simhosts/<host ns>) and
    return (its path, where the host sees it). What the host's racklab makes stays
    there, apart from this machine's labs and from the other simulated hosts, as on
    separate machines; the host's processes sit in its ``sim`` leaf."""
    out = []
    for point, fstype in _cgroup_mounts():
        top = Path(point)
        path = top
        for part in (CGROUP_TOP, ns, "sim"):
            parent, path = path, path / part
            if fstype == "cgroup2" and part != "sim":
                # let the controllers reach the host's subtree (v2 passes them down
                # explicitly); a leaf holding processes enables none itself
                ctrls = (parent / "cgroup.controllers").read_text().split()
                want = " ".join(f"+{c}" for c in ctrls if c in ("cpu", "memory", "pids", "io"))
                if want:
                    try:
                        (parent / "cgroup.subtree_control").write_text(want)
                    except OSError:
                        pass  # a controller busy at this level: the host does without it
            path.mkdir(exist_ok=True)
            if (path / "cpuset.cpus").exists() and not (path / "cpuset.cpus").read_text().strip():
                # v1 cpuset: a new cgroup has no CPUs or memory nodes until given its parent's
                for f in ("cpuset.cpus", "cpuset.mems"):
                    (path / f).write_text((parent / f).read_text())
        inside = "/sys/fs/cgroup" + point[len(CGROUP_ROOT) :]
        out.append((str(path.parent), inside))
    return out


def _cgroup_script(subtrees: list[tuple[str, str]]) -> str:
    q = shlex.quote
    lines = []
    if not any(inside == CGROUP_ROOT for _, inside in subtrees):
        lines.append('mount -t tmpfs -o mode=0755 cgroup-trees "$R/sys/fs/cgroup"')
    for path, inside in subtrees:
        lines.append(f'mkdir -p "$R"{q(inside)}')
        lines.append(f'mount --bind {q(path)} "$R"{q(inside)}')
        lines.append(f"echo $$ > {q(path + '/sim/cgroup.procs')}")
    for entry in Path(CGROUP_ROOT).iterdir():  # cpu -> cpu,cpuacct and the like
        if entry.is_symlink():
            lines.append(f'ln -s {q(os.readlink(entry))} "$R"{q(str(entry))}')
    return "\n".join(lines)


def _remove_cgroups(ns: str, timeout: float = 10.0) -> list[str]:
    """The host's cgroups, deepest first. Its processes have been killed, but a cgroup
    stays busy until the last of them is reaped: each is tried again for a while."""
    removed = []
    deadline = time.monotonic() + timeout
    for point, _ in _cgroup_mounts():
        top = Path(point) / CGROUP_TOP / ns
        if not top.is_dir():
            continue
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*dirs, top]:
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
        if not top.exists():
            removed.append(f"cgroup {top}")
            try:
                top.parent.rmdir()  # the last simulated host's: racklab-simhosts goes too
            except OSError:
                pass
    return removed


def _wait_ssh(host: str, address: str, proc: subprocess.Popen, log: Path) -> None:
    """Until the host's sshd greets on its address (an OpenSSH banner, not just a port)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection((address, SSH_PORT), timeout=2) as s:
                s.settimeout(2)
                if s.recv(64).startswith(b"SSH-2.0-OpenSSH"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    why = _last_line(log)
    raise SimulateError(f"simulated host {host}'s sshd did not answer on {address}: {why}")


def _last_line(log: Path) -> str:
    """What a daemon said last, for the sentence saying it did not answer."""
    lines = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
    return lines[-1] if lines else "no output"


def _wait_docker(host: str, ns: str, log: Path) -> None:
    """Until the host's dockerd answers its ping on the host's own socket (reached from
    here through its PID 1's root: the socket is in the host's /run)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        for pid in _netns_pids(ns):
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(2)
                    s.connect(f"/proc/{pid}/root/run/docker.sock")
                    s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                    reply = b""
                    while chunk := s.recv(4096):  # HTTP/1.0: the engine closes after it
                        reply += chunk
                    if reply.startswith(b"HTTP/1.") and reply.endswith(b"OK"):
                        return
            except OSError:
                continue
        time.sleep(0.2)
    raise SimulateError(f"simulated host {host}'s Docker engine did not answer: {_last_line(log)}")


def _netns_pids(ns: str) -> list[int]:
    proc = _ip("netns", "pids", ns, check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def _ours(name: str) -> list[str]:
    """Every namespace of the set, by name (also without its state)."""
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    names = [line.split()[0] for line in listed if line.strip()]
    mine = re.compile(rf"^rlh{re.escape(name)}-(sw|\d+)$")
    return [n for n in names if mine.match(n)]


def exists(name: str) -> bool:
    """Whether anything of the set is on this machine (its state, a namespace, or the
    cgroups of a host whose processes outlived an earlier removal)."""
    stale = any(n.startswith(f"rlh{name}-") for n in _cgroup_leftovers())
    return load(name) is not None or bool(_ours(name)) or stale


def _cgroup_leftovers() -> set[str]:
    found = set()
    for point, _ in _cgroup_mounts():
        top = Path(point) / CGROUP_TOP
        if top.is_dir():
            found |= {p.name for p in top.iterdir() if p.is_dir()}
    return found


def remove(name: str) -> list[str]:
    """Undo ``simulate``: every process, namespace, interface and file of the set."""
    check_name(name)
    data = load(name) or {}
    removed = []
    namespaces = _ours(name)
    hosts = [n for n in namespaces if not n.endswith("-sw")]
    # Killing every process of a host's network namespace kills its PID 1 (tini), and
    # with it the kernel ends the rest of the host's PID namespace.
    for ns in hosts:
        for pid in _netns_pids(ns):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10
    while any(_netns_pids(ns) for ns in hosts) and time.monotonic() < deadline:
        time.sleep(0.05)
    for ns in namespaces:
        _ip("netns", "del", ns, check=False)
        removed.append(f"netns {ns}")
    for ns in hosts + [n for n in _cgroup_leftovers() if n.startswith(f"rlh{name}-")]:
        removed += _remove_cgroups(ns)
    if _ip("link", "show", controller_if(name), check=False).returncode == 0:
        _ip("link", "del", controller_if(name), check=False)
        removed.append(f"interface {controller_if(name)}")
    tree = data.get("tree")
    if tree:
        (Path(tree).parent / simhost.IN_USE / name).unlink(missing_ok=True)
    d = sets_dir() / name
    if d.exists():
        shutil.rmtree(d, ignore_errors=True)
        removed.append(f"state {d}")
    return removed


def hosts_section(data: dict) -> str:
    """The ``hosts:`` section of a topology file for this set."""
    lines = ["hosts:"]
    for host, h in data["hosts"].items():
        lines.append(
            f"  {host}: {{address: {h['address']}, user: root, key: {data['key']}, "
            f"known_hosts: {data['known_hosts']}}}"
        )
    return "\n".join(lines) + "\n"
