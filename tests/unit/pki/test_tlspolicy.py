"""The shared TLS policy: what a context under it will and will not negotiate."""

from __future__ import annotations

import ssl
from pathlib import Path

from navio.apiserver.app import tls_context
from navio.kubelet import tls as kubelet_tls
from navio.pki.certs import load_or_create_ca
from navio.pki.tlspolicy import TLS12_CIPHERS


def _tls12_names(ctx: ssl.SSLContext) -> set[str]:
    return {c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"}


def test_both_listeners_use_the_policy(tmp_path: Path) -> None:
    ca = load_or_create_ca(tmp_path)
    pair = ca.issue(tmp_path, "srv", cn="srv", client=False, server_names=("127.0.0.1",))
    for ctx in (tls_context(pair.cert, pair.key, ca.pair.cert),
                kubelet_tls.server_context(pair.cert, pair.key, client_ca_file=ca.pair.cert)):
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
        names = _tls12_names(ctx)
        assert names and names <= set(TLS12_CIPHERS.split(":"))
        assert all(n.startswith("ECDHE-") and ("GCM" in n or "CHACHA20" in n) for n in names)
        assert ctx.options & ssl.OP_NO_COMPRESSION
        tls13 = {c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.3"}
        assert tls13 and all("GCM" in n or "CHACHA20" in n for n in tls13)
