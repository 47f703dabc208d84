"""What the certificates controllers share: the CSR resource and reading its conditions."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from navio.client import ResourceRef

__all__ = ["CSRS", "condition_types", "decided", "request_pem"]

CSRS = ResourceRef("certificates.k8s.io", "v1", "certificatesigningrequests", False,
                   "CertificateSigningRequest")


def condition_types(csr: dict[str, Any]) -> set[str]:
    return {str(c.get("type")) for c in (csr.get("status") or {}).get("conditions") or ()}


def decided(csr: dict[str, Any]) -> bool:
    """Approved or Denied already (kube's approver leaves those alone)."""
    return bool(condition_types(csr) & {"Approved", "Denied"})


def request_pem(csr: dict[str, Any]) -> bytes | None:
    try:
        return base64.b64decode((csr.get("spec") or {}).get("request") or "", validate=True)
    except (binascii.Error, ValueError):
        return None
