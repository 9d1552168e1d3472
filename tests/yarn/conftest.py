import pytest

from .cluster import YarnCluster


@pytest.fixture
def yarn_factory(tmp_path):
    """Build clusters with custom settings; every one is stopped and its cgroups checked."""
    made: list[YarnCluster] = []

    def make(**kw) -> YarnCluster:
        c = YarnCluster(tmp_path / f"yarn{len(made)}", **kw)
        made.append(c)
        return c

    yield make
    leftovers = []
    for c in made:
        # NMs stop gracefully first: their own teardown must leave no cgroup behind.
        # (an NM a test SIGKILLed cannot clean up: the finalizer below removes its cgroups)
        for host, nm in c.nms.items():
            if nm.alive():
                nm.stop()
                leftovers += c.leftover_cgroups(host)
        c.stop()
    assert not leftovers, f"NodeManagers left cgroups behind: {leftovers}"


@pytest.fixture
def yarn(yarn_factory):
    """An RM and two NodeManagers (127.0.0.11, 127.0.0.12), 1 GB each."""
    c = yarn_factory()
    c.start_rm()
    c.start_nm("127.0.0.11")
    c.start_nm("127.0.0.12")
    c.wait_nodes(2)
    return c
