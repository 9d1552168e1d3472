"""The campaign runner: send a target's generated inputs, one connection each, and after
every batch ask what a security review asks — did a daemon die (crash), did one stop
answering (hang), did one log a traceback, how much memory did it take at its peak, and
does a real client still work and still read back every byte it was told was stored.

A target is a running service (its daemons are subprocesses with log files) plus its
input generators and its client check; the runner knows nothing of any protocol.
"""

from __future__ import annotations

import random
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Daemon:
    """A server process under test: how to find it, reach it and read its log."""

    name: str
    pid: int
    host: str
    port: int
    log: Path


@dataclass
class Probe:
    """One input: bytes written on a fresh connection, piece by piece (a piece may be a
    whole frame, a lie about a length, or the first half of something)."""

    kind: str
    host: str
    port: int
    pieces: list[bytes]
    # Hang up our sending side afterwards, so a server waiting for the rest of a cut frame
    # sees the end at once instead of after its timeout (slow clients are tested apart).
    half_close: bool = True


@dataclass
class Report:
    service: str
    seed: int
    inputs: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)  # reply / closed / silent / refused
    crashes: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    tracebacks: int = 0
    failed_checks: list[str] = field(default_factory=list)
    baseline_rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    seconds: float = 0.0
    checks: int = 0
    floods: int = 0

    @property
    def clean(self) -> bool:
        return not (self.crashes or self.hangs or self.tracebacks or self.failed_checks)

    def summary(self) -> str:
        return (
            f"{self.service}: {self.inputs} inputs (seed {self.seed}), "
            f"{len(self.crashes)} crashes, {self.tracebacks} tracebacks, {len(self.hangs)} hangs, "
            f"{len(self.failed_checks)} failed client checks of {self.checks}, {self.floods} floods, "
            f"peak RSS {self.peak_rss_mb:.0f} MiB (baseline {self.baseline_rss_mb:.0f}), "
            f"{self.seconds:.0f} s; answers {self.outcomes}"
        )


class Target(ABC):
    service: str

    @abstractmethod
    def start(self, workdir: Path) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def daemons(self) -> list[Daemon]: ...

    @abstractmethod
    def probes(self, rng: random.Random) -> Iterator[Probe]:
        """An endless stream of inputs."""

    @abstractmethod
    def check(self) -> None:
        """A real client stores something new and reads back everything acknowledged so
        far; raises AssertionError (or the client's error) when it cannot."""

    def alive(self, d: Daemon, timeout: float) -> bool:
        """The daemon accepts a connection within timeout (targets add a real request)."""
        try:
            with socket.create_connection((d.host, d.port), timeout=timeout):
                return True
        except OSError:
            return False


def http_ok(url: str, timeout: float) -> bool:
    """A GET that answers 2xx within timeout: the health request of HTTP daemons."""
    import requests

    try:
        return requests.get(url, timeout=timeout).ok
    except requests.RequestException:
        return False


def send(probe: Probe, timeout: float) -> str:
    """Deliver one input; -> "reply", "closed" (hung up without a word) or "silent"
    (still waiting for more: a lie about a length is allowed to wait for its bytes)."""
    try:
        with socket.create_connection((probe.host, probe.port), timeout=timeout) as s:
            for piece in probe.pieces:
                s.sendall(piece)
            if probe.half_close:
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    return "closed"  # the server hung up before our last byte
            s.settimeout(timeout)
            try:
                return "reply" if s.recv(65536) else "closed"
            except TimeoutError:
                return "silent"
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "connect-timeout"
    except OSError as exc:
        return f"error {exc.errno}"


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def tracebacks(daemons: list[Daemon]) -> int:
    return sum(
        d.log.read_text(errors="replace").count("Traceback") for d in daemons if d.log.exists()
    )


def campaign(
    target: Target,
    inputs: int,
    seed: int,
    batch: int = 100,
    reply_timeout: float = 0.5,
    hang_timeout: float = 10.0,
    deadline: float | None = None,
    flood_every: int = 10,
    flood_size: int = 500,
) -> Report:
    """Run `inputs` generated inputs against a started target (or until `deadline`
    seconds have passed), checking the daemons after every `batch`, and every
    `flood_every` batches holding `flood_size` half-open connections while they answer."""
    rng = random.Random(seed)
    report = Report(target.service, seed)
    daemons = target.daemons()
    report.baseline_rss_mb = sum(rss_mb(d.pid) for d in daemons)
    before = tracebacks(daemons)
    start = time.monotonic()
    probes = target.probes(rng)
    while report.inputs < inputs:
        for _ in range(min(batch, inputs - report.inputs)):
            probe = next(probes)
            outcome = send(probe, reply_timeout)
            report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
            report.inputs += 1
            report.by_kind[probe.kind] = report.by_kind.get(probe.kind, 0) + 1
        if flood_every and report.inputs % (batch * flood_every) == 0:
            flood(target, daemons, report, flood_size, hang_timeout)
        _after_batch(target, daemons, report, hang_timeout)
        if report.crashes or (deadline and time.monotonic() - start > deadline):
            break
    report.tracebacks = tracebacks(daemons) - before
    report.seconds = time.monotonic() - start
    return report


def flood(target: Target, daemons: list[Daemon], report: Report, n: int, hang_timeout: float):
    """n connections at once, each left half-open after a partial request, spread over the
    daemons; every daemon must still answer its health request meanwhile."""
    held = []
    try:
        for i in range(n):
            d = daemons[i % len(daemons)]
            try:
                s = socket.create_connection((d.host, d.port), timeout=hang_timeout)
                s.sendall(b"\x00\x00\x00\x10GET / HTTP/1.1\r\n"[: 1 + i % 20])
                held.append(s)
            except OSError:
                break  # out of descriptors on our side or refused: what we hold is the test
        for d in daemons:
            if not target.alive(d, hang_timeout):
                report.hangs.append(
                    f"{d.name} did not answer with {len(held)} half-open connections"
                )
    finally:
        for s in held:
            s.close()
    report.floods += 1


def _after_batch(target: Target, daemons: list[Daemon], report: Report, hang_timeout: float):
    for d in daemons:
        if not running(d.pid):
            report.crashes.append(f"{d.name} (pid {d.pid}) died after input {report.inputs}")
        elif not target.alive(d, hang_timeout):
            report.hangs.append(f"{d.name} did not answer after input {report.inputs}")
    # VmHWM is the process's own high-water mark, so a spike between samples is seen too.
    report.peak_rss_mb = max(report.peak_rss_mb, sum(rss_mb(d.pid, "VmHWM") for d in daemons))
    if report.crashes:
        return
    report.checks += 1
    try:
        target.check()
    except Exception as exc:  # the report names it; the campaign goes on
        report.failed_checks.append(f"after input {report.inputs}: {exc!r}"[:500])
