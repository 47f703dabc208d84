"""Compact JWS (RFC 7515) signed with ES256: what service-account tokens are made of.

Why: kube-apiserver signs service-account tokens as JWTs with the key given by
`--service-account-signing-key-file` (RS256 or ES256); navio does the same with an ECDSA P-256
key that `navio server` creates on first start (`<data dir>/pki/sa.key`, 0600). Only what the
tokens need is here, so no JWT library is pulled in: one algorithm, one key, a `kid` header
computed as kube computes it (base64url of the SHA-256 of the DER public key).

Guarantees: `verify` checks the header's `alg` (ES256 only: `none` and HMAC confusions are
refused), the signature, and that the payload is a JSON object; it raises `JWTError`, whose
message never contains the token. Claims (exp, aud, ...) are the caller's to check.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (decode_dss_signature,
                                                              encode_dss_signature)

from navio.pki.certs import write_private

__all__ = ["JWTError", "SigningKey", "load_or_create_signing_key", "sign", "verify",
           "unverified_claims"]

_ALG = "ES256"
_COORD = 32  # bytes of r and s for P-256


class JWTError(ValueError):
    """The token is malformed or its signature does not verify."""


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise JWTError("malformed token encoding") from None


class SigningKey:
    """An ECDSA P-256 private key and the `kid` of its public half."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self.key = key
        der = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = _b64e(hashlib.sha256(der).digest())

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.key.public_key()


def load_or_create_signing_key(path: Path) -> SigningKey:
    """The key at `path` (PEM), created 0600 if absent."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path}: not an ECDSA private key")
        return SigningKey(key)
    key = ec.generate_private_key(ec.SECP256R1())
    write_private(path, key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return SigningKey(key)


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def sign(claims: dict[str, Any], key: SigningKey) -> str:
    """The compact JWS of `claims`."""
    header = _b64e(_json({"alg": _ALG, "kid": key.kid}))
    payload = _b64e(_json(claims))
    signing_input = f"{header}.{payload}".encode("ascii")
    der = key.key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{header}.{payload}.{_b64e(r.to_bytes(_COORD, 'big') + s.to_bytes(_COORD, 'big'))}"


def _split(token: str) -> tuple[str, str, str]:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise JWTError("not a compact JWS")
    return parts[0], parts[1], parts[2]


def _object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise JWTError(f"malformed {what}") from None
    if not isinstance(value, dict):
        raise JWTError(f"malformed {what}")
    return value


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload without checking the signature (to see whether a token is a JWT at all
    and who issued it)."""
    _, payload, _ = _split(token)
    return _object(_b64d(payload), "payload")


def verify(token: str, public_keys: list[ec.EllipticCurvePublicKey]) -> dict[str, Any]:
    """The claims of `token` if one of `public_keys` signed it."""
    header_b64, payload_b64, sig_b64 = _split(token)
    header = _object(_b64d(header_b64), "header")
    if header.get("alg") != _ALG:
        raise JWTError("unsupported signing algorithm")
    sig = _b64d(sig_b64)
    if len(sig) != 2 * _COORD:
        raise JWTError("invalid signature")
    der = encode_dss_signature(int.from_bytes(sig[:_COORD], "big"),
                               int.from_bytes(sig[_COORD:], "big"))
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    for pub in public_keys:
        try:
            pub.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        return _object(_b64d(payload_b64), "payload")
    raise JWTError("invalid signature")
