"""Kubernetes objects for racklab's four services, running racklab's own node image.

One builder serves both `k8s/base` (unpinned StatefulSets spread over zones, each
pod learning its rack from its node's zone label, as Strimzi does) and `lab k8s
render FILE` (one StatefulSet per rack and role, pinned to that rack's zone or rack
label, so a topology's placement holds exactly). Each role is a list of ``Group``s;
a group is one StatefulSet.

Configuration goes into ConfigMaps in the real systems' formats and key names
(zoo.cfg, server.properties, *-site.xml), the same keys `lab up` writes; the
`racklab-start` ConfigMap holds start.py, which fills in each pod's own facts and
starts the service (see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lab.orchestrator.deployers import hdfs as hdfs_dep
from lab.orchestrator.deployers import yarn as yarn_dep
from lab.orchestrator.deployers import zookeeper as zk_dep
from lab.orchestrator.deployers.base import config_value
from lab.services.hadoop.conf import render_rack_table, render_site_xml

IMAGE = "racklab/node:latest"
ZONE_LABEL = "topology.kubernetes.io/zone"
HOST_LABEL = "kubernetes.io/hostname"
START = "/opt/racklab/start.py"
PYTHON = "/usr/bin/python3"
# racklab's imported base image sets no PATH; commands are absolute, and this is for shells
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DATA = "/srv/node"
PART_OF = "racklab"

# (service, role) -> the headless Service its pods are named through, its ports
HEADLESS = {
    ("zookeeper", "server"): ("zookeeper-hs", {"client": 2181, "peer": 2888, "election": 3888}),
    ("kafka", "broker"): ("kafka-hs", {"kafka": 9092}),
    ("hdfs", "namenode"): ("hdfs-namenode", {"http": 9870, "rpc": 8020}),
    ("hdfs", "datanode"): ("hdfs-datanode", {"http": 9864, "xfer": 9866, "ipc": 9867}),
    ("yarn", "resourcemanager"): (
        "yarn-resourcemanager",
        {"webapp": 8088, "client": 8032, "scheduler": 8030, "tracker": 8031},
    ),
    ("yarn", "nodemanager"): ("yarn-nodemanager", {"rpc": 8041, "webapp": 8042, "shuffle": 13562}),
}
# liveness: the port answers (a ZooKeeper without quorum is alive, only not ready)
LIVE_PORT = {
    "server": 2181,
    "broker": 9092,
    "namenode": 9870,
    "datanode": 9864,
    "resourcemanager": 8088,
    "nodemanager": 8042,
}
# readiness over HTTP where the service has an HTTP face; exec start.py probe otherwise
READY_HTTP = {
    "namenode": (9870, "/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo"),
    "datanode": (9864, "/"),  # the DataNode says "DataNode is running"
    "resourcemanager": (8088, "/ws/v1/cluster/info"),
    "nodemanager": (8042, "/ws/v1/node/info"),
}
VOLUME = {"server": "1Gi", "broker": "2Gi", "namenode": "1Gi", "datanode": "4Gi"}


@dataclass
class Group:
    """One StatefulSet: ``replicas`` pods of one role, pinned to ``rack`` or not."""

    name: str
    replicas: int
    rack: str | None = None  # the topology's rack: broker.rack, HDFS's and YARN's racks
    cpus: float | None = None  # limits
    memory: int | None = None  # bytes
    zone: str | None = None  # the value of the layout's rack label it pins to (default: rack)
    request_cpus: float | None = None  # requests (default: the limits)
    request_memory: int | None = None


@dataclass
class Layout:
    """Where everything runs and with which settings (a topology's services sections)."""

    zookeeper: list[Group] = field(default_factory=list)
    kafka: list[Group] = field(default_factory=list)
    namenode: list[Group] = field(default_factory=list)
    datanode: list[Group] = field(default_factory=list)
    resourcemanager: list[Group] = field(default_factory=list)
    nodemanager: list[Group] = field(default_factory=list)
    settings: dict[str, dict] = field(default_factory=dict)  # service -> real keys
    rack_label: str = ZONE_LABEL  # the node label a rack pins to
    namespace: str = "racklab"
    image: str = IMAGE
    storage: bool = True  # a PersistentVolumeClaim per pod for its data


def pods_of(groups: list[Group]) -> list[str]:
    return [f"{g.name}-{i}" for g in groups for i in range(g.replicas)]


def _fqdn(pod: str, service: str) -> str:
    return f"{pod}.{service}.${{POD_NAMESPACE}}.svc"


def _meta(name: str, component: str, **extra) -> dict:
    return {
        "name": name,
        "labels": {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/component": component},
        **extra,
    }


# ---- configuration -----------------------------------------------------------


def zookeeper_config(settings: dict) -> dict[str, str]:
    cfg = dict(zk_dep.DEFAULTS)
    cfg.update({k: v for k, v in settings.items() if k not in zk_dep.ROLE_KEYS})
    cfg.update({"dataDir": f"{DATA}/zookeeper", "clientPort": 2181, "clientPortAddress": "0.0.0.0"})
    body = "".join(f"{k}={config_value(v)}\n" for k, v in cfg.items())
    # start.py appends server.N lines (from RACKLAB_PEERS) and writes myid
    return {"zoo.cfg": "# racklab: zoo.cfg template, filled in by start.py\n" + body}


def kafka_config(settings: dict, brokers: int, zk_pods: list[str]) -> dict[str, str]:
    props = {
        "broker.id": "${ID}",
        "listeners": "PLAINTEXT://0.0.0.0:9092",
        # each pod advertises its own stable name, so clients reach the partition leader
        "advertised.listeners": "PLAINTEXT://" + _fqdn("${POD_NAME}", "kafka-hs") + ":9092",
        "log.dirs": f"{DATA}/kafka/logs",
        "zookeeper.connect": ",".join(_fqdn(p, "zookeeper-hs") + ":2181" for p in zk_pods),
        "offsets.topic.replication.factor": str(min(3, brokers)),
        # transactions work in a lab of one or two brokers too (as the offsets topic;
        # Kafka's own server.properties does the same for its single-broker quickstart)
        "transaction.state.log.replication.factor": str(min(3, brokers)),
        "transaction.state.log.min.isr": str(min(2, brokers)),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
    }
    props.update({k: config_value(v) for k, v in settings.items() if "." in k})
    # broker.rack: start.py appends it from the pod's rack or its node's zone
    body = "".join(f"{k}={v}\n" for k, v in props.items())
    return {"server.properties": "# racklab: server.properties template\n" + body}


def _loc(rack: str) -> str:
    return rack if rack.startswith("/") else f"/{rack}"


def hdfs_config(settings: dict, role: str, nn_pod: str, racks: dict[str, str]) -> dict[str, str]:
    base = f"{DATA}/hdfs"
    values = {
        "fs.defaultFS": "hdfs://" + _fqdn(nn_pod, "hdfs-namenode") + f":{hdfs_dep.NAMENODE_RPC}",
        "dfs.namenode.http-address": f"0.0.0.0:{hdfs_dep.NAMENODE_HTTP}",
        "dfs.namenode.rpc-bind-host": "0.0.0.0",
        "dfs.namenode.name.dir": f"file://{base}/name",
        "dfs.namenode.checkpoint.dir": f"file://{base}/namesecondary",
        "dfs.datanode.data.dir": f"file://{base}/data",
        "dfs.datanode.http.address": f"0.0.0.0:{hdfs_dep.DATANODE_HTTP}",
        "dfs.datanode.address": f"0.0.0.0:{hdfs_dep.DATANODE_XFER}",
        "net.topology.table.file.name": f"{base}/conf/topology.table",
    }
    values.update({k: config_value(v) for k, v in settings.items() if k not in hdfs_dep.ROLE_KEYS})
    core = {k: v for k, v in values.items() if k.startswith(hdfs_dep.CORE_PREFIXES)}
    site = {k: v for k, v in values.items() if k not in core}
    # DataNodes register with their host name, the pod's name: TableMapping maps those
    table = {pod: _loc(rack) for pod, rack in racks.items()} if role == "namenode" else {}
    return {
        "core-site.xml": render_site_xml(core),
        "hdfs-site.xml": render_site_xml(site),
        "topology.table": render_rack_table(table),
    }


def yarn_config(settings: dict, role: str, rm_pod: str, racks: dict[str, str]) -> dict[str, str]:
    base = f"{DATA}/yarn"
    values: dict[str, object] = dict(yarn_dep.LAB_DEFAULTS)
    rm = _fqdn(rm_pod, "yarn-resourcemanager")
    # As in a lab (deployers/yarn.py): the addresses name the RM's stable name, so a client
    # configured from this file reaches it, and the bind-hosts make the daemons listen on
    # every address of their pod.
    values.update(
        {
            "yarn.resourcemanager.hostname": rm,
            "yarn.resourcemanager.webapp.address": f"{rm}:{yarn_dep.RM_WEBAPP}",
            "yarn.resourcemanager.address": f"{rm}:{yarn_dep.RM_CLIENT}",
            "yarn.resourcemanager.bind-host": "0.0.0.0",
            "yarn.nodemanager.bind-host": "0.0.0.0",
        }
    )
    if role != "resourcemanager":
        values.update(
            {
                # the NodeId's host: the pod's stable name (its IP changes when the pod
                # is made again), by which the RM's rack table and AMs know it
                "yarn.nodemanager.hostname": _fqdn(
                    "${POD_NAME}", HEADLESS[("yarn", "nodemanager")][0]
                ),
                "yarn.nodemanager.address": f"${{POD_IP}}:{yarn_dep.NM_RPC}",
                "yarn.nodemanager.webapp.address": _fqdn(
                    "${POD_NAME}", HEADLESS[("yarn", "nodemanager")][0]
                )
                + f":{yarn_dep.NM_WEBAPP}",
                "yarn.nodemanager.linux-container-executor.cgroups.hierarchy": (
                    "/hadoop-yarn-${POD_NAME}"
                ),
            }
        )
    values.update(
        {
            "yarn.resourcemanager.fs.state-store.uri": f"file://{base}/rmstore",
            "yarn.nodemanager.local-dirs": f"{base}/local",
            "yarn.nodemanager.log-dirs": f"{base}/logs",
            "mapreduce.shuffle.port": yarn_dep.SHUFFLE,
            "net.topology.table.file.name": f"{base}/conf/topology.table",
        }
    )
    values.update({k: config_value(v) for k, v in settings.items() if k not in yarn_dep.ROLE_KEYS})
    capacity = {k: v for k, v in values.items() if k.startswith("yarn.scheduler.capacity.")}
    mapred = {k: v for k, v in values.items() if k.startswith("mapreduce.")}
    site = {k: v for k, v in values.items() if k not in capacity and k not in mapred}
    nms = HEADLESS[("yarn", "nodemanager")][0]
    table = (
        {_fqdn(pod, nms): _loc(rack) for pod, rack in racks.items()}
        if role == "resourcemanager"
        else {}
    )
    return {
        "yarn-site.xml": render_site_xml(site),
        "capacity-scheduler.xml": render_site_xml(capacity),
        "mapred-site.xml": render_site_xml(mapred),
        "topology.table": render_rack_table(table),
    }


def start_script() -> str:
    return (Path(__file__).parent / "start.py").read_text()


# ---- workloads ---------------------------------------------------------------


def _quantity_cpu(cpus: float) -> str:
    return f"{round(cpus * 1000)}m"


def _quantity_mem(memory: int) -> str:
    mi = -(-memory // 2**20)
    return f"{mi}Mi"


def resources(group: Group) -> dict:
    """The group's limits and requests as Kubernetes resources (requests default to
    the limits: a lab node gets what its topology says)."""
    limits, requests = {}, {}
    if group.cpus:
        limits["cpu"] = _quantity_cpu(group.cpus)
        requests["cpu"] = _quantity_cpu(group.request_cpus or group.cpus)
    if group.memory:
        limits["memory"] = _quantity_mem(group.memory)
        requests["memory"] = _quantity_mem(group.request_memory or group.memory)
    return {"requests": requests, "limits": limits} if limits else {}


def _env(group: Group, peers: list[str], layout: Layout, headless: str) -> list[dict]:
    def field_ref(path: str) -> dict:
        return {"valueFrom": {"fieldRef": {"fieldPath": path}}}

    env = [
        {"name": "POD_NAME", **field_ref("metadata.name")},
        {"name": "POD_NAMESPACE", **field_ref("metadata.namespace")},
        {"name": "POD_IP", **field_ref("status.podIP")},
        {"name": "NODE_NAME", **field_ref("spec.nodeName")},
        {"name": "PATH", "value": PATH},
        {"name": "RACKLAB_PEERS", "value": ",".join(peers)},
        {"name": "RACKLAB_HEADLESS", "value": headless},
        {"name": "RACKLAB_ZONE_LABEL", "value": layout.rack_label},
    ]
    if group.rack:
        env.append({"name": "RACKLAB_RACK", "value": group.rack})
    return env


def _placement(group: Group, layout: Layout, component: str) -> dict:
    """A pinned group goes to its rack's nodes; any group spreads its pods over hosts,
    and an unpinned one over zones too (as the Bitnami charts do)."""
    selector = {"matchLabels": {"app.kubernetes.io/component": component}}
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": HOST_LABEL,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": selector,
        }
    ]
    # two members of a quorum (or two replicas of a block) on one machine is one
    # failure taking both: the ZooKeeper tutorial's anti-affinity, preferred so that a
    # one-node cluster still runs the lab
    spec: dict = {
        "topologySpreadConstraints": spread,
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {"labelSelector": selector, "topologyKey": HOST_LABEL},
                    }
                ]
            }
        },
    }
    if group.rack:
        spec["affinity"]["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": layout.rack_label,
                                "operator": "In",
                                "values": [group.zone or group.rack],
                            }
                        ]
                    }
                ]
            }
        }
    else:
        spread.append({**spread[0], "topologyKey": ZONE_LABEL})
    return spec


def statefulset(
    service: str,
    role: str,
    group: Group,
    peers: list[str],
    layout: Layout,
    config: str,
    extra_env: list[dict] | None = None,
) -> dict:
    headless, ports = HEADLESS[(service, role)]
    component = f"{service}-{role}" if service in ("hdfs", "yarn") else service
    labels = {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/component": component}
    if group.rack:
        labels["racklab.io/rack"] = group.rack
    live_port = LIVE_PORT[role]
    if role in READY_HTTP:
        port, path = READY_HTTP[role]
        ready = {"httpGet": {"path": path, "port": port}}
    else:
        ready = {"exec": {"command": [PYTHON, START, "probe", service, role]}}
    container = {
        "name": role if service in ("hdfs", "yarn") else service,
        "image": layout.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/usr/bin/tini", "--", PYTHON, START],
        "args": ["run", service, role],
        "env": _env(group, peers, layout, headless) + (extra_env or []),
        "ports": [{"name": n, "containerPort": p} for n, p in ports.items()],
        "readinessProbe": {**ready, "periodSeconds": 5, "timeoutSeconds": 5},
        "livenessProbe": {
            "tcpSocket": {"port": live_port},
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "volumeMounts": [
            {"name": "data", "mountPath": DATA},
            {"name": "config", "mountPath": f"/etc/racklab/{service}"},
            {"name": "start", "mountPath": "/opt/racklab"},
        ],
    }
    res = resources(group)
    if res:
        container["resources"] = res
    volumes = [
        {"name": "config", "configMap": {"name": config}},
        {"name": "start", "configMap": {"name": "racklab-start"}},
    ]
    claims = []
    if layout.storage and role in VOLUME:
        claims.append(
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": VOLUME[role]}},
                },
            }
        )
    else:
        volumes.append({"name": "data", "emptyDir": {}})
    spec = {
        "serviceName": headless,
        "replicas": group.replicas,
        # a quorum member must be able to start before the others are ready
        "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": dict(labels)},
        "template": {
            "metadata": {"labels": dict(labels)},
            "spec": {
                "serviceAccountName": "racklab",
                "containers": [container],
                "volumes": volumes,
                **_placement(group, layout, component),
            },
        },
    }
    if claims:
        spec["volumeClaimTemplates"] = claims
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {**_meta(group.name, component), "labels": labels},
        "spec": spec,
    }


def _service(
    name: str, component: str, ports: dict[str, int], headless: bool, publish: bool = False
) -> dict:
    spec: dict = {
        "selector": {"app.kubernetes.io/component": component},
        "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports.items()],
    }
    if headless:
        spec["clusterIP"] = "None"
        # peers must find each other by name before they are ready (the quorum forms
        # only once they do): the ZooKeeper tutorial's publishNotReadyAddresses
        spec["publishNotReadyAddresses"] = publish
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, component), "spec": spec}


def _pdb(name: str, component: str) -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(name, component),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/component": component}},
        },
    }


def _configmap(name: str, component: str, data: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(name, component),
        "data": data,
    }


def rbac(namespace: str) -> list[dict]:
    """Pods read their node's labels (the zone) as Strimzi's init container does: a
    ServiceAccount with get on nodes. The ClusterRole is the same for every lab; each
    namespace binds it for its own ServiceAccount. In the namespace, a Role to get
    pods and StatefulSets: the NameNode finds where its DataNodes landed (their
    nodes' zones are their racks)."""
    meta = _meta("racklab", "rbac")
    reader = _meta("racklab-node-reader", "rbac")
    binding = _meta(f"racklab-node-reader-{namespace}", "rbac")
    subjects = [{"kind": "ServiceAccount", "name": "racklab", "namespace": namespace}]
    pods = [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
        {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["get"]},
    ]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": reader,
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": binding,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "racklab-node-reader",
            },
            "subjects": subjects,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta("racklab-pod-reader", "rbac"),
            "rules": pods,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta("racklab-pod-reader", "rbac"),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "racklab-pod-reader",
            },
            "subjects": subjects,
        },
    ]


def rack_map(groups: list[Group]) -> dict[str, str]:
    return {f"{g.name}-{i}": g.rack for g in groups if g.rack for i in range(g.replicas)}


def objects(layout: Layout) -> dict[str, list[dict]]:
    """file stem -> objects: namespace/rbac/start, then one file per service present."""
    s = layout.settings
    out: dict[str, list[dict]] = {
        "namespace": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": layout.namespace}}
        ],
        "rbac": rbac(layout.namespace),
        "start": [_configmap("racklab-start", "start", {"start.py": start_script()})],
    }
    zk_pods = pods_of(layout.zookeeper)
    if layout.zookeeper:
        cm = "zookeeper-config"
        objs = [_configmap(cm, "zookeeper", zookeeper_config(s.get("zookeeper", {})))]
        objs += [
            _service("zookeeper-hs", "zookeeper", HEADLESS[("zookeeper", "server")][1], True, True),
            _service("zookeeper", "zookeeper", {"client": 2181}, False),
            _pdb("zookeeper", "zookeeper"),
        ]
        objs += [
            statefulset("zookeeper", "server", g, zk_pods, layout, cm) for g in layout.zookeeper
        ]
        out["zookeeper"] = objs
    if layout.kafka:
        brokers = pods_of(layout.kafka)
        cm = "kafka-config"
        objs = [_configmap(cm, "kafka", kafka_config(s.get("kafka", {}), len(brokers), zk_pods))]
        objs += [
            _service("kafka-hs", "kafka", {"kafka": 9092}, True, True),
            _service("kafka", "kafka", {"kafka": 9092}, False),
            _pdb("kafka", "kafka"),
        ]
        objs += [statefulset("kafka", "broker", g, brokers, layout, cm) for g in layout.kafka]
        out["kafka"] = objs
    if layout.namenode:
        nn = pods_of(layout.namenode)[0]
        racks = rack_map(layout.datanode)
        hs = s.get("hdfs", {})
        objs = []
        # DataNodes pinned to no rack: the NameNode's start.py gives each the zone of
        # the node it landed on, read from the API before the NameNode starts
        unpinned = ",".join(g.name for g in layout.datanode if not g.rack)
        zones = [{"name": "RACKLAB_RACK_SETS", "value": unpinned}] if unpinned else []
        for role, groups in (("namenode", layout.namenode), ("datanode", layout.datanode)):
            comp = f"hdfs-{role}"
            name, ports = HEADLESS[("hdfs", role)]
            objs.append(_configmap(f"{comp}-config", comp, hdfs_config(hs, role, nn, racks)))
            objs.append(_service(name, comp, ports, True, True))
            objs += [
                statefulset(
                    "hdfs",
                    role,
                    g,
                    pods_of(groups),
                    layout,
                    f"{comp}-config",
                    zones if role == "namenode" else None,
                )  # fmt: skip
                for g in groups
            ]
        objs.append(_service("hdfs", "hdfs-namenode", {"http": 9870, "rpc": 8020}, False))
        objs.append(_pdb("hdfs-datanode", "hdfs-datanode"))
        out["hdfs"] = objs
    if layout.resourcemanager:
        rm = pods_of(layout.resourcemanager)[0]
        racks = rack_map(layout.nodemanager)
        ys = s.get("yarn", {})
        objs = []
        # NodeManagers pinned to no rack: as the DataNodes, by the ResourceManager's
        # start.py; the table names them by their NodeId's host (their DNS name)
        unpinned = ",".join(g.name for g in layout.nodemanager if not g.rack)
        zones = [
            {"name": "RACKLAB_RACK_SETS", "value": unpinned},
            {"name": "RACKLAB_RACK_SERVICE", "value": HEADLESS[("yarn", "nodemanager")][0]},
        ] if unpinned else []  # fmt: skip
        for role, groups in (
            ("resourcemanager", layout.resourcemanager),
            ("nodemanager", layout.nodemanager),
        ):
            comp = f"yarn-{role}"
            name, ports = HEADLESS[("yarn", role)]
            objs.append(_configmap(f"{comp}-config", comp, yarn_config(ys, role, rm, racks)))
            objs.append(_service(name, comp, ports, True, True))
            objs += [
                statefulset(
                    "yarn",
                    role,
                    g,
                    pods_of(groups),
                    layout,
                    f"{comp}-config",
                    zones if role == "resourcemanager" else None,
                )  # fmt: skip
                for g in groups
            ]
        objs.append(_service("yarn", "yarn-resourcemanager", {"webapp": 8088}, False))
        out["yarn"] = objs
    return out


def base_layout() -> Layout:
    """What k8s/base holds: three ZooKeeper servers, three brokers, a NameNode, three
    DataNodes, a ResourceManager and two NodeManagers, unpinned (racks from zones)."""
    return Layout(
        zookeeper=[Group("zookeeper", 3, cpus=0.5, memory=512 * 2**20)],
        kafka=[Group("kafka", 3, cpus=1, memory=1024 * 2**20)],
        namenode=[Group("hdfs-namenode", 1, cpus=0.5, memory=768 * 2**20)],
        datanode=[Group("hdfs-datanode", 3, cpus=0.5, memory=512 * 2**20)],
        resourcemanager=[Group("yarn-resourcemanager", 1, cpus=0.5, memory=768 * 2**20)],
        nodemanager=[Group("yarn-nodemanager", 2, cpus=1, memory=1536 * 2**20)],
        settings={
            "zookeeper": {"tickTime": 2000},
            "kafka": {"default.replication.factor": 3, "min.insync.replicas": 2},
            "hdfs": {"dfs.replication": 3},
            "yarn": {"yarn.nodemanager.resource.memory-mb": 1024},
        },
    )
