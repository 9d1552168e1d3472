"""The base root filesystem: debootstrap (minbase) from the host's mirror, packed as a
tarball in the cache, imported into Docker as ``racklab/base:<hash>``."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from lab.images.cache import cache_dir, digest, recipes_dir
from lab.images.sources import Mirror, apt_proxy_env

BASE_REPO = "racklab/base"
VARIANT = "minbase"


def base_packages() -> list[str]:
    path = recipes_dir() / "base" / "packages.txt"
    words = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        words += line.split()
    return words


def debian_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf", "i686": "i386"}.get(
        machine, machine
    )


def base_digest(mirror: Mirror) -> str:
    return digest("base", VARIANT, debian_arch(), mirror.as_dict(), base_packages())


def tarball_path(mirror: Mirror) -> Path:
    return cache_dir() / "rootfs" / f"base-{mirror.suite}-{base_digest(mirror)}.tar"


def debootstrap(mirror: Mirror, out: Path, log) -> None:
    """Build the rootfs into a temporary directory and pack it into ``out``.

    ``log`` receives debootstrap's output lines (for progress and for the error
    message when it fails). The tarball is written beside ``out`` and renamed into
    place, so an interrupted build never leaves a truncated tarball in the cache.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="racklab-rootfs-", dir=out.parent))
    target = work / "root"
    try:
        argv = [
            "debootstrap",
            f"--variant={VARIANT}",
            f"--arch={debian_arch()}",
            f"--include={','.join(base_packages())}",
            f"--keyring={mirror.keyring}",
            mirror.suite,
            str(target),
            mirror.uri,
        ]
        env = {**os.environ, **apt_proxy_env(), "DEBIAN_FRONTEND": "noninteractive"}
        try:
            _run(argv, env, log)
        except subprocess.CalledProcessError as exc:
            # debootstrap's own log holds the real cause (a failed download, a bad key).
            detail = target / "debootstrap" / "debootstrap.log"
            if detail.is_file():
                exc.output = (
                    (exc.output or "")
                    + "\n"
                    + "\n".join(detail.read_text(errors="replace").splitlines()[-10:])
                )
            raise
        # Drop what only the build needed: the package index and the .deb cache.
        for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (target / sub).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = work / "rootfs.tar"
        _run(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(target), "-cf", str(partial), "."],
            None,
            log,
        )
        os.replace(partial, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(argv: list[str], env: dict | None, log) -> None:
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        log(line)
        tail = (tail + [line])[-15:]
    if proc.wait() != 0:
        raise subprocess.CalledProcessError(proc.returncode, argv, "\n".join(tail))


def chroot_run(tree: Path, inside: str, log) -> None:
    """Run ``inside`` in a chroot of the tree, in a private mount namespace: /proc, /sys
    and /dev mounted for the package scripts vanish with it, even if the build is killed."""
    script = (
        'set -e; R="$1"; '
        'mount -t proc proc "$R/proc"; mount -t sysfs sysfs "$R/sys"; '
        'mount --rbind /dev "$R/dev"; '
        'exec chroot "$R" /bin/sh -c "$2"'
    )
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "DEBIAN_FRONTEND": "noninteractive",
        **apt_proxy_env(),
    }
    argv = ["unshare", "--mount", "--propagation", "private", "--",
            "/bin/sh", "-c", script, "sh", str(tree), inside]  # fmt: skip
    _run(argv, env, log)
