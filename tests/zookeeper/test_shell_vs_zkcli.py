"""`lab zk` beside Apache ZooKeeper 3.8's zkCli.sh (Debian's package): the same lines typed
into both, against the same racklab server, print the same thing. Only what cannot be
the same is set aside: zxids, times and session ids in stats, zkCli's banner and the
list of commands in its usage text."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from lab.testing import apache_zookeeper as apache

pytestmark = pytest.mark.skipif(
    not (apache.available() and os.path.exists(apache.ZKCLI)),
    reason="Debian's zookeeper package is not installed",
)

SCRIPT = """\
create /t hi
get /t
get t
ls
create /t
set -v 9 /t x
set -s /t y
set /t
create -e /t/e
create /t/e/f
create -s /t/s
create -s -e /t/se d
create /t/s/deep
ls /t
ls -s /t
create /t/a x bad
create /t/a x world:anyone
create /t/a2 x world:anyone:rw
create -c /t/k
create -c -e /t/k2
create -t 100 /t/ttl
create -t 100 -e /t/ttl
getAllChildrenNumber /t
getAllChildrenNumber /nope
getEphemerals /t
getEphemerals /t/x
delete /t/nope
delete -v 3 /t/s0000000001
delete -v 0 /t/s0000000001
delete /t
deleteall /nope
stat /t/e
stat /nope
get /t/e
get /t/se0000000002
setAcl /t/a2 world:anyone:xyz
setAcl /t/a2 world:anyone:r
getAcl /t/a2
get /t/a2
setAcl -s /t world:anyone:cdrwa,ip:127.0.0.1:r
getAcl -s /t
getAcl /nope
sync /t
sync t
create /t/z
create /t/z/y
create /t/k/m
create /t/k/m/n
ls -R /t
get /t//b
get /t/
get /t/.
get /t/..
get /t/\x01
get -x /t
get
whoami
addauth digest u:p
whoami
create /t/dg x auth::cdrwa
getAcl /t/dg
config -s
deleteall /t
ls /t
bogus
"""

NOISE = re.compile(
    r"^(Connecting to |Welcome to ZooKeeper!|JLine support is |log4j|SLF4J|"
    r"ZooKeeper -server host:port|\t)"
)
VARIES = re.compile(r"^((cZxid|mZxid|pZxid|ephemeralOwner) = 0x|(ctime|mtime) = )")


def normalized(text: str) -> list[str]:
    """Lines to compare: watcher blocks, zkCli's banner and usage list dropped; stat lines
    that differ between two runs (zxids, times, session) reduced to their names."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line == "WATCHER::":
            i += 3  # "", "WatchedEvent ...": the session's own connect/close events
            continue
        if NOISE.match(line) or (line == "" and i + 1 < len(lines) and lines[i + 1] == "WATCHER::"):
            i += 1
            continue
        m = VARIES.match(line)
        out.append(m.group(0) if m else line)
        i += 1
    return out


def test_lab_zk_prints_what_zkcli_prints(zk_server, zk):
    script = SCRIPT.replace("\\x01", "\x01")
    theirs = subprocess.run(
        [apache.ZKCLI, "-server", zk_server.hosts],
        input=script,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # zkCli writes some lines to each: keep their order
        text=True,
        timeout=120,
    )
    assert zk.exists("/t") is None  # their script ends with deleteall /t
    ours = subprocess.run(
        [sys.executable, "-m", "lab.services.zookeeper.shell", "--server", zk_server.hosts],
        input=script,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # zkCli writes some lines to each: keep their order
        text=True,
        timeout=120,
    )
    a, b = normalized(theirs.stdout), normalized(ours.stdout)
    assert "Created /t/s0000000001" in a and "Node not empty: /t" in a  # zkCli really ran
    assert b == a


def test_one_shot_exit_codes_are_zkclis(zk_server, zk):
    zk.create("/x1", b"v")

    def rc(*args) -> int:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "lab.services.zookeeper.shell",
                "--server",
                zk_server.hosts,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        ).returncode

    assert rc("get", "/x1") == 0
    assert rc("get", "/nope") == 1
    assert rc("ls") == 1  # usage
    assert rc("bogus") == 127
