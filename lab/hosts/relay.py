"""``python -m lab.hosts.relay BLOB -- ARGV``: a command in a node on another host, as a
local process: what a RemoteNode's ``popen`` starts, so `lab exec`, testinfra and
anything else that wants a process with pipes gets one, whatever host the node is on.

BLOB is base64 JSON {"host": HostDef fields, "python": the agent's, "spec": ...,
"saved": ...}. This process logs in to the host (host key checked as always), starts
``agentd run`` there, and copies stdin to it and its output back until it exits, then
exits with its status.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import sys
import threading

from lab.hosts.ssh import HostError, connect
from lab.topology.hosts import HostDef


def main(argv: list[str]) -> int:
    blob = argv[0]
    command = argv[argv.index("--") + 1 :]
    d = json.loads(base64.b64decode(blob))
    spec = HostDef(**d["host"])
    try:
        host = connect(spec)
    except HostError as e:
        print(f"error: {e}", file=sys.stderr)
        return 255
    # what `lab shell` sets for the shell (sshd takes no environment from us)
    env = {k: os.environ[k] for k in ("PS1", "HOSTNAME", "TERM") if k in os.environ}
    inner = base64.b64encode(
        json.dumps({"spec": d["spec"], "saved": d["saved"], "env": env}).encode()
    )
    cmd = shlex.join([d["python"], "-m", "lab.hosts.agentd", "run", inner.decode(), "--", *command])
    if not host.is_root:
        cmd = "sudo -n -- " + cmd
    chan = host.client.get_transport().open_session()
    if os.isatty(0) and os.isatty(1):  # a terminal here: one there too (lab shell)
        cols, rows = shutil.get_terminal_size()
        chan.get_pty(term=os.environ.get("TERM", "xterm"), width=cols, height=rows)
        chan.exec_command(cmd)
        code = _interactive(chan)
        host.close()
        return code
    chan.exec_command(cmd)

    def feed() -> None:
        try:
            while True:
                data = os.read(0, 65536)
                if not data:
                    break
                chan.sendall(data)
        except OSError:
            pass
        chan.shutdown_write()

    threading.Thread(target=feed, daemon=True).start()
    out, err = sys.stdout.buffer, sys.stderr.buffer
    while True:
        if chan.recv_ready():
            out.write(chan.recv(65536))
            out.flush()
        elif chan.recv_stderr_ready():
            err.write(chan.recv_stderr(65536))
            err.flush()
        elif chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
            break
        else:
            chan.status_event.wait(0.02)
    code = chan.recv_exit_status()
    host.close()
    return code


def _interactive(chan) -> int:
    """Raw terminal here, bytes both ways until the remote side ends; its exit status."""
    import select
    import termios
    import tty

    saved = termios.tcgetattr(0)
    tty.setraw(0)
    try:
        while True:
            ready, _, _ = select.select([chan, 0], [], [])
            if chan in ready:
                data = chan.recv(65536)
                if not data:
                    break
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 4096)
                if not data:
                    chan.shutdown_write()
                else:
                    chan.sendall(data)
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)
    return chan.recv_exit_status()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
