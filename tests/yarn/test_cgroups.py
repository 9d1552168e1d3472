"""Container cgroups on v1 and v2 layouts. The host here has v1 controllers (the
NodeManager tests use them for real); v2 is checked on a fake tree with the same
file names, since this kernel offers no controllers in its cgroup2 mount."""

import pytest

from lab.services.yarn.cgroups import CgroupManager, detect


def test_detects_v2_when_the_unified_tree_offers_memory(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    assert detect(str(tmp_path)) == ("v2", tmp_path)


def test_v2_enables_controllers_and_writes_limits(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    hier = tmp_path / "hadoop-yarn-x"
    hier.mkdir()
    (hier / "cgroup.controllers").write_text(
        "cpu memory\n"
    )  # what the kernel shows once root enabled them
    m = CgroupManager(str(tmp_path), "/hadoop-yarn-x", strict_cpu=True)
    m.setup()
    assert (
        tmp_path / "cgroup.subtree_control"
    ).read_text() == "+cpu"  # last write wins on a plain file
    assert (hier / "cgroup.subtree_control").read_text() in ("+memory", "+cpu")
    cg = m.create("container_1_0001_01_000002", 256, 2)
    d = hier / "container_1_0001_01_000002"
    assert cg.dirs == [d]
    assert (d / "memory.max").read_text() == str(256 << 20)
    assert (d / "memory.swap.max").read_text() == "0"
    assert (d / "cpu.weight").read_text() == "200"
    assert (d / "cpu.max").read_text() == "200000 100000"
    assert cg.procs_files == [d / "cgroup.procs"]


def test_v1_uses_memory_and_cpu_controllers(tmp_path):
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712")
    (tmp_path / "cpu").mkdir()
    assert detect(str(tmp_path)) == ("v1", tmp_path)
    m = CgroupManager(str(tmp_path), "/hy", strict_cpu=False)
    m.setup()
    cg = m.create("c1", 128, 1)
    assert cg.dirs == [tmp_path / "memory" / "hy" / "c1", tmp_path / "cpu" / "hy" / "c1"]
    assert (cg.dirs[0] / "memory.limit_in_bytes").read_text() == str(128 << 20)
    assert (cg.dirs[1] / "cpu.shares").read_text() == "1024"
    assert not (cg.dirs[1] / "cpu.cfs_quota_us").exists()  # not strict: a weight, no cap
    (cg.dirs[0] / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert cg.oom_kills() == 1


def test_no_memory_controller_is_an_error(tmp_path):
    assert detect(str(tmp_path)) is None
    with pytest.raises(OSError, match="no usable cgroup memory controller"):
        CgroupManager(str(tmp_path), "/x")


def test_v2_without_a_delegated_memory_controller_is_an_error(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    (tmp_path / "hy").mkdir()
    (tmp_path / "hy" / "cgroup.controllers").write_text("cpu\n")  # memory did not come down
    with pytest.raises(OSError, match="memory controller could not be enabled"):
        CgroupManager(str(tmp_path), "/hy").setup()
