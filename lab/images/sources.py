"""Find the Debian mirror the host already uses, from its own apt sources.

The base rootfs must come from the same mirror apt uses on this machine (a lab may
sit behind a local mirror or a snapshot): we never hard-code a host. Both source
formats are read: deb822 ``*.sources`` files and one-line ``sources.list`` entries.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

APT_DIR = Path("/etc/apt")
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


class MirrorNotFound(RuntimeError):
    pass


@dataclass(frozen=True)
class Mirror:
    uri: str
    suite: str
    keyring: str
    origin: str  # the file the entry came from, for messages

    def __str__(self) -> str:
        return f"{self.uri} {self.suite}"

    def as_dict(self) -> dict:
        return {"uri": self.uri, "suite": self.suite, "keyring": self.keyring}


@dataclass
class _Entry:
    types: list[str]
    uris: list[str]
    suites: list[str]
    components: list[str]
    signed_by: str | None
    origin: str
    enabled: bool = True


def _parse_deb822(text: str, origin: str) -> list[_Entry]:
    entries = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:  # continuation line
                fields[key] += "\n" + line.strip()
                continue
            if ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if "uris" not in fields:
            continue
        signed = fields.get("signed-by")
        entries.append(
            _Entry(
                types=fields.get("types", "").split(),
                uris=fields["uris"].split(),
                suites=fields.get("suites", "").split(),
                components=fields.get("components", "").split(),
                # Signed-By may hold an inline key block; only a path is usable by debootstrap.
                signed_by=signed if signed and "\n" not in signed else None,
                origin=origin,
                enabled=fields.get("enabled", "yes").lower() != "no",
            )
        )
    return entries


def _parse_one_line(text: str, origin: str) -> list[_Entry]:
    entries = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = shlex.split(line)
        kind, rest = words[0], words[1:]
        options: dict[str, str] = {}
        if rest and rest[0].startswith("["):
            opts = []
            while rest:
                word = rest.pop(0)
                opts.append(word)
                if word.endswith("]"):
                    break
            for opt in " ".join(opts).strip("[] ").split():
                k, _, v = opt.partition("=")
                options[k] = v
        if len(rest) < 2:
            continue
        entries.append(
            _Entry(
                types=[kind],
                uris=[rest[0]],
                suites=[rest[1]],
                components=rest[2:],
                signed_by=options.get("signed-by"),
                origin=origin,
            )
        )
    return entries


def _host_codename() -> str | None:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"') or None
    except OSError:
        pass
    return None


def read_entries(apt_dir: Path = APT_DIR) -> list[_Entry]:
    entries: list[_Entry] = []
    main_list = apt_dir / "sources.list"
    if main_list.is_file():
        entries += _parse_one_line(main_list.read_text(), str(main_list))
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".sources":
                entries += _parse_deb822(path.read_text(), str(path))
            elif path.suffix == ".list":
                entries += _parse_one_line(path.read_text(), str(path))
    return entries


def host_mirror(apt_dir: Path = APT_DIR, suite: str | None = None) -> Mirror:
    """The mirror and suite to debootstrap from: the host's own Debian release by default.

    Picks an enabled binary ("deb") entry carrying the release suite itself (not
    -updates or -security, which are not complete archives) with the main component.
    """
    suite = suite or _host_codename()
    entries = [e for e in read_entries(apt_dir) if e.enabled and "deb" in e.types]
    for entry in entries:
        if "main" not in entry.components:
            continue
        for candidate in entry.suites:
            if "-" in candidate or "/" in candidate:
                continue
            if suite and candidate != suite:
                continue
            uri = next(
                (u for u in entry.uris if u.startswith(("http://", "https://", "file:"))), None
            )
            if uri:
                keyring = entry.signed_by or DEFAULT_KEYRING
                return Mirror(
                    uri=uri.rstrip("/"), suite=candidate, keyring=keyring, origin=entry.origin
                )
    where = f"{apt_dir}/sources.list and {apt_dir}/sources.list.d/"
    wanted = f"suite {suite!r}" if suite else "a release suite"
    raise MirrorNotFound(f"no enabled 'deb' entry with {wanted} and component 'main' in {where}")


def apt_proxy_env() -> dict[str, str]:
    """The proxy apt is configured with (Acquire::http::Proxy), as env for debootstrap's wget."""
    try:
        out = subprocess.run(
            [
                "apt-config",
                "shell",
                "HTTP",
                "Acquire::http::Proxy",
                "HTTPS",
                "Acquire::https::Proxy",
            ],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    env = {}
    for line in out.splitlines():
        name, _, value = line.partition("=")
        value = value.strip().strip("'")
        if value and value.upper() != "DIRECT":
            env["http_proxy" if name == "HTTP" else "https_proxy"] = value
    return env
