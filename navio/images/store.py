"""The node's image store: content-addressed blobs, unpacked layers and image records.

Why: every image a node holds — pulled or imported — lives here once. Layout under `root`:

    blobs/sha256/<hex>       manifests, configs, and layer blobs until they are unpacked
    layers/<hex>/            a layer unpacked in overlay format, named by its diff_id
    images/<hex>.json        an image record, named by its config digest (the image ID)

Guarantees:
- A blob is stored only after its sha256 matched its digest (`ingest`); a layer directory
  appears (by rename) only once fully unpacked and its diff_id verified, so a layer shared by
  many images, or pulled twice at once, is unpacked once and never seen half-written.
- A repo tag names at most one image (re-tagging moves it, as containerd does); `resolve`
  finds an image by tag, repo digest, or ID.
- `remove` deletes the record and every layer and blob no remaining image uses;
  `garbage_collect` removes unused images, least recently used first, while the store's
  filesystem is at or above the high threshold, until it is down to the low one (kubelet's
  imageGCHighThresholdPercent / imageGCLowThresholdPercent).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from navio.images import layers as layerfs
from navio.images.reference import InvalidReference, parse

__all__ = ["DigestMismatch", "ImageRecord", "ImageStore", "sha256_digest"]


class DigestMismatch(ValueError):
    """Content whose sha256 is not the digest it was fetched or imported by."""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex(digest: str) -> str:
    algo, _, value = digest.partition(":")
    if algo != "sha256" or len(value) != 64 or not all(c in "0123456789abcdef" for c in value):
        raise DigestMismatch(f"unsupported digest {digest!r} (sha256 only)")
    return value


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """An image on the node: `id` is its config digest; `layers` its diff_ids (lowest
    first); `config` the image config's `config` object (Entrypoint, Cmd, Env, ...)."""

    id: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    layers: tuple[str, ...]
    config: dict[str, Any] = field(hash=False)
    size: int = 0
    last_used: float = 0.0

    @classmethod
    def of(cls, data: dict[str, Any]) -> ImageRecord:
        return cls(id=data["id"], repo_tags=tuple(data.get("repo_tags", ())),
                   repo_digests=tuple(data.get("repo_digests", ())),
                   layers=tuple(data["layers"]), config=data.get("config") or {},
                   size=int(data.get("size", 0)), last_used=float(data.get("last_used", 0)))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "repo_tags": list(self.repo_tags),
                "repo_digests": list(self.repo_digests), "layers": list(self.layers),
                "config": self.config, "size": self.size, "last_used": self.last_used}


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _du(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


class ImageStore:
    """Thread-safe for records (one lock); blobs and layers are safe by atomic renames."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        for sub in ("blobs/sha256", "layers", "images", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()

    # ---- blobs --------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / _hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def temp_file(self) -> Path:
        fd, name = tempfile.mkstemp(dir=self.root / "tmp", prefix="blob-")
        os.close(fd)
        return Path(name)

    def ingest(self, tmp: Path, digest: str) -> Path:
        """Move the downloaded file `tmp` to its blob path after checking its digest."""
        sha = hashlib.sha256()
        with open(tmp, "rb") as f:
            while chunk := f.read(1 << 20):
                sha.update(chunk)
        if "sha256:" + sha.hexdigest() != digest:
            tmp.unlink(missing_ok=True)
            raise DigestMismatch(f"content does not match digest {digest}")
        target = self.blob_path(digest)
        os.replace(tmp, target)
        return target

    def put_blob(self, data: bytes, digest: str | None = None) -> str:
        actual = sha256_digest(data)
        if digest is not None and digest != actual:
            raise DigestMismatch(f"content does not match digest {digest}")
        _write_atomic(self.blob_path(actual), data)
        return actual

    def read_blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    # ---- layers -------------------------------------------------------------------------

    def layer_path(self, diff_id: str) -> Path:
        return self.root / "layers" / _hex(diff_id)

    def has_layer(self, diff_id: str) -> bool:
        return self.layer_path(diff_id).is_dir()

    def unpack_layer(self, blob_digest: str, diff_id: str) -> None:
        """Unpack the stored layer blob once (a no-op if the layer exists), verify its
        diff_id, then drop the compressed blob."""
        target = self.layer_path(diff_id)
        if not target.is_dir():
            tmp = Path(tempfile.mkdtemp(dir=self.root / "tmp", prefix="layer-"))
            try:
                actual = layerfs.unpack(self.blob_path(blob_digest), tmp)
                if actual != diff_id:
                    raise DigestMismatch(f"layer {blob_digest} unpacks to {actual}, the "
                                         f"image config says {diff_id}")
                try:
                    os.rename(tmp, target)
                except OSError:
                    if not target.is_dir():
                        raise
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        self.blob_path(blob_digest).unlink(missing_ok=True)

    # ---- images -------------------------------------------------------------------------

    def _record_path(self, image_id: str) -> Path:
        return self.root / "images" / f"{_hex(image_id)}.json"

    def _load(self, path: Path) -> ImageRecord | None:
        try:
            return ImageRecord.of(json.loads(path.read_bytes()))
        except (OSError, ValueError, KeyError):
            return None

    def _save(self, record: ImageRecord) -> None:
        _write_atomic(self._record_path(record.id), json.dumps(record.to_json()).encode())

    def images(self) -> list[ImageRecord]:
        out = [self._load(p) for p in sorted((self.root / "images").glob("*.json"))]
        return [r for r in out if r is not None]

    def get(self, image_id: str) -> ImageRecord | None:
        try:
            return self._load(self._record_path(image_id))
        except DigestMismatch:
            return None

    def resolve(self, text: str) -> ImageRecord | None:
        """The image a reference, repo digest or image ID (full, or `sha256:` prefix of at
        least 12 hex digits) names, or None."""
        wanted: set[str] = set()
        try:
            ref = parse(text)
            wanted.add(str(ref))
        except InvalidReference:
            ref = None
        images = self.images()
        for image in images:
            if ref is not None and ref.digest and f"{ref.name}@{ref.digest}" in image.repo_digests:
                return image
            if wanted & set(image.repo_tags):
                return image
        bare = text.removeprefix("sha256:")
        if len(bare) >= 12 and all(c in "0123456789abcdef" for c in bare):
            matches = [i for i in images if i.id.removeprefix("sha256:").startswith(bare)]
            if len(matches) == 1:
                return matches[0]
        return None

    def add(self, config_blob: bytes, *, tags: Iterable[str] = (),
            repo_digests: Iterable[str] = ()) -> ImageRecord:
        """Record the image whose config is `config_blob` (its layers already unpacked)
        under `tags` (moved from any image holding them) and `repo_digests`."""
        config_id = self.put_blob(config_blob)
        doc = json.loads(config_blob)
        diff_ids = tuple((doc.get("rootfs") or {}).get("diff_ids") or ())
        missing = [d for d in diff_ids if not self.has_layer(d)]
        if missing:
            raise ValueError(f"image {config_id} is missing layers {missing}")
        tags = [str(parse(t)) for t in tags]
        with self._lock:
            for other in self.images():
                if other.id != config_id and set(tags) & set(other.repo_tags):
                    kept = tuple(t for t in other.repo_tags if t not in tags)
                    self._save(ImageRecord(other.id, kept, other.repo_digests, other.layers,
                                           other.config, other.size, other.last_used))
            old = self.get(config_id)
            all_tags = tuple(dict.fromkeys([*(old.repo_tags if old else ()), *tags]))
            digests = tuple(dict.fromkeys([*(old.repo_digests if old else ()), *repo_digests]))
            size = sum(_du(self.layer_path(d)) for d in diff_ids)
            record = ImageRecord(config_id, all_tags, digests, diff_ids,
                                 doc.get("config") or {}, size, time.time())
            self._save(record)
            return record

    def touch(self, image_id: str) -> None:
        """Mark the image used now (garbage collection removes the least recently used)."""
        with self._lock:
            record = self.get(image_id)
            if record is not None:
                self._save(ImageRecord(record.id, record.repo_tags, record.repo_digests,
                                       record.layers, record.config, record.size, time.time()))

    def remove(self, image_id: str) -> bool:
        """Delete the image and whatever only it used; False if there was no such image."""
        with self._lock:
            record = self.get(image_id)
            if record is None:
                return False
            self._record_path(image_id).unlink(missing_ok=True)
            self.blob_path(image_id).unlink(missing_ok=True)
            used = {d for other in self.images() for d in other.layers}
            for diff_id in record.layers:
                if diff_id not in used:
                    shutil.rmtree(self.layer_path(diff_id), ignore_errors=True)
            return True

    def disk_usage_percent(self) -> float:
        st = os.statvfs(self.root)
        total = st.f_blocks * st.f_frsize
        return 100.0 * (total - st.f_bavail * st.f_frsize) / total if total else 0.0

    def garbage_collect(self, high: float, low: float, in_use: set[str], *,
                        usage: Callable[[], float] | None = None) -> list[str]:
        """Remove unused images (LRU first) if usage >= `high` percent, down to `low`."""
        usage = usage or self.disk_usage_percent
        removed: list[str] = []
        if usage() < high:
            return removed
        for image in sorted(self.images(), key=lambda i: i.last_used):
            if usage() <= low:
                break
            if image.id in in_use:
                continue
            if self.remove(image.id):
                removed.append(image.id)
        return removed
