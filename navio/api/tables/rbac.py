"""Tables for RoleBindings and ClusterRoleBindings (printRoleBinding, printClusterRoleBinding
in printers.go, v1.32): NAME, ROLE (`Kind/name`), AGE, and in wide output the USERS, GROUPS
and SERVICEACCOUNTS (`namespace/name`) they bind. Roles and ClusterRoles print NAME and
CREATED AT, which is the default table.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from navio.api.tables.cells import Printer, age, age_column, column, get, name_column

__all__ = ["PRINTERS"]

_ROLE_REF_DOC = ("RoleRef can reference a Role in the current namespace or a ClusterRole in "
                 "the global namespace. If the RoleRef cannot be resolved, the Authorizer "
                 "must return an error. This field is immutable.")

BINDING_COLUMNS = (
    name_column(),
    column("Role", "string", _ROLE_REF_DOC),
    age_column(),
    column("Users", "string", "Users in the roleBinding", priority=1),
    column("Groups", "string", "Groups in the roleBinding", priority=1),
    column("ServiceAccounts", "string", "ServiceAccounts in the roleBinding", priority=1),
)


def binding_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    ref = obj.get("roleRef") or {}
    users, groups, sas = [], [], []
    for s in obj.get("subjects") or ():
        kind = s.get("kind")
        if kind == "User":
            users.append(s.get("name", ""))
        elif kind == "Group":
            groups.append(s.get("name", ""))
        elif kind == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}/{s.get('name', '')}")
    return [get(obj, "metadata", "name", default=""),
            f"{ref.get('kind', '')}/{ref.get('name', '')}", age(obj, now),
            ", ".join(users), ", ".join(groups), ", ".join(sas)]


PRINTERS = {
    ("rbac.authorization.k8s.io", "RoleBinding"): Printer(BINDING_COLUMNS, binding_cells),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): Printer(BINDING_COLUMNS,
                                                                 binding_cells),
}
