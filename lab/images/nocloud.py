"""A racklab VM's reader of a cloud-init NoCloud seed, run by its init at boot.

VMs that terraform makes (terraform/modules/host) boot racklab's VM image with a
NoCloud seed on /dev/vdb instead of racklab's own config disk: the ISO the provider's
libvirt_cloudinit_disk writes (volume label cidata, files meta-data, user-data and
network-config). The image runs no cloud-init (no systemd either; see
images/vm/racklab-init), so its init runs this file by path — not as part of the lab
package, whose __init__ pulls in the image builder — to turn the seed into the files
its own config disk would hold:

    hostname                 meta-data local-hostname, or user-data hostname
    hosts                    user-data write_files entry for /etc/hosts
    authorized_keys          user-data ssh_authorized_keys
    ssh_host_ed25519_key     user-data ssh_keys ed25519_private / ed25519_public
    cmdline                  network-config (version 2): the first ethernet's address
                             and gateway, as the kernel's ip= argument the init reads

Only this subset of cloud-init is read: it is what the module writes. Needs Python's
standard library and PyYAML (a racklab dependency, in the image).
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import yaml


def seed_file(seed: Path, name: str) -> Path | None:
    """A file of the seed by its cloud-init name. A plain ISO 9660 (what the provider
    writes) may show it as USER-DATA or user-data;1 depending on the mount options."""
    for p in seed.iterdir():
        if p.name.lower().split(";")[0] == name:
            return p
    return None


def _yaml(seed: Path, name: str) -> dict:
    p = seed_file(seed, name)
    if p is None:
        return {}
    data = yaml.safe_load(p.read_text())
    return data if isinstance(data, dict) else {}


def ip_argument(net: dict, hostname: str) -> str:
    """ip=<addr>::<gateway>:<netmask>:<hostname>:<device>:off from network-config v2."""
    for name, eth in (net.get("ethernets") or {}).items():
        addrs = [a for a in eth.get("addresses") or [] if ":" not in a.split("/")[0]]
        if not addrs:
            continue
        iface = ipaddress.IPv4Interface(addrs[0])
        gw = next((r.get("via", "") for r in eth.get("routes") or []
                   if r.get("to") in ("0.0.0.0/0", "default")), eth.get("gateway4", ""))  # fmt: skip
        dev = eth.get("set-name") or name
        return f"ip={iface.ip}::{gw}:{iface.netmask}:{hostname}:{dev}:off"
    return ""


def convert(seed: Path, out: Path) -> list[str]:
    """Write racklab's config files from the seed; returns what the seed lacked."""
    meta, user, net = (
        _yaml(seed, "meta-data"),
        _yaml(seed, "user-data"),
        _yaml(seed, "network-config"),
    )
    lacks = []
    out.mkdir(parents=True, exist_ok=True)
    hostname = str(user.get("hostname") or meta.get("local-hostname") or "")
    if not hostname:
        lacks.append("a host name")
        hostname = "localhost"
    (out / "hostname").write_text(hostname + "\n")
    hosts = next((f.get("content", "") for f in user.get("write_files") or []
                  if f.get("path") == "/etc/hosts"), "")  # fmt: skip
    if not hosts:
        hosts = f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n"
    (out / "hosts").write_text(hosts)
    keys = [str(k).strip() for k in user.get("ssh_authorized_keys") or []]
    if not keys:
        lacks.append("ssh_authorized_keys")
    (out / "authorized_keys").write_text("".join(k + "\n" for k in keys))
    host_keys = user.get("ssh_keys") or {}
    if host_keys.get("ed25519_private") and host_keys.get("ed25519_public"):
        (out / "ssh_host_ed25519_key").write_text(host_keys["ed25519_private"])
        (out / "ssh_host_ed25519_key.pub").write_text(host_keys["ed25519_public"].strip() + "\n")
    else:
        lacks.append("an ed25519 host key (ssh_keys)")
    ip = ip_argument(net, hostname)
    if not ip:
        lacks.append("an IPv4 address (network-config)")
    (out / "cmdline").write_text(ip + "\n")
    return lacks


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: nocloud.py SEED_DIR OUT_DIR", file=sys.stderr)
        return 2
    lacks = convert(Path(argv[1]), Path(argv[2]))
    for what in lacks:
        print(f"racklab-init: the NoCloud seed lacks {what}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
