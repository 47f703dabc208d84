"""Layers unpacked once with whiteouts, merged or overlaid into a rootfs; the store (issue 11)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest
import zstandard

from navio.images import layers
from navio.images.store import DigestMismatch, ImageStore


def _tar(entries: list[tuple[str, bytes | str | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


LOWER = _tar([("etc", None), ("etc/keep", b"k"), ("etc/gone", b"g"), ("data", None),
              ("data/old1", b"1"), ("data/old2", b"2"), ("link", "etc/keep")])
UPPER = _tar([("etc", None), ("etc/.wh.gone", b""), ("data", None), ("data/.wh..wh..opq", b""),
              ("data/new", b"n"), ("etc/keep", b"changed")])


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("compress", [lambda b: b, gzip.compress,
                                      lambda b: zstandard.ZstdCompressor().compress(b)],
                         ids=["plain", "gzip", "zstd"])
def test_a_layer_unpacks_to_its_diff_id_whatever_the_compression(tmp_path: Path,
                                                                  compress) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(compress(LOWER))
    assert layers.unpack(blob, tmp_path / "out") == _sha(LOWER)
    assert (tmp_path / "out/etc/keep").read_bytes() == b"k"
    assert os.readlink(tmp_path / "out/link") == "etc/keep"


def test_whiteouts_become_overlay_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    blob = tmp_path / "upper"
    blob.write_bytes(UPPER)
    layers.unpack(blob, tmp_path / "u")
    st = os.lstat(tmp_path / "u/etc/gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(tmp_path / "u/data", "trusted.overlay.opaque") == b"y"


def test_merging_layers_applies_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    for name, data in (("lower", LOWER), ("upper", UPPER)):
        (tmp_path / f"{name}.tar").write_bytes(data)
        layers.unpack(tmp_path / f"{name}.tar", tmp_path / name)
    layers.merge([tmp_path / "lower", tmp_path / "upper"], tmp_path / "root")
    root = tmp_path / "root"
    assert (root / "etc/keep").read_bytes() == b"changed"
    assert not (root / "etc/gone").exists()
    assert sorted(os.listdir(root / "data")) == ["new"]


def test_overlay_of_unpacked_layers_shows_the_same_tree(tmp_path: Path) -> None:
    from navio.runtime.oci import rootfs
    for name, data in (("lower", LOWER), ("upper", UPPER)):
        (tmp_path / f"{name}.tar").write_bytes(data)
        layers.unpack(tmp_path / f"{name}.tar", tmp_path / name)
    kind = rootfs.mount_rootfs(tmp_path / "c", [tmp_path / "lower", tmp_path / "upper"])
    try:
        root = tmp_path / "c/rootfs"
        assert kind == "overlay"
        assert (root / "etc/keep").read_bytes() == b"changed"
        assert not (root / "etc/gone").exists()
        assert sorted(os.listdir(root / "data")) == ["new"]
        (root / "etc/keep").write_bytes(b"container")   # copy-up: the layer is untouched
        assert (tmp_path / "upper/etc/keep").read_bytes() == b"changed"
    finally:
        rootfs.unmount_rootfs(tmp_path / "c")
    assert not (tmp_path / "c/rootfs").exists()


@pytest.mark.parametrize("evil", [
    [("../escape", b"x")],
    [("/abs/../../escape", b"x")],
    [("out", "/"), ("out/etc/escape", b"x")],
    [("out", "../.."), ("out/escape", b"x")],
], ids=["dotdot", "absolute-dotdot", "through-absolute-link", "through-relative-link"])
def test_a_layer_cannot_write_outside_its_directory(tmp_path: Path, evil) -> None:
    blob = tmp_path / "evil"
    blob.write_bytes(_tar(evil))
    with pytest.raises((layers.LayerError, tarfile.TarError)):
        layers.unpack(blob, tmp_path / "layer")
    assert not (tmp_path / "escape").exists() and not Path("/etc/escape").exists()


def _store_image(store: ImageStore, tars: list[bytes], tag: str) -> str:
    diff_ids = [_sha(t) for t in tars]
    for t in tars:
        digest = store.put_blob(gzip.compress(t))
        store.unpack_layer(digest, _sha(t))
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids},
                         "config": {"Cmd": ["sh"]}, "tag": tag}).encode()
    return store.add(config, tags=[tag]).id


def test_layers_are_shared_and_removed_with_their_last_image(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    a = _store_image(store, [LOWER], "a:1")
    b = _store_image(store, [LOWER, UPPER], "b:1")
    assert store.resolve("a:1").id == a and store.resolve("docker.io/library/b:1").id == b
    assert store.resolve(b.removeprefix("sha256:")[:12]).id == b
    store.remove(a)
    assert store.has_layer(_sha(LOWER))
    store.remove(b)
    assert not store.has_layer(_sha(LOWER)) and store.images() == []


def test_a_wrong_diff_id_is_refused(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    digest = store.put_blob(LOWER)
    with pytest.raises(DigestMismatch):
        store.unpack_layer(digest, _sha(UPPER))
    assert not store.has_layer(_sha(UPPER))


def test_retagging_moves_the_tag(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    old = _store_image(store, [LOWER], "app:v1")
    new = _store_image(store, [UPPER], "app:v1")
    assert store.resolve("app:v1").id == new and store.get(old).repo_tags == ()


def test_garbage_collection_frees_unused_images_lru_first_down_to_low(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    ids = [_store_image(store, [_tar([(f"f{i}", bytes([i]) * 10)])], f"img{i}:1")
           for i in range(4)]
    for i in ids:   # least recently used: ids[0]
        store.touch(i)
    usage = {"pct": 90.0}

    def fake_usage() -> float:
        return usage["pct"] - 5.0 * (4 - len(store.images()))

    assert store.garbage_collect(95, 80, set(), usage=fake_usage) == []   # below high
    removed = store.garbage_collect(85, 80, {ids[0]}, usage=fake_usage)
    assert removed == ids[1:3]   # ids[0] in use; 90 -> 85 -> 80, then below low
