"""The namespace system calls Python 3.11 lacks (unshare, setns, mount), through ctypes.

Stdlib only: the node init (init.py) imports this module by file, before any
site-packages are on the path.
"""

from __future__ import annotations

import ctypes
import os
import threading

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

# /proc/PID/ns/<name> for each flag, in the order nsenter enters them
NS_FILES = {
    "user": CLONE_NEWUSER,
    "cgroup": CLONE_NEWCGROUP,
    "ipc": CLONE_NEWIPC,
    "uts": CLONE_NEWUTS,
    "net": CLONE_NEWNET,
    "pid": CLONE_NEWPID,
    "mnt": CLONE_NEWNS,
    "time": CLONE_NEWTIME,
}

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

# The C library the interpreter already has loaded (dlopen(NULL)): finding it by name
# (ctypes.util.find_library) runs `ldconfig -p` in a subprocess, 30-60 ms of CPU paid
# by every node's init at every `lab up`.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None):
    _check(
        _libc.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def umount(target: str, flags: int = MNT_DETACH) -> None:
    _check(_libc.umount2(target.encode(), flags), f"umount {target}")


def run_in_netns(path: str, fn, *args, **kwargs):
    """Call fn inside the network namespace at ``path``.

    The network namespace belongs to a thread, not to the process, so a short-lived
    thread can enter it, open netlink sockets there (they stay bound to it), and
    vanish, while the rest of the program stays in the host's namespace.
    """
    result: dict = {}

    def body():
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(path, os.O_RDONLY)
        try:
            setns(target, CLONE_NEWNET)
            try:
                result["value"] = fn(*args, **kwargs)
            except BaseException as e:  # re-raised in the caller's thread
                result["error"] = e
            finally:
                setns(own, CLONE_NEWNET)
        finally:
            os.close(target)
            os.close(own)

    t = threading.Thread(target=body, name=f"netns:{path}")
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")
