"""The image builder: mirror detection from apt sources, cached rebuilds, named failures."""

from __future__ import annotations

import pytest

from lab.images import BuildError, build_images, list_images
from lab.images import build as build_mod
from lab.images.cache import source_digest
from lab.images.sources import MirrorNotFound, host_mirror


def test_mirror_from_deb822_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n"
        "URIs: http://mirror.example.internal/debian/\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main contrib\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        "\n"
        "Types: deb\n"
        "URIs: http://mirror.example.internal/debian-security\n"
        "Suites: bookworm-security\n"
        "Components: main\n"
    )
    m = host_mirror(tmp_path, suite="bookworm")
    assert m.uri == "http://mirror.example.internal/debian"
    assert m.suite == "bookworm"
    assert m.keyring == "/usr/share/keyrings/debian-archive-keyring.gpg"


def test_mirror_from_one_line_sources_skips_updates_and_disabled(tmp_path):
    (tmp_path / "sources.list").write_text(
        "# comment\n"
        "deb-src http://src.example.internal/debian bookworm main\n"
        "deb http://updates.example.internal/debian bookworm-updates main\n"
        "deb [arch=amd64 signed-by=/etc/apt/keyrings/local.gpg] http://local.example.internal/debian bookworm main\n"
    )
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "off.sources").write_text(
        "Enabled: no\nTypes: deb\nURIs: http://off.example.internal/debian\nSuites: bookworm\nComponents: main\n"
    )
    m = host_mirror(tmp_path, suite="bookworm")
    assert m.uri == "http://local.example.internal/debian"
    assert m.keyring == "/etc/apt/keyrings/local.gpg"


def test_no_usable_mirror_is_a_clear_error(tmp_path):
    (tmp_path / "sources.list").write_text(
        "deb http://x.example.internal/debian bookworm-updates main\n"
    )
    with pytest.raises(MirrorNotFound, match="no enabled 'deb' entry with suite 'bookworm'"):
        host_mirror(tmp_path, suite="bookworm")


def test_failed_step_is_named(docker_engine, tmp_path, monkeypatch):
    empty = tmp_path / "apt"
    empty.mkdir()
    monkeypatch.setattr(build_mod, "host_mirror", lambda: host_mirror(empty, suite="bookworm"))
    with pytest.raises(BuildError) as err:
        build_images(progress=False)
    assert err.value.step == "find mirror"
    assert "image build failed at step 'find mirror'" in str(err.value)
    assert "sources.list" in str(err.value)


def test_second_build_is_cached(docker_engine, node_image):
    before = source_digest()
    first = build_images(progress=False)
    again = build_images(progress=False)
    status = {s.name: s.status for s in again.steps}
    assert status["debootstrap rootfs"] == "cached"
    assert status["import base image"] == "cached"
    if source_digest() == before:  # others may edit racklab's source meanwhile
        assert again.node_tag == first.node_tag
        assert again.cached, again.steps
    # the image carries racklab, importable with the node's interpreter, no network needed
    out = docker_engine.containers.run(
        again.node_tag,
        ["/usr/bin/python3", "-c", "import lab, kazoo, crc32c; print(lab.__name__)"],
        network_mode="none",
        remove=True,
    )
    assert out.decode().strip() == "lab"
    assert docker_engine.images.get(again.node_tag).labels.get("racklab.image") == "node"
    listed = {tag: i["kind"] for i in list_images() for tag in i["tags"]}
    assert listed.get(again.node_tag) == "node" and listed.get(again.base_tag) == "base"


def test_wheels_fit_the_images_glibc_and_leave_host_only_packages_out():
    from lab.images.wheels import HOST_ONLY, _platform_tags, runtime_requirements

    tags = _platform_tags("2.36", "x86_64")
    assert tags[0] == "manylinux_2_36_x86_64"
    assert {
        "manylinux_2_17_x86_64",
        "manylinux2014_x86_64",
        "manylinux1_x86_64",
        "linux_x86_64",
    } <= set(tags)
    assert "manylinux_2_37_x86_64" not in tags
    names = {r.split(">")[0].split("=")[0].lower() for r in runtime_requirements()}
    assert "kazoo" in names and not names & HOST_ONLY
