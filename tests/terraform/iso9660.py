"""A plain ISO 9660 image laid out as terraform-provider-libvirt's cloud-init disk is
(it writes with github.com/kdomanski/iso9660): one primary volume descriptor with the
volume label, no Rock Ridge, no Joliet, no path tables, file names lower-cased with a
";1" version, files in the root directory in name order. The slow test boots racklab's
VM image with such a seed, which is how the provider's ISO reaches the guest."""

from __future__ import annotations

import struct
from pathlib import Path

SECTOR = 2048


def _both16(n: int) -> bytes:
    return struct.pack("<H", n) + struct.pack(">H", n)


def _both32(n: int) -> bytes:
    return struct.pack("<I", n) + struct.pack(">I", n)


def _record(name: bytes, lba: int, size: int, is_dir: bool) -> bytes:
    pad = b"\0" if len(name) % 2 == 0 else b""
    body = (bytes([0]) + _both32(lba) + _both32(size) + bytes(7)
            + bytes([2 if is_dir else 0, 0, 0]) + _both16(1) + bytes([len(name)]) + name + pad)  # fmt: skip
    return bytes([len(body) + 1]) + body


def write(path: Path, label: str, files: dict[str, bytes]) -> None:
    names = sorted(files)
    root_lba = 18  # 16 system sectors, the primary descriptor, the terminator
    lba, extents = root_lba + 1, {}
    for n in names:
        extents[n] = lba
        lba += max(1, -(-len(files[n]) // SECTOR))
    root = _record(b"\0", root_lba, SECTOR, True) + _record(b"\1", root_lba, SECTOR, True)
    for n in names:
        root += _record(f"{n.lower()};1".encode(), extents[n], len(files[n]), False)
    assert len(root) <= SECTOR
    pvd = bytearray(SECTOR)
    pvd[0:7] = b"\x01CD001\x01"
    pvd[8:40] = b"linux".ljust(32)
    pvd[40:72] = label.encode().ljust(32)
    pvd[80:88] = _both32(lba)
    pvd[120:124] = _both16(1)
    pvd[124:128] = _both16(1)
    pvd[128:132] = _both16(SECTOR)
    pvd[156:190] = _record(b"\0", root_lba, SECTOR, True)
    pvd[190:813] = b" " * (813 - 190)
    for off in (813, 830, 847, 864):
        pvd[off:off + 17] = b"0" * 16 + b"\0"  # fmt: skip
    pvd[881] = 1
    term = bytearray(SECTOR)
    term[0:7] = b"\xffCD001\x01"
    with open(path, "wb") as f:
        f.write(bytes(16 * SECTOR) + pvd + term + root.ljust(SECTOR, b"\0"))
        for n in names:
            data = files[n]
            f.write(data + bytes(-len(data) % SECTOR or (SECTOR if not data else 0)))
