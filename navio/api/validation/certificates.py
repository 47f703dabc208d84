"""certificates.k8s.io/v1 CertificateSigningRequest (pkg/apis/certificates/validation).

Create: `spec.request` is a PEM `CERTIFICATE REQUEST`, `spec.signerName` a qualified
`domain/path`, `spec.usages` present, known and unique, `spec.expirationSeconds` at least 600;
conditions have a type, Approved/Denied are True and exclusive. Update: everything of create,
and a decision once made stays (Approved and Denied are never removed), and an issued
certificate never changes. The request's signature is checked by the signer, not here (api/
is pure: no cryptography).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from navio.api.validation.field import (Cause, duplicate, forbidden, invalid, not_supported,
                                        required)

__all__ = ["KEY_USAGES", "validate_csr", "validate_csr_update", "pem_blocks"]

KEY_USAGES = ("signing", "digital signature", "content commitment", "key encipherment",
              "key agreement", "data encipherment", "cert sign", "crl sign", "encipher only",
              "decipher only", "any", "server auth", "client auth", "code signing",
              "email protection", "s/mime", "ipsec end system", "ipsec tunnel", "ipsec user",
              "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc")
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.S)
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_MIN_EXPIRATION = 600


def pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    """(type, DER) of each PEM block; a block whose body is not base64 raises ValueError."""
    out = []
    for m in _PEM.finditer(data.decode("latin-1")):
        try:
            out.append((m.group(1), base64.b64decode("".join(m.group(2).split()),
                                                     validate=True)))
        except (binascii.Error, ValueError):
            raise ValueError("failed to decode PEM block") from None
    return out


def _b64(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _request(spec: dict[str, Any]) -> list[Cause]:
    raw = spec.get("request")
    if not raw:
        return [required("spec.request")]
    data = _b64(raw)
    if data is None:
        return [invalid("spec.request", raw, "must be base64-encoded PEM")]
    try:
        blocks = pem_blocks(data)
    except ValueError:
        blocks = []
    if not blocks or blocks[0][0] != "CERTIFICATE REQUEST" or not blocks[0][1] \
            or blocks[0][1][0] != 0x30:
        return [invalid("spec.request", raw, "PEM block type must be CERTIFICATE REQUEST")]
    return []


def _signer(name: Any) -> list[Cause]:
    path = "spec.signerName"
    if not name:
        return [required(path)]
    domain, sep, rest = str(name).partition("/")
    if not sep or not rest:
        return [invalid(path, name, "must be a fully qualified domain and path of the form "
                                    "'example.com/signer-name'")]
    errs = []
    if not _DNS1123.match(domain) or "." not in domain:
        errs.append(invalid(path, name, "should be a domain with at least two segments "
                                        "separated by dots"))
    if len(str(name)) > 571:
        errs.append(invalid(path, name, "must be no more than 571 characters"))
    return errs


def _usages(spec: dict[str, Any]) -> list[Cause]:
    usages = spec.get("usages") or []
    if not usages:
        return [required("spec.usages", "usages must be provided")]
    errs, seen = [], set()
    for i, u in enumerate(usages):
        if u not in KEY_USAGES:
            errs.append(not_supported(f"spec.usages[{i}]", u, KEY_USAGES))
        if u in seen:
            errs.append(duplicate(f"spec.usages[{i}]", u))
        seen.add(u)
    return errs


def _conditions(status: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, c in enumerate(status.get("conditions") or ()):
        path = f"status.conditions[{i}]"
        t = c.get("type")
        if not t:
            errs.append(required(f"{path}.type"))
            continue
        if t in ("Approved", "Denied", "Failed") and t in seen:
            errs.append(duplicate(f"{path}.type", t))
        seen.add(t)
        s = c.get("status")
        if not s:
            errs.append(required(f"{path}.status"))
        elif t in ("Approved", "Denied") and s != "True":
            errs.append(not_supported(f"{path}.status", s, ["True"]))
        elif s not in ("True", "False", "Unknown"):
            errs.append(not_supported(f"{path}.status", s, ["False", "True", "Unknown"]))
    if "Approved" in seen and "Denied" in seen:
        errs.append(invalid("status.conditions", status.get("conditions"),
                            "Approved and Denied conditions are mutually exclusive"))
    return errs


def _certificate(status: dict[str, Any]) -> list[Cause]:
    raw = status.get("certificate")
    if not raw:
        return []
    data = _b64(raw)
    try:
        blocks = pem_blocks(data) if data is not None else []
    except ValueError:
        blocks = []
    if not blocks:
        return [invalid("status.certificate", "<certificate data>",
                        "must contain at least one CERTIFICATE PEM block")]
    if any(t != "CERTIFICATE" for t, _ in blocks):
        return [invalid("status.certificate", "<certificate data>",
                        "only CERTIFICATE PEM blocks are allowed")]
    types = {c.get("type") for c in status.get("conditions") or ()}
    if "Approved" not in types:
        return [forbidden("status.certificate", "certificate may only be set when the "
                                                "request is approved")]
    return []


def validate_csr(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    errs = _request(spec) + _signer(spec.get("signerName")) + _usages(spec)
    exp = spec.get("expirationSeconds")
    if exp is not None and exp < _MIN_EXPIRATION:
        errs.append(invalid("spec.expirationSeconds", exp,
                            "may not specify a duration less than 600 seconds (10 minutes)"))
    status = obj.get("status") or {}
    return errs + _conditions(status) + _certificate(status)


def validate_csr_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_csr(new)
    old_status, new_status = old.get("status") or {}, new.get("status") or {}
    new_types = {c.get("type") for c in new_status.get("conditions") or ()}
    for c in old_status.get("conditions") or ():
        if c.get("type") in ("Approved", "Denied") and c.get("type") not in new_types:
            errs.append(forbidden("status.conditions",
                                  f'updates may not remove a condition of type "{c["type"]}"'))
    if old_status.get("certificate") and \
            new_status.get("certificate") != old_status.get("certificate"):
        errs.append(forbidden("status.certificate",
                              "updates may not modify existing certificate content"))
    return errs
