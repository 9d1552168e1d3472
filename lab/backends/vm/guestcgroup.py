"""The services' cgroup inside a VM's guest, as shell snippets run over SSH.

The guest kernel mounts cgroup v2 at /sys/fs/cgroup (racklab-init). Every service runs
in its own child of one parent, ``racklab``, so the node's memory can be squeezed the
way a namespace node's is (a limit on the cgroup holding its services, the kernel's
OOM killer inside it), and a killed service takes its whole tree with it. The parent
holds no process itself (cgroup v2 allows controllers only on cgroups without
processes of their own), and the VM's sshd and init stay outside it.
"""

from __future__ import annotations

import shlex

ROOT = "/sys/fs/cgroup"
PARENT = f"{ROOT}/racklab"
CONTROLLERS = "+memory +pids +cpu"


def service_dir(name: str) -> str:
    return f"{PARENT}/svc-{name}"


def prepare(name: str) -> str:
    """Make the service's cgroup, with memory, pids and cpu enabled down to it (each
    controller on its own: a kernel without one still gets the others)."""
    enable = " ".join(
        f'echo "{c}" > {d}/cgroup.subtree_control 2>/dev/null;'
        for d in (ROOT, PARENT)
        for c in CONTROLLERS.split()
    )
    return f"mkdir -p {shlex.quote(service_dir(name))} 2>/dev/null && {{ {enable} true; }}; "


def join(name: str) -> str:
    """Move the running shell into the service's cgroup (what it execs follows)."""
    return f"echo $$ > {shlex.quote(service_dir(name))}/cgroup.procs 2>/dev/null; "


def kill(name: str, pid: int) -> str:
    """SIGKILL everything in the service's cgroup (cgroup.kill where the kernel has it,
    else each process), and the service's process group in any case."""
    d = shlex.quote(service_dir(name))
    return (
        f"kill -KILL -- -{int(pid)} 2>/dev/null; "
        f"if [ -e {d}/cgroup.kill ]; then echo 1 > {d}/cgroup.kill; "
        f"else for p in $(cat {d}/cgroup.procs 2>/dev/null); do kill -KILL $p; done; fi; true"
    )


def memory_current() -> str:
    """Bytes the services use now (0 before any service started)."""
    return f"cat {PARENT}/memory.current 2>/dev/null || echo 0"


def set_memory_max(limit: int | None) -> str:
    value = str(int(limit)) if limit else "max"
    return (
        f"mkdir -p {PARENT} && echo {value} > {PARENT}/memory.max && "
        f"{{ echo {'0' if limit else 'max'} > {PARENT}/memory.swap.max 2>/dev/null; true; }}"
    )
