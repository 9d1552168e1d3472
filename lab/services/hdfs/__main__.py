"""python -m lab.services.hdfs namenode|datanode|secondarynamenode --config DIR"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

from .config import Configuration


def _make(role: str, conf: Configuration):
    if role == "namenode":
        from .namenode import NameNode

        return NameNode(conf)
    if role == "datanode":
        from .datanode import DataNode

        return DataNode(conf)
    from .secondary import SecondaryNameNode

    return SecondaryNameNode(conf)


async def _run(role: str, daemon) -> None:
    await daemon.start()
    ready = {"role": role}
    if role == "namenode":
        ready.update(http=list(daemon.http_address), rpc=list(daemon.rpc_address))
    elif role == "datanode":
        ready.update(ip=daemon.ip, http=daemon.http_port, xfer=daemon.xfer_port, uuid=daemon.uuid)
    else:
        ready.update(http=list(daemon.http_address))
    # One line on stdout says the daemon listens (tests and the orchestrator wait for it).
    print("READY " + json.dumps(ready), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await daemon.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.services.hdfs")
    parser.add_argument("role", choices=["namenode", "datanode", "secondarynamenode"])
    parser.add_argument(
        "--config", required=True, help="directory holding core-site.xml and hdfs-site.xml"
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        conf = Configuration.load(args.config)
        # Settings are read when the daemon is built: a bad value is a user mistake
        # reported in one line, before anything listens.
        daemon = _make(args.role, conf)
    except (OSError, ValueError, KeyError) as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_run(args.role, daemon))
    return 0


if __name__ == "__main__":
    sys.exit(main())
