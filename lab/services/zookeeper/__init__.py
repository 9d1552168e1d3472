"""racklab's ZooKeeper: Apache ZooKeeper's client protocol (jute), sessions, one-shot
and persistent watches, ACLs, multi, a transaction log with snapshots, four-letter
words, and a 3- or 5-server ensemble (leader election, ZAB-style broadcast), in
asyncio.

Run alone with `python -m lab.services.zookeeper zoo.cfg` (Apache's zoo.cfg format;
server.N lines and dataDir/myid make it an ensemble member).

Modules: jute (codec), proto (opcodes, errors, records), txn (transactions),
datatree (znodes, sessions, watches), acl, prep (requests -> txns), persistence
(log, snapshots), connection (one client), server (standalone pipeline), quorum
(an ensemble member) with leader, follower and reconfig (dynamic membership),
election + peerwire + framelink (between members), fourletter, config, shell
(`lab zk`), minicluster (servers and ensembles for tests, benchmarks and demos).
"""

from .config import Config, load, parse
from .server import ZooKeeperServer

__all__ = ["Config", "ZooKeeperServer", "load", "parse"]
