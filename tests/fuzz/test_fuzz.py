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


@pytest.mark.parametrize("service", list(TARGETS))
def test_fuzz_campaign_leaves_the_service_whole(service, tmp_path):
    seed = int(os.environ.get("RACKLAB_FUZZ_SEED") or random.randrange(2**32))
    target = TARGETS[service]()
    target.start(tmp_path)
    try:
        report = campaign(target, INPUTS, seed, batch=100, deadline=120)
    finally:
        target.stop()
    print(report.summary())
    problems = report.crashes + report.hangs + report.failed_checks
    assert report.clean, (
        f"{report.summary()}\n" + "\n".join(problems) + f"\nreplay: RACKLAB_FUZZ_SEED={seed}"
    )
    assert report.inputs == INPUTS and report.checks >= INPUTS // 100
