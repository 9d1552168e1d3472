"""python -m lab.services.zookeeper zoo.cfg"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .. import eventloop
from .config import ConfigError, load

# What a server imports when it starts (and at its first four-letter word), for a
# parent that loads them before forking its servers (racklab's process nodes:
# lab/backends/process_zygote.py).
PRELOAD = (".quorum", ".server", ".fourletter", ".adminserver")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.services.zookeeper", description=__doc__)
    ap.add_argument("config", help="zoo.cfg in Apache ZooKeeper's format")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        cfg = load(args.config)
    except (OSError, ConfigError) as e:
        print(f"zookeeper: {args.config}: {e}", file=sys.stderr)
        return 2
    return eventloop.run(_run(cfg))


async def _run(cfg) -> int:
    if cfg.standalone:
        from .server import ZooKeeperServer

        server = ZooKeeperServer(cfg)
    else:
        from .quorum import QuorumServer

        server = QuorumServer(cfg)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
