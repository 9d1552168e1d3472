"""The reference servers racklab's are measured and cross-checked against, and the
loopback plumbing to start them; shared by the benchmarks and the test suites.

Debian's Apache ZooKeeper (the `zookeeper` package): zookeeper.jar's manifest names
its dependencies, and /etc/zookeeper/conf on the class path gives it a console-only
log4j configuration, so its log goes wherever the caller sends standard output.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

APACHE_ZK_JAR = "/usr/share/java/zookeeper.jar"
APACHE_ZK_CONF_DIR = "/etc/zookeeper/conf"
APACHE_ZK_STANDALONE = "org.apache.zookeeper.server.ZooKeeperServerMain"
APACHE_ZK_QUORUM = "org.apache.zookeeper.server.quorum.QuorumPeerMain"


def apache_zk_available() -> bool:
    return os.path.exists(APACHE_ZK_JAR) and shutil.which("java") is not None


def apache_zk_argv(
    cfg: str | os.PathLike, main: str = APACHE_ZK_STANDALONE, heap: str = "256m"
) -> list[str]:
    """The command line of an Apache ZooKeeper server reading zoo.cfg `cfg`."""
    log_dir = os.path.dirname(os.fspath(cfg)) or "."
    return [
        "java",
        f"-Xmx{heap}",
        f"-Dzookeeper.log.dir={log_dir}",
        "-cp",
        f"{APACHE_ZK_CONF_DIR}:{APACHE_ZK_JAR}",
        main,
        os.fspath(cfg),
    ]


def wait_zk_serving(host: str, port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Until a ZooKeeper server (Apache's or racklab's) takes sessions: `ruok` answers
    before that, `srvr` shows a Mode only then (standalone, or leader/follower once an
    ensemble has formed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=1) as s:
                s.sendall(b"srvr")
                if b"Mode: " in s.recv(4096):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{host}:{port} is not serving")
