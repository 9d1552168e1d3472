"""Fixtures: racklab's ZooKeeper in a background thread (fast, port 0) or as a real
subprocess (for kill -9 and restarts), and kazoo clients against it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from kazoo.client import KazooClient

from lab.services.ports import free_port
from lab.services.zookeeper.config import parse
from lab.services.zookeeper.server import ZooKeeperServer


class ThreadedServer:
    """A ZooKeeperServer on its own event loop in a daemon thread."""

    def __init__(self, data_dir: str, tick_time: int = 100, **extra):
        lines = {
            "tickTime": tick_time,
            "dataDir": data_dir,
            "clientPort": 0,
            "clientPortAddress": "127.0.0.1",
        }
        lines.update(extra)
        self.cfg = parse("".join(f"{k}={v}\n" for k, v in lines.items()))
        self.loop = asyncio.new_event_loop()
        self.server = ZooKeeperServer(self.cfg)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(self.server.start())
        self.port = self.server.port
        self.hosts = f"127.0.0.1:{self.port}"

    def call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self, fn, *args):
        """Run a plain function on the server's loop (to look at its state safely)."""

        async def wrapper():
            return fn(*args)

        return self.call(wrapper())

    def stop(self):
        try:
            self.call(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()


@pytest.fixture
def zk_server(tmp_path):
    s = ThreadedServer(str(tmp_path / "data"))
    yield s
    s.stop()


@pytest.fixture
def make_client(zk_server):
    clients = []

    def make(hosts=None, **kw):
        kw.setdefault("timeout", 5)
        c = KazooClient(hosts=hosts or zk_server.hosts, **kw)
        c.start(timeout=10)
        clients.append(c)
        return c

    yield make
    for c in clients:
        try:
            c.stop()
            c.close()
        except Exception:
            pass


@pytest.fixture
def zk(make_client):
    return make_client()


def wait_port(host: str, port: int, timeout: float = 20.0, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5) as s:
                s.sendall(b"ruok")
                if s.recv(4) == b"imok":
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not answer ruok in {timeout}s")


class ProcessServer:
    """`python -m lab.services.zookeeper zoo.cfg` as a subprocess."""

    def __init__(self, conf_path: str, host: str, port: int, log_path: str):
        self.conf_path = conf_path
        self.host = host
        self.port = port
        self.log_path = log_path
        self.proc = None

    @property
    def hosts(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, wait: bool = True):
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lab.services.zookeeper", self.conf_path],
            stdout=logf,
            stderr=subprocess.STDOUT,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        )
        logf.close()
        if wait:
            wait_port(self.host, self.port, proc=self.proc)
        return self

    def kill(self, sig=signal.SIGKILL):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def stop(self):
        self.kill(signal.SIGTERM)


@pytest.fixture
def process_server(tmp_path):
    """Factory for subprocess servers; every one started is killed at the end."""
    started: list[ProcessServer] = []

    def make(data_dir=None, tick_time=200, **extra):
        data_dir = data_dir or str(tmp_path / f"data{len(started)}")
        os.makedirs(data_dir, exist_ok=True)
        port = free_port()
        conf = {
            "tickTime": tick_time,
            "dataDir": data_dir,
            "clientPort": port,
            "clientPortAddress": "127.0.0.1",
        }
        conf.update(extra)
        path = os.path.join(data_dir, "zoo.cfg")
        with open(path, "w") as f:
            f.write("".join(f"{k}={v}\n" for k, v in conf.items()))
        s = ProcessServer(path, "127.0.0.1", port, os.path.join(data_dir, "server.log"))
        started.append(s)
        return s

    yield make
    for s in started:
        s.kill()
