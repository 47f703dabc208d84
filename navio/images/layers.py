"""Image layers: decompressing, unpacking with whiteouts, and merging into a root filesystem.

Why: OCI image-spec "layer.md" — a layer is a tar (plain, gzip or zstd) of changes; a file
`.wh.NAME` deletes NAME from lower layers and `.wh..wh..opq` hides a directory's lower content.
Each layer is unpacked once into its own directory in overlayfs' format (a whiteout becomes a
0/0 character device, an opaque directory gets `trusted.overlay.opaque=y`), so a container's
rootfs is an overlay mount of the layer directories, or — where overlay cannot be mounted — a
copy made by `merge`, which applies the same whiteouts by deleting.

Guarantees: `unpack` never writes outside its target (absolute names, `..` and links that
escape are refused: `LayerError`) and returns the sha256 of the uncompressed tar (the layer's
diff_id) so callers verify it against the image config. Modes and numeric owners are kept.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO

__all__ = ["LayerError", "OPAQUE", "WHITEOUT_PREFIX", "decompressed", "merge", "unpack"]

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
_OVERLAY_OPAQUE = "trusted.overlay.opaque"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class LayerError(ValueError):
    """A layer that cannot be unpacked safely (or at all)."""


class _Hashing(io.RawIOBase):
    """Reads through `inner`, hashing what passes (the diff_id of the uncompressed tar)."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:   # type: ignore[override]
        data = self.inner.read(len(buf))
        self.sha.update(data)
        buf[:len(data)] = data
        return len(data)


def decompressed(raw: BinaryIO) -> BinaryIO:
    """A stream of the uncompressed tar, whatever the compression (detected by magic)."""
    head = raw.read(4)
    raw.seek(0)
    if head[:2] == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")   # type: ignore[return-value]
    if head == _ZSTD_MAGIC:
        import zstandard
        return zstandard.ZstdDecompressor().stream_reader(raw)   # type: ignore[return-value]
    return raw


def _safe_name(name: str) -> str:
    norm = os.path.normpath(name.lstrip("/")) if name not in ("", ".", "./") else "."
    if norm.startswith("..") or os.path.isabs(norm):
        raise LayerError(f"layer entry {name!r} leaves the layer")
    return norm


def _inside(root: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == root or real.startswith(root + os.sep)


def unpack(blob: Path, target: Path) -> str:
    """Unpack the layer file `blob` into the empty directory `target` (overlay format);
    returns "sha256:<hex>" of the uncompressed tar."""
    target.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(target)
    with open(blob, "rb") as raw:
        hashing = _Hashing(decompressed(raw))
        stream = io.BufferedReader(hashing, 1 << 20)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                _extract(tar, member, root)
        while stream.read(1 << 20):   # hash the tar's trailing padding too
            pass
    return "sha256:" + hashing.sha.hexdigest()


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, root: str) -> None:
    name = _safe_name(member.name)
    parent, base = os.path.split(name)
    parent_dir = os.path.join(root, parent)
    if not _inside(root, parent_dir):
        raise LayerError(f"layer entry {member.name!r} goes through a link out of the layer")
    os.makedirs(parent_dir, exist_ok=True)
    if base == OPAQUE:
        os.setxattr(parent_dir, _OVERLAY_OPAQUE, b"y")
        return
    if base.startswith(WHITEOUT_PREFIX):
        path = os.path.join(parent_dir, base[len(WHITEOUT_PREFIX):])
        _remove(path)
        os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        return
    if member.islnk():
        link = os.path.join(root, _safe_name(member.linkname))
        if not _inside(root, link):
            raise LayerError(f"hard link {member.name!r} points out of the layer")
        member = member.replace(linkname=os.path.relpath(link, root), deep=False)
    path = os.path.join(root, name)
    if name != "." and not member.isdir():
        _remove(path)
    member = member.replace(name=name, deep=False)
    tar.extract(member, root, set_attrs=True, numeric_owner=True, filter="fully_trusted")


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def merge(layers: list[Path], target: Path) -> None:
    """Copy the unpacked `layers` (lowest first) into `target`, applying their whiteouts:
    the root filesystem overlayfs would show, for machines without overlay."""
    target.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        _merge_dir(str(layer), str(target))


def _merge_dir(src: str, dst: str) -> None:
    try:
        if os.getxattr(src, _OVERLAY_OPAQUE) == b"y":
            for name in os.listdir(dst):
                _remove(os.path.join(dst, name))
    except OSError:
        pass
    for entry in os.scandir(src):
        s, d = entry.path, os.path.join(dst, entry.name)
        st = entry.stat(follow_symlinks=False)
        if _is_whiteout(st):
            _remove(d)
        elif entry.is_dir(follow_symlinks=False):
            if os.path.lexists(d) and not (os.path.isdir(d) and not os.path.islink(d)):
                _remove(d)
            if not os.path.lexists(d):
                os.mkdir(d)
            _merge_dir(s, d)
            os.chown(d, st.st_uid, st.st_gid)
            os.chmod(d, stat.S_IMODE(st.st_mode))
        else:
            _remove(d)
            if entry.is_symlink():
                os.symlink(os.readlink(s), d)
                os.lchown(d, st.st_uid, st.st_gid)
            elif stat.S_ISREG(st.st_mode):
                shutil.copy2(s, d, follow_symlinks=False)
                os.chown(d, st.st_uid, st.st_gid)
                os.chmod(d, stat.S_IMODE(st.st_mode))
            else:
                os.mknod(d, st.st_mode, st.st_rdev)
                os.chown(d, st.st_uid, st.st_gid)
