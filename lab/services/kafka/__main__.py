"""python -m lab.services.kafka server.properties"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .. import eventloop
from .broker import Broker
from .config import BrokerConfig, ConfigError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lab.services.kafka", description="racklab's Kafka broker"
    )
    ap.add_argument("config", help="server.properties (Kafka's own keys)")
    ap.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a property, as kafka-server-start.sh does",
    )
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from .config import parse_properties

    try:
        with open(args.config) as f:
            props = parse_properties(f.read())
        for o in args.override:
            k, _, v = o.partition("=")
            props[k.strip()] = v.strip()
        config = BrokerConfig.from_properties(props)
    except (OSError, ConfigError) as e:
        print(f"error: {args.config}: {e}", file=sys.stderr)
        return 2
    # uvloop measured no faster for the broker (produce and consume throughput,
    # docs/BENCHMARKS.md), unlike ZooKeeper, whose small requests gain from it
    return eventloop.run(_run(config), asyncio_because="uvloop measured no faster for the broker")


async def _run(config: BrokerConfig) -> int:
    broker = Broker(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await broker.start()
    except Exception as e:  # noqa: BLE001 - say why the broker cannot start, in one line
        print(
            f"error: kafka broker {config.broker_id} cannot start: {type(e).__name__}: {e}",
            file=sys.stderr,
        )
        await broker.stop()
        return 1
    print(
        f"kafka broker {config.broker_id} listening on {broker.advertised[0]}:{broker.advertised[1]}",
        flush=True,
    )
    await stop.wait()
    await broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
