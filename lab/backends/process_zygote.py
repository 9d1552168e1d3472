"""One pre-imported parent (a zygote) that forks the services `lab up` starts on
process nodes, so that each costs a fork instead of a Python start-up and its imports.

Started the ordinary way, a service is ``nsenter -t INIT -a -- python -m MODULE ARGS``
behind the cgroup join prefix: a Python start and 0.13-0.19 s of CPU of imports each,
charged to a node capped at half a CPU and paid sixteen times by the quickstart. The
zygote imports each service's modules once (its ``__main__`` and what that module
names in ``PRELOAD``), then for each request forks a child, moves it into the
service's cgroup and answers; the child does what nsenter does: it joins the node's
namespaces (cgroup, ipc, uts, net, pid, mount, time, in nsenter's order), leads a new
session and forks the service, which is then inside the node's PID namespace, and
exits (the host's init adopts the service, as it adopts nsenter's child once nsenter
exits). The service points stdin at /dev/null and stdout/stderr at its log, takes its
environment and the node's root as its directory, writes its command line and
environment over the zygote's (what ps shows), and runs ``python -m MODULE ARGS`` in
that process (runpy). What manages services afterwards (their cgroup, kill, pause,
`lab logs`, `lab down`) cannot tell the two paths apart
(tests/integration/test_service_start.py); a service started later (chaos restarts
it) takes the ordinary path.

The zygote lives for the `lab up` that started it: requests are JSON lines on its
stdin, answers JSON lines on its stdout; end of input ends it. Run as
``python -m lab.backends.process_zygote MODULE...`` (modules to load before any
request asks for them; a request for another one loads it first).
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

from lab.backends.base import NodeError
from lab.ns import syscalls as sc

ROOM = "RACKLAB_ZYGOTE_ROOM"  # a variable of the zygote's environment: see _show_as


class ZygoteGone(Exception):
    """The zygote does not answer (it died, or was never started): use the ordinary path."""


# the client, in `lab up`


class Zygote:
    """A running zygote, seen from `lab up`."""

    def __init__(self, modules: list[str], join_prefix: list[str], log: Path):
        # ROOM: the environment's strings are where each service writes its own (for
        # ps), and a service's environment is this one and a few variables more
        env = {**os.environ, ROOM: "." * 1024}
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(
                [*join_prefix, sys.executable, "-m", __name__, *modules],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd="/",  # as a service's: sys.path[0] is "/" for both
                start_new_session=True,  # Ctrl-C on `lab up` is for `lab up`
            )
        self.lock = threading.Lock()

    def spawn(self, module: str, args: list[str], *, env: dict[str, str], init_pid: int,
              cgroup_procs: list[str], log: str) -> int:  # fmt: skip
        """Start ``python -m module args`` in the node whose init is ``init_pid``, in
        the cgroup of ``cgroup_procs``, its output appended to ``log`` (a host path).
        Returns once the service is in its cgroup, with the PID of the process that
        enters the node for it (it forks the service and exits: the ordinary path's
        is nsenter's). It does not wait for the rest, so a service's processes start
        close together (a ZooKeeper ensemble elects sooner)."""
        request = {"module": module, "args": args, "env": env, "init_pid": init_pid,
                   "cgroup_procs": cgroup_procs, "log": log}  # fmt: skip
        with self.lock:
            try:
                self.proc.stdin.write(json.dumps(request).encode() + b"\n")
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()
            except (OSError, ValueError) as e:
                raise ZygoteGone(str(e)) from None
        if not line:
            raise ZygoteGone(f"exited with {self.proc.poll()}")
        answer = json.loads(line)
        if "error" in answer:  # its log or its cgroup could not be opened
            raise NodeError(f"could not start python -m {module}: {answer['error']}")
        return int(answer["pid"])

    def close(self, timeout: float = 5) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


# the zygote itself


def preload(module: str) -> None:
    """Import what ``python -m module`` runs (a package's ``__main__``) and the modules
    it names in PRELOAD (relative to its package). A module that fails to import is
    left for the service to import again, where the error lands in its own log as it
    would have without the zygote."""
    try:
        spec = importlib.util.find_spec(module)
        target = f"{module}.__main__" if spec and spec.submodule_search_locations else module
        main = importlib.import_module(target)
        for name in getattr(main, "PRELOAD", ()):
            importlib.import_module(name, module)
        # runpy runs it afresh as __main__ in the service (what it imports is loaded
        # now), and warns if it finds the module itself imported already
        del sys.modules[target]
    except Exception:  # noqa: BLE001 - see the docstring
        pass
    # What is loaded now is never collected: the children's collector need not walk
    # it, so they do not write to (and copy) those pages.
    gc.freeze()


REQUEST_GRACE = 0.05  # seconds to wait for another request before loading more


class _Lines:
    """JSON requests on a file descriptor, and whether one waits (select on a raw fd:
    a buffered reader would hide a line it has already read)."""

    def __init__(self, fd: int):
        self.fd, self.buf = fd, b""

    def waiting(self, timeout: float = 0) -> bool:
        return b"\n" in self.buf or bool(select.select([self.fd], [], [], timeout)[0])

    def next(self) -> dict | None:
        while b"\n" not in self.buf:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


def serve(modules: list[str], inp: int = 0, out: int = 1) -> dict | None:
    """Answer requests until end of input (returns None), loading ``modules`` in
    between; returns the request in a forked service process (which runs it)."""
    todo, loaded = list(modules), set()
    lines = _Lines(inp)
    grace = 0.0
    # The children that enter nodes are reaped by the kernel, not waited for: their
    # CPU (most of it in the nodes' cgroups) is not also added to ours, nor to that of
    # `lab up`, which waits for us.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    while True:
        # the next process of a service follows its answer at once: an import begun
        # in between would hold it up, and a ZooKeeper ensemble elects sooner when
        # its servers start together
        if todo and not lines.waiting(grace):
            module = todo.pop(0)
            if module not in loaded:
                preload(module)
                loaded.add(module)
            continue
        req = lines.next()
        if req is None:
            return None
        grace = REQUEST_GRACE
        if req["module"] not in loaded:
            preload(req["module"])
            loaded.add(req["module"])
        answer = _fork(req)
        if _forked_service:
            return req
        os.write(out, json.dumps(answer).encode() + b"\n")


_forked_service = False  # set in the service process, where serve() must return


def _fork(req: dict) -> dict:
    """Fork the child that enters the node, and move it into the service's cgroup
    before it may go on (it waits on a pipe): from the answer on, the service is in
    its cgroup, as the ordinary path's is once its join prefix ran. Returns the answer:
    the child's PID (it forks the service and exits: the ordinary path's is nsenter's)."""
    global _forked_service
    try:
        # opened on the host's side: inside, the node's own /tmp may hide the state dir
        log = os.open(req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as e:
        return {"error": str(e)}
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.read(go_r, 1)  # until the zygote closes its end: we are in the cgroup
        os.close(go_r)
        try:
            _forked_service = _enter(req, log)
        except BaseException:  # noqa: BLE001 - said on the service's log already
            os._exit(127)
        if not _forked_service:
            os._exit(0)
        return {}
    os.close(go_r)
    os.close(log)
    try:
        for path in req["cgroup_procs"]:
            with open(path, "w") as f:
                f.write(str(pid))
    except OSError as e:
        os.kill(pid, signal.SIGKILL)
        return {"error": str(e)}
    finally:
        os.close(go_w)
    return {"pid": pid}


def _enter(req: dict, log: int) -> bool:
    """In a child of the zygote, in the service's cgroup: join the node's namespaces and
    fork the service. True in the service; False in this child, which then exits (the
    service lives on, adopted by the host's init as nsenter's child is when nsenter
    exits). What fails goes to the service's log, as nsenter's errors do."""
    try:
        init = req["init_pid"]
        fds = []
        for name, flag in sc.NS_FILES.items():
            if name == "user":  # nodes share the host's user namespace
                continue
            try:
                fds.append((os.open(f"/proc/{init}/ns/{name}", os.O_RDONLY), flag))
            except FileNotFoundError:  # a kernel without time namespaces
                continue
        for fd, flag in fds:
            sc.setns(fd, flag)
            os.close(fd)
        # this process leads the service's session, as nsenter does on the ordinary
        # path (started in a new session): the service is in it, not its leader
        os.setsid()
        if os.fork():  # the child is the first process of ours in the node's PID namespace
            return False
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.chdir("/")  # joining the mount namespace put us at its root, as nsenter leaves us
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # a fresh process's: see serve()
        os.environ.clear()
        os.environ.update(req["env"])
    except BaseException as e:
        os.write(log, f"racklab zygote: python -m {req['module']} not started: {e}\n".encode())
        raise
    return True


def run(req: dict) -> None:
    """``python -m MODULE ARGS`` in this process: what the ordinary path execs."""
    import runpy

    sys.argv = [req["module"], *req["args"]]  # runpy puts the module's path first
    _show_as([sys.executable, "-m", req["module"], *req["args"]], req["env"])
    runpy.run_module(req["module"], run_name="__main__", alter_sys=True)


def _show_as(argv: list[str], env: dict[str, str]) -> None:
    """Make /proc/self/cmdline and /proc/self/environ (what ps shows) the service's
    rather than the zygote's, written over the zygote's own argument and environment
    strings, as setproctitle does (pointing the kernel elsewhere with prctl would need
    CAP_SYS_RESOURCE). The kernel fixed their sizes at the zygote's exec: its command
    line names every module it loads, and its environment holds ROOM, so a service's
    fit; what does not is cut at a string's end, and the rest padded with NULs."""
    import ctypes

    stat = Path("/proc/self/stat").read_text().rpartition(")")[2].split()
    # arg_start, arg_end, env_start, env_end: fields 48 to 51 of proc(5)
    arg_start, arg_end, env_start, env_end = (int(x) for x in stat[45:49])
    for (start, end), strings in (
        ((arg_start, arg_end), argv),
        ((env_start, env_end), [f"{k}={v}" for k, v in env.items()]),
    ):
        room, data = end - start, b""
        for item in strings:
            if len(data) + len(item.encode()) + 1 > room:
                break
            data += item.encode() + b"\0"
        ctypes.memmove(start, data.ljust(room, b"\0"), room)


def main(argv: list[str]) -> int:
    os.environ.pop(ROOM, None)
    req = serve(argv)
    if req is None:
        return 0
    run(req)  # a SystemExit from the service ends this process as it would have
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
