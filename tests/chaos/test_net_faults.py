"""Partitions and packet faults on a scratch rack (a bridge in a router namespace and two
node namespaces), measured with ping; every fault healed leaves nothing behind."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from lab.net import faults

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")


def sh(*argv, check=True):
    return subprocess.run(argv, capture_output=True, text=True, check=check)


@pytest.fixture
def rack():
    tag = f"fxt{os.getpid() % 100000}"
    router, a, b = f"{tag}r", f"{tag}a", f"{tag}b"
    for ns in (router, a, b):
        sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", router, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", router, "link", "set", "br0", "up")
        for ns, port, addr in ((a, "pa", "10.251.0.1/24"), (b, "pb", "10.251.0.2/24")):
            sh("ip", "-n", router, "link", "add", port, "type", "veth", "peer", "name", "eth0",
               "netns", ns)  # fmt: skip
            sh("ip", "-n", router, "link", "set", port, "master", "br0", "up")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "addr", "add", addr, "dev", "eth0")
        yield {
            "router": router,
            "a": f"/run/netns/{a}",
            "b": f"/run/netns/{b}",
            "ns_a": a,
            "ns_b": b,
        }
    finally:
        for ns in (router, a, b):
            sh("ip", "netns", "del", ns, check=False)


def ping(ns: str, dst: str, count: int = 10) -> dict:
    out = sh("ip", "netns", "exec", ns, "ping", "-n", "-c", str(count), "-i", "0.05", "-W", "1",
             dst, check=False).stdout  # fmt: skip
    got = re.search(r"(\d+) received", out)
    dup = re.search(r"\+(\d+) duplicates", out)
    rtt = re.search(r"= [\d.]+/([\d.]+)/", out)
    return {
        "received": int(got.group(1)) if got else 0,
        "duplicates": int(dup.group(1)) if dup else 0,
        "avg_ms": float(rtt.group(1)) if rtt else None,
    }


def test_two_way_and_one_way_partitions_heal(rack):
    assert ping(rack["ns_a"], "10.251.0.2", 3)["received"] == 3
    faults.apply_grudge(
        {"a": rack["a"], "b": rack["b"]}, {"a": "10.251.0.1", "b": "10.251.0.2"}, {"a": {"b"}}
    )
    assert faults.blocked(rack["a"]) == ["10.251.0.2"]
    assert ping(rack["ns_a"], "10.251.0.2", 3)["received"] == 0  # replies dropped at a
    # one way: b still hears a (a's pings arrive at b: its counters see them)
    before = sh("ip", "netns", "exec", rack["ns_b"], "cat", "/proc/net/snmp").stdout
    ping(rack["ns_a"], "10.251.0.2", 3)
    after = sh("ip", "netns", "exec", rack["ns_b"], "cat", "/proc/net/snmp").stdout
    assert before != after
    faults.unblock(rack["a"])
    faults.unblock(rack["a"])  # idempotent
    assert faults.blocked(rack["a"]) == []
    assert ping(rack["ns_a"], "10.251.0.2", 3)["received"] == 3


@pytest.mark.parametrize(
    "fault,check",
    [
        (faults.PacketFault(delay=0.04), lambda r: r["avg_ms"] >= 35),
        (faults.PacketFault(loss=100), lambda r: r["received"] == 0),
        (faults.PacketFault(duplicate=100), lambda r: r["duplicates"] >= 5),
        (faults.PacketFault(corrupt=100), lambda r: r["received"] == 0),
    ],
    ids=["delay", "loss", "duplicate", "corrupt"],
)
def test_packet_faults_act_and_heal(rack, tmp_path, fault, check):
    info = faults.start_packet_fault(rack["router"], "pa", rack["a"], fault, 7, str(tmp_path / "l"))
    try:
        assert check(ping(rack["ns_a"], "10.251.0.2")), fault.describe()
    finally:
        faults.heal_packet_fault(info)
    healed = ping(rack["ns_a"], "10.251.0.2", 5)
    assert healed["received"] == 5 and healed["duplicates"] == 0
    assert "clsact" not in sh("tc", "-n", rack["router"], "qdisc", "show", "dev", "pa").stdout
    assert "fx-pa" not in sh("ip", "-n", rack["router"], "link").stdout


def test_a_killed_fault_line_is_still_healed(rack, tmp_path):
    info = faults.start_packet_fault(
        rack["router"], "pa", rack["a"], faults.PacketFault(delay=0.03), 1, str(tmp_path / "l")
    )
    if info["method"] != "faultline":
        pytest.skip("this kernel has netem")
    os.kill(info["pid"], 9)
    info["proc"].wait()
    faults.heal_packet_fault(info)
    assert ping(rack["ns_a"], "10.251.0.2", 3)["received"] == 3


def test_two_impaired_nodes_of_one_rack_still_reach_each_other(rack, tmp_path):
    # each line hands its node's frames back to the bridge through its own tap: neither
    # node's port may be closed to the other's tap, and neither node gets its own back
    lines = [
        faults.start_packet_fault(
            rack["router"], port, rack[n], faults.PacketFault(delay=0.02), 1, str(tmp_path / port)
        )  # fmt: skip
        for port, n in (("pa", "a"), ("pb", "b"))
    ]
    try:
        there = ping(rack["ns_a"], "10.251.0.2", 5)
        back = ping(rack["ns_b"], "10.251.0.1", 5)
        assert there["received"] == 5 and back["received"] == 5
        assert there["duplicates"] == 0 and back["duplicates"] == 0
        if lines[0]["method"] == "faultline":  # both ways delayed: at least twice 20 ms
            assert there["avg_ms"] >= 40 and back["avg_ms"] >= 40
    finally:
        for info in lines:
            faults.heal_packet_fault(info)
    assert "racklab-fx" not in sh("ip", "netns", "exec", rack["router"], "nft", "list",
                                  "tables").stdout  # fmt: skip
