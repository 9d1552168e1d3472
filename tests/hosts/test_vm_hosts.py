"""Two libvirt VMs as a lab's hosts: real separate kernels (cgroup v2 guests), reached
over SSH like spare machines. The VMs are the nodes of a first lab on this machine;
a second lab spreads its racks over them. Slow: two VM boots and the agent's install
under emulation."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import paramiko
import pytest

from lab.topology import labid_of

from .conftest import RUN, lab_cli, zk_round_trip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1800),  # VM boots and an install under emulation: minutes
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

VMS = f"mhvms{RUN}"  # the lab whose VM nodes are the hosts
LAB = f"mhonvms{RUN}"  # the lab spread over them
DELAY_MS = 2.0


@pytest.fixture(scope="module")
def vm_hosts(tmp_path_factory):
    d = tmp_path_factory.mktemp("vmhosts")
    f = d / "vms.yaml"
    f.write_text(
        f"name: {VMS}\ndefaults: {{kind: vm, cpus: 1, memory: 1Gi}}\n"
        "racks:\n  r1: {nodes: [vh1, vh2]}\n"
    )
    lab_cli("clean", VMS)
    proc = lab_cli("up", str(f), "--json", timeout=900)
    if proc.returncode != 0:
        pytest.skip(f"VM nodes are not available here: {proc.stderr.strip()[-300:]}")
    addrs = json.loads(proc.stdout)["network"]["nodes"]
    key = Path(os.environ["RACKLAB_HOME"]) / VMS / "ssh" / "id_ed25519"
    yield {"addrs": addrs, "key": str(key), "dir": d}
    lab_cli("clean", LAB)
    lab_cli("clean", VMS)


def ssh(vm_hosts, node: str, cmd: str) -> str:
    c = paramiko.SSHClient()
    c.load_host_keys(str(vm_hosts["dir"] / "known_hosts"))
    c.set_missing_host_key_policy(paramiko.RejectPolicy())
    c.connect(vm_hosts["addrs"][node], username="root", key_filename=vm_hosts["key"],
              look_for_keys=False, allow_agent=False, timeout=10, banner_timeout=60)  # fmt: skip
    with c:
        _, out, _ = c.exec_command(cmd, timeout=60)
        return out.read().decode()


def leftovers(vm_hosts, lab: str) -> str:
    """What of ``lab`` is on either VM (checked over SSH), as text; empty when nothing."""
    labid = labid_of(lab)
    look = (f"ip netns list | grep rl{labid}; ip -o link | grep -o 'rl{labid}-[a-z]*'; "
            f"ls -d /sys/fs/cgroup/racklab/{lab} /var/lib/racklab/{lab} 2>/dev/null; "
            "ps -eo args | grep '[l]ab.services'")  # fmt: skip
    return "".join(ssh(vm_hosts, vm, look) for vm in ("vh1", "vh2")).strip()


def test_a_lab_across_two_vms(vm_hosts):
    d = vm_hosts["dir"]
    f = d / "spread.yaml"
    a = vm_hosts["addrs"]
    f.write_text(
        f"name: {LAB}\nnetwork:\n  inter_rack: {{delay: {DELAY_MS}ms}}\nhosts:\n"
        f"  v1: {{address: {a['vh1']}, key: {vm_hosts['key']}, known_hosts: {d / 'known_hosts'}}}\n"
        f"  v2: {{address: {a['vh2']}, key: {vm_hosts['key']}, known_hosts: {d / 'known_hosts'}}}\n"
        "racks:\n  r1: {host: v1, nodes: [a1, b1]}\n  r2: {host: v2, nodes: [a2]}\n"
        "services:\n  zookeeper: {nodes: [a1, b1, a2]}\n"
    )
    # unknown keys first: refused, then recorded on purpose
    proc = lab_cli("up", str(f))
    assert proc.returncode == 2 and "lab hosts trust" in proc.stderr
    assert lab_cli("hosts", "trust", str(f)).returncode == 0

    checked = json.loads(lab_cli("hosts", "check", str(f), "--json").stdout)
    kernels = {h["kernel"] for h in checked.values()}
    assert os.uname().release not in kernels  # the hosts run kernels of their own

    proc = lab_cli("up", str(f), "--json", timeout=1200)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert {h: v["racks"] for h, v in status["hosts"].items()} == {"v1": ["r1"], "v2": ["r2"]}
    agents = json.loads((Path(os.environ["RACKLAB_HOME"]) / LAB / "state.json").read_text())[
        "agents"
    ]
    assert not any(x["reused"] for x in agents.values())  # fresh VMs: installed

    # ZooKeeper across the two kernels, used from this machine with kazoo
    addr = status["network"]["nodes"]
    zk_round_trip([addr[n] for n in ("a1", "b1", "a2")], "/vms", b"two kernels", timeout=60)

    ping = lab_cli("exec", "a1", "--lab", LAB, "--", "ping", "-c", "5", "-i", "0.2", "a2")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    lo = float(re.search(r"= ([\d.]+)/", ping.stdout).group(1))
    assert lo >= 2 * DELAY_MS
    _, inside = re.search(
        r"= ([\d.]+)/([\d.]+)/",
        lab_cli("exec", "a1", "--lab", LAB, "--", "ping", "-c", "5", "-i", "0.2", "b1").stdout,
    ).groups()
    assert float(inside) < 2 * DELAY_MS  # within a rack: no inter-rack delay
    proc = lab_cli(
        "exec", "a2", "--lab", LAB, "--", "sh", "-c", "cat /proc/sys/kernel/hostname; exit 5"
    )
    assert (proc.returncode, proc.stdout) == (5, "a2\n")
    logs = lab_cli("logs", "a2", "zookeeper-server", "--lab", LAB, "-n", "2")
    assert logs.returncode == 0 and "zookeeper" in logs.stdout

    # a chaos run across the two VMs: the rack on one cut off from the other, a kill
    proc = lab_cli("chaos", "run", "--lab", LAB, "--workload", "zk-register", "--nemesis",
                   "partition-rack,kill", "--time", "30", "--interval", "5", "--seed", "7",
                   "--json", timeout=600)  # fmt: skip
    summary = json.loads(proc.stdout)
    assert proc.returncode == 0 and summary["valid"] is True, summary.get("lines", summary)
    assert summary["verdict"]["nemesis_errors"] == []

    assert lab_cli("down", LAB).returncode == 0
    assert leftovers(vm_hosts, LAB) == ""

    # again: the agents are reused; kill -9 of that up while the hosts make their
    # nodes, then `lab clean` leaves nothing on either VM
    up = subprocess.Popen([sys.executable, "-m", "lab", "up", str(f)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    seen = []
    for line in up.stderr:
        seen.append(line)
        if "starting 3 nodes" in line:
            break
    state = json.loads((Path(os.environ["RACKLAB_HOME"]) / LAB / "state.json").read_text())
    os.killpg(up.pid, signal.SIGKILL)
    up.wait()
    assert any("starting 3 nodes" in line for line in seen), seen
    # nothing installed again (unless racklab's source changed in between, in a
    # checkout others are editing: the agent's tag hashes it)
    for host, x in state["agents"].items():
        same = x["tag"] == agents[host]["tag"]
        assert x["reused"] is same and (x["sent_bytes"] == 0) is same
    assert lab_cli("clean", LAB).returncode == 0
    assert leftovers(vm_hosts, LAB) == ""

    purged = json.loads(lab_cli("hosts", "purge", str(f), "--json").stdout)
    assert purged == {"removed": ["v1", "v2"]}
    for vm in ("vh1", "vh2"):
        assert ssh(vm_hosts, vm, "ls /var/lib/racklab-agent 2>/dev/null | wc -l").strip() == "0"
