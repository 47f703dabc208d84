"""ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding validation
(pkg/apis/admissionregistration/validation/validation.go, v1.32), the parts navio checks:

- a policy needs `matchConstraints` with `resourceRules`, at least one validation or audit
  annotation, a known failurePolicy, CEL that compiles (validations, messageExpression,
  matchConditions, variables, auditAnnotations), known reasons, and a complete paramKind;
- a binding needs `policyName`, `validationActions` (Deny, Warn, Audit; no duplicates, never
  Deny with Warn) and, with a paramRef, exactly one of name or selector and a
  parameterNotFoundAction.
"""

from __future__ import annotations

from typing import Any

from navio.api.crd.cel import compile_error
from navio.api.validation import names
from navio.api.validation.admissionregistration import _match_conditions, _rule
from navio.api.validation.field import (Cause, child, duplicate, forbidden, index, invalid,
                                        not_supported, required)
from navio.api.validation.meta import (validate_label_selector, validate_object_meta,
                                       validate_object_meta_update)

__all__ = ["validate_policy", "validate_policy_update", "validate_binding",
           "validate_binding_update"]

_FAILURE_POLICIES = ["Fail", "Ignore"]
_REASONS = ["Unauthorized", "Forbidden", "Invalid", "RequestEntityTooLarge"]
_ACTIONS = ["Deny", "Warn", "Audit"]
_NOT_FOUND_ACTIONS = ["Allow", "Deny"]


def _cel(path: str, expression: Any) -> list[Cause]:
    if not expression:
        return [required(path)]
    why = compile_error(str(expression))
    return [] if why is None else [invalid(path, expression, why)]


def _match_resources(mr: Any, path: str, policy: bool) -> list[Cause]:
    if not isinstance(mr, dict):
        return [required(path)] if policy else []
    errs: list[Cause] = []
    rules = mr.get("resourceRules") or []
    if policy and not rules:
        errs.append(required(child(path, "resourceRules")))
    for key in ("resourceRules", "excludeResourceRules"):
        for i, rule in enumerate(mr.get(key) or []):
            errs += _rule(rule, index(child(path, key), i))
    mp = mr.get("matchPolicy")
    if mp is not None and mp not in ("Equivalent", "Exact"):
        errs.append(not_supported(child(path, "matchPolicy"), mp, ["Equivalent", "Exact"]))
    for sel in ("namespaceSelector", "objectSelector"):
        errs += validate_label_selector(mr.get(sel), child(path, sel))
    return errs


def validate_policy(obj: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), False, names.name_is_dns_subdomain)
    spec = obj.get("spec") or {}
    fp = spec.get("failurePolicy")
    if fp is not None and fp not in _FAILURE_POLICIES:
        errs.append(not_supported("spec.failurePolicy", fp, _FAILURE_POLICIES))
    pk = spec.get("paramKind")
    if isinstance(pk, dict):
        for f in ("apiVersion", "kind"):
            if not pk.get(f):
                errs.append(required(f"spec.paramKind.{f}"))
    errs += _match_resources(spec.get("matchConstraints"), "spec.matchConstraints", True)
    validations = spec.get("validations") or []
    audits = spec.get("auditAnnotations") or []
    if not validations and not audits:
        errs.append(required("spec.validations",
                             "validations or auditAnnotations must contain at least one item"))
    for i, v in enumerate(validations):
        p = index("spec.validations", i)
        errs += _cel(child(p, "expression"), v.get("expression"))
        if v.get("messageExpression"):
            errs += _cel(child(p, "messageExpression"), v["messageExpression"])
        msg = v.get("message")
        if isinstance(msg, str) and ("\n" in msg or "\r" in msg):
            errs.append(invalid(child(p, "message"), msg, "message must not contain line "
                                                          "breaks"))
        reason = v.get("reason")
        if reason is not None and reason not in _REASONS:
            errs.append(not_supported(child(p, "reason"), reason, _REASONS))
    seen: set[str] = set()
    for i, a in enumerate(audits):
        p = index("spec.auditAnnotations", i)
        key = a.get("key") or ""
        if not key:
            errs.append(required(child(p, "key")))
        elif key in seen:
            errs.append(duplicate(child(p, "key"), key))
        seen.add(key)
        errs += _cel(child(p, "valueExpression"), a.get("valueExpression"))
    for i, v in enumerate(spec.get("variables") or []):
        p = index("spec.variables", i)
        if not v.get("name"):
            errs.append(required(child(p, "name")))
        errs += _cel(child(p, "expression"), v.get("expression"))
    errs += _match_conditions(list(spec.get("matchConditions") or []), "spec.matchConditions")
    return errs


def validate_policy_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    return validate_object_meta_update(new.get("metadata"), old.get("metadata")) + \
        validate_policy(new)


def validate_binding(obj: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), False, names.name_is_dns_subdomain)
    spec = obj.get("spec") or {}
    if not spec.get("policyName"):
        errs.append(required("spec.policyName"))
    actions = list(spec.get("validationActions") or [])
    if not actions:
        errs.append(required("spec.validationActions"))
    seen: set[str] = set()
    for i, a in enumerate(actions):
        p = index("spec.validationActions", i)
        if a in seen:
            errs.append(duplicate(p, a))
        elif a not in _ACTIONS:
            errs.append(not_supported(p, a, _ACTIONS))
        seen.add(a)
    if "Deny" in seen and "Warn" in seen:
        errs.append(invalid("spec.validationActions", actions,
                            "must not contain both Deny and Warn (repeating the same validation "
                            "failure information in the API response and headers serves no "
                            "purpose)"))
    ref = spec.get("paramRef")
    if isinstance(ref, dict):
        if ref.get("name") and ref.get("selector") is not None:
            errs.append(forbidden("spec.paramRef.name", "name and selector are mutually "
                                                        "exclusive"))
        elif not ref.get("name") and ref.get("selector") is None:
            errs.append(required("spec.paramRef", "one of name or selector must be "
                                                  "specified"))
        if ref.get("selector") is not None:
            errs += validate_label_selector(ref.get("selector"), "spec.paramRef.selector")
        action = ref.get("parameterNotFoundAction")
        if action is None:
            errs.append(required("spec.paramRef.parameterNotFoundAction"))
        elif action not in _NOT_FOUND_ACTIONS:
            errs.append(not_supported("spec.paramRef.parameterNotFoundAction", action,
                                      _NOT_FOUND_ACTIONS))
    errs += _match_resources(spec.get("matchResources"), "spec.matchResources", False)
    return errs


def validate_binding_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    return validate_object_meta_update(new.get("metadata"), old.get("metadata")) + \
        validate_binding(new)
