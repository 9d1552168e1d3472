"""A small fuzz campaign per service in every test run (the full-size one is
`python -m lab.testing.fuzz`, figures in docs/ROBUSTNESS.md). Each asserts what the issue
asks of the full one: no crash, no traceback from client input, no hang, and the real
client still stores and reads back everything acknowledged. The seed is random per run
and printed on failure; RACKLAB_FUZZ_SEED replays one."""

from __future__ import annotations

import os
import random

import pytest

from lab.testing.fuzz.core import campaign
from lab.testing.fuzz.targets import TARGETS

INPUTS = int(os.environ.get("RACKLAB_FUZZ_INPUTS", "1000"))


def clean_campaign(service: str, workdir, inputs: int, batch: int, deadline: float | None):
    """A campaign against a freshly started service; it must come out clean."""
    seed = int(os.environ.get("RACKLAB_FUZZ_SEED") or random.randrange(2**32))
    target = TARGETS[service]()
    target.start(workdir)
    try:
        report = campaign(target, inputs, seed, batch=batch, deadline=deadline)
    finally:
        target.stop()
    print(report.summary())
    problems = report.crashes + report.hangs + report.failed_checks
    assert report.clean, (
        f"{report.summary()}\n" + "\n".join(problems) + f"\nreplay: RACKLAB_FUZZ_SEED={seed}"
    )
    return report


@pytest.mark.parametrize("service", list(TARGETS))
def test_fuzz_campaign_leaves_the_service_whole(service, tmp_path):
    report = clean_campaign(service, tmp_path, INPUTS, batch=100, deadline=120)
    assert report.inputs == INPUTS and report.checks >= INPUTS // 100


@pytest.mark.slow
def test_a_larger_yarn_campaign_reaches_every_front_door(tmp_path):
    """Ten times the default suite's inputs against YARN, with every kind of input sent
    (the RM's resources with their own bodies, its web proxy to a MapReduce AM, a
    NodeManager's web services, submissions, RPCs, malformed HTTP)."""
    report = clean_campaign("yarn", tmp_path, 10 * INPUTS, batch=200, deadline=None)
    kinds = {"rest", "resource", "proxy", "nodemanager", "submit", "rpc", "http-junk"}
    assert set(report.by_kind) == kinds and min(report.by_kind.values()) > INPUTS // 50
    assert report.inputs == 10 * INPUTS
