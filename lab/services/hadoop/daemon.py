"""The command line every Hadoop daemon shares (`python -m lab.services.hdfs ROLE
--config DIR`, `python -m lab.services.yarn ROLE --config DIR`): read the site files,
build the daemon, serve until SIGTERM or SIGINT, stop it cleanly.

A bad setting or a port already taken is the user's to fix: one sentence on stderr
(naming the configuration directory, or the role when it fails to start) and exit
code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable

from .. import eventloop


async def serve(daemon, on_ready: Callable[[object], None] | None = None) -> None:
    """Start ``daemon``, tell ``on_ready``, wait for SIGTERM/SIGINT, stop it."""
    await daemon.start()
    if on_ready is not None:
        on_ready(daemon)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await daemon.stop()


def main(
    prog: str,
    roles: list[str],
    config_help: str,
    make: Callable[[str, str], object],
    on_ready: Callable[[str, object], None] | None = None,
    argv: list[str] | None = None,
) -> int:
    """``make(role, config_dir)`` reads the configuration and builds the daemon (a bad
    value raises ValueError or KeyError there, before anything listens)."""
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("role", choices=roles)
    ap.add_argument("--config", required=True, help=config_help)
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    ready = (lambda daemon: on_ready(args.role, daemon)) if on_ready else None
    try:
        daemon = make(args.role, args.config)
    except (OSError, ValueError, KeyError) as exc:  # the files: named by their directory
        print(f"{args.config}: {exc}", file=sys.stderr)
        return 2
    try:
        # asyncio's own loop: a DataNode's zero-copy reads need loop.sendfile, which
        # uvloop lacks
        eventloop.run(serve(daemon, ready), need_sendfile=True)
    except (OSError, ValueError, KeyError) as exc:  # starting (a port taken): the role
        print(f"{args.role}: {exc}", file=sys.stderr)
        return 2
    return 0
