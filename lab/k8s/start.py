"""Entry point of every racklab service container on Kubernetes (and in podman).

    python3 start.py run zookeeper server        # write the config, exec the server
    python3 start.py probe zookeeper server      # readiness: exit 0 when it serves

Mounted from the `racklab-start` ConfigMap; standard library only, so it runs in
racklab's node image whatever racklab version the image holds. What it does is
what the orchestrator does for a lab's nodes, with the pod's own facts:

- the config templates come from /etc/racklab/<service>/ (the service's ConfigMap,
  the real systems' key names); ${POD_NAME}, ${POD_IP}, ${POD_NAMESPACE}, ${ID}
  and ${RACK} in them are replaced;
- ${ID} is this pod's place in RACKLAB_PEERS (comma-separated pod names, in
  order) plus one: ZooKeeper's myid and Kafka's broker.id, from the ordinal as in
  the ZooKeeper StatefulSet tutorial;
- ${RACK}: RACKLAB_RACK when the pod was pinned to a rack (`lab k8s render`),
  else the zone label of the Kubernetes node the pod landed on, read from the
  API with the pod's service account (what Strimzi's init container does for
  broker.rack); empty when neither is known.
- the NameNode's and the ResourceManager's rack tables: for the DataNodes or
  NodeManagers of the StatefulSets named in RACKLAB_RACK_SETS (those pinned to no
  rack), the zone of the node each landed on, found before the daemon starts (it
  reads its table once, as Hadoop's TableMapping does): the StatefulSet's replicas,
  each pod's spec.nodeName, that node's zone label. A pod not scheduled within
  RACKLAB_RACK_WAIT seconds (default 120) stays in the default rack, and says so in
  the log. The table names each pod as it registers: DataNodes by their host name
  (the pod's), NodeManagers by their stable DNS name through their headless Service
  (RACKLAB_RACK_SERVICE), which is their NodeId's host.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

DATA = Path(os.environ.get("RACKLAB_DATA", "/srv/node"))
TEMPLATES = Path(os.environ.get("RACKLAB_CONF", "/etc/racklab"))
PYTHON = os.environ.get("RACKLAB_PYTHON", "/usr/bin/python3")
SA = Path("/var/run/secrets/kubernetes.io/serviceaccount")
ZONE_LABEL = "topology.kubernetes.io/zone"
SERVING = ("leader", "follower", "standalone", "observer")


def pod_id(pod: str, peers: list[str]) -> int:
    """1-based id of ``pod`` among ``peers`` (myid, broker.id); the ordinal + 1 when
    the pod is not listed (a StatefulSet scaled past its peer list)."""
    if pod in peers:
        return peers.index(pod) + 1
    tail = pod.rsplit("-", 1)[-1]
    if not tail.isdigit():
        raise SystemExit(f"pod {pod} is not in RACKLAB_PEERS and has no ordinal")
    return int(tail) + 1


def api_get(path: str) -> dict | None:
    """GET ``path`` from the API server with the pod's service account; None when
    there is no API server, or it answers 404."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    if not (host and (SA / "token").exists()):
        return None
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    req = urllib.request.Request(
        f"https://{host}:{port}{path}",
        headers={"Authorization": "Bearer " + (SA / "token").read_text().strip()},
    )
    ctx = ssl.create_default_context(cafile=str(SA / "ca.crt"))
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def node_zone(node: str, label: str = ZONE_LABEL) -> str:
    """The zone label of Kubernetes node ``node``, asked of the API server with the
    pod's service account token; empty when it cannot be read."""
    if not node:
        return ""
    try:
        found = api_get(f"/api/v1/nodes/{node}")
        labels = found["metadata"].get("labels", {}) if found else {}
    except (OSError, ValueError, KeyError) as exc:
        print(f"start.py: cannot read node {node}'s labels ({exc}); no rack", file=sys.stderr)
        return ""
    return labels.get(label, "")


def zone_racks(sets: list[str], namespace: str, label: str, wait: float) -> dict[str, str]:
    """pod -> zone of its node, for every pod of the StatefulSets ``sets``, waiting
    up to ``wait`` seconds for pods to be scheduled; empty without an API server."""
    pending: list[str] = []
    for name in sets:
        try:
            found = api_get(f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}")
        except (OSError, ValueError) as exc:
            print(f"start.py: cannot read StatefulSet {name} ({exc})", file=sys.stderr)
            continue
        if found:
            replicas = found.get("spec", {}).get("replicas", 1)
            pending += [f"{name}-{i}" for i in range(replicas)]
    racks: dict[str, str] = {}
    deadline = time.monotonic() + wait
    while pending:
        for pod in list(pending):
            try:
                found = api_get(f"/api/v1/namespaces/{namespace}/pods/{pod}")
            except (OSError, ValueError):
                found = None
            node = (found or {}).get("spec", {}).get("nodeName")
            if node:
                pending.remove(pod)
                zone = node_zone(node, label)
                if zone:
                    racks[pod] = zone
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(2)
    for pod in pending:
        print(f"start.py: {pod} not scheduled within {wait:.0f} s: default rack", file=sys.stderr)
    return racks


def facts() -> dict[str, str]:
    pod = os.environ.get("POD_NAME") or socket.gethostname()
    peers = [p for p in os.environ.get("RACKLAB_PEERS", "").split(",") if p]
    rack = os.environ.get("RACKLAB_RACK") or node_zone(
        os.environ.get("NODE_NAME", ""), os.environ.get("RACKLAB_ZONE_LABEL", ZONE_LABEL)
    )
    return {
        "POD_NAME": pod,
        "POD_IP": os.environ.get("POD_IP", "0.0.0.0"),
        "POD_NAMESPACE": os.environ.get("POD_NAMESPACE", "default"),
        "ID": str(pod_id(pod, peers)),
        "RACK": rack,
        "PEERS": ",".join(peers),
    }


def fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    return text


def zookeeper_servers(values: dict[str, str]) -> str:
    """server.N lines, one per peer, by the peers' stable names through the headless
    Service; this server's own line listens on every address (Apache's
    quorumListenOnAllIPs), since its own name resolves only once the Service
    publishes it."""
    service = os.environ.get("RACKLAB_HEADLESS", "zookeeper-hs")
    ns = values["POD_NAMESPACE"]
    peers = values["PEERS"].split(",") if values["PEERS"] else []
    if len(peers) < 2:
        return ""  # standalone
    lines = []
    for i, peer in enumerate(peers, 1):
        host = "0.0.0.0" if peer == values["POD_NAME"] else f"{peer}.{service}.{ns}.svc"
        lines.append(f"server.{i}={host}:2888:3888\n")
    return "".join(lines)


def write_config(service: str, values: dict[str, str]) -> Path:
    """Templates -> DATA/<service>/conf, filled; returns the conf directory."""
    conf = DATA / service / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    templates = sorted(p for p in (TEMPLATES / service).iterdir() if not p.name.startswith("."))
    for tmpl in templates:
        if tmpl.is_file() and tmpl.suffix != ".append":
            (conf / tmpl.name).write_text(fill(tmpl.read_text(), values))
    # X.append (an overlay's additions) goes at the end of X: later keys win in
    # properties files; in a site file the properties go inside <configuration>
    for extra in templates:
        if extra.is_file() and extra.suffix == ".append":
            target = conf / extra.stem
            text, more = target.read_text(), fill(extra.read_text(), values)
            if target.suffix == ".xml":
                text = text.replace("</configuration>", more + "</configuration>")
            else:
                text = text + ("" if text.endswith("\n") else "\n") + more
            target.write_text(text)
    if service == "zookeeper":
        with open(conf / "zoo.cfg", "a") as f:
            f.write(zookeeper_servers(values))
        (DATA / "zookeeper").mkdir(parents=True, exist_ok=True)
        (DATA / "zookeeper" / "myid").write_text(values["ID"] + "\n")
    sets = [n for n in os.environ.get("RACKLAB_RACK_SETS", "").split(",") if n]
    if service in ("hdfs", "yarn") and sets:
        label = os.environ.get("RACKLAB_ZONE_LABEL", ZONE_LABEL)
        wait = float(os.environ.get("RACKLAB_RACK_WAIT", "120"))
        ns = values["POD_NAMESPACE"]
        found = zone_racks(sets, ns, label, wait)
        domain = os.environ.get("RACKLAB_RACK_SERVICE")
        with open(conf / "topology.table", "a") as f:
            f.writelines(
                f"{pod}.{domain}.{ns}.svc /{zone.lstrip('/')}\n" if domain else
                f"{pod} /{zone.lstrip('/')}\n"
                for pod, zone in sorted(found.items())
            )  # fmt: skip
    if service == "kafka" and values["RACK"]:
        with open(conf / "server.properties", "a") as f:
            f.write(f"broker.rack={values['RACK']}\n")
    return conf


def argv(service: str, role: str, conf: Path) -> list[str]:
    if service == "zookeeper":
        return [PYTHON, "-m", "lab.services.zookeeper", str(conf / "zoo.cfg")]
    if service == "kafka":
        return [PYTHON, "-m", "lab.services.kafka", str(conf / "server.properties")]
    return [PYTHON, "-m", f"lab.services.{service}", role, "--config", str(conf)]


def probe(service: str, role: str) -> bool:
    """Each service's own health check, as `lab up` asks it."""
    if service == "zookeeper":
        with socket.create_connection(("127.0.0.1", 2181), timeout=3) as s:
            s.sendall(b"srvr")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        mode = [ln[6:] for ln in out.decode().splitlines() if ln.startswith("Mode: ")]
        return bool(mode) and mode[0] in SERVING
    if service == "kafka":
        import asyncio

        # racklab itself is installed in the image's Python: its own protocol client
        from lab.services.kafka.admin import broker_status

        return asyncio.run(broker_status("127.0.0.1", 9092))["brokers"] > 0
    url = {
        (
            "hdfs",
            "namenode",
        ): "http://127.0.0.1:9870/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo",
        ("hdfs", "datanode"): "http://127.0.0.1:9864/",
        ("yarn", "resourcemanager"): "http://127.0.0.1:8088/ws/v1/cluster/info",
        ("yarn", "nodemanager"): "http://127.0.0.1:8042/ws/v1/node/info",
    }[(service, role)]
    with urllib.request.urlopen(url, timeout=3) as resp:
        return resp.status == 200


def main(args: list[str]) -> int:
    if len(args) != 3 or args[0] not in ("run", "probe", "config"):
        print("usage: start.py run|probe|config SERVICE ROLE", file=sys.stderr)
        return 2
    what, service, role = args
    if what == "probe":
        try:
            return 0 if probe(service, role) else 1
        except Exception as exc:  # noqa: BLE001 - a probe answers yes or no
            print(f"{service} {role}: {exc}", file=sys.stderr)
            return 1
    values = facts()
    conf = write_config(service, values)
    if what == "config":
        print(conf)
        return 0
    print(f"start.py: {service} {role} as {values['POD_NAME']} id {values['ID']} "
          f"rack {values['RACK'] or '-'}", flush=True)  # fmt: skip
    os.chdir(DATA)
    cmd = argv(service, role, conf)
    os.execv(cmd[0], cmd)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
