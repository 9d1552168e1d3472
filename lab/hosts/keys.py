"""SSH keys racklab makes itself: ed25519 pairs in OpenSSH's own file formats, and
known_hosts lines, without needing ssh-keygen on the machine running racklab."""

from __future__ import annotations

# One key writer for the VMs' keys, terraform's and the hosts': ``path`` (0600) and
# ``path``.pub, the public key line returned.
from lab.backends.vm.ssh import write_ed25519 as write_keypair

__all__ = ["known_hosts_line", "write_keypair"]


def known_hosts_line(address: str, port: int, public_line: str) -> str:
    """One known_hosts line: ``addr`` for port 22, ``[addr]:port`` otherwise (OpenSSH's
    own spelling, which paramiko reads the same way)."""
    where = address if port == 22 else f"[{address}]:{port}"
    keytype, blob = public_line.split()[:2]
    return f"{where} {keytype} {blob}"
