"""racklab's ZooKeeper for tests, benchmarks and demos on one host, as kazoo ships
kazoo/testing: a server on its own event loop in a thread (fast, port 0), a server as
a real subprocess (for kill -9 and restarts), and a 3- or 5-server ensemble of
subprocesses, one per loopback address 127.0.0.<base+i>.

The ensemble takes the command line of its members as an argument, so the same class
runs Apache ZooKeeper's ensembles (lab/testing/apache_zookeeper.py) for differential
tests and side-by-side benchmarks.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .. import eventloop
from ..ports import free_port
from .config import parse
from .server import ZooKeeperServer

# Where `python -m lab.services.zookeeper` finds the `lab` package.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])


def racklab_argv(cfg: str) -> list[str]:
    """The command line of a racklab server reading zoo.cfg `cfg`."""
    return [sys.executable, "-m", "lab.services.zookeeper", cfg]


def write_cfg(path: str, lines: dict) -> None:
    with open(path, "w") as f:
        f.write("".join(f"{k}={v}\n" for k, v in lines.items()))


def four_letter(host: str, port: int, word: str, timeout: float = 2.0) -> str:
    """A four-letter word's answer, or "" when the server does not answer."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(word.encode())
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out.decode()
    except OSError:
        return ""


def wait_ruok(host: str, port: int, timeout: float = 20.0, proc=None) -> None:
    """Until the server answers `ruok` (it may not serve sessions yet: an ensemble
    member answers while it looks for a leader). A server whose zoo.cfg leaves ruok
    out of 4lw.commands.whitelist (a lab's) answers with the refusal: up all the same."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        answer = four_letter(host, port, "ruok", timeout=0.5)
        if answer == "imok" or answer.startswith("ruok is not executed"):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not answer ruok in {timeout}s")


def mode_of(host: str, port: int) -> str:
    """What `srvr` calls the server: standalone, leader, follower; "looking" while it
    answers without a mode, "down" when it does not answer."""
    text = four_letter(host, port, "srvr")
    for line in text.splitlines():
        if line.startswith("Mode: "):
            return line[6:].strip()
    return "looking" if text else "down"


# Servers started here share the host's loopback: none takes the AdminServer's 8080
# unless a test asks (admin.enableServer=true and its own admin.serverPort). They
# answer every four-letter word (Apache's default is srvr alone): waits ask ruok.
NO_ADMIN = {"admin.enableServer": "false", "4lw.commands.whitelist": "*"}


class ThreadedServer:
    """A ZooKeeperServer on its own event loop in a daemon thread."""

    def __init__(self, data_dir: str, tick_time: int = 100, **extra):
        lines = {
            "tickTime": tick_time,
            "dataDir": data_dir,
            "clientPort": 0,
            "clientPortAddress": "127.0.0.1",
            **NO_ADMIN,
        }
        lines.update(extra)
        self.cfg = parse("".join(f"{k}={v}\n" for k, v in lines.items()))
        self.loop = eventloop.new_loop()
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


class ServerProcess:
    """One server reading `conf_path`, as a subprocess logging to `log_path`;
    racklab's unless `argv` says otherwise."""

    def __init__(
        self,
        conf_path: str,
        host: str,
        port: int,
        log_path: str,
        argv: Callable[[str], list[str]] = racklab_argv,
    ):
        self.conf_path = conf_path
        self.host = host
        self.port = port
        self.log_path = log_path
        self.argv = argv
        self.proc: subprocess.Popen | None = None

    @property
    def hosts(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, wait: bool = True) -> ServerProcess:
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.argv(self.conf_path), stdout=logf, stderr=subprocess.STDOUT, cwd=_PACKAGE_ROOT
        )
        logf.close()
        if wait:
            wait_ruok(self.host, self.port, proc=self.proc)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.alive():
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def mode(self) -> str:
        return mode_of(self.host, self.port) if self.alive() else "down"


def standalone(
    data_dir: str, host: str = "127.0.0.1", tick_time: int = 200, argv=racklab_argv, **extra
) -> ServerProcess:
    """A standalone server's files in `data_dir` (not started)."""
    os.makedirs(data_dir, exist_ok=True)
    port = free_port(host)
    conf = {
        "tickTime": tick_time,
        "dataDir": data_dir,
        "clientPort": port,
        "clientPortAddress": host,
        **NO_ADMIN,
        **extra,
    }
    path = os.path.join(data_dir, "zoo.cfg")
    write_cfg(path, conf)
    return ServerProcess(path, host, port, os.path.join(data_dir, "server.log"), argv)


class Ensemble:
    """n servers (racklab's unless `argv` says otherwise), server i on 127.0.0.<base+i>
    with its files in root/zk<i>; `extra` goes into every zoo.cfg."""

    def __init__(
        self,
        root: str,
        n: int = 3,
        base: int = 40,
        tick_time: int = 200,
        argv: Callable[[str], list[str]] = racklab_argv,
        **extra,
    ):
        self.servers: dict[int, ServerProcess] = {}
        self.hostnames = {i: f"127.0.0.{base + i}" for i in range(1, n + 1)}
        self.peers = {i: f"{h}:{free_port(h)}:{free_port(h)}" for i, h in self.hostnames.items()}
        for i, h in self.hostnames.items():
            data_dir = os.path.join(root, f"zk{i}")
            os.makedirs(data_dir, exist_ok=True)
            with open(os.path.join(data_dir, "myid"), "w") as f:
                f.write(f"{i}\n")
            port = free_port(h)
            conf = {
                "tickTime": tick_time,
                "initLimit": 10,
                "syncLimit": 5,
                "dataDir": data_dir,
                "clientPort": port,
                "clientPortAddress": h,
                **{f"server.{j}": spec for j, spec in self.peers.items()},
                **NO_ADMIN,
                **extra,
            }
            path = os.path.join(data_dir, "zoo.cfg")
            write_cfg(path, conf)
            self.servers[i] = ServerProcess(
                path, h, port, os.path.join(data_dir, "server.log"), argv
            )

    @property
    def connect_string(self) -> str:
        return ",".join(s.hosts for s in self.servers.values())

    def start(self, *ids: int, timeout: float = 20.0) -> None:
        for i in ids or self.servers:
            self.servers[i].start(wait=False)
        for i in ids or self.servers:
            s = self.servers[i]
            wait_ruok(s.host, s.port, timeout, proc=s.proc)

    def kill(self, i: int, sig=signal.SIGKILL) -> None:
        self.servers[i].kill(sig)

    def stop_all(self) -> None:
        for s in self.servers.values():
            if s.alive():
                try:
                    s.proc.send_signal(signal.SIGCONT)  # a paused member dies too
                except ProcessLookupError:
                    pass
            s.kill()

    def mode(self, i: int) -> str:
        return self.servers[i].mode()

    def wait_leader(self, timeout: float = 30.0, among=None) -> int:
        """Wait until one server leads and a quorum serves; return the leader's id."""
        deadline = time.monotonic() + timeout
        ids = among or list(self.servers)
        modes: dict[int, str] = {}
        while time.monotonic() < deadline:
            modes = {i: self.mode(i) for i in ids}
            leaders = [i for i, m in modes.items() if m == "leader"]
            serving = [i for i, m in modes.items() if m in ("leader", "follower")]
            if len(leaders) == 1 and len(serving) >= len(self.servers) // 2 + 1:
                return leaders[0]
            time.sleep(0.1)
        raise TimeoutError(f"no leader: {modes}")

    def wait_serving(self, i: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.mode(i) in ("leader", "follower"):
                return
            time.sleep(0.1)
        raise TimeoutError(f"server {i} is {self.mode(i)}")

    def follower(self, timeout: float = 30.0) -> int:
        """The id of a serving follower, once the ensemble has its leader."""
        leader = self.wait_leader(timeout)
        for i in self.servers:
            if i != leader:
                self.wait_serving(i, timeout)
                return i
        raise TimeoutError("a one-server ensemble has no follower")

    def client(self, *ids: int, timeout: float = 4.0, start_timeout: float = 20.0):
        """A started kazoo client on servers `ids` (all of them when none are given)."""
        from kazoo.client import KazooClient

        hosts = ",".join(self.servers[i].hosts for i in (ids or self.servers))
        c = KazooClient(hosts=hosts, timeout=timeout)
        try:
            c.start(timeout=start_timeout)
        except Exception:
            c.stop()
            c.close()
            raise
        return c
