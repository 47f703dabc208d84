"""The revocation list: serial normalisation and reload on change."""

from __future__ import annotations

import os
from pathlib import Path

from navio.apiserver.revocation import RevocationList, normalize_serial


def test_serials_normalise() -> None:
    assert normalize_serial("0a:bc:DE") == "ABCDE"
    assert normalize_serial("0x00ff") == "FF"
    assert normalize_serial(255) == "FF"


def test_list_reloads_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "revoked-serials"
    revoked = RevocationList(path)
    assert "AB" not in revoked                     # no file: nothing revoked
    path.write_text("# revoked\nab  # user bob\n")
    assert "00AB" in revoked and "CD" not in revoked
    with open(path, "a") as f:
        f.write("cd\n")
    assert "CD" in revoked                         # size changed: re-read at once
    os.unlink(path)
    assert "AB" not in revoked
