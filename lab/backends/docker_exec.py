"""A command run in a container through `docker exec`, as a subprocess.Popen whose
signals reach the command itself.

Killing the docker CLI alone leaves the command running in the container, so the
command is started under a wrapper that records its in-container pid first; the
Popen forwards send_signal/kill/terminate to that pid and forgets the record once the
command is done.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.backends.container import ContainerNode

# Where popen's wrapper records the in-container pid of each command, so a kill
# reaches the command itself and not only the `docker exec` client on the host.
EXEC_PID_DIR = "/run/racklab/exec"
EXEC_WRAPPER = (
    f'mkdir -p {EXEC_PID_DIR} && echo $$ > {EXEC_PID_DIR}/"$RACKLAB_EXEC_TOKEN" && exec "$@"'
)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


# ---- processes started in a container -----------------------------------------------


class ContainerProcess(subprocess.Popen):
    """A ``docker exec -i`` client process whose signals also reach the command.

    Killing the docker CLI alone leaves the command running in the container; the
    wrapper records the command's in-container pid, so send_signal/kill/terminate
    forward the signal to it.
    """

    def __init__(
        self, argv: list[str], *, node: ContainerNode, container: str, token: str, **kwargs
    ):
        self._node = node
        self._container = container
        self._token = token
        self._cleaned = False
        super().__init__(argv, **kwargs)

    def _pidfile_on_host(self) -> Path | None:
        pid = self._node._init_pid(self._container)
        return Path(f"/proc/{pid}/root{EXEC_PID_DIR}/{self._token}") if pid else None

    def inner_pid(self) -> int | None:
        path = self._pidfile_on_host()
        text = _read(path) if path else None
        return int(text) if text and text.strip().isdigit() else None

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            inner = self.inner_pid()
            if inner:
                subprocess.run(
                    ["docker", "exec", self._container, "kill", f"-{int(sig)}", str(inner)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=30,
                )
        super().send_signal(sig)

    def _forget(self) -> None:
        if self._cleaned or self.returncode is None:
            return
        self._cleaned = True
        path = self._pidfile_on_host()
        if path:
            try:
                path.unlink()
            except OSError:
                pass

    def wait(self, timeout: float | None = None) -> int:
        rc = super().wait(timeout)
        self._forget()
        return rc

    def poll(self) -> int | None:
        rc = super().poll()
        if rc is not None:
            self._forget()
        return rc
