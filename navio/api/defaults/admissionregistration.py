"""admissionregistration.k8s.io/v1 defaults (pkg/apis/admissionregistration/v1/defaults.go).

Every webhook gets failurePolicy Fail, matchPolicy Equivalent, empty (match-everything)
namespaceSelector and objectSelector and timeoutSeconds 10; mutating webhooks also
reinvocationPolicy Never. Each rule's scope defaults to `*` and a service reference's port to
443. sideEffects and admissionReviewVersions have no default in v1: they are required.
"""

from __future__ import annotations

from typing import Any

__all__ = ["default_validating_configuration", "default_mutating_configuration",
           "KIND_DEFAULTS"]

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


KIND_DEFAULTS = {
    (GROUP, "ValidatingWebhookConfiguration"): default_validating_configuration,
    (GROUP, "MutatingWebhookConfiguration"): default_mutating_configuration,
}
