"""SSH keys racklab makes itself: ed25519 pairs in OpenSSH's own file formats, and
known_hosts lines, without needing ssh-keygen on the machine running racklab.

One module below every layer that needs keys: the VMs' (lab/backends/vm), the spare
hosts' and the simulated hosts' (lab/hosts), terraform's seeds (lab/terraform).
"""

from __future__ import annotations

import os
from pathlib import Path


def write_ed25519(path: Path, comment: str) -> str:
    """An Ed25519 key pair in OpenSSH's formats, as ssh-keygen writes them (without
    needing it): ``path`` (0600) and ``path``.pub; returns the public key line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    line = f"{public.decode()} {comment}"
    path.with_name(path.name + ".pub").write_text(line + "\n")
    return line


def known_hosts_line(address: str, port: int, public_line: str) -> str:
    """One known_hosts line: ``addr`` for port 22, ``[addr]:port`` otherwise (OpenSSH's
    own spelling, which paramiko reads the same way)."""
    where = address if port == 22 else f"[{address}]:{port}"
    keytype, blob = public_line.split()[:2]
    return f"{where} {keytype} {blob}"
