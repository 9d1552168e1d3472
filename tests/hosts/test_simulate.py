"""`lab hosts simulate`: real sshd servers, each in its own namespaces with its own
Debian root filesystem, reached over real SSH with paramiko; `--remove` leaves nothing."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import paramiko
import pytest
import yaml

from .conftest import RUN, SET, lab_cli

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def kernel_objects(name: str) -> list[str]:
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return [w for w in (netns + links).split() if w.rstrip(":").startswith(f"rlh{name}-")]


def connect(sim, host: str, user: str = "root", known_hosts: str | None = None):
    c = paramiko.SSHClient()
    c.load_host_keys(known_hosts or sim["known_hosts"])
    c.set_missing_host_key_policy(paramiko.RejectPolicy())
    c.connect(
        sim["hosts"][host]["address"],
        username=user,
        key_filename=sim["key"],
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
        banner_timeout=60,  # a loaded machine may take a while to start sshd's child
    )
    return c


def run(c, cmd: str) -> tuple[int, str, str]:
    _, out, err = c.exec_command(cmd, timeout=30)
    code = out.channel.recv_exit_status()
    return code, out.read().decode(), err.read().decode()


def test_root_logs_in_over_real_ssh_and_sees_its_own_host(sim):
    for host, h in sim["hosts"].items():
        with connect(sim, host) as c:
            assert c.get_transport().remote_version.startswith("SSH-2.0-OpenSSH")
            code, out, _ = run(c, "id -u; hostname; ip -4 -o addr show eth0; cat /proc/1/comm")
            uid, name, addr, init = out.splitlines()
            assert (code, uid, name) == (0, "0", host)
            assert f"inet {h['address']}/" in addr
            assert init == "tini"  # PID 1 of the host's own PID namespace, not this machine's
            # its own cgroup tree: what its racklab makes there stays apart from this
            # machine's labs and the other hosts', as on separate machines
            tree = "pids/" if Path("/sys/fs/cgroup/pids").is_dir() else ""  # v1 or v2-only
            code, out, _ = run(c, f"cat /proc/self/cgroup; mkdir /sys/fs/cgroup/{tree}mine")
            assert code == 0 and set(line.split(":")[2] for line in out.splitlines()) == {"/sim"}
            assert Path(f"/sys/fs/cgroup/{tree}racklab-simhosts/{h['netns']}/mine").is_dir()


def test_each_host_has_its_own_root_filesystem(sim):
    marker = f"/root/racklab-test-{secrets.token_hex(4)}"
    with connect(sim, f"{SET}1") as one, connect(sim, f"{SET}2") as two:
        with one.open_sftp() as sftp:
            with sftp.open(marker, "w") as f:
                f.write("only on host 1\n")
        assert run(one, f"cat {marker}")[1] == "only on host 1\n"
        assert run(two, f"test -e {marker}")[0] == 1
        assert not Path(marker).exists()  # nor on this machine
        code, out, _ = run(one, "findmnt -n -o FSTYPE /; . /etc/os-release; echo $ID; sshd -V")
        fstype, distro = out.splitlines()[:2]
        assert (code, fstype, distro) == (0, "overlay", "debian")


def test_hosts_reach_each_other_on_their_own_network(sim):
    other = sim["hosts"][f"{SET}2"]["address"]
    with connect(sim, f"{SET}1") as c:
        code, out, _ = run(c, f"ping -c 2 -W 2 {other}")
        assert code == 0 and " 0% packet loss" in out


def test_an_unknown_or_wrong_host_key_is_refused(sim, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        connect(sim, f"{SET}1", known_hosts=str(empty))
    # host 2's key recorded for host 1's address: another machine answering there
    lines = Path(sim["known_hosts"]).read_text().splitlines()
    addr1 = sim["hosts"][f"{SET}1"]["address"]
    swapped = tmp_path / "swapped"
    swapped.write_text(f"{addr1} {lines[1].split(' ', 1)[1]}\n")
    with pytest.raises(paramiko.BadHostKeyException):
        connect(sim, f"{SET}1", known_hosts=str(swapped))


def test_logins_besides_root_and_their_sudo(sim):
    with connect(sim, f"{SET}1", user="admin") as c:
        assert run(c, "sudo -n id -u") == (0, "0\n", "")
    with connect(sim, f"{SET}1", user="guard") as c:
        code, _, err = run(c, "sudo -n id -u")
        assert code == 1 and "password is required" in err


def test_cli_prints_a_hosts_section_and_remove_leaves_nothing():
    name = f"mr{RUN}"
    lab_cli("hosts", "simulate", "--remove", "--name", name)
    made = lab_cli("hosts", "simulate", "1", "--name", name)
    assert made.returncode == 0, made.stderr
    section = yaml.safe_load(made.stdout)["hosts"]
    assert list(section) == [f"{name}1"]
    assert set(section[f"{name}1"]) == {"address", "user", "key", "known_hosts"}
    assert kernel_objects(name)
    again = lab_cli("hosts", "simulate", "1", "--name", name)
    assert again.returncode == 2 and "exist already" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    gone = lab_cli("hosts", "simulate", "--remove", "--name", name)
    assert gone.returncode == 0, gone.stderr
    assert kernel_objects(name) == []
    assert not list(Path("/sys/fs/cgroup").glob(f"*/racklab-simhosts/rlh{name}-*"))
    assert not Path(section[f"{name}1"]["key"]).exists()
    assert lab_cli("hosts", "simulate", "--remove", "--name", name).returncode == 2
