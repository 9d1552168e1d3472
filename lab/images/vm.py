"""``lab images build --vm``: the VM base disk and the kernel and initrd it boots with.

Built from the same debootstrap root filesystem as the container image (rootfs.py,
cached tarball) and the same host-built wheels (wheels.py), plus what a VM needs and
a container does not: a kernel, an initrd, sshd, and racklab's own PID 1
(images/vm/racklab-init). The packages are installed by apt inside a chroot of the
unpacked rootfs, from the host's mirror; the tree becomes an ext4 file system
(``mkfs.ext4 -d``, no loop device or mount needed) converted to qcow2, which nodes
use read-only as the backing file of their copy-on-write overlays.

Two parts, cached apart because they change at very different rates:

- the base: ``<cache>/vm/<tag>/`` holding disk.qcow2, vmlinuz, initrd.img and
  manifest.json; the tag hashes the base rootfs, the recipe files (images/vm) and
  the dependency wheels. Minutes to build (apt installs a kernel), rarely rebuilt.
- racklab itself: ``<cache>/vm/racklab-<source hash>.img``, a small read-only ext4
  disk holding racklab's own wheel installed into a directory, which the node's
  init mounts at /opt/racklab (a .pth file in the base puts it on sys.path). A
  second to build, so editing racklab's source never rebuilds the base.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lab.images import rootfs, wheels
from lab.images.build import BuildError, StepResult, _Steps, base_rootfs_steps, progress_bar
from lab.images.cache import cache_dir, digest, recipes_dir, source_digest, tree_digest

# The kernel command line every racklab VM boots its image with: the image's root disk
# and its init. The address comes after it, as ip=, for VMs racklab makes; VMs terraform
# makes read theirs from their NoCloud seed.
BOOT_CMDLINE = ("root=/dev/vda rw rootfstype=ext4 console=ttyS0 net.ifnames=0 "
                "init=/usr/sbin/racklab-init panic=-1 quiet mitigations=off")  # fmt: skip

VM_DIR = "vm"
LATEST = "latest"  # symlink to the newest build: what nodes use when they name no image
DISK, KERNEL, INITRD, MANIFEST = "disk.qcow2", "vmlinuz", "initrd.img", "manifest.json"
RACKLAB_MOUNT = "/opt/racklab"  # where the init mounts the racklab disk
# Free space inside the root file system beyond what the image holds: the nodes' data
# (/srv/node) lives on it, through each node's overlay.
FREE_SPACE = 1 << 30


@dataclass
class VMImage:
    """A built VM image: the files a domain boots from."""

    dir: Path
    racklab_disk: Path | None = None  # the racklab layer this image boots with

    @property
    def tag(self) -> str:
        return self.dir.resolve().name

    @property
    def disk(self) -> Path:
        return self.dir / DISK

    @property
    def kernel(self) -> Path:
        return self.dir / KERNEL

    @property
    def initrd(self) -> Path:
        return self.dir / INITRD

    def manifest(self) -> dict:
        try:
            return json.loads((self.dir / MANIFEST).read_text())
        except (OSError, ValueError):
            return {}

    def missing(self) -> list[str]:
        """What a boot needs and this image lacks, one phrase each."""
        out = []
        parts = [("disk", self.disk), ("kernel", self.kernel), ("initrd", self.initrd)]
        if self.racklab_disk is not None:
            parts.append(("racklab disk", self.racklab_disk))
        for what, path in parts:
            if not path.is_file():
                out.append(f"{what} {path}")
        return out


def recipe_dir() -> Path:
    return recipes_dir() / "vm"


def vm_packages() -> list[str]:
    words = []
    for line in (recipe_dir() / "packages.txt").read_text().splitlines():
        words += line.split("#", 1)[0].split()
    return words


def images_root() -> Path:
    return cache_dir() / VM_DIR


def latest() -> VMImage | None:
    """The newest VM image built on this host, if any."""
    link = images_root() / LATEST
    return VMImage(link) if link.exists() else None


def vm_tag(base_digest: str, dep_wheels: list[Path]) -> str:
    recipe = recipe_dir()
    return digest(
        "vm",
        base_digest,
        tree_digest(recipe, [p for p in recipe.rglob("*") if p.is_file()]),
        sorted(p.name for p in dep_wheels),
    )


def racklab_disk_path() -> Path:
    return images_root() / f"racklab-{source_digest()}.img"


@dataclass
class VMBuildResult:
    image: VMImage
    steps: list[StepResult]

    @property
    def cached(self) -> bool:
        return all(s.status in ("cached", "found") for s in self.steps)

    def as_dict(self) -> dict:
        return {
            "vm": str(self.image.dir),
            "tag": self.image.tag,
            **{k: self.image.manifest().get(k) for k in ("kernel_version", "disk_bytes")},
            "steps": [vars(s) for s in self.steps],
        }


def build_vm_image(*, force: bool = False, console=None, progress: bool = True) -> VMBuildResult:
    """Build (or find cached) the VM image; returns where it is."""
    root = images_root()
    root.mkdir(parents=True, exist_ok=True)
    # One VM build at a time on this machine (two test sessions starting together);
    # a separate lock from the container build's, which must not wait minutes for this.
    with open(root / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(force, console, progress)


def _build_locked(force: bool, console, progress: bool) -> VMBuildResult:
    bar = progress_bar(console, progress)
    steps = _Steps(bar)
    if bar is not None:
        bar.start()
    try:
        # the container build writes the same tarball: its lock is taken to build one
        mirror, tarball = base_rootfs_steps(steps, force, take_lock=True)

        def do_wheels(log):
            fresh = not wheels.racklab_wheel_cached()
            own = wheels.racklab_wheel(log)
            deps = wheels.dependency_wheels(log)
            return ("built" if fresh else "cached"), [own, *deps]

        own, *deps = steps.run("build wheels", do_wheels)
        tag = vm_tag(rootfs.base_digest(mirror), deps)
        out = images_root() / tag

        def do_disk(log):
            if out.is_dir() and not VMImage(out).missing() and not force:
                return "cached", tag
            _build_disk(tarball, deps, out, log)
            return "built", tag

        steps.run("build VM disk", do_disk)
        _point_latest(out)
        _prune_bases(keep=out)
        layer = racklab_disk_path()

        def do_layer(log):
            if layer.is_file() and not force:
                return "cached", layer.name
            _build_racklab_disk(own, layer, log)
            _prune_layers(keep=layer)
            return "built", layer.name

        steps.run("build racklab disk", do_layer)
    finally:
        if bar is not None:
            bar.stop()
    return VMBuildResult(VMImage(out, layer), steps.results)


def ensure_vm_image(image_dir: str | None = None) -> VMImage:
    """The image a node boots: ``image_dir`` when given (checked by the caller), else
    the current build, building what is missing (cheap when all is cached)."""
    if image_dir:
        layer = racklab_disk_path()
        if not layer.is_file():
            with open(images_root() / "build.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not layer.is_file():
                    _build_racklab_disk(wheels.racklab_wheel(lambda line: None), layer,
                                        lambda line: None)  # fmt: skip
        return VMImage(Path(image_dir), layer)
    return build_vm_image(progress=False).image


def _build_racklab_disk(wheel: Path, out: Path, log) -> None:
    """racklab's wheel installed into a directory, packed as a small ext4 image."""
    work = Path(tempfile.mkdtemp(prefix=f"{out.stem}.partial-", dir=out.parent))
    try:
        target = work / "tree"
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "-q",
             "--no-index", "--no-deps", "--no-compile", "--target", str(target), str(wheel)],
            capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, "pip install --target",
                                                proc.stdout + proc.stderr)  # fmt: skip
        used = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
        size = max(8 << 20, used * 2) // (1 << 20) * (1 << 20)
        img = work / "racklab.img"
        _run(["mkfs.ext4", "-q", "-F", "-L", "racklab", "-O", "^has_journal", "-d", str(target),
              str(img), str(size // 1024) + "k"], log)  # fmt: skip
        os.replace(img, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _prune_layers(keep: Path) -> None:
    """Older racklab disks, once a newer one exists and they are an hour old: a VM of
    another lab may still use one (a running qemu keeps an unlinked file alive, but a
    VM restarted later would find it gone)."""
    for old in images_root().glob("racklab-*.img"):
        try:
            if old != keep and time.time() - old.stat().st_mtime > 3600:
                old.unlink()
        except OSError:
            pass


def _prune_bases(keep: Path, spare: int = 1) -> None:
    """Superseded base disks (over a gigabyte each): the newest ``spare`` besides the
    current one stay, as do any built in the last hour, since the overlays of VMs
    still running (maybe another lab's) name their base as backing file."""
    others = [p for p in images_root().iterdir()
              if p.is_dir() and p != keep and (p / MANIFEST).is_file()]  # fmt: skip
    others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in others[spare:]:
        if time.time() - old.stat().st_mtime > 3600:
            shutil.rmtree(old, ignore_errors=True)


def _point_latest(out: Path) -> None:
    link = images_root() / LATEST
    tmp = link.with_name(f".{LATEST}.{os.getpid()}")
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(out.name)
    os.replace(tmp, link)


def _run(argv: list[str], log, env: dict | None = None) -> None:
    # rootfs._run streams output to ``log`` and raises with its tail on failure
    rootfs._run(argv, env, log)


def _build_disk(tarball: Path, wheel_files: list[Path], out: Path, log) -> None:
    """Unpack the rootfs, add the VM's packages, racklab and init, and make the disk."""
    work = Path(tempfile.mkdtemp(prefix=f"{out.name}.partial-", dir=out.parent))
    tree = work / "root"
    tree.mkdir()
    try:
        _run(["tar", "--numeric-owner", "--xattrs", "-xpf", str(tarball), "-C", str(tree)], log)
        _prepare_tree(tree, wheel_files)
        _chroot_install(tree, log)
        kernel_version = _finish_tree(tree, work)
        used = int(subprocess.run(
            ["du", "-sb", "--one-file-system", str(tree)], capture_output=True, text=True,
            check=True,
        ).stdout.split()[0])  # fmt: skip
        size = (used * 5 // 4 + FREE_SPACE) // (1 << 20) * (1 << 20)
        raw = work / "disk.raw"
        log(f"mkfs.ext4 -d ({used >> 20} MiB of files, {size >> 20} MiB file system)")
        _run(["mkfs.ext4", "-q", "-F", "-L", "racklab-root", "-d", str(tree), str(raw),
              str(size // 1024) + "k"], log)  # fmt: skip
        shutil.rmtree(tree)
        _run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(work / DISK)], log)
        raw.unlink()
        manifest = {
            "kernel_version": kernel_version,
            "disk_bytes": size,
            "files_bytes": used,
            "packages": vm_packages(),
            "wheels": sorted(p.name for p in wheel_files),
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        work.chmod(0o755)  # mkdtemp's 0700 would keep a non-root qemu out
        if out.exists():  # a forced rebuild, or an incomplete directory
            shutil.rmtree(out)
        os.rename(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _prepare_tree(tree: Path, wheel_files: list[Path]) -> None:
    recipe = recipe_dir()
    # name resolution for apt inside the chroot: the host's own resolver settings
    resolv = tree / "etc" / "resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    shutil.copy2("/etc/resolv.conf", resolv)
    # no package may start a daemon inside the build
    policy = tree / "usr" / "sbin" / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    # a small initrd: only the modules the VM's hardware needs (set before the
    # kernel package runs update-initramfs)
    conf = tree / "etc" / "initramfs-tools" / "conf.d"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "racklab").write_text("MODULES=list\n")
    mods = tree / "usr" / "share" / "initramfs-tools" / "modules.d"
    mods.mkdir(parents=True, exist_ok=True)
    shutil.copy2(recipe / "initramfs-modules", mods / "racklab.conf")
    dpkg_cfg = tree / "etc" / "dpkg" / "dpkg.cfg.d"
    dpkg_cfg.mkdir(parents=True, exist_ok=True)
    shutil.copy2(recipe / "dpkg-excludes", dpkg_cfg / "racklab-vm")
    # racklab's own code comes from its own disk at boot (see the module's docstring)
    site = tree / "usr" / "local" / "lib" / f"python3.{_guest_python_minor(tree)}" / "dist-packages"
    site.mkdir(parents=True, exist_ok=True)
    (site / "racklab.pth").write_text(RACKLAB_MOUNT + "\n")
    whl = tree / "tmp" / "racklab-wheels"
    whl.mkdir(parents=True)
    for w in wheel_files:
        shutil.copy2(w, whl / w.name)


def _guest_python_minor(tree: Path) -> str:
    found = sorted((tree / "usr" / "lib").glob("python3.*"))
    versions = [p.name.removeprefix("python3.") for p in found if p.name[8:].isdigit()]
    if not versions:
        raise RuntimeError("the base root filesystem has no python3")
    return max(versions, key=int)


def _chroot_install(tree: Path, log) -> None:
    """apt-get and pip inside the tree (rootfs.chroot_run)."""
    pkgs = " ".join(vm_packages())
    inside = (
        "set -e; apt-get update -q; "
        f"apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold {pkgs}; "
        "python3 -m pip install -q --no-index --no-cache-dir --break-system-packages "
        "/tmp/racklab-wheels/*.whl; "
        'python3 -c "import kazoo, crc32c, paramiko"'
    )
    rootfs.chroot_run(tree, inside, log)


def _finish_tree(tree: Path, work: Path) -> str:
    """Take the kernel and initrd out, put racklab's init and sshd config in, drop what
    only the build needed. Returns the kernel version."""
    recipe = recipe_dir()
    boot = tree / "boot"
    kernels = sorted(boot.glob("vmlinuz-*"))
    if not kernels:
        raise RuntimeError("the kernel package left no /boot/vmlinuz-* in the image")
    version = kernels[-1].name.removeprefix("vmlinuz-")
    initrd = boot / f"initrd.img-{version}"
    if not initrd.is_file():
        raise RuntimeError(f"update-initramfs left no {initrd.name} in the image")
    shutil.copy2(kernels[-1], work / KERNEL)
    shutil.copy2(initrd, work / INITRD)
    for p in boot.iterdir():  # booted from outside: the copies on the disk are dead weight
        if p.is_file() and not p.name.startswith("config-"):
            p.unlink()
    for p in (tree / "etc" / "ssh").glob("ssh_host_*"):
        p.unlink()  # every node gets its own host key, from its config disk
    shutil.copy2(recipe / "sshd_config", tree / "etc" / "ssh" / "sshd_config")
    init = tree / "usr" / "sbin" / "racklab-init"
    shutil.copy2(recipe / "racklab-init", init)
    init.chmod(0o755)
    (tree / "srv" / "node").mkdir(parents=True, exist_ok=True)
    (tree / "usr" / "sbin" / "policy-rc.d").unlink()
    (tree / "etc" / "resolv.conf").write_text("")  # the lab has no DNS; names are in /etc/hosts
    shutil.rmtree(tree / "tmp" / "racklab-wheels", ignore_errors=True)
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (tree / sub).glob("*"):
            if entry.is_file():
                entry.unlink()
    return version


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m lab.images.vm", description=__doc__.split("\n")[0])
    p.add_argument("--force", action="store_true", help="rebuild even when cached")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        result = build_vm_image(force=args.force, progress=not args.json)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.as_dict(), indent=1))
    else:
        m = result.image.manifest()
        print(f"VM image {result.image.dir} (kernel {m.get('kernel_version')}, "
              f"{'cached' if result.cached else 'built'})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
