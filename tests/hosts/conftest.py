"""One set of simulated hosts for every multi-host test of the run (three hosts: SET1,
SET2, SET3), made once and removed at the end: each set costs a root filesystem per
host and, once an agent is on them, an install."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# Names of this run's own: two test runs on one machine (two sessions' `make test`) must
# not remove each other's hosts or meet each other's lab (kernel objects are named
# after it). RUN is 4 hex digits of the process id; a set's name is at most 8 characters.
RUN = f"{os.getpid() & 0xFFFF:04x}"
SET = f"mt{RUN}"


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def lab_cli(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "lab", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="package")  # removed after the last hosts test
def sim():
    if os.geteuid() != 0:
        pytest.skip("simulated hosts need root")
    proc = lab_cli("hosts", "simulate", "3", "--name", SET, "--json")
    assert proc.returncode == 0, proc.stderr
    yield json.loads(proc.stdout)
    lab_cli("hosts", "simulate", "--remove", "--name", SET)


def sshd_tails(sim, lines: int = 5) -> str:
    """The last lines of each simulated host's sshd log: what a failure message needs
    when a host stopped answering."""
    out = []
    for host in sim["hosts"]:
        log = Path(sim["key"]).parent / host / "sshd.log"
        text = log.read_text(errors="replace").splitlines()[-lines:] if log.is_file() else []
        out.append(f"--- {host} sshd:\n" + "\n".join(text))
    return "\n" + "\n".join(out)


def zk_round_trip(addresses: list[str], path: str, data: bytes, timeout: float = 30) -> None:
    """Create ``path`` with ``data`` through kazoo on the lab's ZooKeeper servers at
    ``addresses`` and read it back: the ensemble serves a client from this machine."""
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=",".join(f"{a}:2181" for a in addresses))
    zk.start(timeout=timeout)
    try:
        zk.create(path, data, makepath=True)
        assert zk.get(path)[0] == data
    finally:
        zk.stop()


def example_on_sim(sim, example: str, lab: str) -> str:
    """examples/<example>.yaml as the lab ``lab``, its placeholder hosts h1, h2, ...
    replaced by the simulated hosts, in order."""
    text = (
        (EXAMPLES / f"{example}.yaml").read_text().replace(f"name: {example}\n", f"name: {lab}\n")
    )
    for i, h in enumerate(sim["hosts"].values(), start=1):
        text = re.sub(
            rf"^  h{i}: \{{.*\}}$",
            f"  h{i}: {{address: {h['address']}, user: root, key: {sim['key']}, "
            f"known_hosts: {sim['known_hosts']}}}",
            text,
            flags=re.M,
        )
    assert "example.net" not in text
    return text


def lab_state(lab: str) -> dict:
    """The lab's state file on this machine."""
    return json.loads((Path(os.environ["RACKLAB_HOME"]) / lab / "state.json").read_text())


@contextlib.contextmanager
def example_lab(sim, example: str, lab: str, tmp_path_factory):
    """examples/<example>.yaml up on the simulated hosts as ``lab`` (example_on_sim):
    (its file, the status `lab up` printed); the lab cleaned away afterwards."""
    f = tmp_path_factory.mktemp(lab) / f"{example}.yaml"
    f.write_text(example_on_sim(sim, example, lab))
    lab_cli("clean", lab)
    proc = lab_cli("up", str(f), "--json", timeout=1500)
    assert proc.returncode == 0, proc.stderr + sshd_tails(sim)
    try:
        yield f, json.loads(proc.stdout)
    finally:
        lab_cli("clean", lab)
