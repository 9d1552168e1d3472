"""racklab's ZooKeeper: Apache ZooKeeper's client protocol (jute), sessions, watches,
ACLs, multi, a transaction log with snapshots, and four-letter words, in asyncio.

Run alone with `python -m lab.services.zookeeper zoo.cfg`.
"""

from .config import Config, load, parse
from .server import ZooKeeperServer

__all__ = ["Config", "ZooKeeperServer", "load", "parse"]
