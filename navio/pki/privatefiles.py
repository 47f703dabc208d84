"""Credential files: only their owner may read them.

Why: the 2019 audit found credentials where other users could read them (environment, argv);
navio keeps every key, token and kubeconfig in a file of mode 0600 and refuses to start when one
is readable by group or others, naming the file and the fix, as ssh does for its keys.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Iterable

__all__ = ["KeyFileError", "check_private_file", "check_private_files"]


class KeyFileError(Exception):
    """A credential file that is missing, malformed, or readable by others."""


def check_private_file(path: Path) -> None:
    """Raise KeyFileError if `path` is readable or writable by group/others."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"{path} holds credentials but its permissions are {mode:04o} (group/others may "
            f"access it); fix it with: chmod 600 {path}")


def check_private_files(paths: Iterable[Path]) -> None:
    """check_private_file for each existing path."""
    for p in paths:
        if p.exists():
            check_private_file(p)
