"""Client-certificate revocation: serials the API server no longer accepts.

Why: the 2019 audit found no way to revoke a certificate; a leaked admin certificate stayed
valid until it expired. navio keeps revoked serials in DATA/pki/revoked-serials (one hex serial
per line, `#` comments; written by `navio cert revoke`, 0600) and checks every request that
authenticates with a client certificate against it.

Guarantees:
- A change to the file takes effect on the next request, without a restart: the file's
  (mtime, size, inode) is compared on each lookup and the set re-read when it changed.
- A revoked certificate authenticates as nobody, so the request gets 401 like any invalid
  credential; an unreadable file keeps the last set it read and logs the error once.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from aiohttp import web

__all__ = ["RevocationList", "REVOCATION", "install", "is_revoked", "normalize_serial",
           "read_serials"]

log = logging.getLogger(__name__)

REVOCATION: web.AppKey["RevocationList"] = web.AppKey("navio.revocation")


def normalize_serial(serial: str | int) -> str:
    """Upper-case hex without separators or leading zeros (what `getpeercert()` returns)."""
    if isinstance(serial, int):
        return format(serial, "X")
    text = serial.strip().replace(":", "").upper().removeprefix("0X")
    return text.lstrip("0") or "0"


def read_serials(path: Path) -> frozenset[str]:
    if not path.exists():
        return frozenset()
    out = set()
    for line in path.read_text().splitlines():
        item = line.split("#", 1)[0].strip()
        if item:
            out.add(normalize_serial(item.split()[0]))
    return frozenset(out)


class RevocationList:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._serials: frozenset[str] = frozenset()
        self._failed = False

    def serials(self) -> frozenset[str]:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            self._stamp, self._serials = None, frozenset()
            return self._serials
        except OSError:
            return self._serials
        if stamp != self._stamp:
            try:
                self._serials = read_serials(self.path)
                self._stamp = stamp
                self._failed = False
                log.info("revoked certificates loaded", extra={"count": len(self._serials)})
            except (OSError, UnicodeDecodeError) as exc:
                if not self._failed:
                    log.error("revocation list unreadable; keeping the last one",
                              extra={"path": str(self.path), "error": str(exc)})
                self._failed = True
        return self._serials

    def __contains__(self, serial: str) -> bool:
        return normalize_serial(serial) in self.serials()


def install(app: web.Application, path: Path) -> RevocationList:
    revoked = RevocationList(path)
    app[REVOCATION] = revoked
    return revoked


def is_revoked(request: web.Request, peercert: dict[str, Any]) -> bool:
    """Whether the verified client certificate `peercert` of `request` is revoked."""
    revoked = request.app.get(REVOCATION)
    serial = peercert.get("serialNumber")
    if revoked is None or not isinstance(serial, str) or not serial:
        return False
    return serial in revoked
