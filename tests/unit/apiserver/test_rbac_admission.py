"""NodeRestriction and the escalation check, run directly on admission requests."""

from __future__ import annotations

from typing import Any, cast

import pytest

from navio.api import errors
from navio.api.registry import default_registry
from navio.apiserver.admission import Request
from navio.apiserver.authn import UserInfo
from navio.apiserver.authz.escalation import EscalationCheck
from navio.apiserver.authz.rules import compile_rules
from navio.apiserver.noderestriction import node_restriction
from navio.apiserver.resources import WriteOptions

REG = default_registry()
PODS, NODES = REG.resource("", "v1", "pods"), REG.resource("", "v1", "nodes")
ROLES = REG.resource("rbac.authorization.k8s.io", "v1", "roles")
_NONE: Any = None         # neither plugin reads the store
N1 = UserInfo("system:node:n1", ("system:nodes", "system:authenticated"))


def _req(kind: Any, op: str, obj: dict[str, Any], old: dict[str, Any] | None = None,
         user: UserInfo | None = N1, sub: str = "") -> Request:
    return Request(kind, op, obj, old, WriteOptions(user=user), sub)


def _pod(node: str, **ann: str) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", "annotations": ann},
            "spec": {"nodeName": node}}


async def test_node_restriction() -> None:
    await node_restriction(_NONE, _req(NODES, "UPDATE", {"metadata": {"name": "n1"}}, {}))
    with pytest.raises(errors.Forbidden, match='node "n1" is not allowed to modify node "n2"'):
        await node_restriction(_NONE, _req(NODES, "UPDATE", {"metadata": {"name": "n2"}}, {}))
    with pytest.raises(errors.Forbidden, match="is not allowed to modify labels: "
                                               "node-restriction.kubernetes.io/x"):
        await node_restriction(_NONE, _req(NODES, "UPDATE", {"metadata": {
            "name": "n1", "labels": {"node-restriction.kubernetes.io/x": "1"}}}, {}))
    await node_restriction(_NONE, _req(PODS, "UPDATE", _pod("n1"), _pod("n1"), sub="status"))
    with pytest.raises(errors.Forbidden, match="can only update pod status"):
        await node_restriction(_NONE, _req(PODS, "UPDATE", _pod("n1"), _pod("n2"),
                                          sub="status"))
    with pytest.raises(errors.Forbidden, match="can only create mirror pods"):
        await node_restriction(_NONE, _req(PODS, "CREATE", _pod("n1")))
    await node_restriction(_NONE, _req(PODS, "CREATE", _pod(
        "n1", **{"kubernetes.io/config.mirror": "x"})))
    with pytest.raises(errors.Forbidden, match="can only delete pods"):
        await node_restriction(_NONE, _req(PODS, "DELETE", _pod("n2"), _pod("n2")))
    # Anyone else, and server-internal writes, pass.
    await node_restriction(_NONE, _req(NODES, "DELETE", {"metadata": {"name": "n2"}}, {},
                                      user=UserInfo("alice")))
    await node_restriction(_NONE, _req(NODES, "DELETE", {"metadata": {"name": "n2"}}, {},
                                      user=None))


class _Index:
    def __init__(self, rules: list[dict[str, Any]]) -> None:
        self.rules = compile_rules(rules)

    def rules_for(self, user: UserInfo, namespace: str) -> list[Any]:
        return list(self.rules)


class _Authz:
    def __init__(self, rules: list[dict[str, Any]], verbs: frozenset[str] = frozenset()) -> None:
        self.index = _Index(rules)
        self.verbs = verbs

    async def authorize(self, attrs: Any) -> tuple[bool, str]:
        return attrs.verb in self.verbs, ""


def _role(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": "r", "namespace": "ns"}, "rules": rules}


async def test_escalation_check() -> None:
    held = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    alice = UserInfo("alice", ("system:authenticated",))
    check = EscalationCheck(cast(Any, _Authz(held)))
    await check(_NONE, _req(ROLES, "CREATE", _role(held), user=alice))
    wants = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]
    with pytest.raises(errors.Forbidden) as exc:
        await check(_NONE, _req(ROLES, "CREATE", _role(wants), user=alice))
    assert exc.value.message == (
        'roles.rbac.authorization.k8s.io "r" is forbidden: user "alice" (groups=['
        '"system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}')
    # Updates are checked too, unless only garbage-collector fields change; `escalate` and
    # system:masters skip the check.
    labelled = _role(wants)
    labelled["metadata"]["labels"] = {"a": "b"}
    with pytest.raises(errors.Forbidden):
        await check(_NONE, _req(ROLES, "UPDATE", labelled, _role(wants), user=alice))
    owned = _role(wants)
    owned["metadata"]["finalizers"] = ["x"]
    await check(_NONE, _req(ROLES, "UPDATE", owned, _role(wants), user=alice))
    await EscalationCheck(cast(Any, _Authz(held, {"escalate"})))(
        _NONE, _req(ROLES, "CREATE", _role(wants), user=alice))
    await check(_NONE, _req(ROLES, "CREATE", _role(wants),
                           user=UserInfo("root", ("system:masters",))))
