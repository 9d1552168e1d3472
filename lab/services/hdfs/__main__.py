"""python -m lab.services.hdfs namenode|datanode|secondarynamenode --config DIR"""

from __future__ import annotations

import json
import sys

from ..hadoop import daemon
from .config import Configuration

# What each role imports when it starts, for a parent that loads them before forking
# its daemons (racklab's process nodes: lab/backends/process_zygote.py).
PRELOAD = (".namenode", ".datanode")


def _make(role: str, config_dir: str):
    # settings are read when the daemon is built: a bad value is one sentence, exit 2
    conf = Configuration.load(config_dir)
    if role == "namenode":
        from .namenode import NameNode

        return NameNode(conf)
    if role == "datanode":
        from .datanode import DataNode

        return DataNode(conf)
    from .secondary import SecondaryNameNode

    return SecondaryNameNode(conf)


def _ready(role: str, d) -> None:
    """One line on stdout says the daemon listens (tests and the orchestrator wait for it)."""
    ready = {"role": role}
    if role == "namenode":
        ready.update(http=list(d.http_address), rpc=list(d.rpc_address))
    elif role == "datanode":
        ready.update(ip=d.ip, http=d.http_port, xfer=d.xfer_port, uuid=d.uuid)
    else:
        ready.update(http=list(d.http_address))
    print("READY " + json.dumps(ready), flush=True)


def main(argv: list[str] | None = None) -> int:
    return daemon.main(
        "python -m lab.services.hdfs",
        ["namenode", "datanode", "secondarynamenode"],
        "directory holding core-site.xml and hdfs-site.xml",
        _make,
        _ready,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
