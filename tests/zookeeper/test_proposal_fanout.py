"""Who gets a proposal at once and who later (Leader._propose_for): the follower whose
client waits, and as few other voters as a quorum with the leader and it needs; the
rest lazily. With 5 servers one more voter must ack at once, or the waiting client
would wait for an ack sent at leisure (5 ms and more a write, as it did)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lab.services.zookeeper.leader import LAZY_S, Leader
from lab.services.zookeeper.peerwire import PROPOSAL, PROPOSAL_ELSEWHERE, frame


class FakeLink:
    def __init__(self):
        self.later: list[tuple[bytes, float]] = []

    def send_later(self, data: bytes, within: float) -> None:
        self.later.append((data, within))


class FakeFollower:
    def __init__(self, sid: int, synced: bool = True):
        self.sid = sid
        self.forwarding = True
        self.synced = synced
        self.sent: list[bytes] = []
        self.link = FakeLink()

    def send(self, data: bytes) -> None:
        self.sent.append(data)


def fan_out(n: int, voters: set[int], synced=lambda sid: True):
    """Propose from follower 2's client on a leader (id 1) of n servers."""
    followers = {sid: FakeFollower(sid, synced(sid)) for sid in range(2, n + 1)}
    leader = SimpleNamespace(followers=followers, voters=voters, quorum=len(voters) // 2 + 1)
    p = SimpleNamespace(data=b"txn")
    data = frame(PROPOSAL, p.data)
    Leader._propose_for(leader, followers[2], p, data)
    eager = {sid for sid, f in followers.items() if f.sent == [data]}
    lazy = {
        sid
        for sid, f in followers.items()
        if f.link.later == [(frame(PROPOSAL_ELSEWHERE, p.data), LAZY_S)]
    }
    assert eager | lazy == set(followers) and not eager & lazy
    return eager, lazy


@pytest.mark.parametrize(
    "n, eager_count",
    [(3, 1), (5, 2), (7, 3)],  # the waiting follower, plus quorum - 2 more voters
)
def test_a_quorum_with_the_leader_gets_it_at_once(n, eager_count):
    eager, lazy = fan_out(n, set(range(1, n + 1)))
    assert 2 in eager and len(eager) == eager_count
    assert len(lazy) == n - 1 - eager_count


def test_observers_and_unsynced_followers_do_not_count_towards_the_quorum():
    # 5 servers, 4 and 5 voters but 3 an observer (outside the voters) and 4 not in sync
    eager, lazy = fan_out(5, {1, 2, 4, 5}, synced=lambda sid: sid != 4)
    assert eager == {2, 5} and lazy == {3, 4}
