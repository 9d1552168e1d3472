"""`lab demo cgroups`: each limit, exercised inside a node, holds as the kernel counts it.

Bounds are loose on purpose: the machine is shared, so a figure may come out low, but
a figure far above its limit means the limit failed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.demos import cgroups as demo

from .helpers import assert_nothing_left, demo_cgroups_of_this_process

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="makes namespaces and cgroups: needs root"),
]


@pytest.fixture(scope="module")
def run():
    messages: list[str] = []
    data = demo.run(progress=messages.append)
    return data, messages


@pytest.fixture(scope="module")
def data(run):
    return run[0]


def limit(data, name: str) -> dict:
    (row,) = [r for r in data["limits"] if r["limit"] == name]
    return row


def test_progress_is_reported(run):
    _data, messages = run
    for word in ("memory", "cpu", "pids"):
        assert any(m.startswith(word) for m in messages), messages


def test_kernel_holds_the_configured_limits(data):
    assert limit(data, "memory")["kernel_value"] == demo.MEMORY
    assert limit(data, "cpu")["kernel_value"] == demo.CPUS
    assert limit(data, "pids")["kernel_value"] == demo.PIDS


def test_memory_hog_is_oom_killed_and_counted(data):
    m = limit(data, "memory")["measured"]
    assert m["oom_kills"] >= 1, m
    assert m["killed_by"] == "SIGKILL", m
    # it got nowhere near its cap of 4x the limit
    assert m["allocated_mib_before_kill"] <= demo.MEMORY // (1 << 20) + 8, m
    assert limit(data, "memory")["held"] is True


def test_cpu_share_stays_near_the_quota(data):
    row = limit(data, "cpu")
    m = row["measured"]
    assert m["exit"] == 0, m
    assert 0 < m["share"] < 0.75, m  # two spinners unlimited would take up to 2 CPUs
    assert m["nr_periods"] > 0, m  # the quota's CFS bandwidth timer ran
    assert row["held"] is True


def test_fork_fails_at_the_pids_limit(data):
    row = limit(data, "pids")
    m = row["measured"]
    assert m["fork_error"] and m["fork_error"].startswith("EAGAIN"), m
    assert m["forked"] < demo.PIDS + 3, m
    assert m["pids_current"] <= demo.PIDS, m
    assert m["pids_max_events"] >= 1, m
    assert row["held"] is True


def io_rows(data) -> list[dict]:
    rows = [r for r in data["limits"] if r["limit"] == "io"]
    if rows[0]["held"] is None:
        pytest.skip(f"I/O limit not exercised here: {rows[0]['summary']}")
    return rows


def test_direct_writes_are_throttled(data):
    """The kernel enforces the rate where it applies the rule (see the next test)."""
    row = io_rows(data)[-1]
    m = row["measured"]
    assert m["bytes"] == demo.IO_MIB << 20
    assert m["kernel_counted_bytes"] >= demo.IO_MIB << 20, m
    assert m["rate_bps"] < 2 * demo.IO_BPS, m


def test_node_io_limit_reaches_commands_run_in_the_node(data):
    row = io_rows(data)[0]
    assert row["measured"]["cgroup"].endswith("/shell")
    assert row["measured"]["rate_bps"] < 2 * demo.IO_BPS, row


def test_io_not_exercisable_is_explained():
    """A data directory on tmpfs cannot be throttled: the demo says why, not a number."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm")
    why = demo.io_unavailable_reason(shm)
    assert why is not None
    assert "not on a block device" in why or "controller" in why, why


def test_nothing_left_behind(data):
    assert_nothing_left(data)
    assert demo_cgroups_of_this_process() == []
