"""Topology files: good ones resolve with defaults; bad ones name the file, line and field."""

import subprocess
import sys
from pathlib import Path

import pytest

from lab.topology import TopologyError, load, loads
from lab.topology.units import parse_duration, parse_percent, parse_size

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_quickstart_resolves_defaults_and_racks():
    t = load(EXAMPLES / "quickstart.yaml")
    assert list(t.racks) == ["r1", "r2"]
    assert t.nodes["n4"].rack == "r2"
    assert t.nodes["n1"].memory == 512 * 2**20
    assert t.nodes["n1"].cpus == 0.5
    assert t.inter_rack_delay == pytest.approx(0.002)


def test_larger_example_has_30_nodes_with_overrides():
    t = load(EXAMPLES / "three-racks.yaml")
    assert len(t.nodes) == 30 and len(t.racks) == 3
    assert t.nodes["a01"].memory == 2**30 and t.nodes["a02"].memory == 256 * 2**20


@pytest.mark.parametrize(
    "value,expected",
    [
        ("512Mi", 512 * 2**20),
        ("1Gi", 2**30),
        ("200M", 200 * 10**6),
        (4096, 4096),
        ("1.5Gi", 3 * 2**29),
    ],
)
def test_sizes(value, expected):
    assert parse_size(value) == expected


def test_durations_and_percentages():
    assert parse_duration("2ms") == pytest.approx(0.002)
    assert parse_duration("0.5ms") == pytest.approx(0.0005)
    assert parse_percent("1%") == 1.0
    with pytest.raises(ValueError):
        parse_percent("150%")


BASE = "name: t\nracks:\n  r1: {nodes: [n1, n2]}\n  r2: {nodes: [n3]}\n"

BAD = [
    # (text, line, field, words in the message)
    ("name: t\nracks: a: b\n", 2, "", "not valid YAML"),
    (BASE + "nodes:\n  n1: {memory: lots}\n", 6, "nodes.n1.memory", "cannot parse size 'lots'"),
    (BASE + "nodes:\n  n1: {colour: red}\n", 6, "nodes.n1.colour", "unknown field"),
    (
        "name: t\nracks:\n  r1: {nodes: [n1]}\n  r2: {nodes: [n2, n1]}\n",
        4,
        "racks.r2.nodes[1]",
        "already in rack r1",
    ),
    (
        BASE + "services:\n  zookeeper: {nodes: [n1, n9, n3]}\n",
        6,
        "services.zookeeper.nodes[1]",
        "unknown node 'n9'",
    ),
    (BASE + "nodes:\n  n7: {cpus: 1}\n", 6, "nodes.n7", "not in any rack"),
    (BASE + "network:\n  supernet: 10.0.0.0/33\n", 6, "network.supernet", "not an IPv4 network"),
    (BASE + "nodes:\n  n2: {kind: lxc}\n", 6, "nodes.n2.kind", "unknown kind 'lxc'"),
    (
        BASE + "services:\n  kafka: {nodes: [n1]}\n",
        6,
        "services.kafka",
        "needs a zookeeper service",
    ),
    (
        BASE + "services:\n  hdfs: {namenode: n1, datanodes: [n2], replicas: 3}\n",
        6,
        "services.hdfs.replicas",
        "unknown field",
    ),
    ("racks:\n  r1: {nodes: [n1]}\n", 1, "name", "missing required field"),
    (BASE + "racks2: {}\n", 5, "racks2", "unknown field"),
    (
        BASE + "network:\n  inter_rack: {delay: soon}\n",
        6,
        "network.inter_rack.delay",
        "cannot parse duration",
    ),
]


@pytest.mark.parametrize("text,line,field,words", BAD)
def test_bad_input_names_line_and_field(text, line, field, words):
    with pytest.raises(TopologyError) as e:
        loads(text, "bad.yaml")
    assert e.value.line == line
    assert e.value.field == field
    assert words in e.value.message
    assert str(e.value).startswith(f"bad.yaml:{line}: ")


def test_cli_gives_one_sentence_and_exit_code_2(tmp_path):
    f = tmp_path / "lab.yaml"
    f.write_text(BASE + "nodes:\n  n1: {memory: lots}\n")
    res = subprocess.run(
        [sys.executable, "-m", "lab", "validate", str(f)], capture_output=True, text=True
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert f"{f}:6: nodes.n1.memory: cannot parse size 'lots'" in " ".join(res.stderr.split())


def test_cli_validate_accepts_the_examples():
    for f in EXAMPLES.glob("*.yaml"):
        res = subprocess.run(
            [sys.executable, "-m", "lab", "validate", str(f)], capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr
