"""A 3- or 5-server racklab ZooKeeper ensemble as subprocesses, one per loopback
address (127.0.0.<base+i>), for failure tests."""

from __future__ import annotations

import os
import signal
import socket
import time

from kazoo.client import KazooClient

from lab.services.ports import free_port

from .conftest import ProcessServer


def four_letter(host: str, port: int, word: str, timeout: float = 2.0) -> str:
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(word.encode())
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out.decode()
    except OSError:
        return ""


class Ensemble:
    def __init__(self, root: str, n: int = 3, base: int = 40, tick_time: int = 200, **extra):
        self.servers: dict[int, ProcessServer] = {}
        self.hostnames = {i: f"127.0.0.{base + i}" for i in range(1, n + 1)}
        lines = {}
        for i, h in self.hostnames.items():
            lines[f"server.{i}"] = f"{h}:{free_port(h)}:{free_port(h)}"
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
                **lines,
                **extra,
            }
            path = os.path.join(data_dir, "zoo.cfg")
            with open(path, "w") as f:
                f.write("".join(f"{k}={v}\n" for k, v in conf.items()))
            self.servers[i] = ProcessServer(path, h, port, os.path.join(data_dir, "server.log"))

    @property
    def connect_string(self) -> str:
        return ",".join(s.hosts for s in self.servers.values())

    def start(self, *ids: int) -> None:
        for i in ids or self.servers:
            self.servers[i].start(wait=False)
        for i in ids or self.servers:
            s = self.servers[i]
            from .conftest import wait_port

            wait_port(s.host, s.port, proc=s.proc)

    def kill(self, i: int, sig=signal.SIGKILL) -> None:
        self.servers[i].kill(sig)

    def stop_all(self) -> None:
        for s in self.servers.values():
            if s.proc is not None and s.proc.poll() is None:
                try:
                    s.proc.send_signal(signal.SIGCONT)
                except ProcessLookupError:
                    pass
            s.kill()

    def mode(self, i: int) -> str:
        s = self.servers[i]
        if s.proc is None or s.proc.poll() is not None:
            return "down"
        text = four_letter(s.host, s.port, "srvr")
        for line in text.splitlines():
            if line.startswith("Mode: "):
                return line[6:]
        return "looking" if text else "down"

    def wait_leader(self, timeout: float = 30.0, among=None) -> int:
        """Wait until one server leads and a quorum serves; return the leader's id."""
        deadline = time.monotonic() + timeout
        ids = among or list(self.servers)
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

    def client(self, *ids: int, timeout: float = 4.0, start_timeout: float = 20.0) -> KazooClient:
        hosts = ",".join(self.servers[i].hosts for i in (ids or self.servers))
        c = KazooClient(hosts=hosts, timeout=timeout)
        try:
            c.start(timeout=start_timeout)
        except Exception:
            c.stop()
            c.close()
            raise
        return c
