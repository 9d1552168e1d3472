"""``lab hosts trust FILE``: record the hosts' SSH keys in their known_hosts, on purpose.

racklab never accepts an unknown host key by itself (every login refuses one). This is
the one place a key is taken as it comes, so it prints each key's SHA256 fingerprint
for the user to compare with the host's own (``ssh-keygen -lf
/etc/ssh/ssh_host_ed25519_key.pub`` there). A key that differs from the one already
recorded is never replaced: that is for the user to look into and fix by hand.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import paramiko

from lab.hosts.ssh import CONNECT_TIMEOUT, HostError
from lab.sshkeys import known_hosts_line
from lab.topology.hosts import HostDef


@dataclass
class Trusted:
    host: str
    known_hosts: str
    key_type: str
    fingerprint: str
    status: str  # "recorded" or "already known"

    def as_dict(self) -> dict:
        return dict(vars(self))


def fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def fetch_key(spec: HostDef) -> paramiko.PKey:
    """The key the host's sshd presents (no login)."""
    try:
        sock = socket.create_connection((spec.address, spec.port), timeout=CONNECT_TIMEOUT)
    except OSError as e:
        raise HostError(spec, f"unreachable on port {spec.port}: {e.strerror or e}") from None
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=CONNECT_TIMEOUT)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as e:
        raise HostError(spec, f"no SSH server answered on port {spec.port}: {e}") from None
    finally:
        transport.close()


def trust(spec: HostDef) -> Trusted:
    key = fetch_key(spec)
    path = Path(spec.known_hosts)
    known = paramiko.HostKeys()
    if path.is_file():
        known.load(str(path))
    name = spec.address if spec.port == 22 else f"[{spec.address}]:{spec.port}"
    recorded = known.lookup(name) or {}
    fp = fingerprint(key)
    if key.get_name() in recorded:
        if recorded[key.get_name()] == key:
            return Trusted(spec.name, str(path), key.get_name(), fp, "already known")
        raise HostError(
            spec,
            f"presents {key.get_name()} key {fp}, but {path} records another for it; "
            "if the host was reinstalled, remove the old line by hand",
        )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # a file whose last line has no newline yet must not run into the new line
    lead = "\n" if path.is_file() and path.read_bytes()[-1:] not in (b"", b"\n") else ""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        line = known_hosts_line(spec.address, spec.port, f"{key.get_name()} {key.get_base64()}")
        f.write(lead + line + "\n")
    return Trusted(spec.name, str(path), key.get_name(), fp, "recorded")
