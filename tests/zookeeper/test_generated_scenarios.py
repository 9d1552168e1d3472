"""Stateful generated differential test: seeded scenarios (tests/zookeeper/
scenariogen.py) of requests from three sessions over one tree go, step by step, to
Debian's Apache ZooKeeper 3.8 and to racklab's (standalone, TTL nodes enabled).
After each step, every session pings so the watch events it was sent arrive, and a
fourth session reads back the stat of the path the step touched and of its parent.
The reply (error, every decoded field, children in the order sent), each session's
events in order and those stats must match once zxids, session ids and times are
normalised.

The default run is ZK_SCENARIO_SEEDS seeds (default 2) of ZK_SCENARIO_STEPS steps
(default 120); the slow test runs 20 seeds of 400. A failing run names the seed and
the first differing steps, so it can be replayed with ZK_SCENARIO_SEED.
"""

from __future__ import annotations

import os

import pytest

from lab.services.ports import free_port
from lab.services.zookeeper.minicluster import Ensemble, ThreadedServer
from lab.services.zookeeper.proto import CreateRequest, ExistsRequest, Op
from lab.testing import apache_zookeeper as apache
from lab.testing.apache_zookeeper import apache_ensemble

from .scenariogen import ACLS, SESSIONS, Scenario, Step, parent
from .wirediff import Norm, Session

pytestmark = pytest.mark.skipif(
    not apache.available(), reason="Debian's zookeeper package is not installed"
)

OPEN = ACLS["open"]
STEPS = int(os.environ.get("ZK_SCENARIO_STEPS", "120"))
ONE_SEED = os.environ.get("ZK_SCENARIO_SEED")
SEEDS = [int(ONE_SEED)] if ONE_SEED else list(range(int(os.environ.get("ZK_SCENARIO_SEEDS", "2"))))


class Side:
    """One server's sessions for a scenario, sharing one normalisation."""

    def __init__(self, host: str, port: int, root: str):
        self.host, self.port = host, port
        self.norm = Norm(ordered=True)
        self.sessions = [Session(host, port, self.norm) for _ in range(SESSIONS)]
        self.observer = Session(host, port, self.norm)
        self.zxids: list[int] = []  # after each step, the last zxid replied with
        self.observer.send(Op.CREATE, CreateRequest(root, b"", OPEN, 0).serialize())

    def do(self, step: Step) -> tuple:
        s = self.sessions[step.slot]
        if step.op == Op.CLOSE_SESSION:
            reply = s.send(Op.CLOSE_SESSION, b"")
            s.close()
            self.sessions[step.slot] = Session(self.host, self.port, self.norm)
        elif step.rel_back is not None:
            back = len(self.zxids) - 1 - step.rel_back
            rel = self.zxids[back] if back >= 0 else 0
            reply = s.send(step.op, rel.to_bytes(8, "big", signed=True) + step.body[8:])
        else:
            reply = s.send(step.op, step.body)
        # Events a write sent to the other sessions were queued before its reply, so
        # a ping on each session, answered after them, collects them all.
        events = [self._drain(i) for i in range(SESSIONS)]
        stats = ()
        if step.path and step.path.startswith("/"):
            stats = tuple(
                self.observer.send(Op.EXISTS, ExistsRequest(p, False).serialize())[:2]
                for p in (step.path, parent(step.path))
            )
        self.zxids.append(max(x.last_zxid for x in [*self.sessions, self.observer]))
        return reply, events, stats

    def _drain(self, i: int) -> list:
        s = self.sessions[i]
        try:
            s.c.request(-2, Op.PING)
        except (ConnectionError, OSError):
            s.close()
            s.open()
            return ["reconnected"]
        events, s.c.events = s.c.events, []
        return events

    def close(self):
        # Closed, not left to expire: nothing of this scenario lingers into the next.
        for s in [*self.sessions, self.observer]:
            try:
                s.c.request(s.xid + 1, Op.CLOSE_SESSION)
            except (ConnectionError, OSError):
                pass
            s.close()


def play(seed: int, steps: int, theirs: tuple, ours: tuple) -> list[str]:
    """Run one scenario on both servers; the differing steps, described."""
    gen = Scenario(seed)
    a, b = Side(*theirs, gen.root), Side(*ours, gen.root)
    diffs = []
    try:
        for i in range(steps):
            step = gen.step()
            x, y = a.do(step), b.do(step)
            gen.learn(step, x[0])
            if x != y:
                diffs.append(
                    f"step {i} (session {step.slot}) {step.label[:300]}:\n"
                    f"  apache  {_short(x)}\n  racklab {_short(y)}"
                )
    finally:
        a.close()
        b.close()
    return diffs


def _short(v) -> str:
    s = repr(v)
    return s if len(s) < 1500 else s[:1500] + "..."


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    ref = apache.ApacheZooKeeper(
        str(tmp_path_factory.mktemp("apache-scn")),
        free_port(),
        extra={"extendedTypesEnabled": "true"},
    )
    ref.start()
    # the same tickTime as Apache's, so sessions negotiate the same timeouts
    ours = ThreadedServer(
        str(tmp_path_factory.mktemp("racklab-scn")), tick_time=200, extendedTypesEnabled="true"
    )
    yield (ref.host, ref.port), ("127.0.0.1", ours.port)
    ours.stop()
    ref.stop()


def _check(seed, steps, servers, tag):
    theirs, ours = servers
    diffs = play(seed, steps, theirs, ours)
    assert not diffs, f"seed {seed} ({tag}), {len(diffs)} of {steps} steps differ:\n" + "\n".join(
        diffs[:8]
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_generated_scenarios_same_as_apache(seed, servers):
    _check(seed, STEPS, servers, f"{STEPS} steps")


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 120))
def test_generated_scenarios_same_as_apache_long(seed, servers):
    _check(seed, 400, servers, "400 steps")


@pytest.mark.slow
def test_generated_scenarios_through_followers_same_as_apache(tmp_path):
    """The same scenarios through a follower of a 3-server ensemble of each (every
    session on that follower, so what it sees is in commit order on both). Kept under
    a minute: the leaders' container managers first run 60 s after they start, at
    different moments for the two ensembles, and would reap TTL nodes of the earlier
    scenarios at different steps."""
    extra = {"extendedTypesEnabled": "true"}
    ensembles = [
        apache_ensemble(str(tmp_path / "apache"), 3, base=215, **extra),
        Ensemble(str(tmp_path / "racklab"), 3, base=220, **extra),
    ]
    try:
        for e in ensembles:
            e.start()
            e.wait_leader()
            for i in e.servers:
                e.wait_serving(i)
        theirs, ours = ((s.host, s.port) for s in (e.servers[e.follower()] for e in ensembles))
        for seed in range(200, 204):
            diffs = play(seed, 150, theirs, ours)
            assert not diffs, f"seed {seed}, through followers:\n" + "\n".join(diffs[:8])
    finally:
        for e in ensembles:
            e.stop_all()
