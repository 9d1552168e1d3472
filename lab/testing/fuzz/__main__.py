"""python -m lab.testing.fuzz [--service hdfs,yarn,zookeeper,kafka] [--inputs N] [--seed S]

Runs a fuzz campaign against each service started on loopback addresses in a scratch
folder, and prints, per service: inputs tried, crashes, tracebacks, hangs, failed client
checks and peak memory. Exit code 0 when every service came out clean, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

from .core import campaign
from .targets import TARGETS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lab.testing.fuzz", description=__doc__.split("\n")[0]
    )
    ap.add_argument(
        "--service", default=",".join(TARGETS), help="comma-separated: " + ", ".join(TARGETS)
    )
    ap.add_argument("--inputs", type=int, default=2000, help="inputs per service")
    ap.add_argument("--batch", type=int, default=200, help="inputs between two checks")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument(
        "--seconds", type=float, default=None, help="stop a service's campaign after this"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    seed = random.randrange(2**32) if args.seed is None else args.seed
    reports = []
    for name in args.service.split(","):
        if name not in TARGETS:
            ap.error(f"unknown service {name!r}; choose from {', '.join(TARGETS)}")
        target = TARGETS[name]()
        with tempfile.TemporaryDirectory(prefix=f"racklab-fuzz-{name}-") as work:
            target.start(Path(work))
            try:
                report = campaign(target, args.inputs, seed, args.batch, deadline=args.seconds)
            finally:
                target.stop()
        reports.append(report)
        if not args.json:
            print(report.summary(), flush=True)
            for problem in report.crashes + report.hangs + report.failed_checks:
                print("   ", problem)
    if args.json:
        print(json.dumps([r.__dict__ | {"clean": r.clean} for r in reports], indent=2))
    return 0 if all(r.clean for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
