"""pytest plugin (entry point `racklab`): fixtures that bring a lab up for a test and
always tear it down, even when the test fails.

    def test_ping(lab_up):
        state = lab_up("examples/quickstart.yaml")        # or YAML text
        node = lab_up.node(state, "n1")
        assert node.exec(["ping", "-c1", "n5"]).ok
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.chaos.fixtures import chaos_run  # noqa: F401  (a fixture: chaos_run(lab, workload, nemesis, ...))


class LabFactory:
    def __init__(self):
        self.names: list[str] = []

    def __call__(self, source: str | Path):
        from lab.orchestrator import lab as orch
        from lab.topology import load, loads

        text_given = isinstance(source, str) and "\n" in source
        topo = loads(source, "<test>") if text_given else load(source)
        self.names.append(topo.name)
        orch.clean(topo.name)  # a previous crashed run of the same test
        return orch.up(topo)

    def nodes(self, state) -> dict:
        from lab.orchestrator import lab as orch

        return orch.attach_nodes(state)

    def node(self, state, name: str):
        return self.nodes(state)[name]

    def teardown(self) -> None:
        from lab.orchestrator import lab as orch

        for name in reversed(self.names):
            orch.clean(name)


@pytest.fixture
def lab_up():
    """Factory: lab_up(file_or_yaml) -> State of a running lab, torn down after the test."""
    if os.geteuid() != 0:
        pytest.skip("racklab labs need root")
    factory = LabFactory()
    try:
        yield factory
    finally:
        factory.teardown()


@pytest.fixture(scope="module")
def module_lab(request):
    """A lab shared by a module's tests: set `LAB = "path or yaml"` in the module."""
    if os.geteuid() != 0:
        pytest.skip("racklab labs need root")
    factory = LabFactory()
    try:
        yield factory(request.module.LAB), factory
    finally:
        factory.teardown()


@pytest.fixture
def testinfra_host():
    """host_for(node) -> a testinfra Host for any lab node (Docker's backend for
    containers and pods, commands through the node itself for other kinds)."""
    from lab.testing.testinfra_node import host_for

    return host_for
