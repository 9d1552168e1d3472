"""The VM node: a libvirt domain, its lifecycle, and commands and files over SSH.

``popen`` returns an ``SSHProcess``: one SSH channel per command on a connection
kept per node. A VM has no network namespace on the host: its tap goes on the rack
bridge (``attach_network``) and ``netns()`` refuses.
"""

from __future__ import annotations

import errno
import os
import shlex
import signal as _signal
import stat
import threading
import time
from pathlib import Path

from lab.backends.base import NODE_DATA_DIR, ExecResult, Node, NodeSpec, Stats
from lab.cgroups import Cgroup, pid_paths

from . import guestcgroup
from .domain import domain_name, tap_name
from .libvirt import VMError, connect
from .ssh import EXEC_DIR, SSHProcess, lab_ssh_dir

GUEST_PYTHON = "/usr/bin/python3"
SVC_DIR = "/run/racklab/svc"
READY_MARK = "racklab-init: ready"
PID_FILE_DIR = Path("/run/libvirt/qemu")


def boot_timeout() -> float:
    # TCG on a busy 2-core machine boots in about a minute; KVM in a few seconds
    return float(os.environ.get("RACKLAB_VM_BOOT_TIMEOUT", "300"))


class VMNode(Node):
    kind = "vm"
    python = GUEST_PYTHON

    def __init__(self, spec: NodeSpec, conn=None, saved: dict | None = None):
        super().__init__(spec)
        self._conn = conn
        saved = saved or {}
        self.domain_name = saved.get("domain") or domain_name(spec.lab, spec.name)
        self.tap = saved.get("tap") or tap_name(spec.labid, spec.name)
        self.key_path = Path(saved.get("key") or lab_ssh_dir(spec) / "id_ed25519")
        self.image = saved.get("image")
        self.accel = saved.get("accel")
        self.accel_reason = saved.get("accel_reason")
        self._client_obj = None
        self._sftp_obj = None
        self._lock = threading.RLock()

    # paths on the host
    @property
    def dir(self) -> Path:
        return Path(self.spec.state_dir)

    @property
    def overlay(self) -> Path:
        return self.dir / "disk.qcow2"

    @property
    def config_disk(self) -> Path:
        return self.dir / "config.img"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    @property
    def host_key(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def address(self) -> str:
        return self.spec.address.split("/")[0]

    # libvirt
    @property
    def conn(self):
        if self._conn is None:
            self._conn = connect()
        return self._conn

    def domain(self):
        import libvirt

        try:
            return self.conn.lookupByName(self.domain_name)
        except libvirt.libvirtError:
            raise VMError(f"node {self.name}: libvirt has no domain {self.domain_name}") from None

    def _state(self) -> int:
        import libvirt

        try:
            return self.domain().state()[0]
        except VMError:
            return libvirt.VIR_DOMAIN_SHUTOFF

    def running(self) -> bool:
        import libvirt

        return self._state() in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_PAUSED)

    def paused(self) -> bool:
        import libvirt

        return self._state() == libvirt.VIR_DOMAIN_PAUSED

    def alive(self) -> bool:
        return self.running()

    def qemu_pid(self) -> int | None:
        try:
            text = (PID_FILE_DIR / f"{self.domain_name}.pid").read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() and Path(f"/proc/{text}").exists() else None

    # lifecycle
    def boot(self) -> None:
        """Start the defined domain and wait until its init says sshd is starting. The
        wait reads the serial console: the network may not be wired yet."""
        import libvirt

        offset = self.console_log.stat().st_size if self.console_log.exists() else 0
        try:
            self.domain().create()
        except libvirt.libvirtError as exc:
            raise VMError(f"node {self.name}: libvirt could not start the VM: "
                          f"{exc.get_error_message()}") from None  # fmt: skip
        self.wait_console(offset)

    def wait_console(self, offset: int = 0, timeout: float | None = None) -> float:
        timeout = boot_timeout() if timeout is None else timeout
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                with open(self.console_log, "rb") as f:
                    f.seek(offset)
                    if READY_MARK.encode() in f.read():
                        return time.monotonic() - started
            except OSError:
                pass
            if not self.running():
                raise VMError(f"node {self.name}: the VM stopped while booting; its console "
                              f"ends with: {self._console_tail()}")  # fmt: skip
            time.sleep(0.2)
        raise VMError(f"node {self.name}: no '{READY_MARK}' on the console within {timeout:.0f}s "
                      f"({self.accel or 'accelerator unknown'}); console ends with: "
                      f"{self._console_tail()}")  # fmt: skip

    def _console_tail(self, lines: int = 3) -> str:
        text = self.logs().strip().splitlines()
        return " | ".join(text[-lines:]) or "(nothing)"

    def start(self) -> None:
        if self.paused():
            self.resume()
            return
        if self.running():
            return
        self._drop_connection()
        self.boot()
        self._rewire()

    def _rewire(self) -> None:
        """After a boot outside `lab up` (start after stop), put the new tap back on the
        rack bridge, if the lab's network exists."""
        from lab.net import fabric

        if fabric.exists(self.spec.labid):
            self.attach_network()

    def attach_network(self) -> None:
        """Move the VM's tap onto its rack's bridge (the guest sets its own address at
        boot). A VM that ``start`` booted again is already there: its old tap went
        with the old qemu, and the one on the bridge under the node's name is new."""
        from lab.net import fabric

        if fabric.attached(self.spec.labid, self.name):
            return
        fabric.attach_tap(self.spec.labid, self.tap, self.spec.rack, self.name)

    def stop(self, timeout: float = 30) -> None:
        """Sync and power off from inside (the guest runs no ACPI daemon), then wait for
        the domain to stop; destroy it if it does not."""
        if not self.running():
            return
        import paramiko

        self.resume()
        try:
            self._run_quiet("sync; echo o > /proc/sysrq-trigger", timeout=10)
        except (VMError, paramiko.SSHException, OSError, EOFError):
            pass  # powering off takes the connection with it, or SSH was gone: destroy below
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.running():
            self.kill()
        self._drop_connection()

    def kill(self, sig: int = _signal.SIGKILL) -> None:
        """A VM has no init to signal from the host, so signals map to what they mean
        to a machine: SIGKILL pulls the plug (libvirt's destroy), SIGSTOP and SIGCONT
        pause and resume it, any other signal asks it to power off (``stop``)."""
        import libvirt

        if sig == _signal.SIGSTOP:
            return self.pause()
        if sig == _signal.SIGCONT:
            return self.resume()
        if not self.running():
            return
        if sig != _signal.SIGKILL:
            return self.stop()
        try:
            self.domain().destroy()
        except libvirt.libvirtError as exc:
            if self.running():
                raise VMError(f"node {self.name}: {exc.get_error_message()}") from None
        self._drop_connection()

    def pause(self) -> None:
        if self.running() and not self.paused():
            self.domain().suspend()

    def resume(self) -> None:
        if self.paused():
            self.domain().resume()

    def destroy(self) -> None:
        import libvirt

        self._drop_connection()
        try:
            dom = self.conn.lookupByName(self.domain_name)
        except libvirt.libvirtError:
            dom = None
        if dom is not None:
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        for path in (self.overlay, self.config_disk):
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    # SSH
    def _connect(self, timeout: float):
        import paramiko

        client = paramiko.SSHClient()
        host_key = paramiko.Ed25519Key.from_private_key_file(str(self.host_key))
        client.get_host_keys().add(self.address, host_key.get_name(), host_key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        key = paramiko.Ed25519Key.from_private_key_file(str(self.key_path))
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                client.connect(
                    self.address, username="root", pkey=key, timeout=10, banner_timeout=30,
                    auth_timeout=30, look_for_keys=False, allow_agent=False,
                    sock=self._ssh_socket(),
                )  # fmt: skip
                client.get_transport().set_keepalive(15)
                return client
            except paramiko.BadHostKeyException:
                raise VMError(f"node {self.name}: {self.address} answered with another host "
                              "key than the one racklab gave this VM") from None  # fmt: skip
            except (OSError, paramiko.SSHException, EOFError) as exc:
                last = exc
                time.sleep(0.5)
        raise VMError(f"node {self.name}: no SSH at {self.address} within {timeout:.0f}s "
                      f"({last})")  # fmt: skip

    def _ssh_socket(self):
        """A TCP connection to the guest's sshd. A host of a lab spread over machines
        has no route into the lab (lab/net/backbone.py): there the connection is made
        in the lab's router namespace, beside the guest's rack."""
        import socket

        from lab.net.fabric import router_ns
        from lab.ns.syscalls import run_in_netns

        where = (self.address, 22)
        try:
            return socket.create_connection(where, timeout=10)
        except OSError as e:
            if e.errno != errno.ENETUNREACH:
                raise
        return run_in_netns(f"/run/netns/{router_ns(self.spec.labid)}",
                            socket.create_connection, where, 10)  # fmt: skip

    def _client(self):
        with self._lock:
            c = self._client_obj
            if c is None or c.get_transport() is None or not c.get_transport().is_active():
                if not self.running():
                    raise VMError(f"node {self.name} is not running")
                if self.paused():
                    raise VMError(f"node {self.name} is paused")
                self._client_obj = self._connect(60)
                self._sftp_obj = None
            return self._client_obj

    def _transport(self):
        return self._client().get_transport()

    def _sftp(self):
        with self._lock:
            client = self._client()
            if self._sftp_obj is None:
                self._sftp_obj = client.open_sftp()
            return self._sftp_obj

    def _drop_connection(self) -> None:
        with self._lock:
            if self._client_obj is not None:
                self._client_obj.close()
            self._client_obj = self._sftp_obj = None

    def wait_ssh(self, timeout: float | None = None) -> float:
        """Seconds until a command runs over SSH (the boot-to-ready figure)."""
        started = time.monotonic()
        with self._lock:
            self._drop_connection()
            self._client_obj = self._connect(boot_timeout() if timeout is None else timeout)
        r = self.exec(["true"], timeout=60)
        if not r.ok:
            raise VMError(f"node {self.name}: `true` over SSH failed: {r.stderr.strip()}")
        return time.monotonic() - started

    def _command_line(self, argv, env, cwd, token) -> str:
        argv = [GUEST_PYTHON if a == "{python}" else str(a) for a in argv]
        if env:
            argv = ["env", *(f"{k}={v}" for k, v in env.items()), *argv]
        cd = f"cd {shlex.quote(str(cwd))} || exit 126; " if cwd else ""
        # record the session's pid (= its process group) so signals reach the command
        script = (f"echo $$ > {EXEC_DIR}/{token} 2>/dev/null; {cd}\"$@\"; rc=$?; "
                  f"rm -f {EXEC_DIR}/{token}; exit $rc")  # fmt: skip
        return "sh -c " + shlex.quote(script) + " sh " + shlex.join(argv)

    def _open_session(self):
        """A new channel; once more on a new connection if the kept one was reset (a
        guest's sshd drops connections when many arrive at once: chaos runs attach
        the lab from several processes). Nothing has run yet, so a retry is safe."""
        import paramiko

        try:
            return self._transport().open_session()
        except (paramiko.SSHException, OSError, EOFError):
            self._drop_connection()
            return self._transport().open_session()

    def _run_quiet(self, script: str, timeout: float = 30) -> tuple[int, str]:
        """A shell snippet over its own channel: (status, output)."""
        chan = self._open_session()
        chan.set_combine_stderr(True)
        chan.settimeout(timeout)
        chan.exec_command(script)
        chan.shutdown_write()
        out = []
        try:
            while True:
                data = chan.recv(65536)
                if not data:
                    break
                out.append(data)
        except TimeoutError:
            chan.close()
            return 124, b"".join(out).decode(errors="replace")
        return chan.recv_exit_status(), b"".join(out).decode(errors="replace")

    # commands and files
    def popen(self, argv: list[str], **kwargs) -> SSHProcess:
        """Start ``argv`` in the VM over SSH; kwargs as for subprocess.Popen (``env``
        adds variables in the guest, ``cwd`` is a guest directory)."""
        kwargs.pop("start_new_session", None)  # every SSH session is its own session
        kwargs.pop("close_fds", None)
        return SSHProcess(self, argv, **kwargs)

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        sftp = self._sftp()
        try:
            f = sftp.open(path, "wb")
        except FileNotFoundError:
            status, out = self._run_quiet(f"mkdir -p {shlex.quote(str(Path(path).parent))}")
            if status != 0:
                raise VMError(f"node {self.name}: mkdir for {path}: {out.strip()}") from None
            f = sftp.open(path, "wb")
        with f:
            f.write(data)
        sftp.chmod(path, mode)

    def get_file(self, path: str) -> bytes:
        sftp = self._sftp()
        try:
            st = sftp.stat(path)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, f"{self.name}:{path}: no such file") from None
        if not stat.S_ISREG(st.st_mode or 0):
            raise IsADirectoryError(f"{self.name}:{path} is not a regular file")
        with sftp.open(path, "rb") as f:
            return f.read()

    def logs(self) -> str:
        try:
            return self.console_log.read_text(errors="replace")
        except OSError:
            return ""

    def command_prefix(self) -> list[str]:
        """What `lab shell` puts before a command: ssh(1) with the lab's key."""
        return ["ssh", "-t", "-i", str(self.key_path), "-o", "IdentitiesOnly=yes",
                "-o", f"UserKnownHostsFile={self.dir / 'known_hosts'}",
                "-o", "StrictHostKeyChecking=yes", f"root@{self.address}"]  # fmt: skip

    # services: detached in the guest, pid in a file, output in the node's log dir
    def start_service(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> dict:
        log = f"{NODE_DATA_DIR}/logs/{name}.log"
        pidfile = f"{SVC_DIR}/{name}.pid"
        argv = [GUEST_PYTHON if a == "{python}" else str(a) for a in argv]
        if env:
            argv = ["env", *(f"{k}={v}" for k, v in env.items()), *argv]
        inner = (guestcgroup.join(name) +
                 'p="$0"; l="$1"; shift; echo $$ > "$p"; exec "$@" >>"$l" 2>&1 </dev/null')  # fmt: skip
        script = (
            f"mkdir -p {NODE_DATA_DIR}/logs {SVC_DIR} && cd {NODE_DATA_DIR} && "
            f"rm -f {pidfile} || exit 1; {guestcgroup.prepare(name)}"
            f"setsid sh -c {shlex.quote(inner)} {pidfile} {log} {shlex.join(argv)} "
            ">/dev/null 2>&1 </dev/null & "
            f"for i in $(seq 50); do [ -s {pidfile} ] && break; sleep 0.1; done; cat {pidfile}"
        )
        status, out = self._run_quiet(script)
        pid = out.strip().splitlines()[-1] if out.strip() else ""
        if status != 0 or not pid.isdigit():
            raise VMError(f"node {self.name}: service {name} did not start: {out.strip()}")
        return {"pid": int(pid), "log": log, "pidfile": pidfile}

    def service_running(self, name: str, info: dict) -> bool:
        pid, pidfile = info.get("pid"), info.get("pidfile", f"{SVC_DIR}/{name}.pid")
        if not pid or not self.running() or self.paused():
            return False
        # the pid file lives on tmpfs: after a reboot it is gone, so a reused pid
        # never passes for the service
        import paramiko

        try:
            status, _ = self._run_quiet(f'[ "$(cat {pidfile} 2>/dev/null)" = "{int(pid)}" ] '
                                        f"&& kill -0 {int(pid)}")  # fmt: skip
        except (VMError, paramiko.SSHException, OSError):
            return False  # no answer over SSH: nothing there can be counted as running
        return status == 0

    def stop_service(self, name: str, info: dict, timeout: float = 10) -> None:
        if not self.service_running(name, info):
            return
        pid = int(info["pid"])
        ticks = int(timeout * 10)
        self._run_quiet(
            f"kill -TERM {pid}; for i in $(seq {ticks}); do kill -0 {pid} 2>/dev/null || exit 0; "
            f"sleep 0.1; done; kill -KILL {pid}",
            timeout=timeout + 10,
        )

    def kill_service(self, name: str, info: dict) -> str:
        """SIGKILL the service's process group and its cgroup in the guest, over SSH."""
        if not self.service_running(name, info):
            return "SIGKILL"
        status, out = self._run_quiet(guestcgroup.kill(name, int(info["pid"])))
        if status != 0:
            raise VMError(f"node {self.name}: could not kill service {name}: {out.strip()}")
        return "SIGKILL"

    # where other layers plug in
    def net_exec(self, argv: list[str], timeout: float = 30) -> ExecResult:
        """The guest's own ip, iptables and tc, over SSH: the VM's network stack is in
        its kernel. A VM that is not running has no rules to see or undo (a boot
        starts with none): that answers 255, as ssh(1) does when it cannot connect."""
        if not self.running() or self.paused():
            return ExecResult(list(argv), 255, "", f"node {self.name} is not running")
        return self.exec(list(argv), timeout=timeout)

    def netns(self) -> str:
        raise VMError(
            f"node {self.name} is a VM: its network stack is in the guest, and the lab "
            f"reaches it through its tap ({self.name} in {self.spec.labid}'s router namespace)"
        )

    def cgroup(self) -> str:
        """The host cgroup of the node's qemu process (what the VM costs the host)."""
        pid = self.qemu_pid()
        cg = Cgroup.of_pid(pid) if pid else None
        return cg.rel if cg is not None else ""

    # chaos's CPU and memory pressure: CPU as libvirt caps the vCPUs (the whole
    # machine slows, as a namespace node's whole cgroup does), memory as a limit on the
    # guest cgroup holding the services (the guest's OOM killer picks among them, as
    # the host's does in a namespace node's cgroup); the VM's RAM itself stays
    def _vcpu_quota(self, cpus: float | None) -> int:
        vcpus = self.domain().info()[3]
        return int(cpus / vcpus * 100000) if cpus and cpus < vcpus else -1

    def set_limits(self, cpus: float | None = None, memory: int | None = None) -> None:
        if cpus is not None:
            self.domain().setSchedulerParameters(
                {"vcpu_period": 100000, "vcpu_quota": max(1000, self._vcpu_quota(cpus))}
            )
        if memory is not None:
            status, out = self._run_quiet(guestcgroup.set_memory_max(memory))
            if status != 0:
                raise VMError(f"node {self.name}: could not limit memory: {out.strip()}")

    def restore_limits(self) -> None:
        if not self.running():
            return  # booted again from its domain XML, with the spec's limits
        self.domain().setSchedulerParameters(
            {"vcpu_period": 100000, "vcpu_quota": self._vcpu_quota(self.spec.cpus)}
        )
        if not self.paused():
            self._run_quiet(guestcgroup.set_memory_max(None))

    def memory_used(self) -> int | None:
        status, out = self._run_quiet(guestcgroup.memory_current())
        text = out.strip()
        return int(text) if status == 0 and text.isdigit() and int(text) > 0 else None

    def stats(self) -> Stats:
        """The host-side cost of the VM: memory and disk I/O from qemu's cgroup (libvirt
        makes one per domain), CPU time from libvirt (qemu's own accounting: on hosts
        where libvirt leaves cpuacct at the root, that cgroup would count the whole
        host), the VM's configured memory as the limit. ``pids`` stays unset: the
        VM's processes live in the guest, not on the host."""
        pid = self.qemu_pid()
        if not pid:
            return Stats(memory_max=self._memory())
        paths = pid_paths(pid)
        if not paths:  # qemu just ended
            return Stats(memory_max=self._memory())
        s = Cgroup(paths.get("memory") or paths.get("", ""), paths=paths).summary()
        own = {c: p not in ("", "/") for c, p in paths.items()}  # "/" = not the VM's
        if not own.get("memory", own.get("", False)):
            s.memory_bytes = s.oom_kills = None
        if not own.get("blkio", own.get("", False)):
            s.io_read_bytes = s.io_write_bytes = None
        s.pids = None
        try:
            s.cpu_usec = self.domain().getCPUStats(True)[0]["cpu_time"] // 1000
        except Exception:  # libvirt without cgroup CPU accounting for this domain
            s.cpu_usec = None
        s.memory_max = self._memory()
        return s

    def _memory(self) -> int | None:
        try:
            return self.domain().maxMemory() * 1024
        except Exception:
            return None

    def describe(self) -> dict:
        info = {
            **super().describe(),
            "domain": self.domain_name,
            "accel": self.accel,
            "accel_reason": self.accel_reason,
            "tap": self.tap,
            "image": self.image,
            "overlay": str(self.overlay),
            "config_disk": str(self.config_disk),
            "console": str(self.console_log),
            "key": str(self.key_path),
            "address": self.address,
        }
        try:
            dom = self.domain()
            state = dom.state()[0]
            import libvirt

            info.update(
                uuid=dom.UUIDString(),
                running=state in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_PAUSED),
                paused=state == libvirt.VIR_DOMAIN_PAUSED,
                vcpus=dom.info()[3],
                memory_max=dom.maxMemory() * 1024,
                pid=self.qemu_pid(),
            )
        except VMError:
            info.update(running=False, paused=False)
        return info

    def testinfra_host(self):
        """A testinfra host on testinfra's own paramiko backend, connected with this
        node's verified connection (testinfra's would not check the host key)."""
        import testinfra

        host = testinfra.get_host(f"paramiko://root@{self.address}",
                                  ssh_identity_file=str(self.key_path))  # fmt: skip
        host.backend.__dict__["client"] = self._client()  # its cached_property
        return host
