"""The CSR approver: auto-approves kubelet client certificate requests (kube's csrapproving
controller, pkg/controller/certificates/approver/sarapprove.go).

A pending request for signer `kubernetes.io/kube-apiserver-client-kubelet` that is a kubelet
client request (CN `system:node:NAME`, O `system:nodes`, no SANs, usages digital signature +
client auth [+ key encipherment]) is approved when
- its requester is a bootstrapping node (group `system:bootstrappers`): kube's `nodeclient`
  recognizer, whose SubjectAccessReview asks for `create certificatesigningrequests/nodeclient`
  — the permission kubeadm binds to `system:bootstrappers`; or
- its requester is the very node it names (`spec.username` equals the CN, group
  `system:nodes`): the `selfnodeclient` recognizer (certificate rotation), SAR
  `create certificatesigningrequests/selfnodeclient`.
navio has no SubjectAccessReview yet in this controller; the group checks stand for the
default RBAC bindings. Anything else stays pending for a human (`kubectl certificate approve`).

Unlike kube (which leaves them to an admin or an external approver), a node's own
`kubernetes.io/kubelet-serving` request is approved too when the requester is that node
(CN `system:node:NAME` = `spec.username`, group `system:nodes`) and its DNS names are only
NAME or localhost: navio's API server verifies kubelet certificates against the cluster CA, so
a joined node needs one to serve logs, exec and port-forward. IP SANs are the node's claim,
trusted as its self-reported addresses are (k3s makes the same choice).
"""

from __future__ import annotations

import logging
from typing import Any

from navio.controllers.base import Controller, ControllerContext
from navio.controllers.certificates.common import CSRS, decided, request_pem
from navio.controllers.manager import register
from navio.pki import csr as pkicsr

__all__ = ["CSRApprovingController", "NAME"]

log = logging.getLogger(__name__)

NAME = "csrapproving"


def recognize(csr: dict[str, Any]) -> str | None:
    """The approval message for a request this controller approves, else None."""
    spec = csr.get("spec") or {}
    signer = spec.get("signerName")
    if signer not in (pkicsr.KUBELET_CLIENT_SIGNER, pkicsr.KUBELET_SERVING):
        return None
    pem = request_pem(csr)
    if pem is None:
        return None
    try:
        req = pkicsr.parse_request(pem)
    except ValueError:
        return None
    usages = list(spec.get("usages") or ())
    groups = set(spec.get("groups") or ())
    if signer == pkicsr.KUBELET_SERVING:
        node = req.common_name[len("system:node:"):]
        if pkicsr.kubelet_serving_problem(req, usages) is None and \
                spec.get("username") == req.common_name and "system:nodes" in groups and \
                set(req.dns_names) <= {node, "localhost"}:
            return "Auto approving kubelet serving certificate of its own node."
        return None
    if pkicsr.kubelet_client_problem(req, usages) is not None:
        return None
    if spec.get("username") == req.common_name and "system:nodes" in groups:
        return "Auto approving self kubelet client certificate after SubjectAccessReview."
    if "system:bootstrappers" in groups:
        return "Auto approving kubelet client certificate after SubjectAccessReview."
    return None


class CSRApprovingController(Controller):
    name = NAME
    workers = 1

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.csrs = ctx.informers.get(CSRS)
        self.csrs.add_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new))

    async def reconcile(self, key: str) -> None:
        csr = self.csrs.get(key)
        if csr is None or decided(csr) or (csr.get("status") or {}).get("certificate"):
            return
        message = recognize(csr)
        if message is None:
            return
        body = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                "metadata": {"name": key,
                             "resourceVersion": csr["metadata"]["resourceVersion"]},
                "status": {"conditions": list((csr.get("status") or {}).get("conditions")
                                              or ()) + [{
                    "type": "Approved", "status": "True", "reason": "AutoApproved",
                    "message": message}]}}
        await self.client.update_subresource(CSRS, key, "approval", body)
        log.info("certificate signing request approved", extra={"csr": key})


@register(NAME)
def _factory(ctx: ControllerContext) -> Controller:
    return CSRApprovingController(ctx)
