"""Debian's Apache ZooKeeper 3.8 (the `zookeeper` package) on loopback, the reference
racklab's ZooKeeper is tested and measured against: a standalone server, and an
ensemble through racklab's own minicluster with Apache's command line."""

from __future__ import annotations

import os
import subprocess

from lab.bench.reference import (
    APACHE_ZK_QUORUM,
    apache_zk_argv,
    apache_zk_available,
    wait_zk_serving,
)
from lab.services.zookeeper.minicluster import Ensemble

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
SLF4J_SIMPLE = "/usr/share/java/slf4j-simple.jar"
available = apache_zk_available

# Apache serves no admin HTTP port and answers every four-letter word here, as the
# tests and the benchmark ask them of both servers.
APACHE_DEFAULTS = {"admin.enableServer": "false", "4lw.commands.whitelist": "*"}


class ApacheZooKeeper:
    def __init__(
        self,
        data_dir: str,
        port: int,
        host: str = "127.0.0.1",
        tick_time: int = 200,
        extra: dict | None = None,
        log_binding: bool = False,
    ):
        self.data_dir = data_dir
        self.host = host
        self.port = port
        os.makedirs(data_dir, exist_ok=True)
        self.cfg = os.path.join(data_dir, "zoo.cfg")
        with open(self.cfg, "w") as f:
            f.write(
                f"tickTime={tick_time}\ndataDir={data_dir}\nclientPort={port}\n"
                f"clientPortAddress={host}\n"
            )
            f.writelines(f"{k}={v}\n" for k, v in APACHE_DEFAULTS.items())
            # A key zoo.cfg does not know becomes the system property "zookeeper.<key>".
            f.writelines(f"{k}={v}\n" for k, v in (extra or {}).items())
        self.proc = None
        # Debian's jar finds no SLF4J binding on the reference classpath and logs
        # nothing; with slf4j-simple, its WARN lines land in apache-zk.log.
        self.log_binding = log_binding

    @property
    def hosts(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 60.0):
        log = open(os.path.join(self.data_dir, "apache-zk.log"), "ab")
        argv = apache_zk_argv(self.cfg)
        if self.log_binding:
            i = argv.index("-cp") + 1
            argv[i] += ":" + SLF4J_SIMPLE
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        try:
            wait_zk_serving(self.host, self.port, self.proc, timeout)
        except (RuntimeError, TimeoutError):
            self.stop()
            raise
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def quorum_argv(cfg: str, heap: str = "256m") -> list[str]:
    """An Apache ensemble member's command line."""
    return apache_zk_argv(cfg, APACHE_ZK_QUORUM, heap=heap)


def apache_ensemble(root: str, n: int = 3, base: int = 40, heap: str = "256m", **extra) -> Ensemble:
    """An ensemble of n Apache servers on 127.0.0.<base+i> (not started)."""
    return Ensemble(
        root, n, base, argv=lambda cfg: quorum_argv(cfg, heap), **APACHE_DEFAULTS, **extra
    )


def differences(theirs: list[tuple], ours: list[tuple]) -> list[str]:
    """The steps of a scenario, (label, what was seen...) each, whose results differ
    between Apache's run and racklab's, one message per step."""
    out = []
    for t, o in zip(theirs, ours, strict=True):
        if t != o:
            a, b = (t[1], o[1]) if len(t) == 2 else (t[1:], o[1:])
            out.append(f"{t[0]}: apache={a!r}\n{'':>{len(t[0])}}  racklab={b!r}")
    return out
