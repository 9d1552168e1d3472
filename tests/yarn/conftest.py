import random

import pytest

from lab.services.yarn.webhdfs import WebHdfs

from .cluster import YarnCluster, make_text, start_stack


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


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("mr")
    dfs, y = start_stack(root)
    fs = WebHdfs(dfs.url)
    rnd = random.Random(7)
    texts = {}
    for i in range(3):
        texts[f"/data/in/part{i}.txt"] = make_text(rnd, 2500 + 700 * i)
    texts["/data/in/sub/extra.txt"] = make_text(rnd, 900)
    for path, text in texts.items():
        fs.write(path, text.encode())
    fs.write("/data/in/_ignored", b"hidden files are not input\n")
    try:
        yield dfs, y, texts
    finally:
        leftovers = []
        for host, nm in y.nms.items():
            if nm.alive():
                nm.stop()
                leftovers += y.leftover_cgroups(host)
        y.stop()
        dfs.stop()
        assert not leftovers
