"""admissionregistration.k8s.io/v1 webhook configurations, validated as kube-apiserver does
(pkg/apis/admissionregistration/validation/validation.go and
k8s.io/apiserver/pkg/util/webhook/validation.go, v1.32).

Objects are defaulted first (failurePolicy, matchPolicy, selectors, timeout, scope, port).
Covered: fully qualified and unique webhook names, rules (operations, groups, versions,
resources with their subresource wildcards, scope), failure/match/reinvocation policies,
sideEffects (None or NoneOnDryRun on new objects), timeoutSeconds 1-30, label selectors,
clientConfig (exactly one of url or service; https URLs without user, query or fragment;
service name, namespace, port and path), admissionReviewVersions. Updates relax the checks an
existing object already failed, as upstream does. matchConditions (CEL) are only checked for
shape (name and expression required): navio has no CEL library yet.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from navio.api.errors import GoValue, go_quote
from navio.api.validation import names
from navio.api.validation.field import (Cause, child, duplicate, index, invalid, not_supported,
                                        required)
from navio.api.validation.gorepr import go_strings
from navio.api.validation.meta import (validate_label_selector, validate_object_meta,
                                       validate_object_meta_update)

__all__ = ["GROUP", "validate_validating_configuration", "validate_validating_configuration_update",
           "validate_mutating_configuration", "validate_mutating_configuration_update"]

GROUP = "admissionregistration.k8s.io"
_ACCEPTED_REVIEW_VERSIONS = ("v1", "v1beta1")
_FAILURE_POLICIES = ["Fail", "Ignore"]
_MATCH_POLICIES = ["Equivalent", "Exact"]
_ALL_SIDE_EFFECTS = ["None", "NoneOnDryRun", "Some", "Unknown"]
_NO_SIDE_EFFECTS = ["None", "NoneOnDryRun"]
_OPERATIONS = ["*", "CONNECT", "CREATE", "DELETE", "UPDATE"]
_REINVOCATION = ["IfNeeded", "Never"]
_SCOPES = ["*", "Cluster", "Namespaced"]


def _go_operations(ops: list[str]) -> GoValue:
    return GoValue("[]admissionregistration.OperationType{"
                   + ", ".join(go_quote(str(o)) for o in ops) + "}")


def _resources(resources: list[str], path: str) -> list[Cause]:
    errs: list[Cause] = []
    if not resources:
        errs.append(required(path))
    wildcard_sub: set[str] = set()
    wildcard_res: set[str] = set()
    double = single = plain = False
    for i, res_sub in enumerate(resources):
        if res_sub == "":
            errs.append(required(index(path, i)))
            continue
        if res_sub == "*/*":
            double = True
        if res_sub == "*":
            single = True
        if "/" not in res_sub:
            plain = res_sub != "*"
            continue
        res, sub = res_sub.split("/", 1)
        if res in wildcard_sub:
            errs.append(invalid(index(path, i), res_sub,
                                f"if '{res}/*' is present, must not specify {res_sub}"))
        if sub in wildcard_res:
            errs.append(invalid(index(path, i), res_sub,
                                f"if '*/{sub}' is present, must not specify {res_sub}"))
        if sub == "*":
            wildcard_sub.add(res)
        if res == "*":
            wildcard_res.add(sub)
    if len(resources) > 1 and double:
        errs.append(invalid(path, go_strings(resources),
                            "if '*/*' is present, must not specify other resources"))
    if single and plain:
        errs.append(invalid(path, go_strings(resources),
                            "if '*' is present, must not specify other resources without "
                            "subresources"))
    return errs


def _rule(rule: dict[str, Any], path: str) -> list[Cause]:
    errs: list[Cause] = []
    ops = list(rule.get("operations") or [])
    if not ops:
        errs.append(required(child(path, "operations")))
    if len(ops) > 1 and "*" in ops:
        errs.append(invalid(child(path, "operations"), _go_operations(ops),
                            "if '*' is present, must not specify other operations"))
    for i, op in enumerate(ops):
        if op not in _OPERATIONS:
            errs.append(not_supported(index(child(path, "operations"), i), op, _OPERATIONS))
    groups = list(rule.get("apiGroups") or [])
    if not groups:
        errs.append(required(child(path, "apiGroups")))
    if len(groups) > 1 and "*" in groups:
        errs.append(invalid(child(path, "apiGroups"), go_strings(groups),
                            "if '*' is present, must not specify other API groups"))
    versions = list(rule.get("apiVersions") or [])
    if not versions:
        errs.append(required(child(path, "apiVersions")))
    if len(versions) > 1 and "*" in versions:
        errs.append(invalid(child(path, "apiVersions"), go_strings(versions),
                            "if '*' is present, must not specify other API versions"))
    for i, v in enumerate(versions):
        if v == "":
            errs.append(required(index(child(path, "apiVersions"), i)))
    errs += _resources(list(rule.get("resources") or []), child(path, "resources"))
    scope = rule.get("scope")
    if scope is not None and scope not in _SCOPES:
        errs.append(not_supported(child(path, "scope"), scope, _SCOPES))
    return errs


def _fully_qualified(path: str, name: str) -> list[Cause]:
    if not name:
        return [required(path)]
    msgs = names.is_dns1123_subdomain(name)
    if msgs:
        return [invalid(path, name, ",".join(msgs))]
    if len(name.split(".")) < 3:
        return [invalid(path, name, "should be a domain with at least three segments separated "
                                    "by dots")]
    return []


_URL_FORM = "; desired format: https://host[/path]"


def validate_webhook_url(path: str, url: str) -> list[Cause]:
    """webhook.ValidateWebhookURL with forceHttps."""
    try:
        u = urlsplit(url)
        u.port  # noqa: B018 - raises on a bad port, as url.Parse does
    except ValueError as exc:
        return [required(path, f"url must be a valid URL: {exc}{_URL_FORM}")]
    errs: list[Cause] = []
    if u.scheme != "https":
        errs.append(invalid(path, u.scheme, "'https' is the only allowed URL scheme" + _URL_FORM))
    host = u.netloc.rpartition("@")[2]
    if not host:
        errs.append(invalid(path, host, "host must be specified" + _URL_FORM))
    if "@" in u.netloc:
        errs.append(invalid(path, u.netloc.rpartition("@")[0],
                            "user information is not permitted in the URL"))
    if u.fragment:
        errs.append(invalid(path, u.fragment, "fragments are not permitted in the URL"))
    if u.query:
        errs.append(invalid(path, u.query, "query parameters are not permitted in the URL"))
    return errs


def validate_webhook_service(path: str, svc: dict[str, Any]) -> list[Cause]:
    """webhook.ValidateWebhookService."""
    errs: list[Cause] = []
    if not svc.get("name"):
        errs.append(required(child(path, "name"), "service name is required"))
    if not svc.get("namespace"):
        errs.append(required(child(path, "namespace"), "service namespace is required"))
    port = svc.get("port", 443)
    port_errs = names.is_valid_port_num(port) if isinstance(port, int) else ["must be a number"]
    if port_errs:
        errs.append(invalid(child(path, "port"), port, "port is not valid: "
                            + ", ".join(port_errs)))
    url_path = svc.get("path")
    if url_path is None or url_path in ("", "/"):
        return errs
    p = child(path, "path")
    if url_path == "//":
        return errs + [invalid(p, url_path, "segment[0] may not be empty")]
    if not url_path.startswith("/"):
        errs.append(invalid(p, url_path, "must start with a '/'"))
    check = url_path[1:]
    if check.endswith("/"):
        check = check[:-1]
    for i, step in enumerate(check.split("/")):
        if not step:
            errs.append(invalid(p, url_path, f"segment[{i}] may not be empty"))
            continue
        errs += [invalid(p, url_path, f"segment[{i}]: {m}")
                 for m in names.is_dns1123_subdomain(step)]
    return errs


def _review_versions(versions: list[str], require_known: bool, path: str) -> list[Cause]:
    if not versions:
        return [required(path, "must specify one of " + ", ".join(_ACCEPTED_REVIEW_VERSIONS))]
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, v in enumerate(versions):
        if v in seen:
            errs.append(invalid(index(path, i), v, "duplicate version"))
            continue
        seen.add(v)
        errs += [invalid(index(path, i), v, m) for m in names.is_dns1035_label(str(v))]
    if require_known and not any(v in _ACCEPTED_REVIEW_VERSIONS for v in versions):
        errs.append(invalid(path, go_strings(versions), "must include at least one of "
                            + ", ".join(_ACCEPTED_REVIEW_VERSIONS)))
    return errs


def _match_conditions(conditions: list[dict[str, Any]], path: str) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, mc in enumerate(conditions):
        p = index(path, i)
        name = mc.get("name") or ""
        if not name:
            errs.append(required(child(p, "name")))
        elif name in seen:
            errs.append(duplicate(child(p, "name"), name))
        seen.add(name)
        if name:
            errs += [invalid(child(p, "name"), name, m) for m in names.is_qualified_name(name)]
        expression = mc.get("expression")
        if not expression:
            errs.append(required(child(p, "expression")))
        else:
            # Imported here: navio.api.crd imports this module (conversion webhooks).
            from navio.api.crd.cel import compile_error
            why = compile_error(str(expression))
            if why is not None:
                errs.append(invalid(child(p, "expression"), expression, why))
    if len(conditions) > 64:
        errs.append(invalid(path, len(conditions), "must have 64 or fewer items"))
    return errs


def _webhook(hook: dict[str, Any], path: str, mutating: bool, no_side_effects: bool
             ) -> list[Cause]:
    errs = _fully_qualified(child(path, "name"), hook.get("name") or "")
    for i, rule in enumerate(hook.get("rules") or []):
        errs += _rule(rule, index(child(path, "rules"), i))
    fp = hook.get("failurePolicy")
    if fp is not None and fp not in _FAILURE_POLICIES:
        errs.append(not_supported(child(path, "failurePolicy"), fp, _FAILURE_POLICIES))
    mp = hook.get("matchPolicy")
    if mp is not None and mp not in _MATCH_POLICIES:
        errs.append(not_supported(child(path, "matchPolicy"), mp, _MATCH_POLICIES))
    allowed = _NO_SIDE_EFFECTS if no_side_effects else _ALL_SIDE_EFFECTS
    se = hook.get("sideEffects")
    if se is None:
        errs.append(required(child(path, "sideEffects"), "must specify one of "
                             + ", ".join(allowed)))
    elif se not in allowed:
        errs.append(not_supported(child(path, "sideEffects"), se, allowed))
    timeout = hook.get("timeoutSeconds")
    if timeout is not None and not 1 <= timeout <= 30:
        errs.append(invalid(child(path, "timeoutSeconds"), timeout,
                            "the timeout value must be between 1 and 30 seconds"))
    for sel in ("namespaceSelector", "objectSelector"):
        errs += validate_label_selector(hook.get(sel), child(path, sel))
    rp = hook.get("reinvocationPolicy")
    if mutating and rp is not None and rp not in _REINVOCATION:
        errs.append(not_supported(child(path, "reinvocationPolicy"), rp, _REINVOCATION))
    cc = hook.get("clientConfig") or {}
    cc_path = child(path, "clientConfig")
    if (cc.get("url") is None) == (cc.get("service") is None):
        errs.append(required(cc_path, "exactly one of url or service is required"))
    elif cc.get("url") is not None:
        errs += validate_webhook_url(child(cc_path, "url"), cc["url"])
    else:
        errs += validate_webhook_service(child(cc_path, "service"), cc["service"])
    errs += _match_conditions(list(hook.get("matchConditions") or []),
                              child(path, "matchConditions"))
    return errs


def _configuration(obj: dict[str, Any], mutating: bool, old: dict[str, Any] | None
                   ) -> list[Cause]:
    old_hooks = list((old or {}).get("webhooks") or [])
    # On update, upstream keeps accepting what the stored object already had.
    no_side_effects = old is None or all(h.get("sideEffects") in _NO_SIDE_EFFECTS
                                         for h in old_hooks)
    require_known = old is None or all(
        any(v in _ACCEPTED_REVIEW_VERSIONS for v in h.get("admissionReviewVersions") or ())
        or not h.get("admissionReviewVersions") for h in old_hooks)
    old_names = [h.get("name") for h in old_hooks]
    require_unique = old is None or len(old_names) == len(set(old_names))
    errs = validate_object_meta(obj.get("metadata"), False, names.name_is_dns_subdomain)
    seen: set[str] = set()
    for i, hook in enumerate(obj.get("webhooks") or []):
        path = index("webhooks", i)
        errs += _webhook(hook, path, mutating, no_side_effects)
        errs += _review_versions(list(hook.get("admissionReviewVersions") or []),
                                 require_known, child(path, "admissionReviewVersions"))
        name = hook.get("name") or ""
        if require_unique and name:
            if name in seen:
                errs.append(duplicate(child(path, "name"), name))
            seen.add(name)
    return errs


def validate_validating_configuration(obj: dict[str, Any]) -> list[Cause]:
    return _configuration(obj, False, None)


def validate_validating_configuration_update(new: dict[str, Any], old: dict[str, Any]
                                             ) -> list[Cause]:
    return validate_object_meta_update(new.get("metadata"), old.get("metadata")) + \
        _configuration(new, False, old)


def validate_mutating_configuration(obj: dict[str, Any]) -> list[Cause]:
    return _configuration(obj, True, None)


def validate_mutating_configuration_update(new: dict[str, Any], old: dict[str, Any]
                                           ) -> list[Cause]:
    return validate_object_meta_update(new.get("metadata"), old.get("metadata")) + \
        _configuration(new, True, old)
