"""SSH keys racklab makes itself: ed25519 pairs in OpenSSH's own file formats, and
known_hosts lines, without needing ssh-keygen on the machine running racklab."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def new_keypair(comment: str) -> tuple[bytes, str]:
    """-> (private key file content, public key line), both as ssh-keygen writes them."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, f"{public.decode()} {comment}"


def write_keypair(path: Path, comment: str) -> str:
    """Write ``path`` (0600) and ``path``.pub; returns the public key line."""
    private, public = new_keypair(comment)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    path.with_name(path.name + ".pub").write_text(public + "\n")
    return public


def known_hosts_line(address: str, port: int, public_line: str) -> str:
    """One known_hosts line: ``addr`` for port 22, ``[addr]:port`` otherwise (OpenSSH's
    own spelling, which paramiko reads the same way)."""
    where = address if port == 22 else f"[{address}]:{port}"
    keytype, blob = public_line.split()[:2]
    return f"{where} {keytype} {blob}"
