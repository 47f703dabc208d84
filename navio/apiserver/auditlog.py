"""The audit log file, rotated as kube-apiserver rotates it (lumberjack).

Why: CIS 1.2.17-1.2.19 ask for `--audit-log-maxage`, `--audit-log-maxbackup` and
`--audit-log-maxsize`; kube-apiserver writes its audit log through
gopkg.in/natefinch/lumberjack.v2, and tools that collect rotated audit logs expect its naming.

Semantics (lumberjack's):
- `max_size` is in megabytes (MiB); 0 means lumberjack's default, 100. A write that would
  take the file past it first rotates: the file is renamed to
  `<name without ext>-<UTC time as 2006-01-02T15-04-05.000><ext>` in the same directory
  (audit.log -> audit-2026-11-25T15-04-05.123.log) and a new, empty file takes its place
  (mode 0600). A single event larger than `max_size` is refused (logged), never split.
- after each rotation (and once at open) old files are removed: beyond the `max_backups`
  newest (0: keep any number), and those whose name's timestamp is older than `max_age`
  days (0: no age limit). Only files matching the backup pattern are ever touched.
- navio's defaults are CIS's recommendation (30 days, 10 backups, 100 MB) where kube's
  are 0 (no limit): the log cannot fill the disk unless asked to.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from pathlib import Path

__all__ = ["RotatingLog", "backup_name", "MEGABYTE"]

log = logging.getLogger(__name__)

MEGABYTE = 1024 * 1024
_DEFAULT_MAX_SIZE = 100
_STAMP = "%Y-%m-%dT%H-%M-%S.%f"   # Go's 2006-01-02T15-04-05.000 (cut to milliseconds)


def backup_name(path: Path, when: dt.datetime) -> Path:
    stem, ext = os.path.splitext(path.name)
    stamp = when.astimezone(dt.timezone.utc).strftime(_STAMP)[:-3]
    return path.with_name(f"{stem}-{stamp}{ext}")


class RotatingLog:
    """An append-only file that rotates itself; `write` takes one whole record."""

    def __init__(self, path: Path, *, max_size: int = _DEFAULT_MAX_SIZE, max_backups: int = 0,
                 max_age: int = 0) -> None:
        if max_size < 0 or max_backups < 0 or max_age < 0:
            raise ValueError("audit log maxsize, maxbackup and maxage must not be negative")
        self.path = path
        self.max_bytes = (max_size or _DEFAULT_MAX_SIZE) * MEGABYTE
        self.max_backups = max_backups
        self.max_age = max_age
        stem, ext = os.path.splitext(path.name)
        self._pattern = re.compile(re.escape(stem) + r"-(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3})"
                                   + re.escape(ext) + r"$")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = -1
        self._size = 0
        self._open()
        self._mill()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(self._fd, 0o600)
        self._size = os.fstat(self._fd).st_size

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def write(self, record: bytes) -> None:
        if self._fd < 0:
            return
        if len(record) > self.max_bytes:
            raise OSError(f"write length {len(record)} exceeds maximum file size "
                          f"{self.max_bytes}")
        if self._size + len(record) > self.max_bytes:
            self.rotate()
        os.write(self._fd, record)
        self._size += len(record)

    def rotate(self) -> None:
        """Move the current file to its backup name, start a new one, prune old ones."""
        self.close()
        target = backup_name(self.path, dt.datetime.now(dt.timezone.utc))
        try:
            os.rename(self.path, target)
        except FileNotFoundError:   # removed under us: just start afresh
            pass
        self._open()
        self._mill()

    def backups(self) -> list[tuple[dt.datetime, Path]]:
        """Rotated files, newest first (by the time in their names, as lumberjack)."""
        found = []
        try:
            names = os.listdir(self.path.parent)
        except OSError:
            return []
        for name in names:
            m = self._pattern.match(name)
            if m:
                when = dt.datetime.strptime(m.group(1), _STAMP).replace(tzinfo=dt.timezone.utc)
                found.append((when, self.path.parent / name))
        found.sort(reverse=True)
        return found

    def _mill(self) -> None:
        files = self.backups()
        remove = []
        if self.max_backups and len(files) > self.max_backups:
            remove += files[self.max_backups:]
            files = files[:self.max_backups]
        if self.max_age:
            cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=self.max_age)
            remove += [f for f in files if f[0] < cutoff]
        for _, path in remove:
            try:
                os.unlink(path)
            except OSError as exc:
                log.warning("removing an old audit log failed",
                            extra={"path": str(path), "error": exc.strerror})
