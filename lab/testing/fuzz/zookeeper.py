"""ZooKeeper under fuzz: sessions of jute frames over the whole opcode table, each field
drawn from its type's edge values (paths, ACLs, flags, versions, watches), whole sessions
mutated and lying frame lengths, with kazoo checking between batches that the server
answers and still holds every znode it acknowledged."""

from __future__ import annotations

import random
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from kazoo.retry import KazooRetry

from lab.services.ports import free_port, wait_port

from .core import Daemon, Probe, Target
from .mutate import EDGE_INTS, garbage, mutate

PATHS = ["/fuzz", "/fuzz/a", "/fuzz/a/b", "/", "", "/fuzz/", "//", "/fuzz/.", "/fuzz/..", "/zookeeper", "/zookeeper/quota", "/fuzz/\x00", "/fuzz/" + "x" * 2000, "relative", None]  # fmt: skip
SAFE_PATHS = [p for p in PATHS if p not in ("/", "/zookeeper", "/zookeeper/quota")]
SCHEMES = ["world", "digest", "ip", "auth", "sasl", "x509", "", "bogus"]


def _int(v: int) -> bytes:
    return struct.pack(">i", ((v + 2**31) % 2**32) - 2**31)


def _long(v: int) -> bytes:
    return struct.pack(">q", ((v + 2**63) % 2**64) - 2**63)


def _buf(b: bytes | None) -> bytes:
    return _int(-1) if b is None else _int(len(b)) + b


def _str(s: str | None) -> bytes:
    return _buf(None if s is None else s.encode("utf-8", "surrogatepass"))


def _bool(rng: random.Random) -> bytes:
    return bytes([rng.choice([0, 1, 1, 2, 255])])


def frame(payload: bytes) -> bytes:
    return _int(len(payload)) + payload


def connect_request(timeout_ms: int = 4000) -> bytes:
    return frame(_int(0) + _long(0) + _int(timeout_ms) + _long(0) + _buf(b"\x00" * 16) + b"\x00")


class ZooKeeperTarget(Target):
    service = "zookeeper"

    def start(self, workdir: Path) -> None:
        self.port = free_port("127.0.0.1")
        (workdir / "data").mkdir()
        cfg = workdir / "zoo.cfg"
        cfg.write_text(
            f"tickTime=1000\ndataDir={workdir / 'data'}\nclientPort={self.port}\n"
            "clientPortAddress=127.0.0.1\nmaxClientCnxns=0\n4lw.commands.whitelist=*\n"
        )
        self.log = workdir / "zk.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lab.services.zookeeper", str(cfg)],
            stdout=open(self.log, "wb"),
            stderr=subprocess.STDOUT,
        )
        wait_port("127.0.0.1", self.port, 30, self.proc)
        from kazoo.client import KazooClient  # the real client

        # A session timeout (up to 20 ticks) long enough that a loaded machine does not
        # drop the checking client between batches.
        self.zk = KazooClient(hosts=f"127.0.0.1:{self.port}", timeout=20)
        self.zk.start(timeout=20)
        self.zk.ensure_path("/fuzz")
        self.acked: dict[str, bytes] = {}
        self.check()

    def stop(self) -> None:
        try:
            self.zk.stop()
            self.zk.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def daemons(self) -> list[Daemon]:
        return [Daemon("zookeeper", self.proc.pid, "127.0.0.1", self.port, self.log)]

    def alive(self, d: Daemon, timeout: float) -> bool:
        import socket

        try:
            # A new session, not just a four-letter word: sessions go through the same
            # queue as every write, so a stalled queue shows here.
            with socket.create_connection((d.host, d.port), timeout=timeout) as s:
                s.sendall(connect_request())
                s.settimeout(timeout)
                return len(s.recv(64)) >= 4
        except OSError:
            return False

    def check(self) -> None:
        # Bounded: a server that stopped answering fails the check instead of hanging it.
        retry = KazooRetry(max_tries=5, delay=0.2, deadline=30)
        data = str(time.time()).encode()
        path = retry(self.zk.create, "/acked/n", data, makepath=True, sequence=True)
        self.acked[path] = data
        paths = list(self.acked)
        for p in paths[-50:] + random.sample(paths[:-50], min(50, max(0, len(paths) - 50))):
            data, _ = retry(self.zk.get, p)
            assert data == self.acked[p], f"{p} holds {data!r}, not {self.acked[p]!r}"

    # ------------------------------------------------------------ inputs
    def _acl(self, rng: random.Random) -> bytes:
        n = rng.choice([0, 1, 1, 2, -1, 5000])
        if n < 0 or n > 100:
            return _int(n)
        return _int(n) + b"".join(
            _int(rng.choice([31, 1, 0, -1, 64])) + _str(rng.choice(SCHEMES)) + _str(rng.choice(["anyone", "", "u:p", "127.0.0.1", "10.0.0.0/33", "x" * 500]))
            for _ in range(n)
        )  # fmt: skip

    def _op(self, rng: random.Random, inside_multi: bool = False) -> tuple[int, bytes]:
        path = _str(rng.choice(PATHS))
        safe = _str(rng.choice(SAFE_PATHS))
        data = _buf(
            rng.choice([b"", b"x", None, rng.randbytes(rng.choice([10, 1000, 2**20 + 10]))])
        )
        version = _int(rng.choice([-1, 0, 1, 2**31 - 1, -2]))
        flags = _int(rng.choice([0, 1, 2, 3, 4, 5, 6, 7, -1, 2**31 - 1]))
        ops = {
            1: lambda: path + data + self._acl(rng) + flags,
            15: lambda: path + data + self._acl(rng) + flags,
            19: lambda: path + data + self._acl(rng) + flags,
            21: lambda: path + data + self._acl(rng) + flags + _long(rng.choice(EDGE_INTS)),
            2: lambda: safe + version,
            3: lambda: path + _bool(rng),
            4: lambda: path + _bool(rng),
            5: lambda: safe + data + version,
            6: lambda: path,
            7: lambda: safe + self._acl(rng) + version,
            8: lambda: path + _bool(rng),
            12: lambda: path + _bool(rng),
            9: lambda: path,
            11: lambda: b"",
            13: lambda: path + version,
            16: lambda: _str("server.1=x") + _str(None) + _str(None) + _long(-1),
            17: lambda: path + _int(rng.choice([1, 2, 3, 9])),
            18: lambda: path + _int(rng.choice([1, 2, 3, 9])),
            100: lambda: _int(0) + _str(rng.choice(SCHEMES)) + _buf(rng.choice([b"u:p", b"", b"x" * 100])),
            101: lambda: _long(rng.choice([0, -1, 2**62])) + b"".join(_int(rng.choice([0, 1, 2, -1])) + path for _ in range(3)),
            102: lambda: _buf(garbage(rng)),
            103: lambda: path,
            104: lambda: path,
            105: lambda: _long(0) + b"".join(_int(1) + path for _ in range(5)),
            106: lambda: path + _int(rng.choice([0, 1, 2, 7, -1])),
            107: lambda: b"",
            -11: lambda: b"",
            -10: lambda: b"",
            14: lambda: self._multi(rng),
            999: lambda: garbage(rng),
        }  # fmt: skip
        if inside_multi:
            code = rng.choice([1, 2, 5, 13, 15, 19, 4, 8, 999])
        else:
            code = rng.choice(list(ops))
        return code, ops.get(code, lambda: garbage(rng))()

    def _multi(self, rng: random.Random) -> bytes:
        out = b""
        for _ in range(rng.randint(0, 4)):
            code, body = self._op(rng, inside_multi=True)
            out += _int(code) + b"\x00" + _int(-1) + body
        return out + _int(-1) + b"\x01" + _int(-1)

    def probes(self, rng: random.Random) -> Iterator[Probe]:
        while True:
            what = rng.random()
            if what < 0.05:
                pieces = [garbage(rng)]
            elif what < 0.1:  # a lie about a frame's length
                pieces = [
                    connect_request(),
                    _int(rng.choice([2**31 - 1, 2**20 + 1, -5, 0])) + garbage(rng),
                ]
            elif what < 0.15:
                pieces = [
                    rng.choice(
                        [
                            b"ruok",
                            b"stat",
                            b"srvr",
                            b"mntr",
                            b"cons",
                            b"conf",
                            b"dump",
                            b"wchc",
                            b"zzzz",
                            b"stak",
                        ]
                    )
                ]
            else:
                frames = [connect_request(rng.choice([4000, 0, -1, 2**31 - 1]))]
                for xid in range(1, rng.randint(2, 6)):
                    code, body = self._op(rng)
                    frames.append(
                        frame(_int(rng.choice([xid, xid, -2, -8, 0])) + _int(code) + body)
                    )
                pieces = [mutate(rng, b"".join(frames))] if what > 0.85 else frames
            yield Probe("jute", "127.0.0.1", self.port, pieces)
