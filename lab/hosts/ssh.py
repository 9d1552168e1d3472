"""SSH control of a lab's hosts with paramiko: one connection per host for the whole
command, host keys checked against the host's known_hosts and refused when unknown.

A login that is not root runs every command through ``sudo -n``: a sudo that would
ask for a password fails at once (racklab never types one), and the preflight says so.
Every failure is a HostError: one sentence naming the host and the problem.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import paramiko

from lab.topology.hosts import HostDef

CONNECT_TIMEOUT = 10.0  # TCP: an unreachable host is said to be so within this
SSHD_TIMEOUT = 60.0


class HostError(Exception):
    """A host racklab cannot use, in one sentence naming it and what is wrong."""

    def __init__(self, host: HostDef | str, problem: str):
        self.host = host.name if isinstance(host, HostDef) else host
        where = f"{host.name} ({host.address})" if isinstance(host, HostDef) else host
        super().__init__(f"host {where}: {problem}")


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def last_error(self) -> str:
        lines = (self.err or self.out).strip().splitlines()
        return lines[-1] if lines else f"exit status {self.code}"


class Host:
    """One host's SSH connection; commands run as root (directly or through sudo -n)."""

    def __init__(self, spec: HostDef, client: paramiko.SSHClient):
        self.spec = spec
        self.client = client
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def is_root(self) -> bool:
        return self.spec.user == "root"

    def run(
        self,
        cmd: str | Iterable[str],
        *,
        root: bool = True,
        input: bytes | str | Iterable[bytes] | None = None,
        timeout: float = 120.0,
    ) -> Result:
        """Run a shell command (a string) or an argv; as root unless ``root=False``.
        ``input`` may be chunks of bytes, streamed as they come (an image's tarball)."""
        text = cmd if isinstance(cmd, str) else shlex.join(cmd)
        if root and not self.is_root:
            text = "sudo -n -- /bin/sh -c " + shlex.quote(text)
        try:
            stdin, stdout, stderr = self.client.exec_command(text, timeout=timeout)
            if isinstance(input, bytes | str):
                stdin.write(input)
            elif input is not None:
                for chunk in input:
                    stdin.channel.sendall(chunk)
            stdin.channel.shutdown_write()
            out = stdout.read().decode(errors="replace")
            err = stderr.read().decode(errors="replace")
            code = stdout.channel.recv_exit_status()
        except (OSError, paramiko.SSHException) as e:
            raise HostError(
                self.spec, f"the SSH connection failed: {e or type(e).__name__}"
            ) from None
        return Result(code, out, err)

    def check(self, cmd: str | Iterable[str], what: str, **kw) -> Result:
        """``run`` that raises HostError "<what> failed: <last line>" on a non-zero exit."""
        r = self.run(cmd, **kw)
        if r.code != 0:
            raise HostError(self.spec, f"{what} failed: {r.last_error}")
        return r

    def sftp(self) -> paramiko.SFTPClient:
        with self._lock:
            if self._sftp is None:
                self._sftp = self.client.open_sftp()
            return self._sftp

    def put(self, local: Path, remote: str) -> None:
        try:
            self.sftp().put(str(local), remote)
        except (OSError, paramiko.SSHException) as e:
            raise HostError(self.spec, f"uploading {local.name} to {remote} failed: {e}") from None

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
        self.client.close()


def connect(spec: HostDef, timeout: float = CONNECT_TIMEOUT) -> Host:
    """Log in to ``spec``; HostError (one sentence) when it cannot be used."""
    client = paramiko.SSHClient()
    if spec.key is not None and not Path(spec.key).is_file():
        raise HostError(spec, f"its key file {spec.key} does not exist")
    known = Path(spec.known_hosts)
    if not known.is_file():
        raise HostError(
            spec,
            f"its known_hosts file {known} does not exist; record the host's key with "
            "`lab hosts trust FILE`",
        )
    try:
        client.load_host_keys(str(known))
    except (OSError, paramiko.SSHException) as e:
        raise HostError(spec, f"cannot read known_hosts {known}: {e}") from None
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            spec.address,
            port=spec.port,
            username=spec.user,
            key_filename=spec.key,
            look_for_keys=spec.key is None,
            allow_agent=spec.key is None,
            timeout=timeout,
            # a host that answers TCP is there: its sshd gets longer to greet and log in
            # (a busy machine forks and execs sshd for every connection)
            banner_timeout=SSHD_TIMEOUT,
            auth_timeout=SSHD_TIMEOUT,
        )
    except paramiko.BadHostKeyException:
        client.close()
        raise HostError(
            spec,
            f"its SSH host key is not the one {known} records for it (another machine at "
            "that address, or the host was reinstalled); check, then fix known_hosts",
        ) from None
    except paramiko.AuthenticationException:
        client.close()
        how = f"key {spec.key}" if spec.key else "the user's SSH keys"
        raise HostError(spec, f"login as {spec.user} with {how} was refused") from None
    except paramiko.SSHException as e:
        client.close()
        if "not found in known_hosts" in str(e):
            raise HostError(
                spec,
                f"its SSH host key is not in {known}; check it and record it with "
                "`lab hosts trust FILE`",
            ) from None
        raise HostError(spec, f"SSH failed: {e}") from None
    except TimeoutError:
        client.close()
        raise HostError(spec, f"unreachable: no answer on port {spec.port}") from None
    except OSError as e:
        client.close()
        raise HostError(spec, f"unreachable on port {spec.port}: {e.strerror or e}") from None
    return Host(spec, client)


class Hosts:
    """Every host of a command, each connected once (in parallel) and closed at the end."""

    def __init__(self, specs: Iterable[HostDef]):
        self.specs = {s.name: s for s in specs}
        self.hosts: dict[str, Host] = {}

    def __enter__(self) -> Hosts:
        errors: list[HostError] = []

        def one(spec: HostDef) -> None:
            try:
                self.hosts[spec.name] = connect(spec)
            except HostError as e:
                errors.append(e)

        threads = [threading.Thread(target=one, args=(s,)) for s in self.specs.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.close()
            # the first host in file order, so the same file gives the same sentence
            order = list(self.specs)
            raise min(errors, key=lambda e: order.index(e.host))
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def __iter__(self):
        return iter(self.hosts[n] for n in self.specs if n in self.hosts)

    def close(self) -> None:
        for h in self.hosts.values():
            h.close()
        self.hosts.clear()


def each(hosts: Iterable[Host], fn) -> dict[str, object]:
    """``fn(host)`` on every host at once; the first HostError (in order) is raised."""
    hosts = list(hosts)
    results: dict[str, object] = {}
    errors: dict[str, BaseException] = {}

    def one(h: Host) -> None:
        try:
            results[h.name] = fn(h)
        except BaseException as e:  # noqa: BLE001 - re-raised below, in host order
            errors[h.name] = e

    threads = [threading.Thread(target=one, args=(h,)) for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for h in hosts:
        if h.name in errors:
            raise errors[h.name]
    return {h.name: results[h.name] for h in hosts}  # in the hosts' order, not the finish
