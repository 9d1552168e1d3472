"""Where built artefacts live and how their content tags are computed.

Tags come from hashes of the inputs (recipe files, mirror, package list, wheel
names, racklab's source), not of the outputs: debootstrap and wheels are not
byte-reproducible, but the same inputs must map to the same tag so nothing
unchanged is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import lab

DEFAULT_CACHE = Path("/var/cache/racklab")


def cache_dir() -> Path:
    path = Path(os.environ.get("RACKLAB_CACHE", DEFAULT_CACHE))
    path.mkdir(parents=True, exist_ok=True)
    return path


def project_root() -> Path:
    """The source tree racklab is installed from (editable install or checkout)."""
    root = Path(lab.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise FileNotFoundError(
            f"racklab's source tree (pyproject.toml) is not beside {root / 'lab'}; "
            "images are built from a checkout or an editable install"
        )
    return root


def recipes_dir() -> Path:
    return project_root() / "images"


def digest(*parts: object) -> str:
    """A short stable hash of JSON-able parts."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def tree_digest(root: Path, files: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def source_digest() -> str:
    """Hash of everything that goes into racklab's own wheel."""
    root = project_root()
    files = [root / "pyproject.toml"]
    for path in (root / "lab").rglob("*"):
        if (
            path.is_file()
            and "__pycache__" not in path.parts
            and path.suffix not in (".pyc", ".pyo")
        ):
            files.append(path)
    return tree_digest(root, files)
