"""The one TLS policy of every navio listener (API server, kubelet API).

Why: the 2019 Kubernetes audit found TLS insecure by default, and the CIS benchmark (1.2.x
`--tls-cipher-suites`, 4.2.x kubelet `TLSCipherSuites`) asks for strong ciphers only. navio
serves TLS 1.2 and 1.3 and nothing older; on TLS 1.2 only ECDHE key exchange with an AEAD cipher
(AES-GCM, ChaCha20-Poly1305), so every session has forward secrecy and no CBC/RC4/3DES/RSA-kx
suite can be negotiated. TLS 1.3's own suites are all AEAD and are left at OpenSSL's defaults.
Compression (CRIME) and renegotiation are off; the server's cipher order wins.
"""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["TLS12_CIPHERS", "apply_policy", "server_context"]

# OpenSSL names of the TLS 1.2 suites kube's secure defaults keep (crypto/tls "secure" list
# minus the non-ECDHE ones), strongest first.
TLS12_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
))


def apply_policy(ctx: ssl.SSLContext) -> ssl.SSLContext:
    """Restrict `ctx` to TLS 1.2/1.3 with ECDHE + AEAD suites; returns `ctx`."""
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= (ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
                    | getattr(ssl, "OP_NO_RENEGOTIATION", 0))
    return ctx


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A serving context under the policy with `cert`/`key` loaded, HTTP/1.1 by ALPN; the
    caller decides how client certificates are verified."""
    ctx = apply_policy(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
