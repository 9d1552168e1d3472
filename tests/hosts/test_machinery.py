"""What a host's node kinds need (lab/hosts/machinery.py), without a host: the kinds
each host of a file has, the sentence a kind's missing machinery becomes, and what
`lab hosts install` asks of a host and makes of its answers (the simulated hosts in
test_multihost.py run the real thing where the packages are there and a daemon is
stopped)."""

from __future__ import annotations

import pytest

from lab.hosts import machinery
from lab.hosts.ssh import HostError, Result
from lab.topology import loads
from lab.topology.hosts import HostDef

FILE = """name: mach
hosts:
  h1: {address: 192.0.2.11}
  h2: {address: 192.0.2.12}
racks:
  r1: {host: h1, nodes: [v1, c1]}
  r2: {host: h2, nodes: [n1]}
nodes:
  v1: {kind: vm}
  c1: {kind: container}
"""


class FakeHost:
    def __init__(self, out: str = "", code: int = 0):
        self.spec = HostDef(name="h1", address="192.0.2.11")
        self.out, self.code, self.ran = out, code, []

    def run(self, cmd, **kw) -> Result:
        self.ran.append(cmd)
        return Result(self.code, self.out, "")


class FakeAgent:
    def __init__(self, answer: dict):
        self.answer, self.asked = answer, []

    def call(self, op, **args):
        self.asked.append((op, args))
        return self.answer


def test_the_kinds_on_each_host_come_from_the_file():
    topo = loads(FILE, "mach.yaml")
    assert machinery.kinds_on(topo) == {"h1": {"vm", "container"}, "h2": {"process"}}


def test_a_kind_whose_machinery_does_not_answer_is_one_sentence_with_the_remedy():
    agent = FakeAgent({"process": {}, "vm": {"error": "cannot reach the libvirt daemon at "
                       "qemu:///system (no socket); `make libvirt` installs and starts libvirtd"}})  # fmt: skip
    with pytest.raises(HostError) as e:
        machinery.check(FakeHost(), agent, {"vm", "process"})
    assert agent.asked == [("machinery", {"kinds": ["process", "vm"]})]
    assert str(e.value) == (
        "host h1 (192.0.2.11): its vm nodes cannot run there: cannot reach the libvirt "
        "daemon at qemu:///system (no socket); `lab hosts install FILE` installs and starts "
        "what they need (libvirt-daemon-system, qemu-system-x86, qemu-utils, python3-libvirt, "
        "virtlogd, libvirtd)"
    )
    facts = {"process": {}, "container": {"docker": "20.10.24", "image": None}}
    assert machinery.check(FakeHost(), FakeAgent(facts), {"container", "process"}) == facts


def test_install_asks_for_the_kinds_packages_and_daemons_only():
    host = FakeHost("installed: docker.io\nstarted:dockerd\n")
    assert machinery.install(host, {"container", "pod", "process"}) == [
        "installed docker.io", "started dockerd"]  # fmt: skip
    # once each, though container and pod nodes both need them
    assert host.ran[0].startswith("PACKAGES=docker.io DAEMONS=docker:dockerd:dockerd;")
    # process nodes need nothing of a machine: the host is not even asked
    quiet = FakeHost()
    assert machinery.install(quiet, {"process"}) == [] and quiet.ran == []


def test_a_host_without_apt_is_told_which_debian_packages_to_install():
    host = FakeHost(
        "missing: libvirt-daemon-system qemu-system-x86 qemu-utils python3-libvirt\n", 3
    )
    with pytest.raises(HostError) as e:
        machinery.install(host, {"vm"})
    assert str(e.value) == (
        "host h1 (192.0.2.11): has no apt-get to install what its nodes need; install the "
        "packages that provide libvirt-daemon-system qemu-system-x86 qemu-utils "
        "python3-libvirt (their Debian names) and start them"
    )
    with pytest.raises(HostError, match="libvirtd did not start"):
        machinery.install(FakeHost("nostart:libvirtd\n", 4), {"vm"})
