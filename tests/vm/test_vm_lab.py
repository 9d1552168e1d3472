"""A mixed lab with one VM node, booted once for the module: the VM and the namespace
nodes reach each other by name across racks, an HDFS DataNode runs on the VM and
stores a replica written by the unmodified `hdfs` client, testinfra checks the VM
through its paramiko backend, pause and resume act on the domain, and `lab down`
removes the domain, its disk overlay, its tap and the lab's key.

The tests run in file order on one lab; the last one takes it down."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from ..integration.leftovers import leftovers
from .conftest import domains_of

TOPOLOGY = """
name: {name}
defaults: {{kind: process, cpus: 0.5, memory: 256Mi}}
network:
  supernet: auto
  inter_rack: {{delay: 1ms}}
racks:
  r1: {{nodes: [p1, v1]}}
  r2: {{nodes: [p2]}}
nodes:
  v1: {{kind: vm, cpus: 1, memory: 512Mi}}
services:
  hdfs: {{namenode: p1, datanodes: [p2, v1], dfs.replication: 2, dfs.blocksize: 65536,
          dfs.namenode.fs-limits.min-block-size: 65536}}
"""


@pytest.fixture(scope="module")
def vm_lab(libvirt_conn, vm_image):
    from lab.orchestrator import lab as orch
    from lab.topology import loads

    name = "t8" + uuid.uuid4().hex[:8]
    state = orch.up(loads(TOPOLOGY.format(name=name), "vm-mixed.yaml"))
    yield orch, state
    if orch.State.load(name) is not None:
        orch.teardown(name, orch.State.load(name))


@pytest.fixture(scope="module")
def nodes(vm_lab):
    orch, state = vm_lab
    return orch.attach_nodes(state)


def _kvm_is_pvm() -> bool:
    return Path("/sys/module/kvm_pvm").exists()


def test_status_names_the_accelerator(vm_lab):
    orch, state = vm_lab
    status = orch.status(state)
    v1 = next(n for n in status["nodes"] if n["name"] == "v1")
    assert v1["kind"] == "vm" and v1["running"] and not v1["paused"]
    assert v1["accel"] in ("kvm", "tcg") and v1["accel_reason"]
    if _kvm_is_pvm() and not os.environ.get("RACKLAB_VM_ACCEL"):
        # this machine's nested PVM KVM hangs a stock kernel: the probe must not pick it
        assert v1["accel"] == "tcg"
    assert v1["vcpus"] == 1 and v1["memory_max"] == 512 << 20
    from lab.backends.vm import labs_with_domains

    assert state.name in labs_with_domains()  # what `lab clean` finds without state
    assert v1["pid"] and v1["memory_bytes"] > 0  # qemu's own cgroup on the host
    assert v1["cpu_usec"] > 0 and v1["pids"] is None  # the VM's processes are in the guest


def test_vm_and_namespace_nodes_reach_each_other_by_name(nodes):
    v1 = nodes["v1"]
    assert v1.exec(["hostname"]).check().stdout.strip() == "v1"
    for other in ("p1", "p2"):  # p2 is in the other rack: routed through the router
        r = v1.exec(["ping", "-c", "1", "-W", "5", other], timeout=30)
        assert r.returncode == 0, f"v1 -> {other}: {r.stdout} {r.stderr}"
        r = nodes[other].exec(["ping", "-c", "1", "-W", "5", "v1"], timeout=30)
        assert r.returncode == 0, f"{other} -> v1: {r.stdout} {r.stderr}"


def test_inter_rack_delay_acts_on_the_vm(nodes):
    # the rack network is one code path for every kind: a round trip from the VM to
    # the other rack crosses the router twice, each way delayed by 1 ms
    r = nodes["v1"].exec(["ping", "-c", "3", "-i", "0.2", "-W", "5", "p2"], timeout=30)
    assert r.returncode == 0, r.stdout
    rtt_min = float(r.stdout.split("rtt min/avg/max/mdev = ")[1].split("/")[0])
    assert rtt_min >= 2.0, r.stdout


def test_partition_and_netem_inside_the_guest(nodes):
    # a VM has no network namespace on the host: faults are applied in the guest
    v1, p1, p2 = nodes["v1"], nodes["p1"], nodes["p2"]
    p1_addr = p1.spec.address.split("/")[0]
    v1.exec(["iptables", "-A", "INPUT", "-s", p1_addr, "-j", "DROP"]).check()
    try:
        assert p1.exec(["ping", "-c", "1", "-W", "2", "v1"], timeout=20).returncode != 0
        assert p2.exec(["ping", "-c", "1", "-W", "5", "v1"], timeout=20).returncode == 0
    finally:
        v1.exec(["iptables", "-F", "INPUT"]).check()
    assert p1.exec(["ping", "-c", "1", "-W", "5", "v1"], timeout=20).returncode == 0
    v1.exec(["tc", "qdisc", "replace", "dev", "eth0", "root", "netem", "delay", "20ms"]).check()
    try:
        r = p1.exec(["ping", "-c", "2", "-i", "0.2", "-W", "5", "v1"], timeout=20)
        assert float(r.stdout.split("rtt min/avg/max/mdev = ")[1].split("/")[0]) >= 20.0
    finally:
        v1.exec(["tc", "qdisc", "del", "dev", "eth0", "root"]).check()


def test_exec_and_files_over_ssh(nodes):
    v1 = nodes["v1"]
    r = v1.exec(["sh", "-c", 'cat; echo "$GREETING"; pwd; exit 3'], input="from stdin\n",
                env={"GREETING": "hello vm"})  # fmt: skip
    assert r.returncode == 3
    assert r.stdout.splitlines() == ["from stdin", "hello vm", "/root"]
    r = v1.exec(["sh", "-c", "echo oops >&2; false"])
    assert r.returncode == 1 and r.stderr.strip() == "oops"
    data = os.urandom(200_000)
    v1.put_file("/srv/node/sub/dir/blob.bin", data, mode=0o600)
    assert v1.get_file("/srv/node/sub/dir/blob.bin") == data
    assert v1.exec(["stat", "-c", "%a", "/srv/node/sub/dir/blob.bin"]).stdout.strip() == "600"
    with pytest.raises(FileNotFoundError):
        v1.get_file("/srv/node/no-such-file")
    proc = v1.popen(["sleep", "600"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    assert proc.poll() is None
    proc.kill()
    assert proc.wait(timeout=30) != 0
    # the command itself is gone, not only its SSH channel (its zombie may linger a
    # moment until sshd reaps it: ask a few times)
    for _ in range(50):
        if v1.exec(["pgrep", "-x", "sleep"]).returncode == 1:
            break
    else:
        raise AssertionError("sleep still runs in the VM after kill()")


def test_hdfs_datanode_on_the_vm_stores_a_replica(vm_lab, nodes):
    from hdfs import InsecureClient

    orch, state = vm_lab
    nn = state["network"]["nodes"]["p1"]
    client = InsecureClient(f"http://{nn}:9870", user="root")
    data = os.urandom(3 * 65536 + 100)
    client.write("/vm-test.bin", data, overwrite=True)
    with client.read("/vm-test.bin") as f:
        assert f.read() == data
    # replication 2 over two DataNodes: every block has a replica on the VM's disk
    r = nodes["v1"].exec(["sh", "-c", "find /srv/node/hdfs/data -name 'blk_*' ! -name '*.meta' "
                                      "| wc -l"])  # fmt: skip
    assert int(r.check().stdout) == 4
    svc = next(s for s in state["services"].values() if s["node"] == "v1")
    assert nodes["v1"].service_running(svc["name"], svc)


def test_testinfra_over_paramiko(nodes, vm_lab):
    from lab.testing.testinfra_node import host_for

    _, state = vm_lab
    host = host_for(nodes["v1"])
    assert host.backend.NAME == "paramiko"
    assert host.file("/etc/hostname").content_string.strip() == "v1"
    assert host.file("/srv/node").is_directory
    assert state["network"]["nodes"]["v1"] in host.interface("eth0").addresses
    assert host.socket("tcp://0.0.0.0:22").is_listening
    assert host.socket("tcp://0.0.0.0:9864").is_listening  # the DataNode's HTTP port
    assert host.process.filter(comm="sshd")
    assert host.run("id -u").stdout.strip() == "0"


def test_pause_and_resume(nodes):
    v1, p1 = nodes["v1"], nodes["p1"]
    v1.pause()
    try:
        assert v1.describe()["paused"]
        r = p1.exec(["ping", "-c", "1", "-W", "2", "v1"], timeout=20)
        assert r.returncode != 0, "a paused VM answered a ping"
    finally:
        v1.resume()
    assert not v1.describe()["paused"]
    r = p1.exec(["ping", "-c", "1", "-W", "5", "v1"], timeout=20)
    assert r.returncode == 0, r.stdout
    assert v1.exec(["true"]).returncode == 0
    # the signals a nemesis sends mean the same to a VM
    v1.kill(signal.SIGSTOP)
    assert v1.describe()["paused"]
    v1.kill(signal.SIGCONT)
    assert not v1.describe()["paused"] and v1.exec(["true"]).returncode == 0


def test_down_removes_domain_overlay_tap_and_key(vm_lab, nodes, libvirt_conn):
    orch, state = vm_lab
    v1 = nodes["v1"]
    overlay, key, tap = Path(v1.overlay), Path(v1.key_path), v1.tap
    assert overlay.is_file() and key.is_file()
    removed = orch.down(state.name)
    assert f"domain racklab-{state.name}-v1" in removed
    assert f"disk overlay {overlay}" in removed
    assert f"ssh key {key}" in removed
    assert domains_of(libvirt_conn, state.name) == []
    from lab.backends.vm import labs_with_domains

    assert state.name not in labs_with_domains()
    assert not overlay.exists() and not key.exists()
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    assert tap not in links
    assert leftovers(state.name) == []
