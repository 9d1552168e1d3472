"""Transcribe terraform-provider-libvirt's resource schemas from its generated docs.

The provider's schema is generated Go code (internal/generated, not in its git tree);
its docs/resources/*.md are what tfplugindocs printed from that schema for a release.
This reads those pages at one tag of a provider checkout and writes the parts racklab's
module uses (every attribute of each block racklab writes, with Required / Optional /
Read-Only) to libvirt-<version>.schema.json beside it, which the tests read:

    python tests/terraform/transcribe_schema.py PROVIDER_CHECKOUT v0.9.7
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

RESOURCES = ("domain", "volume", "network", "cloudinit_disk")
# The blocks racklab's module writes (dotted paths); each is transcribed whole, so the
# test can tell an unknown attribute from a known one at every level racklab uses.
USED = {
    "domain": [
        "", "os", "devices", "devices.disks", "devices.disks.driver", "devices.disks.source",
        "devices.disks.source.volume", "devices.disks.source.file", "devices.disks.target",
        "devices.interfaces", "devices.interfaces.mac", "devices.interfaces.model",
        "devices.interfaces.source", "devices.interfaces.source.network",
        "devices.serials", "devices.serials.source", "devices.serials.source.pty",
        "devices.serials.target", "devices.rngs", "devices.rngs.backend",
        "devices.mem_balloon", "cpu_tune", "metadata", "features", "features.apic", "clock",
    ],
    "volume": ["", "target", "target.format", "backing_store", "backing_store.format",
               "create", "create.content"],
    "network": ["", "bridge", "forward", "ips", "dns"],
    "cloudinit_disk": [""],
}  # fmt: skip

_HEAD = re.compile(r"^### Nested Schema for `([^`]+)`")
_ATTR = re.compile(r"^- `([a-z0-9_]+)` \(([^)]+)\)")


def parse(text: str) -> dict[str, dict[str, dict]]:
    """{block path ("" for the resource): {attribute: {"mode", "type"}}}."""
    blocks: dict[str, dict[str, dict]] = {"": {}}
    block, mode = None, None
    for line in text.splitlines():
        if line.startswith("## Schema"):
            block = ""
            continue
        if block is None:
            continue
        m = _HEAD.match(line)
        if m:
            block = m.group(1)
            blocks.setdefault(block, {})
            mode = None
            continue
        head = line.strip("#: ").strip()
        if head in ("Required", "Optional", "Read-Only") and not line.startswith("-"):
            mode = head.lower()
            continue
        m = _ATTR.match(line)
        if m and mode:
            blocks[block][m.group(1)] = {"mode": mode, "type": m.group(2)}
    return blocks


def main(checkout: str, tag: str) -> None:
    out = {"provider": "dmacvicar/libvirt", "version": tag.lstrip("v"), "resources": {}}
    sha = subprocess.run(["git", "-C", checkout, "rev-parse", tag + "^{commit}"],
                         capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    out["commit"] = sha
    for res in RESOURCES:
        text = subprocess.run(
            ["git", "-C", checkout, "show", f"{tag}:docs/resources/{res}.md"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        blocks = parse(text)
        missing = [b for b in USED[res] if b not in blocks]
        if missing:
            raise SystemExit(f"{res}: no block {missing} in the docs at {tag}")
        out["resources"][f"libvirt_{res}"] = {b: blocks[b] for b in USED[res]}
    dest = Path(__file__).with_name(f"libvirt-{tag.lstrip('v')}.schema.json")
    dest.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {dest}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
