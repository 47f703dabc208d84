"""admissionregistration.k8s.io/v1 defaults (pkg/apis/admissionregistration/v1/defaults.go).

Every webhook gets failurePolicy Fail, matchPolicy Equivalent, empty (match-everything)
namespaceSelector and objectSelector and timeoutSeconds 10; mutating webhooks also
reinvocationPolicy Never. Each rule's scope defaults to `*` and a service reference's port to
443. sideEffects and admissionReviewVersions have no default in v1: they are required.
ValidatingAdmissionPolicies default failurePolicy to Fail; their matchConstraints (and a
binding's matchResources) get matchPolicy Equivalent, empty selectors and rule scope `*`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["default_validating_configuration", "default_mutating_configuration",
           "default_policy", "default_binding", "KIND_DEFAULTS"]

GROUP = "admissionregistration.k8s.io"


def _webhook(hook: dict[str, Any], mutating: bool) -> None:
    if hook.get("failurePolicy") is None:
        hook["failurePolicy"] = "Fail"
    if hook.get("matchPolicy") is None:
        hook["matchPolicy"] = "Equivalent"
    if hook.get("namespaceSelector") is None:
        hook["namespaceSelector"] = {}
    if hook.get("objectSelector") is None:
        hook["objectSelector"] = {}
    if hook.get("timeoutSeconds") is None:
        hook["timeoutSeconds"] = 10
    if mutating and hook.get("reinvocationPolicy") is None:
        hook["reinvocationPolicy"] = "Never"
    for rule in hook.get("rules") or ():
        if isinstance(rule, dict) and rule.get("scope") is None:
            rule["scope"] = "*"
    service = (hook.get("clientConfig") or {}).get("service")
    if isinstance(service, dict) and service.get("port") is None:
        service["port"] = 443


def _configuration(obj: dict[str, Any], mutating: bool) -> None:
    for hook in obj.get("webhooks") or ():
        if isinstance(hook, dict):
            _webhook(hook, mutating)


def default_validating_configuration(obj: dict[str, Any]) -> None:
    _configuration(obj, False)


def default_mutating_configuration(obj: dict[str, Any]) -> None:
    _configuration(obj, True)


def _match_resources(mr: Any) -> None:
    if not isinstance(mr, dict):
        return
    mr.setdefault("matchPolicy", "Equivalent")
    mr.setdefault("namespaceSelector", {})
    mr.setdefault("objectSelector", {})
    for key in ("resourceRules", "excludeResourceRules"):
        for rule in mr.get(key) or ():
            if isinstance(rule, dict) and rule.get("scope") is None:
                rule["scope"] = "*"


def default_policy(obj: dict[str, Any]) -> None:
    """SetDefaults_ValidatingAdmissionPolicySpec and SetDefaults_MatchResources."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("failurePolicy") is None:
        spec["failurePolicy"] = "Fail"
    _match_resources(spec.get("matchConstraints"))


def default_binding(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        _match_resources(spec.get("matchResources"))


KIND_DEFAULTS = {
    (GROUP, "ValidatingAdmissionPolicy"): default_policy,
    (GROUP, "ValidatingAdmissionPolicyBinding"): default_binding,
    (GROUP, "ValidatingWebhookConfiguration"): default_validating_configuration,
    (GROUP, "MutatingWebhookConfiguration"): default_mutating_configuration,
}
