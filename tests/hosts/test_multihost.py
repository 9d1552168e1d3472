"""examples/multihost.yaml on three simulated hosts (real sshd, own root filesystems,
the agent installed over SFTP): the four services used from this machine with the
unmodified clients, round trips across hosts and inside a rack, `lab exec` on any
host, and nothing left on any host after `lab down`, nor after a kill -9 of `lab up`
half-way and `lab clean`."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import pytest

from lab.topology import labid_of

from .conftest import RUN, SET, example_lab, lab_cli, lab_state, zk_round_trip

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

LAB = f"mhlab{RUN}"
DELAY_MS = 2.0  # the example's inter-rack delay
JITTER_MS = 0.2  # and its jitter: each way is delayed DELAY_MS +/- JITTER_MS


def ssh(sim, i: int, cmd: str) -> str:
    h = list(sim["hosts"].values())[i - 1]
    c = paramiko.SSHClient()
    c.load_host_keys(sim["known_hosts"])
    c.set_missing_host_key_policy(paramiko.RejectPolicy())
    c.connect(h["address"], username="root", key_filename=sim["key"],
              look_for_keys=False, allow_agent=False, timeout=10, banner_timeout=60)  # fmt: skip
    with c:
        _, out, _ = c.exec_command(cmd, timeout=30)
        return out.read().decode()


def sshd_logins(sim) -> list[int]:
    """How many logins each simulated host's sshd has accepted so far."""
    return [
        (Path(sim["key"]).parent / host / "sshd.log").read_text().count("Accepted publickey")
        for host in sim["hosts"]
    ]


def lab_leftovers(sim) -> list[str]:
    """What of the lab is on this machine and on each host (checked over SSH)."""
    labid = labid_of(LAB)
    found = []
    here = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    here += subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"here: {w}" for w in here.split() if w.startswith(f"rl{labid}-")]
    look = (
        f"ip netns list | grep -o 'rl{labid}-[a-z]*'; ip -o link | grep -o 'rl{labid}-[a-z]*'; "
        f"ls -d /sys/fs/cgroup/*/racklab/{LAB} /var/lib/racklab/{LAB} 2>/dev/null; "
        "ps -eo args | grep -c '[l]ab.services' | grep -v '^0$'"
    )
    for i in (1, 2, 3):
        found += [f"host {i}: {w}" for w in ssh(sim, i, look).split()]
    return found


@pytest.fixture(scope="module")
def lab(sim, tmp_path_factory):
    with example_lab(sim, "multihost", LAB, tmp_path_factory) as (f, status):
        yield {"file": f, "status": status, "agents": lab_state(LAB)["agents"]}


def test_the_agent_was_installed_on_every_host(lab, sim):
    agents = lab["agents"]
    assert set(agents) == {"h1", "h2", "h3"} and len({a["tag"] for a in agents.values()}) == 1
    for i, a in enumerate(agents.values(), start=1):
        if not a["reused"]:  # fresh simulated hosts: unless an earlier test installed it
            assert a["sent_bytes"] > 1 << 20
        # racklab itself runs on the host, from the agent's venv on the host's own disk
        where = ssh(sim, i, f"{a['python']} -c 'import lab; print(lab.__file__)'")
        assert where.startswith(f"/var/lib/racklab-agent/{a['tag']}/venv/")
        # the host's own libvirt binding (Debian's python3-libvirt), for VM nodes there
        where = ssh(sim, i, f"{a['python']} -c 'import libvirt; print(libvirt.__file__)'")
        assert where.startswith("/usr/lib/python3/dist-packages/")


def address(lab, node: str) -> str:
    return lab["status"]["network"]["nodes"][node]


def test_the_four_services_from_this_machine(lab):
    from hdfs import InsecureClient
    from kafka import KafkaConsumer, KafkaProducer
    from yarn_api_client.resource_manager import ResourceManager

    zk_round_trip([address(lab, n) for n in ("n1", "n3", "n5")], "/across", b"three hosts")

    producer = KafkaProducer(bootstrap_servers=f"{address(lab, 'n1')}:9092", acks="all")
    for i in range(10):
        producer.send("across", f"m{i}".encode())
    producer.flush(timeout=60)
    producer.close()
    consumer = KafkaConsumer("across", bootstrap_servers=f"{address(lab, 'n5')}:9092",
                             auto_offset_reset="earliest", consumer_timeout_ms=15000)  # fmt: skip
    got = sorted(m.value for m in consumer)
    consumer.close()
    assert got == sorted(f"m{i}".encode() for i in range(10))

    fs = InsecureClient(f"http://{address(lab, 'n1')}:9870", user="root")
    data = os.urandom(3 << 20)  # three blocks of 1 MiB, each on three hosts' DataNodes
    fs.write("/across.bin", data=data, overwrite=True)
    with fs.read("/across.bin") as r:
        assert r.read() == data

    rm = ResourceManager(service_endpoints=[f"http://{address(lab, 'n3')}:8088"])
    assert rm.cluster_metrics().data["clusterMetrics"]["activeNodes"] == 3


def rtt_ms(src: str, dst: str) -> tuple[float, float]:
    proc = lab_cli("exec", src, "--lab", LAB, "--", "ping", "-c", "5", "-i", "0.2", "-W", "2", dst)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lo, avg = re.search(r"= ([\d.]+)/([\d.]+)/", proc.stdout).groups()
    return float(lo), float(avg)


def test_round_trips_across_hosts_and_inside_a_rack(lab):
    across, _ = rtt_ms("n1", "n3")  # rack r1 on host 1 to rack r2 on host 2
    assert across >= 2 * (DELAY_MS - JITTER_MS)
    _, inside = rtt_ms("n1", "n2")  # both in r1
    assert inside < 2 * DELAY_MS


def test_exec_on_every_host_and_its_exit_status(lab, sim):
    for node, host in (("n2", 1), ("n4", 2), ("n6", 3)):
        proc = lab_cli("exec", node, "--lab", LAB, "--", "sh", "-c", "hostname; exit 7")
        assert (proc.returncode, proc.stdout) == (7, f"{node}\n")
        # the node is a process of that host, in that host's own cgroups
        assert node in ssh(sim, host, f"ls /sys/fs/cgroup/pids/racklab/{LAB}/")


def test_a_shell_with_a_terminal_on_a_node_of_another_host(lab):
    pid, fd = pty.fork()
    if pid == 0:  # the child: `lab shell` on a terminal, as a user types it
        os.execvp(sys.executable, [sys.executable, "-m", "lab", "shell", "n4", "--lab", LAB])
    seen = b""

    def read_until(word: bytes, seconds: float = 30) -> None:
        nonlocal seen
        end = time.monotonic() + seconds
        while word not in seen and time.monotonic() < end:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    seen += os.read(fd, 4096)
                except OSError:
                    return

    read_until(b"[n4]")
    os.write(fd, b"echo on-$(hostname) $(tty)\n")
    read_until(b"on-n4 /dev/pts/")
    os.write(fd, b"exit 4\n")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert b"on-n4 /dev/pts/" in seen, seen  # a terminal on the host, inside the node
    assert os.waitstatus_to_exitcode(status) == 4


def test_status_and_graph_say_where_each_rack_runs(lab, tmp_path):
    hosts = json.loads(lab_cli("status", "--lab", LAB, "--json").stdout)["hosts"]
    assert {h: v["racks"] for h, v in hosts.items()} == {"h1": ["r1"], "h2": ["r2"], "h3": ["r3"]}
    for name, h in hosts.items():
        # round trips measured over the backbone: to this machine and to the other hosts
        assert set(h["rtt_ms"]) == {"controller", "h1", "h2", "h3"} - {name}
        assert all(ms is not None and ms > 0 for ms in h["rtt_ms"].values())
    text = lab_cli("status", "--lab", LAB).stdout
    assert "host h2 (" in text and "racks r2; round trip to controller" in text
    svg = tmp_path / "lab.svg"
    assert lab_cli("graph", "--lab", LAB, "-o", str(svg)).returncode == 0
    assert all(f"rack r{i} on host h{i}" in svg.read_text() for i in (1, 2, 3))


def test_zookeeper_under_a_partition_a_kill_and_a_pause_on_other_hosts_is_judged(lab):
    # one rack per host: a rack cut off is a host cut off from the others
    proc = lab_cli("chaos", "run", "--lab", LAB, "--workload", "zk-register", "--nemesis",
                   "partition-rack,kill,pause", "--time", "30", "--interval", "4", "--seed",
                   "15", "--json")  # fmt: skip
    summary = json.loads(proc.stdout)
    assert proc.returncode == 0 and summary["valid"] is True, summary.get("lines", summary)
    assert summary["verdict"]["nemesis_errors"] == []
    events = [json.loads(line) for line in open(Path(summary["run_dir"]) / "history.jsonl")]
    faults = {e["value"]: e["extra"]["description"] for e in events
              if e["process"] == "nemesis" and e["f"] == "start"}  # fmt: skip
    assert set(faults) == {"partition-rack", "kill", "pause"}, faults
    assert "cut off" in faults["partition-rack"]
    assert faults["kill"].endswith("(SIGKILL)")  # the host's own kill of the service
    # the service's own cgroup on its host was frozen, not its whole node
    assert faults["pause"].endswith("(freezer)")
    # the faults were real: operations failed or went unanswered while they held
    assert any(e["type"] in ("fail", "info") for e in events if e["process"] != "nemesis")
    # and every service is back: healed through the hosts' agents
    nodes = json.loads(lab_cli("status", "--lab", LAB, "--json").stdout)["nodes"]
    services = [(n["name"], s["role"], s["running"]) for n in nodes for s in n["services"]]
    assert services and all(running for _, _, running in services), services


def test_packet_faults_on_a_node_of_another_host(lab):
    from lab.chaos.labctx import LabContext
    from lab.hosts.client import close_all
    from lab.net.faults import PacketFault

    ctx = LabContext.attach(LAB)
    node = ctx.nodes["n3"]  # on host 2; the pings come from n1, on host 1
    try:
        info = node.start_packet_fault(PacketFault(delay=0.05), seed=1)
        try:
            slow, _ = rtt_ms("n1", "n3")
        finally:
            node.heal_packet_fault(info)
        assert slow >= 50 + 2 * (DELAY_MS - JITTER_MS)  # what n3 sends waits 50 ms more
        assert rtt_ms("n1", "n3")[0] < 50

        info = node.start_packet_fault(PacketFault(loss=100), seed=2)
        lost = lab_cli("exec", "n1", "--lab", LAB, "--", "ping", "-c", "3", "-i", "0.2",
                       "-W", "1", "n3")  # fmt: skip
        assert lost.returncode == 1 and "100% packet loss" in lost.stdout
        # a run that died with the fault in place: healing finds it on the host
        assert "packet faults removed from n3" in ctx.heal_everything()
        assert rtt_ms("n1", "n3")[0] < 50
    finally:
        close_all()


def test_logs_of_nodes_on_other_hosts(lab):
    proc = lab_cli("logs", "n5", "zookeeper-server", "--lab", LAB, "-n", "3")
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and len(lines) == 3 and all("zookeeper" in x for x in lines)
    # -f follows the log on its host: a line added there shows up here
    follow = subprocess.Popen([sys.executable, "-m", "lab", "logs", "n4", "hdfs-datanode",
                               "--lab", LAB, "-f", "-n", "0"], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        mark = f"racklab-test-mark-{os.getpid()}"
        state = json.loads((Path(os.environ["RACKLAB_HOME"]) / LAB / "state.json").read_text())
        path = state["services"]["hdfs-datanode-n4"]["log"]
        time.sleep(1)  # -n 0: what is there when it starts is not shown
        lab_cli("exec", "n4", "--lab", LAB, "--", "sh", "-c", f"echo {mark} >> {path}")
        seen = ""
        deadline = time.monotonic() + 30
        while mark not in seen and time.monotonic() < deadline:
            if select.select([follow.stdout], [], [], 0.5)[0]:
                seen += follow.stdout.readline()
        assert mark in seen
    finally:
        follow.terminate()
        follow.wait()


def test_a_bad_host_stops_up_before_anything_is_made(lab, sim, tmp_path):
    f = tmp_path / "guarded.yaml"
    f.write_text(lab["file"].read_text().replace(f"name: {LAB}", f"name: mhguard{RUN}")
                 .replace("user: root", "user: guard"))  # fmt: skip
    proc = lab_cli("up", str(f))
    assert proc.returncode == 2
    # progress lines (·) come first; the failure is one sentence
    assert [line for line in proc.stderr.splitlines() if not line.startswith("·")] == [
        "error: host h1 (" + list(sim["hosts"].values())[0]["address"] + "): guard has no "
        "passwordless sudo (a password is required); racklab needs root or sudo without a "
        "password (NOPASSWD)"
    ]
    labid = labid_of(f"mhguard{RUN}")
    for i in (1, 2, 3):
        look = f"ip netns list | grep rl{labid}; ls -d /var/lib/racklab/mhguard{RUN} 2>/dev/null"
        assert ssh(sim, i, look).strip() == ""
    assert not (Path(os.environ["RACKLAB_HOME"]) / f"mhguard{RUN}").exists()


def test_what_vm_nodes_need_is_checked_by_the_agent_and_installed(lab, sim, tmp_path):
    f = tmp_path / "vm.yaml"
    f.write_text(lab["file"].read_text().replace(f"name: {LAB}", f"name: mhvm{RUN}")
                 + "nodes:\n  n2: {kind: vm, memory: 1Gi}\n")  # fmt: skip
    h1 = list(sim["hosts"].values())[0]["address"]
    # host 1's libvirtd stopped: the simulated hosts run one, as a prepared spare machine
    ssh(
        sim,
        1,
        "kill $(cat /run/libvirtd.pid); "
        "for i in $(seq 100); do [ -e /run/libvirtd.pid ] || break; sleep 0.1; done",
    )
    try:
        refusals = [lab_cli("up", str(f)), lab_cli("hosts", "check", str(f))]
    finally:
        installed = lab_cli("hosts", "install", str(f), "--json")
    # lab up and lab hosts check: the same sentence, from the agent's own answer
    for proc in refusals:
        errors = [line for line in proc.stderr.splitlines() if not line.startswith("·")]
        assert proc.returncode == 2 and len(errors) == 1, proc.stderr
        assert errors[0].startswith(f"error: host h1 ({h1}): its vm nodes cannot run there: "
                                    "cannot reach the libvirt daemon at qemu:///system (")  # fmt: skip
        assert errors[0].endswith("`lab hosts install FILE` installs and starts what they need "
                                  "(libvirt-daemon-system, qemu-system-x86, qemu-utils, "
                                  "python3-libvirt, virtlogd, libvirtd)")  # fmt: skip
    labid = labid_of(f"mhvm{RUN}")
    for i in (1, 2, 3):
        assert ssh(sim, i, f"ip netns list | grep rl{labid}; ip -o link | grep rl{labid}") == ""
    # install: the packages are there already, libvirtd was started again, and only on
    # the host whose nodes need it; then the agent finds the accelerator there
    assert installed.returncode == 0, installed.stderr
    done = json.loads(installed.stdout)
    assert {h: d["added"] for h, d in done.items()} == {
        "h1": ["started libvirtd"], "h2": [], "h3": []}  # fmt: skip
    assert done["h1"]["kinds"]["vm"]["accelerator"] in ("kvm", "tcg")
    checked = lab_cli("hosts", "check", str(f), "--json")
    assert checked.returncode == 0, checked.stderr
    kinds = {h: sorted(c["kinds"]) for h, c in json.loads(checked.stdout).items()}
    assert kinds == {"h1": ["process", "vm"], "h2": ["process"], "h3": ["process"]}


def test_down_then_kill_9_of_up_and_clean_leave_nothing_on_any_host(lab, sim):
    # host 2 unreachable (its cable pulled on the set's switch): down says so, and
    # keeps the lab's state, so that nothing it made there is lost track of
    cable = ["ip", "-n", f"rlh{SET}-sw", "link", "set", "h2"]
    subprocess.run([*cable, "down"], check=True)
    try:
        proc = lab_cli("down", LAB)
    finally:
        subprocess.run([*cable, "up"], check=True)
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("·")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert errors[0].startswith("error: host h2 (") and f"lab clean {LAB}" in errors[0]
    assert (Path(os.environ["RACKLAB_HOME"]) / LAB / "state.json").exists()
    proc = lab_cli("down", LAB)  # the host is back
    assert proc.returncode == 0, proc.stderr
    assert lab_leftovers(sim) == []

    # again, killed while the hosts make their nodes
    logins = sshd_logins(sim)
    up = subprocess.Popen([sys.executable, "-m", "lab", "up", str(lab["file"])],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          start_new_session=True)  # fmt: skip
    seen = []
    deadline = time.monotonic() + 240
    for line in up.stderr:
        seen.append(line)
        if "starting 6 nodes" in line or time.monotonic() > deadline:
            break
    state = json.loads((Path(os.environ["RACKLAB_HOME"]) / LAB / "state.json").read_text())
    os.killpg(up.pid, signal.SIGKILL)
    up.wait()
    assert any("starting 6 nodes" in line for line in seen), seen
    # one SSH connection per host for the whole command: checks, agent, routers, nodes
    assert [b - a for a, b in zip(logins, sshd_logins(sim), strict=True)] == [1, 1, 1]
    # the second up found the agents it needed: nothing was installed again (unless
    # racklab's source changed in between, in a checkout others are editing: the tag
    # hashes it, and a new version is installed)
    for host, a in state["agents"].items():
        # (another command of this run may have installed that new version already)
        if a["tag"] == lab["agents"][host]["tag"]:
            assert a["reused"]
        assert (a["sent_bytes"] == 0) is a["reused"]
    assert set(state["hosts"]) == {"h1", "h2", "h3"}  # recorded before any host was touched

    proc = lab_cli("clean", LAB)
    assert proc.returncode == 0, proc.stderr
    assert lab_leftovers(sim) == []


def test_purge_removes_the_agent_from_every_host(lab, sim):
    purged = lab_cli("hosts", "purge", str(lab["file"]), "--json")
    assert json.loads(purged.stdout) == {"removed": ["h1", "h2", "h3"]}
    for i in (1, 2, 3):
        assert (
            ssh(
                sim, i, "ls -d /var/lib/racklab-agent /tmp/racklab-agent.* 2>&1 >/dev/null | wc -l"
            ).strip()
            == "2"
        )
    assert json.loads(lab_cli("hosts", "purge", str(lab["file"]), "--json").stdout) == {
        "removed": []
    }
