"""The service account controller: a `default` ServiceAccount in every active namespace.

Why: pods name `default` when they name no account, and tools expect it to exist in each
namespace (kube's pkg/controller/serviceaccount/serviceaccounts_controller.go).

Guarantees: for each namespace whose phase is Active, the accounts in `names` (default:
`default`) exist; one deleted is created again. Terminating namespaces are left alone, and
creates that race with one (NamespaceTerminating) or with another writer (AlreadyExists) are
not errors. Safe to repeat: only missing accounts are created.
"""

from __future__ import annotations

import logging
from typing import Any

from navio.api import errors
from navio.client import NAMESPACES, SERVICEACCOUNTS
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.manager import register
from navio.controllers.replicaset import namespace_terminating

__all__ = ["ServiceAccountsController", "DEFAULT_NAMES"]

log = logging.getLogger(__name__)

NAME = "serviceaccount"
DEFAULT_NAMES = ("default",)

Obj = dict[str, Any]


class ServiceAccountsController(Controller):
    name = NAME
    workers = 1

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.names = tuple(ctx.options.get("service-account-names", DEFAULT_NAMES))
        self.namespaces = ctx.informers.get(NAMESPACES)
        self.accounts = ctx.informers.get(SERVICEACCOUNTS)
        self.namespaces.add_handler(on_add=self.enqueue,
                                    on_update=lambda old, new: self.enqueue(new))
        self.accounts.add_handler(on_delete=self._account_deleted)

    def _account_deleted(self, sa: Obj) -> None:
        meta = sa.get("metadata") or {}
        if meta.get("name") in self.names and meta.get("namespace"):
            self.queue.add(meta["namespace"])

    async def reconcile(self, key: str) -> None:
        """Create the missing managed accounts of namespace `key` if it is active."""
        ns = self.namespaces.get(key)
        if ns is None or (ns.get("status") or {}).get("phase", "Active") != "Active" or \
                (ns.get("metadata") or {}).get("deletionTimestamp"):
            return
        for name in self.names:
            if self.accounts.get(f"{key}/{name}") is not None:
                continue
            body = {"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": key}}
            try:
                await self.client.create(SERVICEACCOUNTS, body, key)
            except errors.AlreadyExists:
                continue
            except errors.ApiError as exc:
                if namespace_terminating(exc):
                    return
                raise
            log.info("service account created", extra={"serviceaccount": f"{key}/{name}"})


@register(NAME)
def _factory(ctx: ControllerContext) -> Controller:
    return ServiceAccountsController(ctx)
