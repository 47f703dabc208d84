"""TLS for the kubelet API: the serving certificate and who may connect.

Why: the kubelet API runs commands in containers, so it must never be anonymous: clients
present a certificate from the client CA (the API server's `kube-apiserver-kubelet-client`
certificate), as the kubelet's `--client-ca-file` with `--anonymous-auth=false` and webhook
authorization amount to for the API server's identity.

Guarantees:
- `server_context` requires and verifies a client certificate, under navio's one TLS policy
  (navio/pki/tlspolicy.py: TLS 1.2/1.3, ECDHE+AEAD suites only; HTTP/1.1).
- Without configured serving files a self-signed certificate for the node's names is made
  once under `<root>/pki` (0600 key) and reused, as the kubelet does (an API server that
  verifies kubelet certificates will refuse it; `navio server` hands its agent a CA-signed one).
- `authorize` admits the users the API server uses: group `system:masters`, or the user
  `kube-apiserver-kubelet-client`; everyone else gets the kubelet's Forbidden message.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from navio.pki.certs import subject_alt_names
from navio.pki.tlspolicy import server_context as policy_context

__all__ = ["server_context", "ensure_self_signed", "authorize", "peer_identity",
           "API_SERVER_USER"]

API_SERVER_USER = "kube-apiserver-kubelet-client"
_ALLOWED_GROUPS = frozenset({"system:masters"})


def ensure_self_signed(directory: Path, names: tuple[str, ...]) -> tuple[Path, Path]:
    """(cert, key) of the node's self-signed serving certificate, made if missing."""
    cert_path, key_path = directory / "kubelet.crt", directory / "kubelet.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{names[0]}@navio-agent")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(subject_alt_names(names), False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .sign(key, hashes.SHA256()))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    finally:
        os.close(fd)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def server_context(cert: Path, key: Path, *, client_ca_file: Path | None = None,
                   client_ca_data: bytes | None = None) -> ssl.SSLContext:
    if client_ca_file is None and client_ca_data is None:
        raise ValueError("the kubelet API needs a client CA (--client-ca-file): there is no "
                         "anonymous access")
    ctx = policy_context(cert, key)
    if client_ca_file is not None:
        ctx.load_verify_locations(cafile=str(client_ca_file))
    else:
        assert client_ca_data is not None
        ctx.load_verify_locations(cadata=client_ca_data.decode("ascii"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def peer_identity(peercert: dict[str, Any] | None) -> tuple[str, tuple[str, ...]]:
    """(user, groups) of a verified client certificate: CN and Os, as Kubernetes reads them."""
    user, groups = "system:anonymous", []
    for rdn in (peercert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                user = value
            elif key == "organizationName":
                groups.append(value)
    return user, tuple(groups)


def authorize(user: str, groups: tuple[str, ...]) -> bool:
    return user == API_SERVER_USER or bool(_ALLOWED_GROUPS & set(groups))
