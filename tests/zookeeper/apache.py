"""Debian's Apache ZooKeeper 3.8 (the `zookeeper` package), started on loopback as
the reference for differential tests and benchmarks."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

JAR = "/usr/share/java/zookeeper.jar"
CONF_DIR = "/etc/zookeeper/conf"
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"


def available() -> bool:
    return os.path.exists(JAR) and shutil.which("java") is not None


def classpath() -> str:
    return f"{CONF_DIR}:{JAR}"


class ApacheZooKeeper:
    def __init__(self, data_dir: str, port: int, host: str = "127.0.0.1", tick_time: int = 200):
        self.data_dir = data_dir
        self.host = host
        self.port = port
        os.makedirs(data_dir, exist_ok=True)
        self.cfg = os.path.join(data_dir, "zoo.cfg")
        with open(self.cfg, "w") as f:
            f.write(
                f"tickTime={tick_time}\ndataDir={data_dir}\nclientPort={port}\n"
                f"clientPortAddress={host}\nadmin.enableServer=false\n"
                "4lw.commands.whitelist=*\n"
            )
        self.proc = None

    @property
    def hosts(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 60.0):
        log = open(os.path.join(self.data_dir, "apache-zk.log"), "ab")
        self.proc = subprocess.Popen(
            [
                "java",
                "-Xmx256m",
                f"-Dzookeeper.log.dir={self.data_dir}",
                "-cp",
                classpath(),
                "org.apache.zookeeper.server.ZooKeeperServerMain",
                self.cfg,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Apache ZooKeeper exited with {self.proc.returncode}")
            try:
                # ruok answers before the server takes sessions; srvr shows a Mode only then.
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    s.sendall(b"srvr")
                    if b"Mode: " in s.recv(4096):
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError("Apache ZooKeeper did not start")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
