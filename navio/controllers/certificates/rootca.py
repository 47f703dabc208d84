"""The root CA publisher: ConfigMap `kube-root-ca.crt` with the cluster CA in every namespace
(kube's root-ca-cert-publisher, pkg/controller/certificates/rootcacertpublisher).

Pods read it through the default `kube-api-access-*` projected volume to verify the API
server. The CA comes from the `root-ca-file` option, else from the controller manager's own
kubeconfig. A ConfigMap edited or deleted by someone is put back; terminating namespaces are
left alone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from navio.api import errors
from navio.client import CONFIGMAPS, NAMESPACES
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.manager import register
from navio.controllers.replicaset import namespace_terminating

__all__ = ["RootCACertPublisher", "NAME", "CONFIGMAP_NAME"]

log = logging.getLogger(__name__)

NAME = "root-ca-cert-publisher"
CONFIGMAP_NAME = "kube-root-ca.crt"
_DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when "
                "using internal endpoints such as the internal service IP or "
                "kubernetes.default.svc. No other usage is guaranteed across distributions "
                "of Kubernetes clusters.")


class RootCACertPublisher(Controller):
    name = NAME
    workers = 1

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        root = ctx.options.get("root-ca-file")
        data = Path(root).read_bytes() if root else ctx.client.config.ca_data
        self.ca = (data or b"").decode()
        self.namespaces = ctx.informers.get(NAMESPACES)
        self.configmaps = ctx.informers.get(CONFIGMAPS)
        self.namespaces.add_handler(on_add=self.enqueue,
                                    on_update=lambda old, new: self.enqueue(new))
        self.configmaps.add_handler(on_update=lambda old, new: self._cm_changed(new),
                                    on_delete=self._cm_changed)

    def _cm_changed(self, cm: dict[str, Any]) -> None:
        meta = cm.get("metadata") or {}
        if meta.get("name") == CONFIGMAP_NAME and meta.get("namespace"):
            self.queue.add(meta["namespace"])

    async def reconcile(self, key: str) -> None:
        if not self.ca:
            return
        ns = self.namespaces.get(key)
        if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp") or \
                (ns.get("status") or {}).get("phase", "Active") != "Active":
            return
        cm = self.configmaps.get(f"{key}/{CONFIGMAP_NAME}")
        data = {"ca.crt": self.ca}
        try:
            if cm is None:
                await self.client.create(CONFIGMAPS, {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": CONFIGMAP_NAME, "namespace": key,
                                 "annotations": {"kubernetes.io/description": _DESCRIPTION}},
                    "data": data}, key)
                return
            if cm.get("data") == data and \
                    (cm["metadata"].get("annotations") or {}).get("kubernetes.io/description"):
                return
            new = dict(cm, data=data)
            new["metadata"] = dict(cm["metadata"])
            new["metadata"]["annotations"] = dict(cm["metadata"].get("annotations") or {},
                                                  **{"kubernetes.io/description":
                                                     _DESCRIPTION})
            await self.client.update(CONFIGMAPS, new, key)
        except errors.AlreadyExists:
            self.queue.add_rate_limited(key)
        except errors.ApiError as exc:
            if namespace_terminating(exc) or isinstance(exc, errors.NotFound):
                return
            raise


@register(NAME)
def _factory(ctx: ControllerContext) -> Controller:
    return RootCACertPublisher(ctx)
