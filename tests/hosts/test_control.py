"""SSH control of a lab's hosts, against simulated hosts (real sshd, real SSH): the
preflight and host keys refused until `lab hosts trust`; every refusal one sentence,
exit 2, and nothing left on any host. (The agent's install, reuse and purge are in
test_multihost.py, whose lab installs it.)"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import paramiko
import pytest

from lab.hosts.preflight import vxlan_port
from lab.topology import labid_of

from .conftest import SET, lab_cli

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

AGENT_ROOT = "/var/lib/racklab-agent"


def lab_file(path: Path, sim, *, user="root", known_hosts=None, address=None) -> Path:
    """A topology file with one rack on each of the set's hosts."""
    lines = ["name: mhctl", "hosts:"]
    for i, (name, h) in enumerate(sim["hosts"].items()):
        addr = address if (address and i == 1) else h["address"]
        lines.append(
            f"  {name}: {{address: {addr}, user: {user}, key: {sim['key']}, "
            f"known_hosts: {known_hosts or sim['known_hosts']}}}"
        )
    lines += ["racks:"] + [
        f"  r{i}: {{host: {name}, nodes: [n{i}]}}" for i, name in enumerate(sim["hosts"], 1)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def ssh(sim, host: str, cmd: str) -> str:
    c = paramiko.SSHClient()
    c.load_host_keys(sim["known_hosts"])
    c.set_missing_host_key_policy(paramiko.RejectPolicy())
    c.connect(sim["hosts"][host]["address"], username="root", key_filename=sim["key"],
              look_for_keys=False, allow_agent=False, timeout=10, banner_timeout=60)  # fmt: skip
    with c:
        _, out, _ = c.exec_command(cmd, timeout=30)
        return out.read().decode()


def nothing_on_any_host(sim) -> bool:
    return all(
        ssh(sim, h, f"ls -d {AGENT_ROOT} /tmp/racklab-agent.* 2>/dev/null").strip() == ""
        for h in sim["hosts"]
    )


def one_sentence(proc, *words) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_check_passes_on_every_host(sim, tmp_path):
    proc = lab_cli("hosts", "check", str(lab_file(tmp_path / "lab.yaml", sim)), "--json")
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    assert list(facts) == list(sim["hosts"])
    for f in facts.values():
        assert (
            f["root"] == "login" and f["python"] >= "3.11" and f["cgroup"] in ("v1", "v2", "hybrid")
        )


def test_passwordless_sudo_is_enough(sim, tmp_path):
    proc = lab_cli(
        "hosts", "check", str(lab_file(tmp_path / "lab.yaml", sim, user="admin")), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    assert {f["root"] for f in json.loads(proc.stdout).values()} == {"sudo"}


def test_sudo_asking_for_a_password_is_refused(sim, tmp_path):
    f = lab_file(tmp_path / "lab.yaml", sim, user="guard")
    proc = lab_cli("hosts", "install", str(f))
    one_sentence(proc, f"host {SET}1", "guard has no passwordless sudo", "password is required")
    assert nothing_on_any_host(sim)


def test_unknown_host_key_is_refused_until_trusted(sim, tmp_path):
    known = tmp_path / "known_hosts"
    f = lab_file(tmp_path / "lab.yaml", sim, known_hosts=known)
    one_sentence(
        lab_cli("hosts", "check", str(f)), f"host {SET}1", "does not exist", "lab hosts trust"
    )
    known.write_text("")
    proc = lab_cli("hosts", "install", str(f))
    one_sentence(proc, f"host {SET}1", f"not in {known}", "lab hosts trust")
    assert nothing_on_any_host(sim)

    trusted = lab_cli("hosts", "trust", str(f), "--json")
    assert trusted.returncode == 0, trusted.stderr
    recorded = json.loads(trusted.stdout)
    assert [t["status"] for t in recorded] == ["recorded"] * 3
    assert all(t["fingerprint"].startswith("SHA256:") for t in recorded)
    # the keys recorded are the hosts' own, as the set wrote them
    assert sorted(known.read_text().split("\n")) == sorted(
        Path(sim["known_hosts"]).read_text().split("\n")
    )
    assert lab_cli("hosts", "check", str(f)).returncode == 0
    again = json.loads(lab_cli("hosts", "trust", str(f), "--json").stdout)
    assert [t["status"] for t in again] == ["already known"] * 3

    # another host's key where this one's should be: trust refuses to replace it
    lines = known.read_text().splitlines()
    first, second = lines[0].split(" ", 1), lines[1].split(" ", 1)
    known.write_text(f"{first[0]} {second[1]}\n" + "\n".join(lines[1:]) + "\n")
    one_sentence(lab_cli("hosts", "check", str(f)), f"host {SET}1", "is not the one")
    one_sentence(lab_cli("hosts", "trust", str(f)), f"host {SET}1", "records another")


def test_unreachable_host(sim, tmp_path):
    # an address on the set's own switch that no host answers
    nobody = str(sim["subnet"]).rsplit(".", 1)[0] + ".99"
    f = lab_file(tmp_path / "lab.yaml", sim, address=nobody)
    proc = lab_cli("hosts", "install", str(f))
    one_sentence(proc, f"host {SET}2 ({nobody})", "unreachable")
    assert nothing_on_any_host(sim)


def test_a_udp_port_closed_between_hosts(sim, tmp_path):
    f = lab_file(tmp_path / "lab.yaml", sim)
    port = str(vxlan_port(labid_of("mhctl")))
    ns = sim["hosts"][f"{SET}3"]["netns"]
    rule = ["INPUT", "-p", "udp", "--dport", port, "-j", "DROP"]
    subprocess.run(["ip", "netns", "exec", ns, "iptables", "-A", *rule], check=True)
    try:
        proc = lab_cli("hosts", "check", str(f))
    finally:
        subprocess.run(["ip", "netns", "exec", ns, "iptables", "-D", *rule], check=True)
    one_sentence(proc, f"host {SET}3", f"no UDP from host {SET}1", f"open UDP {port}")
