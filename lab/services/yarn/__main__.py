"""``python -m lab.services.yarn resourcemanager|nodemanager --config DIR``."""

from __future__ import annotations

import sys

from ..hadoop import daemon
from .conf import Configuration

# What each role imports when it starts, for a parent that loads them before forking
# its daemons (racklab's process nodes: lab/backends/process_zygote.py).
PRELOAD = (".rm", ".nm", ".rest")


def _make(role: str, config_dir: str):
    conf = Configuration.load(config_dir)
    if role == "resourcemanager":
        from .rm import ResourceManager

        return ResourceManager(conf)
    from .nm import NodeManager

    return NodeManager(conf)


def main(argv: list[str] | None = None) -> int:
    return daemon.main(
        "python -m lab.services.yarn",
        ["resourcemanager", "nodemanager"],
        "directory with yarn-site.xml (and capacity-scheduler.xml)",
        _make,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
