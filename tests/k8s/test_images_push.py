"""`lab images push REGISTRY` into a real registry: Debian's docker-registry (the
Distribution registry) serving on loopback for the test, its storage in a temporary
directory. Docker pushes to 127.0.0.0/8 without TLS."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

CONFIG = """\
version: 0.1
storage:
  filesystem:
    rootdirectory: {root}
http:
  addr: 127.0.0.1:{port}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def registry(tmp_path):
    if shutil.which("docker-registry") is None:
        pytest.skip("Debian's docker-registry is not installed (`make setup` installs it)")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker engine answers; `make docker` starts one")
    port = _free_port()
    conf = tmp_path / "config.yml"
    conf.write_text(CONFIG.format(root=tmp_path / "store", port=port))
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "registry.log", "w"),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "registry.log").read_text()[-500:]
                assert time.monotonic() < deadline, "the registry never answered"
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_push_lands_in_the_registry(registry):
    from lab.images import build_images

    build_images(progress=False)  # racklab/node:latest, built or found cached
    proc = subprocess.run(
        [sys.executable, "-m", "lab", "images", "push", f"{registry}/lab", "--json"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    pushed = json.loads(proc.stdout)
    tag = pushed["image"].rsplit(":", 1)[1]
    assert pushed["latest"] == f"{registry}/lab/racklab/node:latest"
    tags = json.load(urllib.request.urlopen(f"http://{registry}/v2/lab/racklab/node/tags/list"))
    assert sorted(tags["tags"]) == sorted({tag, "latest"})
    # what a cluster would pull: the manifest of the content tag is there
    req = urllib.request.Request(
        f"http://{registry}/v2/lab/racklab/node/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert json.load(urllib.request.urlopen(req))["layers"]
    import docker

    client = docker.from_env()
    for ref in pushed.values():  # the registry-named tags are ours to remove
        client.images.remove(ref)


def test_a_bad_registry_is_one_sentence():
    proc = subprocess.run(
        [sys.executable, "-m", "lab", "images", "push", "not a registry"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: 'not a registry' is not a registry: give host, host:port or host:port/path"
    )
