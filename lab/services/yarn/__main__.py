"""``python -m lab.services.yarn resourcemanager|nodemanager --config DIR``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .conf import Configuration


async def _run(role: str, conf: Configuration) -> None:
    if role == "resourcemanager":
        from .rm import ResourceManager

        daemon = ResourceManager(conf)
    else:
        from .nm import NodeManager

        daemon = NodeManager(conf)
    await daemon.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await daemon.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.services.yarn")
    ap.add_argument("role", choices=["resourcemanager", "nodemanager"])
    ap.add_argument(
        "--config", required=True, help="directory with yarn-site.xml (and capacity-scheduler.xml)"
    )
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        conf = Configuration.load(args.config)
        asyncio.run(_run(args.role, conf))
    except (ValueError, OSError) as e:
        print(f"{args.role}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
