"""Importing image tarballs for air-gapped nodes: OCI image layouts and `docker save` output.

Why: a node without a registry still has to run images (`navio image import FILE`, like
`ctr images import` / `k3s ctr images import`). Both formats are recognised by their index:
`manifest.json` (docker save: Config, RepoTags, Layers) or `index.json` (OCI image layout;
names from the `io.containerd.image.name` or a full `org.opencontainers.image.ref.name`
annotation; an index entry is resolved to the host platform's manifest).

Guarantees: every blob of an OCI layout is verified against its digest, every layer against
the config's diff_ids; nothing is recorded unless the whole image imported. Returns the
imported images.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from navio.images import manifest as mf
from navio.images.reference import InvalidReference, parse
from navio.images.store import ImageRecord, ImageStore, sha256_digest

__all__ = ["ImportError_", "import_archive"]


class ImportError_(ValueError):   # (ImportError is Python's)
    """The file is not an image archive navio can import."""


def import_archive(store: ImageStore, path: Path) -> list[ImageRecord]:
    work = Path(tempfile.mkdtemp(dir=store.root / "tmp", prefix="import-"))
    try:
        try:
            with tarfile.open(path) as tar:
                tar.extractall(work, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise ImportError_(f"cannot read {path}: {exc}") from None
        if (work / "manifest.json").exists():
            return _docker_save(store, work)
        if (work / "index.json").exists():
            return _oci_layout(store, work)
        raise ImportError_(f"{path} is neither an OCI image layout nor a docker save archive "
                           "(no index.json or manifest.json)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _inside(work: Path, name: str) -> Path:
    p = (work / name).resolve()
    if not str(p).startswith(str(work.resolve()) + "/"):
        raise ImportError_(f"archive entry {name!r} points outside the archive")
    return p


def _add_layers(store: ImageStore, config: bytes, files: list[Path]) -> None:
    diff_ids = (json.loads(config).get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(files):
        raise ImportError_(f"image config lists {len(diff_ids)} layers, the archive "
                           f"{len(files)}")
    for file, diff_id in zip(files, diff_ids):
        if store.has_layer(diff_id):
            continue
        tmp = store.temp_file()
        shutil.copyfile(file, tmp)
        digest = _file_digest(tmp)
        store.ingest(tmp, digest)
        store.unpack_layer(digest, diff_id)


def _file_digest(path: Path) -> str:
    import hashlib
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return "sha256:" + sha.hexdigest()


def _docker_save(store: ImageStore, work: Path) -> list[ImageRecord]:
    out = []
    for entry in json.loads((work / "manifest.json").read_bytes()):
        config = _inside(work, entry["Config"]).read_bytes()
        _add_layers(store, config, [_inside(work, name) for name in entry.get("Layers") or ()])
        tags = []
        for tag in entry.get("RepoTags") or ():
            try:
                tags.append(str(parse(tag)))
            except InvalidReference:
                pass
        out.append(store.add(config, tags=tags))
    return out


def _blob(work: Path, digest: str) -> bytes:
    algo, _, hexd = digest.partition(":")
    data = _inside(work, f"blobs/{algo}/{hexd}").read_bytes()
    if sha256_digest(data) != digest:
        raise ImportError_(f"blob {digest} does not match its digest")
    return data


def _oci_layout(store: ImageStore, work: Path) -> list[ImageRecord]:
    out = []
    index = json.loads((work / "index.json").read_bytes())
    for desc in index.get("manifests") or ():
        annotations: dict[str, Any] = desc.get("annotations") or {}
        raw = _blob(work, desc["digest"])
        top = desc["digest"]
        doc = json.loads(raw)
        if mf.is_index(doc, desc.get("mediaType", "")):
            chosen = mf.select_platform(doc)
            raw = _blob(work, chosen.digest)
        config_desc, layers = mf.parse_manifest(raw, desc.get("mediaType", ""))
        config = _blob(work, config_desc.digest)
        layer_files = []
        for layer in layers:
            algo, _, hexd = layer.digest.partition(":")
            path = _inside(work, f"blobs/{algo}/{hexd}")
            if _file_digest(path) != layer.digest:
                raise ImportError_(f"layer {layer.digest} does not match its digest")
            layer_files.append(path)
        _add_layers(store, config, layer_files)
        name = annotations.get("io.containerd.image.name") or annotations.get(
            "org.opencontainers.image.ref.name") or ""
        tags, digests = [], []
        if "/" in name or ":" in name:
            try:
                ref = parse(name)
                tags = [str(ref)] if ref.tag else []
                digests = [f"{ref.name}@{top}"]
            except InvalidReference:
                pass
        store.put_blob(raw)
        out.append(store.add(config, tags=tags, repo_digests=digests))
    return out
