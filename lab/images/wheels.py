"""Wheels of racklab and its runtime dependencies, built on the host.

Nothing inside an image build can reach a package index (the registries sit
behind a proxy only the host trusts), so the host builds every wheel and the image
installs them with ``--no-index``. Dependency wheels are kept in the cache and
reused offline when they satisfy the requirements; racklab's own wheel is keyed by
the hash of its source.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from lab.images.cache import cache_dir, digest, project_root, source_digest

# Requirements only racklab's host side uses, left out of node images: the VM backend
# talks to libvirtd on the host, and libvirt-python builds only against the host's
# libvirt C library (no wheels), which images do not carry. The kubernetes client is the
# k8s backend's, on the host; nothing in a node talks to an API server with it.
HOST_ONLY = {"libvirt-python", "kubernetes"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def runtime_requirements() -> list[str]:
    """pyproject's runtime dependencies, less the host-only ones."""
    data = tomllib.loads((project_root() / "pyproject.toml").read_text())
    return [r for r in data["project"]["dependencies"] if _name(r) not in HOST_ONLY]


def _pip(args: list[str], log) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    proc = subprocess.run(argv, capture_output=True, text=True)
    for line in (proc.stdout + proc.stderr).splitlines():
        log(line)
    return proc


def _fail(proc: subprocess.CompletedProcess, what: str) -> None:
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
    raise subprocess.CalledProcessError(proc.returncode, what, tail)


def _platform_tags(glibc: str, arch: str) -> list[str]:
    """Every manylinux tag a glibc of version ``glibc`` runs, newest first."""
    major, minor = (int(x) for x in glibc.split(".")[:2])
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags += [f"{name}_{arch}" for m, name in legacy.items() if m <= minor]
    return tags + [f"linux_{arch}"]


def dependency_wheels(log, target: dict | None = None) -> list[Path]:
    """Wheels for the runtime requirements: from the cache alone when it suffices,
    otherwise fetched by the host's pip into the cache.

    target: the image's interpreter ({"python": "3.11", "glibc": "2.36", "arch":
    "x86_64"}). When its Python differs from the host's, the host cannot build for
    it, so binary wheels for that Python and platform are downloaded instead.
    """
    host_py = f"{sys.version_info[0]}.{sys.version_info[1]}"
    py = (target or {}).get("python", host_py)
    same = py == host_py
    tag = "cp" + py.replace(".", "")
    deps = cache_dir() / "wheels" / ("deps" if same else f"deps-{tag}")
    deps.mkdir(parents=True, exist_ok=True)
    reqs = runtime_requirements()
    # What the last resolution of these exact requirements chose: reusing it skips
    # pip's resolver (seconds) whenever every chosen wheel is still in the cache.
    report = deps.parent / f"deps-{digest(reqs, py)}.txt"
    if report.is_file():
        chosen = [deps / name for name in report.read_text().split()]
        if chosen and all(p.is_file() for p in chosen):
            return chosen
    if same:
        common = ["wheel", "--prefer-binary", "--find-links", str(deps), "--wheel-dir", str(deps)]
    else:
        assert target is not None
        common = [
            "download",
            "--only-binary=:all:",
            "--python-version",
            py,
            "--implementation",
            "cp",
        ]
        for abi in (tag, "abi3", "none"):
            common += ["--abi", abi]
        for plat in _platform_tags(target["glibc"], target["arch"]):
            common += ["--platform", plat]
        common += ["--find-links", str(deps), "--dest", str(deps)]
        log(f"the image runs Python {py}, the host {host_py}: downloading wheels built for {py}")
    proc = _pip([*common, "--no-index", *reqs], log)
    if proc.returncode != 0:
        log("dependency wheels not all cached; fetching with the host's pip")
        proc = _pip([*common, *reqs], log)
        if proc.returncode != 0:
            _fail(proc, f"pip {common[0]} " + " ".join(reqs))
    # pip names every wheel it resolved ("Saved ..." or "File was already downloaded ...");
    # keep only those, so stale versions in the cache do not leak into the image or its tag.
    chosen = []
    for line in (proc.stdout + proc.stderr).splitlines():
        for marker in ("Saved ", "File was already downloaded "):
            if marker in line:
                chosen.append(Path(line.split(marker, 1)[1].strip()))
    chosen = sorted({p for p in chosen if p.suffix == ".whl" and p.is_file()})
    if not chosen:  # older pips print less: fall back to the whole cache
        chosen = sorted(deps.glob("*.whl"))
    report.write_text("\n".join(p.name for p in chosen) + "\n")
    return chosen


def _racklab_dir() -> Path:
    return cache_dir() / "wheels" / f"racklab-src-{source_digest()}"


def racklab_wheel_cached() -> bool:
    out = _racklab_dir()
    return out.is_dir() and any(out.glob("racklab-*.whl"))


def racklab_wheel(log) -> Path:
    out = _racklab_dir()
    existing = sorted(out.glob("racklab-*.whl")) if out.is_dir() else []
    if existing:
        return existing[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".partial-", dir=out.parent))
    # Build from a copy: setuptools writes build/ and *.egg-info beside the sources,
    # and the checkout is shared with people editing it.
    src = tmp / "src"
    root = project_root()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(root / "lab", src / "lab", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        if (root / name).is_file():
            shutil.copy2(root / name, src / name)
    # With build isolation pip fetches the build backend (setuptools) itself: the
    # venv's own setuptools may be too old to build wheels without the `wheel` package.
    proc = _pip(["wheel", "--no-deps", "--wheel-dir", str(tmp), str(src)], log)
    shutil.rmtree(src, ignore_errors=True)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        _fail(proc, "pip wheel racklab")
    try:
        tmp.rename(out)
    except OSError:  # another build finished the same wheel first: use that one
        shutil.rmtree(tmp, ignore_errors=True)
    return sorted(out.glob("racklab-*.whl"))[0]
