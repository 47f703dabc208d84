"""Atomic updates of a directory of projected files (configMap, secret, downwardAPI volumes).

Why: a container reading a configMap volume while it is updated must see either the old set
of files or the new one, never a mix; the kubelet's AtomicWriter (pkg/volume/util/
atomic_writer.go) achieves this with a symlink swap, and tools (e.g. config reloaders) rely on
its layout:

    <dir>/..2024_05_01_10_00_00.123456789/   the payload, written completely first
    <dir>/..data -> ..2024_05_01_10_00_00.123456789
    <dir>/<key>  -> ..data/<key>              one per top-level entry of the payload

Guarantees: `write` is idempotent (an identical payload — contents and modes — changes
nothing and returns False); the `..data` switch is one rename; files of the payload get
exactly their mode (umask ignored); entries that left the payload are removed; paths that
escape the directory (absolute, `..`) are refused before anything is written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AtomicWriter", "FileProjection", "PayloadError", "DATA_DIR"]

DATA_DIR = "..data"
_DATA_TMP = "..data_tmp"


class PayloadError(ValueError):
    """A payload path is not a relative path inside the volume."""


@dataclass(frozen=True, slots=True)
class FileProjection:
    data: bytes
    mode: int = 0o644


def _validate(path: str) -> None:
    if not path or os.path.isabs(path):
        raise PayloadError(f"invalid path {path!r}: must be relative")
    parts = path.split("/")
    if ".." in parts or parts[0].startswith(".."):
        raise PayloadError(f"invalid path {path!r}: must not contain '..'")
    if any(not p for p in parts):
        raise PayloadError(f"invalid path {path!r}: empty path element")


class AtomicWriter:
    def __init__(self, target_dir: str | Path) -> None:
        self.target = Path(target_dir)

    def _current(self) -> Path | None:
        link = self.target / DATA_DIR
        if not link.is_symlink():
            return None
        return self.target / os.readlink(link)

    def _unchanged(self, current: Path, payload: dict[str, FileProjection]) -> bool:
        existing = {}
        for root, _dirs, files in os.walk(current):
            for f in files:
                full = Path(root) / f
                existing[str(full.relative_to(current))] = full
        if set(existing) != set(payload):
            return False
        for rel, proj in payload.items():
            full = existing[rel]
            try:
                if (full.stat().st_mode & 0o7777) != proj.mode or full.read_bytes() != proj.data:
                    return False
            except OSError:
                return False
        return True

    def write(self, payload: dict[str, FileProjection]) -> bool:
        """Make the directory show exactly `payload`; True when anything changed."""
        for rel in payload:
            _validate(rel)
        self.target.mkdir(parents=True, exist_ok=True)
        current = self._current()
        if current is not None and current.is_dir() and self._unchanged(current, payload):
            return False
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
        new_dir = Path(tempfile.mkdtemp(prefix=stamp, dir=self.target))
        os.chmod(new_dir, 0o755)
        for rel, proj in payload.items():
            dest = new_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, proj.data)
            finally:
                os.close(fd)
            os.chmod(dest, proj.mode)
        tmp_link = self.target / _DATA_TMP
        if tmp_link.is_symlink() or tmp_link.exists():
            tmp_link.unlink()
        os.symlink(new_dir.name, tmp_link)
        os.rename(tmp_link, self.target / DATA_DIR)
        wanted = {rel.split("/", 1)[0] for rel in payload}
        for name in wanted:
            link = self.target / name
            if not link.is_symlink():
                if link.exists():
                    shutil.rmtree(link) if link.is_dir() else link.unlink()
                os.symlink(os.path.join(DATA_DIR, name), link)
        for entry in os.listdir(self.target):
            if entry.startswith(".."):
                if entry not in (DATA_DIR, new_dir.name) and (self.target / entry).is_dir() \
                        and not (self.target / entry).is_symlink():
                    shutil.rmtree(self.target / entry, ignore_errors=True)
                continue
            if entry not in wanted and (self.target / entry).is_symlink():
                (self.target / entry).unlink()
        return True
