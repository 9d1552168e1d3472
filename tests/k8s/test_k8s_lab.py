"""A lab of `k8s` nodes with no kubeconfig: each node's Pod object played by `podman kube
play` on this machine, plugged into the rack network like every kind. All four
services are used from the host with the unmodified clients, a chaos run with a
partition and a node kill is judged by its checker, and `lab down` leaves no pod,
container, volume or interface."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid

import pytest

from tests.k8s.test_manifests_podman import _engines_or_skip as engines_or_skip

# {defaults}: more node defaults; {more}: more top-level sections (other modules)
LAB = """
name: {name}
defaults: {{kind: k8s, cpus: 0.5, memory: 768Mi{defaults}}}
{more}
racks:
  r1: {{nodes: [n1, n2]}}
  r2: {{nodes: [n3]}}
services:
  zookeeper: {{nodes: [n1, n2, n3], tickTime: 500}}
  kafka: {{nodes: [n1, n3], default.replication.factor: 2}}
  hdfs: {{namenode: n1, datanodes: [n2, n3], dfs.replication: 2}}
  yarn: {{resourcemanager: n2, nodemanagers: [n3]}}
"""


def podman_out(*args: str) -> str:
    from lab.backends.k8s_podman import env

    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=env(), timeout=120
    ).stdout


def leftovers(name: str, labid: str) -> list[str]:
    from lab.orchestrator.state import lab_dir

    found = [
        f"pod {p}" for p in podman_out("pod", "ps", "--format", "{{.Name}}").split() if name in p
    ]
    found += [
        f"container {c}"
        for c in podman_out("ps", "-a", "--format", "{{.Names}}").split()
        if f"racklab-{name}-" in c
    ]
    found += [
        f"volume {v}"
        for v in podman_out("volume", "ls", "--format", "{{.Name}}").split()
        if v.startswith(f"racklab-{name}-")
    ]
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    found += [
        f"interface {ln.split()[0]}" for ln in links.splitlines() if ln.startswith(f"rl{labid}")
    ]
    if lab_dir(name).exists():
        found.append(f"state dir {lab_dir(name)}")
    return found


@contextlib.contextmanager
def lab_from(text: str):
    """(factory, state) of a lab made from ``text``, torn down after; the file alone
    says which engine (RACKLAB_KUBECONFIG, set for other tests, is put aside)."""
    from lab.testing.plugin import LabFactory

    factory = LabFactory()
    kubeconfig = os.environ.pop("RACKLAB_KUBECONFIG", None)
    try:
        yield factory, factory(text)
    finally:
        factory.teardown()
        if kubeconfig is not None:
            os.environ["RACKLAB_KUBECONFIG"] = kubeconfig


@pytest.fixture(scope="module")
def lab():
    engines_or_skip()
    # this is the no-cluster path, even where a cluster is configured for other tests
    with lab_from(LAB.format(name="k8s" + uuid.uuid4().hex[:6], defaults="", more="")) as made:
        yield made


def _addr(state, node: str) -> str:
    return state["network"]["nodes"][node].split("/")[0]


def test_nodes_are_podman_pods_in_their_racks(lab):
    factory, state = lab
    nodes = factory.nodes(state)
    assert {n: d["engine"] for n, d in state["nodes"].items()} == dict.fromkeys(nodes, "podman")
    n3 = nodes["n3"]
    assert n3.exec(["hostname"]).stdout.strip() == "n3"
    # every node by name, and across racks through the lab's router
    assert n3.exec(["/bin/ping", "-c1", "-W5", "n1"]).ok
    # the topology's limits are the pod's
    assert n3.stats().memory_max == 768 * 2**20
    n3.put_file("/srv/node/hello.txt", b"from the host\n")
    assert n3.get_file("/srv/node/hello.txt") == b"from the host\n"


def four_services_answer(state, size: int = 1000) -> None:
    """The lab's four services (the layout of LAB) used from this machine with the
    unmodified clients: kazoo, kafka-python, the `hdfs` client (WebHDFS's redirect
    to a DataNode), yarn-api-client. Shared by the k8s lab modules."""
    from hdfs import InsecureClient
    from kafka import KafkaConsumer, KafkaProducer
    from kazoo.client import KazooClient
    from yarn_api_client import ResourceManager

    zk = KazooClient(",".join(f"{_addr(state, n)}:2181" for n in ("n1", "n2", "n3")))
    zk.start(timeout=20)
    try:
        zk.create("/k8s", b"pods")
        assert zk.get("/k8s")[0] == b"pods"
    finally:
        zk.stop()

    bootstrap = [f"{_addr(state, n)}:9092" for n in ("n1", "n3")]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(5):
        producer.send("pods", f"m{i}".encode()).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(
        "pods", bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=15000
    )
    assert [m.value for m in consumer][:5] == [f"m{i}".encode() for i in range(5)]
    consumer.close()

    client = InsecureClient(f"http://{_addr(state, 'n1')}:9870", user="root")
    client.write("/k8s/file.txt", data=b"on pods" * size)
    with client.read("/k8s/file.txt") as reader:
        assert reader.read() == b"on pods" * size
    assert client.status("/k8s/file.txt")["replication"] == 2

    rm = ResourceManager(service_endpoints=[f"http://{_addr(state, 'n2')}:8088"])
    deadline = time.monotonic() + 30
    while rm.cluster_metrics().data["clusterMetrics"]["activeNodes"] < 1:
        assert time.monotonic() < deadline, "the NodeManager never registered"
        time.sleep(1)


def test_four_services_with_unmodified_clients(lab):
    _, state = lab
    four_services_answer(state)


def chaos_judged_valid(chaos_run, state, nemesis: str, time_s: int, seed: int):
    """A zk-register run under ``nemesis`` judged linearizable, every nemesis fired
    without error, and every node alive and unpartitioned after; returns the history
    text and the lab's context. Shared by the k8s lab modules."""
    from lab.chaos.labctx import LabContext
    from lab.net import faults as netfaults

    result = chaos_run(
        state.name, "zk-register", nemesis, time_s=time_s, rate=10, seed=seed, interval=4
    )
    assert result.valid is True, result.anomalies
    assert result.verdict["nemesis_errors"] == []
    ctx = LabContext.attach(state.name)
    assert all(ctx.nodes[n].alive() for n in ctx.nodes)
    assert all(netfaults.blocked(ctx.net(n)) == [] for n in ctx.nodes)
    return (result.run_dir / "history.jsonl").read_text(), ctx


def test_chaos_partition_and_kill_on_pods(lab, chaos_run):
    _, state = lab
    history, _ = chaos_judged_valid(chaos_run, state, "partition-majority,kill-node", 20, 1)
    assert "killed node" in history and "majority" in history


def test_lab_down_leaves_nothing(lab):
    from lab.orchestrator import lab as orch

    factory, state = lab
    name, labid = state.name, state["labid"]
    orch.down(name)
    assert leftovers(name, labid) == []
