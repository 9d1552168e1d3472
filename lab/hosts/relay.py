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
    inner = base64.b64encode(json.dumps({"spec": d["spec"], "saved": d["saved"]}).encode())
    cmd = shlex.join([d["python"], "-m", "lab.hosts.agentd", "run", inner.decode(), "--", *command])
    if not host.is_root:
        cmd = "sudo -n -- " + cmd
    chan = host.client.get_transport().open_session()
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
