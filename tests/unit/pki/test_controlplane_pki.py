"""`navio apiserver --pki-from`: the shared control-plane credentials are copied safely."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from navio.pki.controlplane import PkiImportError, import_control_plane_pki

SECRET = b"-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYBYTES\n-----END PRIVATE KEY-----\n"


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "first" / "pki"
    src.mkdir(parents=True)
    files = {"ca.crt": b"CA CERT\n", "ca.key": SECRET, "sa.key": SECRET + b"sa",
             "encryption-config.yaml": b"kind: EncryptionConfiguration\n",
             "revoked-serials": b"0a\n", "apiserver.crt": b"serving\n",
             "apiserver.key": SECRET + b"serving", "admin.key": SECRET + b"admin"}
    for name, data in files.items():
        (src / name).write_bytes(data)
        os.chmod(src / name, 0o644 if name.endswith(".crt") else 0o600)
    return src


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_copies_only_the_shared_files_private(tmp_path: Path) -> None:
    src = _source(tmp_path)
    dest = tmp_path / "second" / "pki"
    written = import_control_plane_pki(src, dest)
    assert sorted(written) == ["ca.crt", "ca.key", "encryption-config.yaml",
                               "revoked-serials", "sa.key"]
    assert sorted(p.name for p in dest.iterdir()) == sorted(written)
    for p in dest.iterdir():
        assert _mode(p) == 0o600, p
        assert p.read_bytes() == (src / p.name).read_bytes()
    assert _mode(dest) == 0o700
    # Again: nothing to do (the flag may stay in a unit file).
    assert import_control_plane_pki(src, dest) == []


def test_refuses_a_secret_others_can_read_and_leaves_nothing(tmp_path: Path) -> None:
    src = _source(tmp_path)
    os.chmod(src / "ca.key", 0o644)
    dest = tmp_path / "second" / "pki"
    with pytest.raises(PkiImportError, match="ca.key.*chmod 600") as exc:
        import_control_plane_pki(src, dest)
    assert "TOPSECRET" not in str(exc.value)
    assert not dest.exists() or not any(dest.iterdir())


def test_refuses_symlinks_and_missing_files(tmp_path: Path) -> None:
    src = _source(tmp_path)
    (src / "sa.key").unlink()
    with pytest.raises(PkiImportError, match="sa.key is missing"):
        import_control_plane_pki(src, tmp_path / "x" / "pki")
    elsewhere = tmp_path / "elsewhere.key"
    elsewhere.write_bytes(SECRET)
    os.chmod(elsewhere, 0o600)
    (src / "sa.key").symlink_to(elsewhere)
    with pytest.raises(PkiImportError, match="symbolic links are refused"):
        import_control_plane_pki(src, tmp_path / "x" / "pki")


def test_never_overwrites_a_different_ca(tmp_path: Path) -> None:
    src = _source(tmp_path)
    dest = tmp_path / "second" / "pki"
    dest.mkdir(parents=True)
    (dest / "ca.crt").write_bytes(b"OTHER CA\n")
    with pytest.raises(PkiImportError, match="different cluster CA"):
        import_control_plane_pki(src, dest)
    assert (dest / "ca.crt").read_bytes() == b"OTHER CA\n"
    assert not (dest / "ca.key").exists()


def test_cli_refuses_world_readable_source_without_printing_keys(tmp_path: Path) -> None:
    src = _source(tmp_path)
    os.chmod(src / "encryption-config.yaml", 0o644)
    run = subprocess.run([sys.executable, "-m", "navio.cli.main", "apiserver", "--data-dir",
                          str(tmp_path / "second"), "--pki-from", str(src)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "--pki-from" in run.stderr and "encryption-config.yaml" in run.stderr
    assert "TOPSECRET" not in run.stdout + run.stderr
    assert not (tmp_path / "second" / "pki" / "ca.key").exists()
