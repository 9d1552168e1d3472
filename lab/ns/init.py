"""The init of a namespace node: PID 1 inside, holder of the node's namespaces.

Run as ``python -E -s -S init.py CONFIG.json`` (stdlib only, so it starts in a few
milliseconds and costs a few MB). The spawner has already put this process into the
node's cgroup. Then:

1. unshare the cgroup, mount, UTS, IPC, network and PID namespaces (and time, where
   the kernel has it). The cgroup namespace is made while we sit in the node's cgroup,
   so inside the node that cgroup is the root ``/``.
2. move into the node's ``init`` leaf cgroup (cgroup v2 forbids processes in a cgroup
   that also hands controllers to children, and services get children of their own);
3. fork: the child is PID 1 of the new PID namespace. It makes the node's view of the
   filesystem (its own /proc, /sys, cgroup tree, /tmp, /run, /dev/shm, /etc/hosts,
   /etc/hostname and /srv/node), sets the host name, then reaps orphans forever;
4. the parent waits for the child to say it is ready, prints the child's host PID,
   and exits, so the node lives on by itself, detached from ``lab up``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import syscalls as sc  # noqa: E402  (stdlib-only sibling, loaded by file)


def main(config_path: str) -> int:
    cfg = json.load(open(config_path))
    flags = (
        sc.CLONE_NEWCGROUP
        | sc.CLONE_NEWNS
        | sc.CLONE_NEWUTS
        | sc.CLONE_NEWIPC
        | sc.CLONE_NEWNET
        | sc.CLONE_NEWPID
    )
    sc.unshare(flags)
    if cfg.get("time_ns", True):
        try:  # Linux 5.6+; children made after this live in the new time namespace
            sc.unshare(sc.CLONE_NEWTIME)
        except OSError:
            pass
    for procs in cfg["init_cgroup_procs"]:
        with open(procs, "w") as f:
            f.write(str(os.getpid()))

    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        # stdout is the spawner's pipe: PID 1 must not hold it open, or the spawner
        # never sees the end of our answer. Its stderr stays on the node's log.
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.close(devnull)
        try:
            setup_node(cfg)
        except Exception as e:  # tell the parent what went wrong, then die
            os.write(ready_w, f"error: {e}\n".encode())
            os._exit(1)
        os.write(ready_w, b"ready\n")
        os.close(ready_w)
        reap_forever()
        os._exit(0)

    os.close(ready_w)
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = os.read(ready_r, 512)
        if not chunk:
            break
        answer += chunk
    if answer.strip() != b"ready":
        sys.stderr.write(answer.decode() or "node init died during setup\n")
        return 1
    sys.stdout.write(f"{pid}\n")
    sys.stdout.flush()
    return 0


def setup_node(cfg: dict) -> None:
    # Nothing we mount here may leak back to the host.
    sc.mount("none", "/", None, sc.MS_REC | sc.MS_PRIVATE)
    # Paths the node must still see after /tmp, /run, ... are covered (racklab itself
    # and its Python, when they live under /tmp, as in a CI checkout): hold them open.
    keep = [(path, os.open(path, os.O_PATH | os.O_DIRECTORY)) for path in cfg.get("keep", [])]
    sc.mount("proc", "/proc", "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    # A fresh sysfs shows this network namespace's interfaces; under it, the cgroup
    # tree as the cgroup namespace sees it (the node's cgroup as the root).
    sc.mount("sysfs", "/sys", "sysfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    sc.mount("cgroup-root", "/sys/fs/cgroup", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=755")
    if cfg["cgroup_version"] == 2:
        sc.mount("cgroup2", "/sys/fs/cgroup", "cgroup2", sc.MS_NOSUID | sc.MS_NODEV)
    else:
        for controller in cfg["cgroup_controllers"]:
            target = f"/sys/fs/cgroup/{controller}"
            os.makedirs(target, exist_ok=True)
            sc.mount("cgroup", target, "cgroup", sc.MS_NOSUID | sc.MS_NODEV, controller)
    for target in ("/run", "/dev/shm"):
        sc.mount("tmpfs", target, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=755,size=64m")
    os.makedirs("/run/lock", exist_ok=True)
    for source, target in cfg["binds"]:
        sc.mount(source, target, None, sc.MS_BIND)
    for path, fd in keep:
        os.makedirs(path, exist_ok=True)
        sc.mount(f"/proc/self/fd/{fd}", path, None, sc.MS_BIND | sc.MS_REC)
        os.close(fd)
    socket.sethostname(cfg["hostname"])
    os.chdir("/")


def reap_forever() -> None:
    """PID 1's duties: adopt and reap orphans; on SIGTERM, stop everyone and leave.

    The signals are blocked and taken with sigtimedwait, so none can slip in between
    a check and a sleep.
    """
    wanted = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    deadline = None
    while True:
        children_left = True
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                children_left = False
                break
            if pid == 0:
                break
        if deadline is not None and (not children_left or time.monotonic() > deadline):
            return  # the kernel kills whatever is left when PID 1 exits
        info = signal.sigtimedwait(wanted, 0.5)
        if info and info.si_signo != signal.SIGCHLD and deadline is None:
            deadline = time.monotonic() + 5
            try:
                os.kill(-1, signal.SIGTERM)  # from PID 1, -1 is every process in the node
            except ProcessLookupError:
                return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
