"""TLS handshakes with a chosen protocol version and cipher list, for the security tests.

The probing client may offer anything OpenSSL can still speak (security level 0), so a refused
handshake is the server's refusal, not the client's; the tests check that against a permissive
control server first.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from pathlib import Path

__all__ = ["handshake", "permissive_server_context"]


def handshake(port: int, version: ssl.TLSVersion, ciphers: str | None = None, *,
              cert: Path | None = None, key: Path | None = None) -> tuple[str, str]:
    """(negotiated version, cipher) of a handshake with 127.0.0.1:`port` offering only
    `version` (and on TLS ≤ 1.2 only `ciphers`); raises ssl.SSLError when refused."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = version
        ctx.maximum_version = version
    ctx.set_ciphers((ciphers or "ALL") + ":@SECLEVEL=0")
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
        with ctx.wrap_socket(raw) as tls:
            name, _, _ = tls.cipher() or ("", "", 0)
            return str(tls.version()), name


def permissive_server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """What an unhardened server accepts: TLS 1.0+ and any cipher (the control)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    ctx.load_cert_chain(cert, key)
    return ctx
