"""The hosts section of a topology file: racks placed on hosts, one-sentence
line-numbered errors, and a file without hosts staying a local lab."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lab.topology import TopologyError, load, loads

GOOD = """\
name: spread
hosts:
  h1: {address: spare1.example.net, user: admin, key: keys/id, known_hosts: keys/known}
  h2: {address: 192.0.2.12, port: 2222, known_hosts: keys/known}
racks:
  r1: {host: h1, nodes: [n1, n2]}
  r2: {host: h2, nodes: [n3]}
"""


@pytest.fixture
def keys(tmp_path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "id").write_text("a key\n")
    (tmp_path / "keys" / "known").write_text("")
    return tmp_path


def test_racks_on_hosts_with_paths_from_the_files_folder(keys):
    f = keys / "lab.yaml"
    f.write_text(GOOD)
    topo = load(f)
    assert topo.rack_host == {"r1": "h1", "r2": "h2"}
    h1, h2 = topo.hosts["h1"], topo.hosts["h2"]
    assert (h1.address, h1.user, h1.port) == ("spare1.example.net", "admin", 22)
    assert h1.key == str(keys / "keys" / "id")
    assert h1.known_hosts == str(keys / "keys" / "known")
    assert (h2.user, h2.port, h2.key) == ("root", 2222, None)


def test_a_file_without_hosts_is_local():
    topo = loads("name: plain\nracks:\n  r1: {nodes: [n1]}\n")
    assert topo.hosts == {} and topo.rack_host == {}


BAD = [
    # (the hosts section and racks, line, field, words in the message)
    ("hosts:\n  h1: {user: root}\nracks:\n  r1: {host: h1, nodes: [n1]}\n",
     3, "hosts.h1.address", "missing required field"),
    ("hosts:\n  h1: {address: a.example, colour: red}\nracks:\n  r1: {host: h1, nodes: [n1]}\n",
     3, "hosts.h1.colour", "unknown field"),
    ("hosts:\n  h1: {address: 'not a host!'}\nracks:\n  r1: {host: h1, nodes: [n1]}\n",
     3, "hosts.h1.address", "neither a host name nor an IP address"),
    ("hosts:\n  h1: {address: a.example, port: 70000}\nracks:\n  r1: {host: h1, nodes: [n1]}\n",
     3, "hosts.h1.port", "65535"),
    ("hosts:\n  H1: {address: a.example}\nracks:\n  r1: {host: H1, nodes: [n1]}\n",
     3, "hosts.H1", "host names"),
    ("hosts:\n  h1: {address: a.example}\n  h2: {address: A.example}\n"
     "racks:\n  r1: {host: h1, nodes: [n1]}\n",
     4, "hosts.h2.address", "already a.example"),
    ("hosts:\n  h1: {address: a.example}\nracks:\n  r1: {host: h2, nodes: [n1]}\n",
     5, "racks.r1.host", "unknown host 'h2' (h1)"),
    ("hosts:\n  h1: {address: a.example}\nracks:\n  r1: {host: h1, nodes: [n1]}\n"
     "  r2: {nodes: [n2]}\n",
     6, "racks.r2", "names no host"),
    ("racks:\n  r1: {host: h1, nodes: [n1]}\n",
     3, "racks.r1.host", "no hosts section"),
    ("hosts:\n  h1:\nracks:\n  r1: {host: h1, nodes: [n1]}\n",
     3, "hosts.h1", "address"),
]  # fmt: skip


@pytest.mark.parametrize("body,line,field,words", BAD)
def test_bad_hosts_name_line_and_field(body, line, field, words):
    with pytest.raises(TopologyError) as e:
        loads("name: spread\n" + body, "lab.yaml")
    assert (e.value.line, e.value.field) == (line, field), str(e.value)
    assert words in e.value.message
    assert "\n" not in str(e.value)


def test_cli_validate_gives_one_sentence_and_exit_code_2(tmp_path):
    f = tmp_path / "lab.yaml"
    f.write_text(
        "name: spread\nhosts:\n  h1: {address: a.example}\nracks:\n  r1: {host: h2, nodes: [n1]}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "lab", "validate", str(f)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {f}:5: racks.r1.host: unknown host 'h2' (h1)"
    ]
