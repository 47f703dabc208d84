"""The CSR signer: issues certificates for approved requests with the cluster CA (kube's
csrsigning controller, pkg/controller/certificates/signer).

Configured like kube-controller-manager: `cluster-signing-cert-file` and
`cluster-signing-key-file` (the CA; without them the controller does nothing) and
`cluster-signing-duration` (navio's default: 7 days, kube's is a year — short-lived node
certificates are rotated by the agent). Signers handled: kube-apiserver-client-kubelet
(the request must be a kubelet client request, else the CSR gets a `Failed` condition with
reason `SignerValidationFailure`), kube-apiserver-client and kubelet-serving. A request's
`expirationSeconds` shortens the certificate, never lengthens it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from navio.controllers.base import Controller, ControllerContext
from navio.controllers.certificates.common import CSRS, condition_types, request_pem
from navio.controllers.manager import register
from navio.pki import csr as pkicsr

__all__ = ["CSRSigningController", "NAME", "DEFAULT_DURATION"]

log = logging.getLogger(__name__)

NAME = "csrsigning"
DEFAULT_DURATION = 7 * 24 * 3600.0


class CSRSigningController(Controller):
    name = NAME
    workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        cert_file = ctx.options.get("cluster-signing-cert-file")
        key_file = ctx.options.get("cluster-signing-key-file")
        self.duration = float(ctx.options.get("cluster-signing-duration") or DEFAULT_DURATION)
        self.ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None
        if cert_file and key_file:
            self.ca = _load_ca(Path(cert_file), Path(key_file))
        self.csrs = ctx.informers.get(CSRS)
        self.csrs.add_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new))

    async def reconcile(self, key: str) -> None:
        csr = self.csrs.get(key)
        if csr is None or self.ca is None:
            return
        spec, status = csr.get("spec") or {}, csr.get("status") or {}
        types = condition_types(csr)
        if "Approved" not in types or types & {"Denied", "Failed"} or status.get("certificate"):
            return
        if spec.get("signerName") not in pkicsr.SIGNERS:
            return
        usages = list(spec.get("usages") or ())
        pem = request_pem(csr)
        try:
            req = pkicsr.parse_request(pem or b"")
        except ValueError as exc:
            await self._fail(csr, f"unable to parse csr: {exc}")
            return
        checks = {pkicsr.KUBELET_CLIENT_SIGNER: ("client", pkicsr.kubelet_client_problem),
                  pkicsr.KUBELET_SERVING: ("serving", pkicsr.kubelet_serving_problem)}
        if spec.get("signerName") in checks:
            what, check = checks[spec["signerName"]]
            problem = check(req, usages)
            if problem is not None:
                await self._fail(csr, f"invalid kubelet {what} certificate request: {problem}")
                return
        duration = self.duration
        if spec.get("expirationSeconds"):
            duration = min(duration, float(spec["expirationSeconds"]))
        ca_cert, ca_key = self.ca
        cert = await asyncio.to_thread(pkicsr.sign, req, usages, ca_cert=ca_cert,
                                       ca_key=ca_key, duration=duration)
        new_status = dict(status, certificate=base64.b64encode(cert).decode())
        await self.client.update_subresource(CSRS, key, "status", _with_status(csr,
                                                                               new_status))
        log.info("certificate signing request signed", extra={"csr": key})

    async def _fail(self, csr: dict[str, Any], message: str) -> None:
        status = dict(csr.get("status") or {})
        status["conditions"] = list(status.get("conditions") or ()) + [{
            "type": "Failed", "status": "True", "reason": "SignerValidationFailure",
            "message": message}]
        await self.client.update_subresource(CSRS, csr["metadata"]["name"], "status",
                                             _with_status(csr, status))


def _with_status(csr: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": csr["metadata"]["name"],
                         "resourceVersion": csr["metadata"]["resourceVersion"]},
            "spec": csr.get("spec") or {}, "status": status}


def _load_ca(cert_file: Path, key_file: Path
             ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_file}: the signing key must be an ECDSA key")
    return cert, key


@register(NAME)
def _factory(ctx: ControllerContext) -> Controller:
    return CSRSigningController(ctx)
