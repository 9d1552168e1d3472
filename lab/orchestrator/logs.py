"""`lab logs`: a node's own log and its services' logs, the last lines of each, and
following them as they grow (as `tail -f` does with several files)."""

from __future__ import annotations

import time
from collections.abc import Callable

from .lab import LabError, get_node
from .state import State


class Log:
    """One log of a node, read through the node contract (any kind of node)."""

    def __init__(self, label: str, read: Callable[[], bytes]):
        self.label, self._read, self.seen = label, read, 0

    def read(self) -> bytes:
        try:
            return self._read()
        except OSError:
            return b""  # not written yet (a service that has not started)

    def new(self) -> bytes:
        """What was appended since the last call (all of it again if it was truncated)."""
        data = self.read()
        if len(data) < self.seen:
            self.seen = 0
        chunk, self.seen = data[self.seen :], len(data)
        return chunk


def sources(state: State, node: str, service: str | None = None) -> list[Log]:
    """The node's own log (if it writes one) and each of its services' logs, or the one
    service asked for (by its name, like zookeeper-server, or by its service)."""
    n = get_node(state, node)
    on_node = [s for s in state.get("services", {}).values() if s["node"] == node]
    if service is not None:
        found = [s for s in on_node if service in (s["name"], s["service"])]
        if not found:
            names = ", ".join(s["name"] for s in on_node) or "none"
            raise LabError(f"node {node} runs no service {service} (it runs: {names})")
        on_node = found
    own = Log(f"{node} (the node)", lambda: n.logs().encode())
    logs = [own] if service is None and own.read() else []  # most nodes' own log is empty
    for s in on_node:
        logs.append(Log(s["name"], lambda path=s["log"]: n.get_file(path)))
    return logs


def last_lines(data: bytes, n: int | None) -> bytes:
    if n is None:
        return data
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-n:]) if n > 0 else b""


def show(
    logs: list[Log],
    write: Callable[[bytes], None],
    tail: int | None = None,
    follow: bool = False,
    interval: float = 0.5,
) -> None:
    """Print each log (its last `tail` lines), with a `==> name <==` header when there are
    several; with `follow`, keep printing what is appended until interrupted."""
    headers = len(logs) > 1
    last = None
    for log in logs:
        data = log.new()
        if headers and (data or not follow):
            write(f"{'' if last is None else chr(10)}==> {log.label} <==\n".encode())
            last = log
        write(last_lines(data, tail))
    while follow:
        time.sleep(interval)
        for log in logs:
            chunk = log.new()
            if chunk:
                if headers and last is not log:
                    write(f"\n==> {log.label} <==\n".encode())
                    last = log
                write(chunk)
