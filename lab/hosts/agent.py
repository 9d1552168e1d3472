"""The racklab agent on a host: racklab itself, installed from the wheels racklab builds.

On each host, as root:

    /var/lib/racklab-agent/<tag>/venv    a venv holding racklab and its dependencies
    /var/lib/racklab-agent/<tag>/ready   written last: a tag without it is reinstalled

The tag hashes racklab's source and the dependency wheels chosen for the host's own
Python, glibc and machine (lab/images/wheels.py builds or downloads them on this
machine: a spare host needs no access to any package index). When the host has the
tag already, nothing is sent. Otherwise the wheels go over SFTP into a private upload
folder, the host's own ``python3 -m venv --without-pip`` makes the venv, and its own
pip (``--python`` pointed at the venv) installs them with ``--no-index``, so a host
needs Python 3.11+ with pip and nothing else.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from lab.hosts.ssh import Host
from lab.images import wheels
from lab.images.cache import digest

AGENT_ROOT = "/var/lib/racklab-agent"


@dataclass
class Installed:
    host: str
    tag: str
    python: str  # the venv's interpreter on the host
    reused: bool
    seconds: float
    sent_bytes: int = 0

    def as_dict(self) -> dict:
        return dict(vars(self))


# What only the machine running `lab` uses, left out of the agent besides the image's
# host-only requirements (wheels.HOST_ONLY): plots are drawn there, never on a host,
# and matplotlib with numpy is most of what an install would unpack.
CONTROLLER_ONLY = {"matplotlib"}


def agent_requirements() -> list[str]:
    """racklab's runtime requirements an agent installs (its own wheel goes on without
    its metadata's requirements, as in node images, so the ones left out stay out)."""
    return [r for r in wheels.runtime_requirements() if wheels._name(r) not in CONTROLLER_ONLY]


def agent_tag(own: Path, deps: list[Path]) -> str:
    # racklab's wheel lives in a folder named by its source's hash (wheels.py)
    return digest("agent", own.parent.name, sorted(p.name for p in deps))


def agent_python(tag: str) -> str:
    return f"{AGENT_ROOT}/{tag}/venv/bin/python"


def plan(targets: dict[str, dict], log=lambda line: None) -> dict[str, tuple[Path, list[Path]]]:
    """The wheels for each host (``targets``: each host's Python, glibc and machine, as
    the preflight found them), built once for all: every host gets the same racklab."""
    own = wheels.racklab_wheel(log)
    by_target: dict[str, list[Path]] = {}
    out = {}
    for host, target in targets.items():
        key = json.dumps(target, sort_keys=True)
        if key not in by_target:
            by_target[key] = wheels.dependency_wheels(log, target)
        out[host] = (own, by_target[key])
    return out


def install(host: Host, own: Path, deps: list[Path]) -> Installed:
    """Install the agent on ``host`` from the wheels ``plan`` chose for it, or reuse it
    when the host has this very version."""
    started = time.monotonic()
    tag = agent_tag(own, deps)
    home = f"{AGENT_ROOT}/{tag}"
    python = agent_python(tag)
    if host.run(["test", "-f", f"{home}/ready"]).code == 0:
        return Installed(host.name, tag, python, True, time.monotonic() - started)

    # the upload folder belongs to the login (SFTP writes as the login, not as root)
    up = host.check(["mktemp", "-d", "/tmp/racklab-agent.XXXXXX"], "making an upload folder",
                    root=False).out.strip()  # fmt: skip
    sent = 0
    try:
        for whl in [own, *deps]:
            host.put(whl, f"{up}/{whl.name}")
            sent += whl.stat().st_size
        q = shlex.quote
        script = "; ".join(
            [
                "set -e",
                f"rm -rf {q(home)}",
                f"mkdir -p {q(home)}",
                # the host's own libvirt binding (Debian's python3-libvirt) stays
                # visible to the agent: libvirt-python builds only against the host's
                # libvirt, so VM nodes there use the one its packages installed; every
                # requirement still goes into the venv (--ignore-installed)
                f"python3 -m venv --without-pip --system-site-packages {q(home)}/venv",
                f"python3 -m pip --disable-pip-version-check --python {q(python)} install -q "
                f"--no-index --ignore-installed --find-links {q(up)} "
                + " ".join(q(r) for r in agent_requirements()),
                f"python3 -m pip --disable-pip-version-check --python {q(python)} install -q "
                f"--no-index --no-deps {q(up)}/{q(own.name)}",
                f"{q(python)} -c 'import lab.hosts, kazoo, pyroute2, paramiko'",
                f"echo {tag} > {q(home)}/ready",
            ]
        )
        try:
            host.check(script, "installing the racklab agent", timeout=900)
        except BaseException:
            host.run(["rm", "-rf", home])  # half an agent is no agent: nothing stays
            raise
    finally:
        host.run(["rm", "-rf", up], root=False)
    return Installed(host.name, tag, python, False, time.monotonic() - started, sent)


def purge(host: Host) -> bool:
    """Remove every agent from the host, the node images racklab sent to its Docker
    engine (lab/hosts/images.py) and the VM images it sent (vmimages.py); whether
    there was an agent."""
    from lab.hosts import images, vmimages

    had = host.run(["test", "-e", AGENT_ROOT]).code == 0
    if had:
        host.check(["rm", "-rf", AGENT_ROOT], "removing the racklab agent")
    images.remove(host)
    vmimages.remove(host)
    return had


def installed_tags(host: Host) -> list[str]:
    r = host.run(f"cat {AGENT_ROOT}/*/ready 2>/dev/null")
    return r.out.split()
