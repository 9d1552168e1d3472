"""A client that reuses a request id (xid) — a fuzzer found this one — gets a reply to
every request, in order, and the server goes on serving everybody else. (A single slot
per (session, xid) once orphaned the first write, which then held every later request,
new sessions included, in the queue for ever.)"""

from __future__ import annotations

from lab.services.zookeeper.datatree import OPEN_ACL_UNSAFE
from lab.services.zookeeper.proto import CreateRequest, SetDataRequest

from .rawclient import RawClient

CREATE, SET_DATA = 1, 5


def test_writes_with_one_xid_all_answered_and_server_keeps_serving(zk_server, make_client):
    raw = RawClient("127.0.0.1", zk_server.port)
    raw.connect()
    create = CreateRequest("/rx", b"0", list(OPEN_ACL_UNSAFE), 0)
    # Pipelined: the three writes are in flight together, all with xid 7.
    raw.send_frame(b"\x00\x00\x00\x07\x00\x00\x00\x01" + create.serialize())
    for v in (b"1", b"2"):
        raw.send_frame(
            b"\x00\x00\x00\x07\x00\x00\x00\x05" + SetDataRequest("/rx", v, -1).serialize()
        )
    replies = [raw.reply()[0] for _ in range(3)]
    assert [h.xid for h in replies] == [7, 7, 7]
    assert [h.err for h in replies] == [0, 0, 0]
    zk = make_client()  # a new session is created: nothing is stuck in the queue
    assert zk.get("/rx")[0] == b"2"
    raw.close()
