"""Webhook matching (#4): rules, scope, matchPolicy Equivalent and the two selectors, as
k8s.io/apiserver/pkg/admission/plugin/webhook matches them."""

from __future__ import annotations

from typing import Any

import pytest

from navio.api.webhookrules import (Attributes, Equivalent, Rule, compile_configuration,
                                    invocation, is_exempt, namespace_selector_applies,
                                    object_selector_matches, rule_matches)


def _attrs(resource: str = "pods", sub: str = "", op: str = "CREATE", ns: str = "default",
           group: str = "", version: str = "v1", kind: str = "Pod",
           obj: dict[str, Any] | None = None, old: dict[str, Any] | None = None) -> Attributes:
    return Attributes(group, version, resource, kind, sub, op, ns, "x", obj, old)


def _rule(resources: tuple[str, ...] = ("pods",), ops: tuple[str, ...] = ("CREATE",),
          groups: tuple[str, ...] = ("",), versions: tuple[str, ...] = ("v1",),
          scope: str = "*") -> Rule:
    return Rule(ops, groups, versions, resources, scope)


@pytest.mark.parametrize("resources,sub,matches", [
    (("pods",), "", True),
    (("pods",), "status", False),
    (("pods/status",), "status", True),
    (("pods/status",), "", False),
    (("pods/*",), "status", True),
    (("pods/*",), "", True),               # `sub == "*"` also matches no subresource
    (("*",), "", True),
    (("*",), "status", False),             # `*` is every resource, but no subresource
    (("*/status",), "status", True),
    (("*/status",), "", False),
    (("*/*",), "exec", True),
    (("deployments",), "", False),
], ids=lambda v: repr(v))
def test_resources_and_subresources(resources: tuple[str, ...], sub: str, matches: bool) -> None:
    attrs = _attrs(sub=sub)
    assert rule_matches(_rule(resources), attrs, "", "v1", "pods") is matches


@pytest.mark.parametrize("ops,op,matches", [
    (("CREATE",), "CREATE", True), (("CREATE",), "UPDATE", False), (("*",), "DELETE", True),
    (("UPDATE", "DELETE"), "DELETE", True), (("CONNECT",), "CREATE", False),
])
def test_operations(ops: tuple[str, ...], op: str, matches: bool) -> None:
    assert rule_matches(_rule(ops=ops), _attrs(op=op), "", "v1", "pods") is matches


def test_groups_and_versions_with_wildcards() -> None:
    attrs = _attrs("deployments", group="apps", kind="Deployment")
    assert rule_matches(_rule(("deployments",), groups=("apps",)), attrs, "apps", "v1",
                        "deployments")
    assert rule_matches(_rule(("deployments",), groups=("*",), versions=("*",)), attrs, "apps",
                        "v1", "deployments")
    assert not rule_matches(_rule(("deployments",), groups=("",)), attrs, "apps", "v1",
                            "deployments")
    assert not rule_matches(_rule(("deployments",), groups=("apps",), versions=("v1beta1",)),
                            attrs, "apps", "v1", "deployments")


@pytest.mark.parametrize("scope,resource,ns,matches", [
    ("Namespaced", "pods", "default", True),
    ("Namespaced", "nodes", "", False),
    ("Namespaced", "namespaces", "team", False),   # a Namespace is cluster-scoped
    ("Cluster", "nodes", "", True),
    ("Cluster", "namespaces", "team", True),
    ("Cluster", "pods", "default", False),
    ("*", "pods", "default", True),
])
def test_scope(scope: str, resource: str, ns: str, matches: bool) -> None:
    attrs = _attrs(resource, ns=ns)
    assert rule_matches(_rule((resource,), scope=scope), attrs, "", "v1", resource) is matches


def _hook(rules: list[dict[str, Any]], **extra: Any) -> Any:
    cfg = {"metadata": {"name": "cfg"}, "webhooks": [{
        "name": "h.navio.test", "clientConfig": {"url": "https://127.0.0.1/x"},
        "rules": rules, "sideEffects": "None", "admissionReviewVersions": ["v1"],
        "namespaceSelector": {}, "objectSelector": {}, **extra}]}
    return compile_configuration(cfg, False)[0]


EVENTS = [Equivalent("", "v1", "events", "Event"),
          Equivalent("events.k8s.io", "v1", "events", "Event")]
EVENTS_RULE = [{"operations": ["CREATE"], "apiGroups": ["events.k8s.io"], "apiVersions": ["v1"],
                "resources": ["events"], "scope": "*"}]


def test_match_policy_equivalent_calls_with_the_equivalent_version() -> None:
    core_event = _attrs("events", kind="Event")
    hook = _hook(EVENTS_RULE)
    assert hook.match_policy == "Equivalent"
    assert invocation(hook, core_event, EVENTS) == EVENTS[1]
    exact = _hook(EVENTS_RULE, matchPolicy="Exact")
    assert invocation(exact, core_event, EVENTS) is None
    own = _attrs("events", group="events.k8s.io", kind="Event")
    assert invocation(hook, own, EVENTS) == Equivalent("events.k8s.io", "v1", "events", "Event")


def test_object_selector_matches_new_or_old_object() -> None:
    hook = _hook([], objectSelector={"matchLabels": {"app": "a"}})
    assert object_selector_matches(hook, _attrs(obj={"metadata": {"labels": {"app": "a"}}}))
    assert object_selector_matches(hook, _attrs(obj={"metadata": {}},
                                                old={"metadata": {"labels": {"app": "a"}}}))
    assert not object_selector_matches(hook, _attrs(obj={"metadata": {"labels": {"app": "b"}}}))
    assert not object_selector_matches(hook, _attrs(op="DELETE"))   # no objects at all
    assert object_selector_matches(_hook([]), _attrs(op="DELETE"))   # empty: everything


def test_namespace_selector() -> None:
    hook = _hook([], namespaceSelector={"matchExpressions": [
        {"key": "env", "operator": "In", "values": ["prod"]}]})
    labels = {"prod-ns": {"env": "prod"}, "dev-ns": {"env": "dev"}}
    assert namespace_selector_applies(hook, _attrs(ns="prod-ns"), labels.get)
    assert not namespace_selector_applies(hook, _attrs(ns="dev-ns"), labels.get)
    # Cluster-scoped objects are never exempted.
    assert namespace_selector_applies(hook, _attrs("nodes", ns=""), labels.get)
    # A namespace being created or updated is judged by its own labels.
    ns_obj = {"metadata": {"name": "new", "labels": {"env": "prod"}}}
    assert namespace_selector_applies(hook, _attrs("namespaces", ns="new", obj=ns_obj),
                                      labels.get)
    with pytest.raises(LookupError):
        namespace_selector_applies(hook, _attrs(ns="missing"), labels.get)


def test_admission_configuration_kinds_are_exempt() -> None:
    assert is_exempt("admissionregistration.k8s.io", "validatingwebhookconfigurations")
    assert is_exempt("admissionregistration.k8s.io", "mutatingwebhookconfigurations")
    assert not is_exempt("", "configmaps")
