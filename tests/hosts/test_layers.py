"""The node image without the layers a host has (lab/hosts/layers.py), on archives laid
out as ``docker save`` lays them out: which layers can be left out, which file holds
which layer, and the archive streamed without them, still a valid tar."""

from __future__ import annotations

import hashlib
import io
import tarfile

from lab.hosts import layers


def _archive(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def _chunks(data: bytes, size: int = 700):  # pieces that cut across tar blocks
    return [data[i : i + size] for i in range(0, len(data), size)]


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


BASE, DEPS, OWN = b"base" * 5000, b"deps" * 3000, b"racklab" * 10
FILES = {
    "aaa/VERSION": b"1.0",
    "aaa/json": b"{}",
    "aaa/layer.tar": OWN,
    "bbb/layer.tar": BASE,
    "ccc/layer.tar": DEPS,
    "cfg.json": b'{"rootfs": {}}',
    "manifest.json": b'[{"Layers": ["bbb/layer.tar", "ccc/layer.tar", "aaa/layer.tar"]}]',
}


def test_each_layer_file_is_named_by_its_diff_id_also_a_repeated_one():
    archive = _archive(FILES, links={"ddd/layer.tar": "../bbb/layer.tar"})
    assert layers.layer_files(_chunks(archive)) == {
        "aaa/layer.tar": _sha(OWN),
        "bbb/layer.tar": _sha(BASE),
        "ccc/layer.tar": _sha(DEPS),
        "ddd/layer.tar": _sha(BASE),
    }


def test_the_archive_without_some_members_is_a_tar_with_the_rest():
    archive = _archive(FILES)
    out = b"".join(
        layers.walk(_chunks(archive), drop={"bbb/layer.tar", "ccc/layer.tar"}.__contains__)
    )
    assert len(out) < len(archive) - len(BASE)
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        got = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    assert got == {k: v for k, v in FILES.items() if k not in ("bbb/layer.tar", "ccc/layer.tar")}
    # dropping nothing gives the archive back, byte for byte
    assert b"".join(layers.walk(_chunks(archive))) == archive


def test_a_layer_is_left_out_only_when_the_host_has_its_whole_chain():
    base, deps, own, other = "sha256:b", "sha256:d", "sha256:o", "sha256:x"
    image = [base, deps, own]
    # the previous racklab version: same base and dependencies, another own layer
    host = layers.host_prefixes([[base, deps, other]])
    assert layers.droppable(image, host) == {base, deps}
    # the same dependency layer on another base is another chain: it must be sent
    assert layers.droppable(image, layers.host_prefixes([[other, deps]])) == set()
    assert layers.droppable(image, set()) == set()
    assert layers.droppable(image, layers.host_prefixes([image])) == set(image)
    # a layer the image has twice is left out only if both places are covered
    assert layers.droppable([base, deps, base], layers.host_prefixes([[base, deps]])) == {deps}


def test_the_hosts_layer_lists_are_read_from_docker_inspect_lines():
    out = '["sha256:a","sha256:b"]\n\nnull\n["sha256:a"]\nError: something\n'
    assert layers.parse_layer_lists(out) == [["sha256:a", "sha256:b"], ["sha256:a"]]


def test_layer_records_keep_only_the_newest(tmp_path, monkeypatch):
    """The record of which archive file holds which layer, one per image built here:
    writing one removes all but the newest few."""
    import os

    from lab.hosts import images, layers
    from lab.images import cache

    folder = tmp_path / "node-image-layers"
    folder.mkdir()
    for i in range(images.KEEP_LAYER_RECORDS + 3):
        old = folder / f"old{i:02d}.json"
        old.write_text("{}")
        os.utime(old, (1000 + i, 1000 + i))
    monkeypatch.setattr(cache, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(layers, "layer_files", lambda chunks: {"a/layer.tar": "sha256:1"})
    monkeypatch.setattr("lab.images.build.docker_client", lambda: _NoEngine())
    assert images._layer_files("racklab/node:t", "sha256:new") == {"a/layer.tar": "sha256:1"}
    left = sorted(p.name for p in folder.glob("*.json"))
    assert len(left) == images.KEEP_LAYER_RECORDS and "new.json" in left
    assert "old00.json" not in left and f"old{images.KEEP_LAYER_RECORDS + 2:02d}.json" in left


class _NoEngine:
    class api:
        @staticmethod
        def get_image(tag, chunk_size):
            return iter(())
