"""RotatingLog: lumberjack's naming, size bound, backup count and age (unit level; the e2e
proof is tests/e2e/test_security_audit.py::test_audit_log_rotates_like_kube_apiserver)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from navio.apiserver.auditlog import MEGABYTE, RotatingLog, backup_name


def test_backup_name_is_lumberjacks() -> None:
    when = dt.datetime(2026, 11, 25, 15, 4, 5, 123456, tzinfo=dt.timezone.utc)
    assert backup_name(Path("/x/audit.log"), when) == Path("/x/audit-2026-11-25T15-04-05.123.log")
    assert backup_name(Path("/x/audit"), when) == Path("/x/audit-2026-11-25T15-04-05.123")


def test_rotates_before_exceeding_and_keeps_the_newest(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    rl = RotatingLog(path, max_size=1, max_backups=0)
    record = b"x" * (MEGABYTE // 4 - 1) + b"\n"
    for _ in range(4):
        rl.write(record)
    assert path.stat().st_size == MEGABYTE and not rl.backups()
    rl.write(b"y\n")
    assert path.read_bytes() == b"y\n" and len(rl.backups()) == 1
    assert rl.backups()[0][1].stat().st_size == MEGABYTE
    with pytest.raises(OSError, match="exceeds maximum file size"):
        rl.write(b"z" * (MEGABYTE + 1))
    rl.close()


def test_zero_maxsize_is_100mb_and_negative_is_refused(tmp_path: Path) -> None:
    assert RotatingLog(tmp_path / "a.log", max_size=0).max_bytes == 100 * MEGABYTE
    with pytest.raises(ValueError):
        RotatingLog(tmp_path / "b.log", max_backups=-1)
