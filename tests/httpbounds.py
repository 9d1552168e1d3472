"""Checks every Hadoop HTTP server here must pass (they all run hadoop-common's server):
oversized heads answered 431, a bad Content-Length answered 400, and a client that goes
quiet mid-request cut off after the idle timeout. Shared by the HDFS and YARN suites."""

from __future__ import annotations

import socket
import time


def exchange(ip: str, port: int, payload: bytes, timeout: float = 15) -> bytes:
    """Send payload, then read until the server closes (or timeout)."""
    with socket.create_connection((ip, port), timeout=timeout) as s:
        s.sendall(payload)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
        return b"".join(chunks)


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0


def seconds_until_closed(ip: str, port: int, payload: bytes, limit: float = 20) -> float:
    """Send a request that stops half way, then wait: -> seconds until the server hangs up."""
    start = time.monotonic()
    with socket.create_connection((ip, port), timeout=limit) as s:
        s.sendall(payload)
        try:
            while s.recv(65536):
                pass
        except ConnectionResetError:
            pass
        except TimeoutError:
            return float("inf")
    return time.monotonic() - start


def head(target: str, extra: str = "") -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


def check_bounds(ip: str, port: int, target: str, idle: float) -> None:
    """The whole set of checks on one server; `idle` is its configured idle timeout."""
    # One 100 KiB header line, and 2,000 small ones: 431, nothing kept.
    assert status_of(exchange(ip, port, head(target, f"X-Big: {'a' * 100_000}\r\n"))) == 431
    many = "".join(f"X-{i}: v\r\n" for i in range(2000))
    assert status_of(exchange(ip, port, head(target, many))) == 431
    # A Content-Length that is not a number: 400 with a body, not a silent close.
    bad = f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n".encode()
    assert status_of(exchange(ip, port, bad)) == 400
    # Quiet clients: a head that never ends, and a body that stops half way.
    for payload in (
        f"GET {target} HTTP/1.1\r\nHost: x\r\nX-Slow: ".encode(),
        f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789".encode(),
    ):
        took = seconds_until_closed(ip, port, payload, limit=idle + 15)
        assert idle * 0.5 <= took <= idle + 15, took
