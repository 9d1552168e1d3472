"""The root filesystem of a simulated host (``lab hosts simulate``).

racklab's base rootfs (rootfs.py, the cached debootstrap tarball) plus what a spare
machine prepared for racklab has (images/simhost/packages.txt: Debian's
openssh-server, sudo, packet filters), installed by apt inside a chroot from the host's
mirror, as the VM image is made (vm.py). It is unpacked once into
``<cache>/simhost/<tag>/root`` and never written again: each simulated host mounts
it as the lower layer of an overlay of its own, so every host has its own root
filesystem for the price of the files it changes.

No host keys and no authorized keys are in the tree: each simulated host gets its
own, written into its overlay when it is made.
"""

from __future__ import annotations

import fcntl
import secrets
import shutil
import tempfile
from pathlib import Path

from lab.images import rootfs
from lab.images.build import _Steps, base_rootfs_steps
from lab.images.cache import cache_dir, digest, recipes_dir, tree_digest

READY = ".racklab-simhost"  # written last: a tree without it is an interrupted build
IN_USE = "in-use"  # one file per simulated set mounting the tree


def recipe_dir() -> Path:
    return recipes_dir() / "simhost"


def _words(name: str) -> list[list[str]]:
    lines = []
    for line in (recipe_dir() / name).read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            lines.append(words)
    return lines


def packages() -> list[str]:
    return [w for line in _words("packages.txt") for w in line]


def users() -> dict[str, str]:
    """Login name -> its sudo ("nopasswd" or "password"), besides root."""
    return {line[0]: line[1] for line in _words("users")}


def images_root() -> Path:
    return cache_dir() / "simhost"


def ensure_simhost_root(log=lambda line: None) -> Path:
    """The read-only tree simulated hosts mount under their overlays: built when
    missing (about a minute: apt installs openssh-server), found otherwise."""
    mirror, tarball = base_rootfs_steps(_Steps(None), False, take_lock=True)
    recipe = recipe_dir()
    tag = digest(
        "simhost",
        rootfs.base_digest(mirror),
        tree_digest(recipe, [p for p in recipe.rglob("*") if p.is_file()]),
    )
    out = images_root() / tag
    if (out / READY).is_file():
        return out / "root"
    images_root().mkdir(parents=True, exist_ok=True)
    # two sessions simulating hosts at once build it once
    with open(images_root() / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / READY).is_file():
            _build(tarball, out, log)
            _prune(keep=out)
    return out / "root"


def _build(tarball: Path, out: Path, log) -> None:
    work = Path(tempfile.mkdtemp(prefix=f"{out.name}.partial-", dir=out.parent))
    tree = work / "root"
    tree.mkdir()
    try:
        rootfs._run(
            ["tar", "--numeric-owner", "--xattrs", "-xpf", str(tarball), "-C", str(tree)],
            None,
            log,
        )
        resolv = tree / "etc" / "resolv.conf"
        if resolv.is_symlink() or resolv.exists():
            resolv.unlink()
        shutil.copy2("/etc/resolv.conf", resolv)  # apt resolves the mirror as the host does
        policy = tree / "usr" / "sbin" / "policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")  # no package starts a daemon in the build
        policy.chmod(0o755)
        rootfs.chroot_run(tree, _install_script(), log)
        _finish(tree)
        (work / READY).write_text(out.name + "\n")
        if out.exists():
            shutil.rmtree(out)
        work.chmod(0o755)
        work.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _install_script() -> str:
    lines = [
        "set -e",
        "apt-get update -q",
        "apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold "
        + " ".join(packages()),
    ]
    sudoers = []
    for name, sudo in users().items():
        lines.append(f"useradd --create-home --shell /bin/bash {name}")
        if sudo == "password":
            # a password nobody knows: sudo asks for it, as on a machine set up that way
            lines.append(f"echo '{name}:{secrets.token_hex(16)}' | chpasswd")
            sudoers.append(f"{name} ALL=(ALL:ALL) ALL")
        else:
            # '*' is no password, yet not a locked account (sshd refuses locked ones)
            lines.append(f"usermod -p '*' {name}")
            sudoers.append(f"{name} ALL=(ALL:ALL) NOPASSWD: ALL")
    lines.append(
        "printf '%s\\n' " + " ".join(f"'{s}'" for s in sudoers) + " > /etc/sudoers.d/racklab"
    )
    lines.append("chmod 0440 /etc/sudoers.d/racklab")
    return "; ".join(lines)


def _finish(tree: Path) -> None:
    for p in (tree / "etc" / "ssh").glob("ssh_host_*"):
        p.unlink()  # every simulated host gets its own host key
    shutil.copy2(recipe_dir() / "sshd_config", tree / "etc" / "ssh" / "sshd_config")
    (tree / "usr" / "sbin" / "policy-rc.d").unlink()
    (tree / "etc" / "resolv.conf").write_text("")  # a simulated host has no DNS
    # libvirt's NAT network would send the host's traffic out: racklab's VMs use taps
    # on its own rack bridges, never a libvirt network
    (tree / "etc" / "libvirt" / "qemu" / "networks" / "autostart" / "default.xml").unlink(
        missing_ok=True
    )
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (tree / sub).glob("*"):
            if entry.is_file():
                entry.unlink()


def _prune(keep: Path) -> None:
    """Trees of older recipes: none is mounted by a running simulated host whose set was
    made from the current recipe, and older sets keep theirs open while they run."""
    for old in images_root().iterdir():
        if old.is_dir() and old != keep and (old / READY).is_file():
            if not _in_use(old):
                shutil.rmtree(old, ignore_errors=True)


def _in_use(tree: Path) -> bool:
    # each simulated set records here that it mounts this tree (lab/hosts/simulate.py)
    marker = tree / IN_USE
    return marker.is_dir() and any(marker.iterdir())


def main() -> int:
    print(ensure_simhost_root(print))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
