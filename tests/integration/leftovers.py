"""What a lab may leave on the host, listed so a test can require that nothing is left."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lab import cgroups
from lab.orchestrator.state import lab_dir
from lab.topology import labid_of


def leftovers(name: str) -> list[str]:
    labid = labid_of(name)
    found = []
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    found += [
        f"interface {line.split()[0]}"
        for line in links.splitlines()
        if line.startswith(f"rl{labid}")
    ]
    netns_dir = Path("/run/netns")
    if netns_dir.is_dir():
        found += [f"netns {p.name}" for p in netns_dir.iterdir() if p.name.startswith(f"rl{labid}")]
    cg = cgroups.lab_cgroup(name)
    found += [f"cgroup dir {d}" for d in cg.dirs() if d.exists()]
    state = lab_dir(name)
    if state.exists():
        found.append(f"state dir {state}")
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f if str(state) in line]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(state) in cmd or f"rl{labid}-router" in cmd:
            found.append(f"process {pid}: {cmd[:80]}")
    return found
