"""The relay's framing (lab/backends/k8s_relay.py): frames from the TAP cross the
stream whole and in order, and frames from the stream reach the TAP whole however
TCP cuts the bytes. A SOCK_SEQPACKET pair stands in for the TAP (one read, one
frame, as a TAP gives them); the lab of tests/k8s/test_k8s_overlay.py runs the real
thing."""

from __future__ import annotations

import os
import socket
import threading

from lab.backends.k8s_relay import HEADER, pump


def _frame(i: int) -> bytes:
    return bytes([i % 256]) * (60 + 97 * i)  # 60 to 1500-odd bytes, each its own


def test_frames_cross_whole_both_ways():
    tap_kernel, tap = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    stream_far, stream = socket.socketpair()
    os.set_blocking(tap.fileno(), False)
    t = threading.Thread(target=pump, args=(tap.fileno(), stream), daemon=True)
    t.start()

    # the TAP's side: 15 frames out; the far end of the stream gets them framed
    sent = [_frame(i) for i in range(15)]
    for f in sent:
        tap_kernel.send(f)
    want = b"".join(HEADER.pack(len(f)) + f for f in sent)
    got = b""
    stream_far.settimeout(5)
    while len(got) < len(want):
        got += stream_far.recv(65536)
    assert got == want

    # the stream's side, cut into 7-byte pieces: the TAP gets each frame whole
    back = [_frame(i) for i in range(15, 25)]
    data = b"".join(HEADER.pack(len(f)) + f for f in back)
    for i in range(0, len(data), 7):
        stream_far.sendall(data[i : i + 7])
    tap_kernel.settimeout(5)
    assert [tap_kernel.recv(65536) for _ in back] == back

    stream_far.close()  # the stream ends: pump returns, for the caller to reconnect
    t.join(5)
    assert not t.is_alive()
