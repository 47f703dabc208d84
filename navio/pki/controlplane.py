"""The credentials every API server of one control plane shares, copied safely to a new one.

Why: API servers sharing a store must share the cluster CA (clients and kubelets trust one CA;
each server issues its own serving and client certificates from it), the service-account
signing key (a token issued by one server verifies on every other) and the encryption keys
(Secrets written through one server decrypt on every other). `navio apiserver --pki-from DIR`
copies exactly those files from DIR (the first server's `DATA/pki`, or a private copy of it)
into the new server's `DATA/pki` before it starts — what kubeadm's "upload/download certs"
does, without a network hop:

- copied: `ca.crt`, `ca.key`, `sa.key`, `encryption-config.yaml` (required) and
  `revoked-serials` (when present); never the source's serving certificate, client
  certificates or kubeconfigs, which each server issues for itself;
- a secret source file (`ca.key`, `sa.key`, `encryption-config.yaml`, `revoked-serials`) that
  group or others may access, or that is a symbolic link, is refused, as the server refuses its
  own; copies are written 0600 in a 0700 directory, created exclusively;
- a destination that already holds these files must hold the same ones (running the command
  again is a no-op; a different CA is refused, never overwritten);
- messages name files, never their contents.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from navio.pki.privatefiles import KeyFileError, check_private_file

__all__ = ["SHARED_REQUIRED", "SHARED_OPTIONAL", "SECRET_FILES", "PkiImportError",
           "import_control_plane_pki"]

SHARED_REQUIRED = ("ca.crt", "ca.key", "sa.key", "encryption-config.yaml")
SHARED_OPTIONAL = ("revoked-serials",)
SECRET_FILES = frozenset({"ca.key", "sa.key", "encryption-config.yaml", "revoked-serials"})


class PkiImportError(Exception):
    """The source or destination is not fit for a safe copy; the message says why."""


def _read_source(path: Path) -> bytes:
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise PkiImportError(f"{path} is missing (is this the first API server's "
                             f"DATA/pki?)") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        raise PkiImportError(f"{path} is not a regular file (symbolic links are refused)")
    if path.name in SECRET_FILES:
        try:
            check_private_file(path)
        except KeyFileError as exc:
            raise PkiImportError(str(exc)) from None
    return path.read_bytes()


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def import_control_plane_pki(source: Path, dest: Path) -> list[str]:
    """Copy the shared control-plane credentials from `source` into `dest` (a server's
    DATA/pki). Returns the names written (empty when `dest` already held them all)."""
    source, dest = Path(source), Path(dest)
    if not source.is_dir():
        raise PkiImportError(f"{source} is not a directory")
    if dest.exists() and source.resolve() == dest.resolve():
        raise PkiImportError(f"{source} is this server's own pki directory")
    wanted: dict[str, bytes] = {name: _read_source(source / name) for name in SHARED_REQUIRED}
    for name in SHARED_OPTIONAL:
        if (source / name).exists() or (source / name).is_symlink():
            wanted[name] = _read_source(source / name)
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(dest, 0o700)
    # First compare everything already there, so a refusal leaves `dest` as it was.
    for name, data in wanted.items():
        have = dest / name
        if have.exists() or have.is_symlink():
            if have.is_symlink() or have.read_bytes() != data:
                what = "a different cluster CA" if name.startswith("ca.") else \
                    f"a different {name}"
                raise PkiImportError(f"{have} already exists and holds {what} than {source}; "
                                     f"refusing to overwrite it (start from an empty data "
                                     f"directory to join this control plane)")
    written = []
    for name, data in wanted.items():
        if not (dest / name).exists():
            _write_private(dest / name, data)
            written.append(name)
    return written
