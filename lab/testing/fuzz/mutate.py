"""What a fuzzer sends: random bytes, mutations of a valid frame (flipped bits, cut
ends, lying length fields), and JSON values of every type and edge for typed fields."""

from __future__ import annotations

import random
import struct

# Values at the edges of each JSON type and of Java's integer types.
EDGE_INTS = [
    0,
    -1,
    1,
    127,
    128,
    255,
    2**15,
    2**31 - 1,
    2**31,
    -(2**31),
    2**63 - 1,
    2**63,
    2**64,
    -(2**63) - 1,
]
EDGE_STRINGS = [
    "",
    "\x00",
    "a" * 70_000,
    "../../etc/passwd",
    "/",
    "//",
    "%00",
    "\u2603\U0001f600",
    " ",
    "\n",
    "null",
]


def garbage(rng: random.Random, big: bool = False) -> bytes:
    n = (
        rng.choice([0, 1, 3, 4, 7, 8, 16, 100, 1000, 4096])
        if not big
        else rng.randint(10_000, 200_000)
    )
    return rng.randbytes(n)


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to four of: flip bits, cut, insert, drop, or overwrite an int with an edge value."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            buf += rng.randbytes(4)
        what = rng.randrange(6)
        i = rng.randrange(len(buf))
        if what == 0:
            buf[i] ^= 1 << rng.randrange(8)
        elif what == 1:
            del buf[rng.randrange(len(buf)) :]
        elif what == 2:
            buf[i:i] = rng.randbytes(rng.choice([1, 4, 64]))
        elif what == 3:
            del buf[i : i + rng.choice([1, 2, 4, 8])]
        elif what == 4 and len(buf) >= i + 4:
            buf[i : i + 4] = struct.pack(">I", rng.choice([0, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000]))
        else:
            buf[i] = rng.choice([0, 0xFF, 0x7F, 0x80])
    return bytes(buf)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def json_value(rng: random.Random):
    """A JSON value of a random type, often at an edge."""
    return rng.choice(
        [
            lambda: rng.choice(EDGE_INTS),
            lambda: rng.choice(EDGE_STRINGS),
            lambda: rng.choice([None, True, False]),
            lambda: rng.choice([1.5, -0.0, 1e308]),
            lambda: [rng.choice(EDGE_INTS) for _ in range(rng.choice([0, 1, 3]))],
            lambda: {"a": rng.choice(EDGE_INTS), "": None},
            lambda: [[["deep"]]],
        ]
    )()


def mutate_json(rng: random.Random, obj):
    """A copy of obj with one field changed to another type, dropped, or one added."""
    if isinstance(obj, dict) and obj:
        out = dict(obj)
        key = rng.choice(list(out))
        what = rng.randrange(4)
        if what == 0:
            out.pop(key)
        elif what == 1:
            out["unknownField" + str(rng.randrange(3))] = json_value(rng)
        elif what == 2 and isinstance(out[key], dict | list):
            out[key] = mutate_json(rng, out[key])
        else:
            out[key] = json_value(rng)
        return out
    if isinstance(obj, list) and obj:
        out = list(obj)
        i = rng.randrange(len(out))
        out[i] = mutate_json(rng, out[i]) if rng.random() < 0.5 else json_value(rng)
        return out
    return json_value(rng)


def http_request(
    method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: fuzz", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines += ["Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def http_junk(rng: random.Random, target: str) -> bytes:
    """Requests that are not quite HTTP: bad lines, bad lengths, huge or endless heads."""
    return rng.choice(
        [
            lambda: garbage(rng),
            lambda: b"GET " + target.encode() + b" HTTP/9.9\r\n\r\n",
            lambda: b"POST " + target.encode() + b" HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
            lambda: b"POST " + target.encode() + b" HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            lambda: (
                b"POST "
                + target.encode()
                + b" HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
            ),
            lambda: b"GET " + target.encode() + b" HTTP/1.1\r\nX: " + b"a" * 80_000 + b"\r\n\r\n",
            lambda: b"GET " + target.encode() + b" HTTP/1.1\r\n" + b"X: y\r\n" * 3000 + b"\r\n",
            lambda: mutate(rng, http_request("GET", target)),
        ]
    )()
