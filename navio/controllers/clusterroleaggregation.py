"""The clusterrole-aggregation controller (kube's pkg/controller/clusterroleaggregation).

Why: a ClusterRole with an `aggregationRule` (admin, edit, view, and any an administrator
writes) is meant to hold every rule of the ClusterRoles its selectors match, so that adding a
labelled role (a CRD's `aggregate-to-view` role, say) extends it without editing it.

Guarantees: whenever any ClusterRole changes, every aggregating ClusterRole is recomputed
(`navio.api.rbacaggregation.aggregated_rules`: matching roles in name order, duplicates
dropped) and updated only if its rules differ. A conflict retries with backoff. Roles without
an aggregationRule are never written.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from navio.api import errors
from navio.api.rbacaggregation import aggregated_rules
from navio.client import ResourceRef
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.manager import register

__all__ = ["ClusterRoleAggregationController", "CLUSTERROLES", "NAME"]

log = logging.getLogger(__name__)

NAME = "clusterrole-aggregation"
CLUSTERROLES = ResourceRef("rbac.authorization.k8s.io", "v1", "clusterroles", False,
                           "ClusterRole")

Obj = dict[str, Any]


class ClusterRoleAggregationController(Controller):
    name = NAME
    workers = 1

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.roles = ctx.informers.get(CLUSTERROLES)
        self.roles.add_handler(on_add=self._changed,
                               on_update=lambda old, new: self._changed(new),
                               on_delete=self._changed)

    def _changed(self, _: Obj) -> None:
        for role in self.roles.list():
            if role.get("aggregationRule") is not None:
                self.queue.add(role["metadata"]["name"])

    async def reconcile(self, key: str) -> None:
        role = self.roles.get(key)
        if role is None:
            return
        rules = aggregated_rules(role, self.roles.list())
        if rules is None or rules == (role.get("rules") or []):
            return
        body = copy.deepcopy(role)
        body["rules"] = rules
        try:
            await self.client.update(CLUSTERROLES, body)
        except errors.NotFound:
            return
        log.info("cluster role aggregated", extra={"clusterrole": key, "rules": len(rules)})


@register(NAME)
def _factory(ctx: ControllerContext) -> Controller:
    return ClusterRoleAggregationController(ctx)
