"""The one-node overlay's containers, for real, in podman: every StatefulSet's container
(image, command, env, ConfigMaps, start.py) as built by kustomize, run side by side in
one podman pod, the Services' pod names resolving to it through /etc/hosts. Then each
readiness probe is run as the kubelet would, and the services are used from inside
with real clients (kazoo; racklab's Kafka protocol client; WebHDFS; the RM's REST).

What this cannot show: scheduling, PVCs, zone labels, DNS through Services: those need
a cluster (docs/KUBERNETES.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid

import pytest
import yaml

from tests.k8s.test_manifests import K8S, kustomize

NS = "racklab"
ADD_HOSTS = 'echo "127.0.0.1 $RACKLAB_HOSTS" >> /etc/hosts; exec "$@"'


def _engines_or_skip():
    from lab.backends import k8s_podman

    if os.geteuid() != 0:
        pytest.skip("podman pods with racklab's image need root")
    why = k8s_podman.available()
    if why:
        pytest.skip(why)
    if (
        shutil.which("docker") is None
        or subprocess.run(["docker", "info"], capture_output=True).returncode
    ):
        pytest.skip("no Docker engine answers (racklab's image is built there); `make docker`")


def one_pod(objs: list[dict], name: str, image: str) -> tuple[list[dict], dict[str, list]]:
    """A Pod holding every StatefulSet's container; returns [ConfigMaps..., Pod] and
    each container's readiness probe."""
    cms = [o for o in objs if o["kind"] == "ConfigMap"]
    containers, volumes, probes, aliases = [], [], {}, []
    for sts in (o for o in objs if o["kind"] == "StatefulSet"):
        pod_name = f"{sts['metadata']['name']}-0"
        aliases.append(f"{pod_name}.{sts['spec']['serviceName']}.{NS}.svc")
        tmpl = sts["spec"]["template"]["spec"]
        (c,) = tmpl["containers"]
        probes[c["name"]] = c.pop("readinessProbe")
        c.pop("livenessProbe")
        c.pop("resources", None)
        c.pop(
            "ports"
        )  # podman 4.3 turns declared ports into host mappings, refused without a bridge
        c["image"] = image
        # podman 4.3 ignores hostAliases: the names a cluster's DNS would give, put in
        # /etc/hosts before the container's own command runs
        c["command"] = ["/bin/sh", "-c", ADD_HOSTS, "sh", *c["command"], *c.pop("args")]
        c["name"] = sts["metadata"]["name"]
        # the downward API's values, as a cluster would give them to pod 0
        facts = {"POD_NAME": pod_name, "POD_NAMESPACE": NS, "POD_IP": "127.0.0.1", "NODE_NAME": ""}
        c["env"] = [
            {"name": e["name"], "value": facts[e["name"]]} if "valueFrom" in e else e
            for e in c["env"]
        ]
        for m in c["volumeMounts"]:
            src = next((v for v in tmpl["volumes"] if v["name"] == m["name"]), None)
            m["name"] = f"{c['name']}-{m['name']}"
            vol = dict(src) if src else {"emptyDir": {}}  # the PVC of a volumeClaimTemplate
            vol["name"] = m["name"]
            volumes.append(vol)
        containers.append(c)
    for c in containers:
        c["env"].append({"name": "RACKLAB_HOSTS", "value": " ".join(aliases)})
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"racklab.lab": name}},
        "spec": {
            "hostname": name,
            "containers": containers,
            "volumes": volumes,
        },
    }
    return [*cms, pod], probes


def _run_probe(container: str, probe: dict) -> bool:
    from lab.backends.k8s_podman import podman

    if "exec" in probe:
        argv = probe["exec"]["command"]
    else:  # httpGet, as the kubelet does it, from inside the pod
        url = f"http://127.0.0.1:{probe['httpGet']['port']}{probe['httpGet']['path']}"
        argv = [
            "/usr/bin/python3",
            "-c",
            f"import urllib.request as u; u.urlopen({url!r}, timeout=3)",
        ]
    return podman("exec", container, *argv, check=False, timeout=30).returncode == 0


@pytest.fixture(scope="module")
def played():
    _engines_or_skip()
    from lab.backends import k8s_podman
    from lab.images import ensure_node_image

    # racklab's image, built in Docker (or found cached), then loaded into podman
    image = k8s_podman.ensure_image(ensure_node_image(progress=False))
    objs = kustomize(K8S / "overlays/one-node")
    name = "k8sm" + uuid.uuid4().hex[:6]
    docs, probes = one_pod(objs, name, image)
    try:
        k8s_podman.play(yaml.safe_dump_all(docs))
        yield name, probes
    finally:
        k8s_podman.remove_pod(name)
        # podman keeps each played ConfigMap as a volume of the same name
        for cm in (d for d in docs if d["kind"] == "ConfigMap"):
            k8s_podman.podman("volume", "rm", "-f", cm["metadata"]["name"], check=False)


def test_every_readiness_probe_passes(played):
    name, probes = played
    waiting = dict(probes)
    deadline = time.monotonic() + 120
    while waiting and time.monotonic() < deadline:
        for c, probe in list(waiting.items()):
            if _run_probe(f"{name}-{_sts(c)}", probe):
                del waiting[c]
        time.sleep(1)
    assert waiting == {}, f"never ready: {sorted(waiting)}"


def _sts(container: str) -> str:
    return {
        "zookeeper": "zookeeper",
        "kafka": "kafka",
        "namenode": "hdfs-namenode",
        "datanode": "hdfs-datanode",
        "resourcemanager": "yarn-resourcemanager",
        "nodemanager": "yarn-nodemanager",
    }[container]


CLIENTS = r"""
import asyncio, json, urllib.request
from kazoo.client import KazooClient
zk = KazooClient("zookeeper-0.zookeeper-hs.racklab.svc:2181"); zk.start(timeout=20)
zk.create("/k8s-check", b"from the manifests"); zk_value = zk.get("/k8s-check")[0].decode(); zk.stop()
with open("/srv/node/zookeeper/myid") as f: myid = f.read().strip()
from lab.services.kafka import admin
kafka = asyncio.run(admin.broker_status("kafka-0.kafka-hs.racklab.svc", 9092))
nn = "http://hdfs-namenode-0.hdfs-namenode.racklab.svc:9870/webhdfs/v1"
req = urllib.request.Request(nn + "/k8s?op=MKDIRS&user.name=root", method="PUT")
mkdirs = json.load(urllib.request.urlopen(req, timeout=10))["boolean"]
rm = json.load(urllib.request.urlopen(
    "http://yarn-resourcemanager-0.yarn-resourcemanager.racklab.svc:8088/ws/v1/cluster/metrics", timeout=10))
print(json.dumps({"zk": zk_value, "myid": myid, "brokers": kafka["brokers"], "mkdirs": mkdirs,
                  "nodemanagers": rm["clusterMetrics"]["activeNodes"]}))
"""


def test_services_answer_real_clients(played):
    import json

    from lab.backends.k8s_podman import podman

    name, probes = played
    test_every_readiness_probe_passes(played)
    deadline = time.monotonic() + 60
    while True:  # the NodeManager registers with its first heartbeat
        proc = podman("exec", f"{name}-zookeeper", "/usr/bin/python3", "-c", CLIENTS, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        facts = json.loads(proc.stdout.strip().splitlines()[-1])
        if facts["nodemanagers"] >= 1 or time.monotonic() > deadline:
            break
        time.sleep(2)
    # myid from the ordinal; a broker through its advertised per-pod name
    assert facts == {
        "zk": "from the manifests",
        "myid": "1",
        "brokers": 1,
        "mkdirs": True,
        "nodemanagers": 1,
    }


def test_the_image_has_the_tools_chaos_uses_inside_pods(played):
    """On a cluster racklab cannot enter a pod's network namespace from outside: a
    partition is the pod's own iptables, a packet fault its own tc, the rack network
    its own ip (lab/backends/k8s_overlay.py). racklab's image must have them."""
    from lab.backends.k8s_podman import podman

    name, _ = played
    for argv, says in (
        (["/usr/sbin/iptables", "-V"], "iptables v1.8"),
        (["/sbin/tc", "-V"], "tc utility"),
        (["/sbin/ip", "-V"], "ip utility"),
    ):
        proc = podman("exec", f"{name}-zookeeper", *argv, check=False)
        assert proc.returncode == 0 and says in proc.stdout, (argv, proc.stderr)
