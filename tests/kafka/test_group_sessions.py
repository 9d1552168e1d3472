"""The group coordinator's session expiry, without a broker: a member waiting for its
JoinGroup or SyncGroup answer sends no heartbeats (one request at a time per
connection), so it is kept, as Kafka's MemberMetadata.shouldKeepAlive keeps it."""

from __future__ import annotations

import asyncio
import time

from lab.services.kafka.group import GroupCoordinator
from lab.services.kafka.protocol.errors import Error


def _join(member_id: str = "") -> dict:
    return {
        "group_id": "g",
        "member_id": member_id,
        "session_timeout_ms": 1000,
        "rebalance_timeout_ms": 5000,
        "protocol_type": "consumer",
        "protocols": [{"name": "range", "metadata": b"m"}],
    }


async def _story() -> dict:
    gc = GroupCoordinator(initial_delay_ms=0, min_session_ms=1, max_session_ms=60000)
    a = await gc.join(_join(), 5, "a", "h")  # v4+: the id first, then the join
    a = await gc.join(_join(a["member_id"]), 5, "a", "h")
    leader = a["member_id"]
    pending_b = asyncio.ensure_future(gc.join(_join(), 5, "b", "h"))
    b_id = (await pending_b)["member_id"]
    b_join = asyncio.ensure_future(gc.join(_join(b_id), 5, "b", "h"))
    await asyncio.sleep(0.01)
    a = await gc.join(_join(leader), 5, "a", "h")  # the leader rejoins: generation 2
    b = await b_join
    assert a["generation_id"] == b["generation_id"] == 2
    # b waits in SyncGroup for the leader's assignment, past its session
    gen = b["generation_id"]
    b_sync = asyncio.ensure_future(
        gc.sync({"group_id": "g", "member_id": b_id, "generation_id": gen, "assignments": []})
    )
    await asyncio.sleep(0.01)
    g = gc.group("g")
    for m in g.members.values():
        m.last_heartbeat = time.monotonic() - 5  # 5 s without a heartbeat, session 1 s
    gc.expire_sessions()
    kept = set(g.members)
    # the leader (not waiting on anything) expired; b, still waiting, is told to rejoin
    answer = await asyncio.wait_for(b_sync, 1)
    return {"kept": kept, "leader": leader, "b": b_id, "answer": answer}


def test_a_member_waiting_in_sync_group_is_not_expired():
    out = asyncio.run(_story())
    assert out["b"] in out["kept"] and out["leader"] not in out["kept"]
    assert out["answer"]["error_code"] == Error.REBALANCE_IN_PROGRESS
