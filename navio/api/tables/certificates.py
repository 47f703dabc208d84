"""The CertificateSigningRequest table (printCertificateSigningRequest, printers.go v1.32):
NAME, AGE, SIGNERNAME, REQUESTOR, REQUESTEDDURATION, CONDITION — the condition being
`Pending`, `Approved` or `Denied`, then `,Failed` and `,Issued` as they apply."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from navio.api.tables.cells import Printer, age, column, get, human_duration, name_column

__all__ = ["PRINTERS", "csr_condition"]

_COLUMNS = (
    name_column(),
    column("Age", "string", "CreationTimestamp is a timestamp representing the server time "
                            "when this object was created."),
    column("SignerName", "string", "Requested signer for the request."),
    column("Requestor", "string", "Information about the requesting user."),
    column("RequestedDuration", "string", "Requested certificate duration."),
    column("Condition", "string", "The CSR's approval and issuance state."),
)


def csr_condition(csr: Mapping[str, Any]) -> str:
    types = {c.get("type") for c in get(csr, "status", "conditions", default=()) or ()}
    text = "Denied" if "Denied" in types else "Approved" if "Approved" in types else "Pending"
    if "Failed" in types:
        text += ",Failed"
    if get(csr, "status", "certificate"):
        text += ",Issued"
    return text


def _cells(csr: Mapping[str, Any], now: datetime) -> list[Any]:
    exp = get(csr, "spec", "expirationSeconds")
    return [get(csr, "metadata", "name", default=""), age(csr, now),
            get(csr, "spec", "signerName") or "<none>", get(csr, "spec", "username", default=""),
            human_duration(int(exp)) if exp is not None else "<none>", csr_condition(csr)]


PRINTERS = {("certificates.k8s.io", "CertificateSigningRequest"): Printer(_COLUMNS, _cells)}
