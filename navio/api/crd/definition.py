"""CustomResourceDefinition objects themselves: defaulting and validation, worded as
apiextensions-apiserver's (pkg/apis/apiextensions/v1/defaults.go, validation/validation.go).

Validation covers the names (`metadata.name` = `<plural>.<group>`, DNS labels, kind
spelling), scope, versions (unique, exactly one storage version, at least one served),
conversion, subresources, printer columns, and the structural-schema rules (every specified
field has a type unless int-or-string or preserve-unknown-fields; no `additionalProperties`
beside `properties`; defaults valid against their schema; rules that compile). Pure.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from navio.api.crd import cel, jsonpath, pruning, validator
from navio.api.validation import field
from navio.api.validation.admissionregistration import (validate_webhook_service,
                                                        validate_webhook_url)
from navio.api.validation.gorepr import go_strings
from navio.api.validation.names import name_is_dns1035_label, name_is_dns_subdomain

__all__ = ["default_crd", "prepare_crd_create", "validate_crd", "validate_crd_update",
           "CLEANUP_FINALIZER"]

Cause = dict[str, str]
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_VERSION = re.compile(r"^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$")
_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_TYPES = ("array", "boolean", "integer", "number", "object", "string")
_COLUMN_TYPES = ("integer", "number", "string", "boolean", "date")


def default_crd(crd: dict[str, Any]) -> None:
    """SetDefaults for a CRD (in place)."""
    spec = crd.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    names = spec.setdefault("names", {})
    if isinstance(names, dict) and names.get("kind"):
        names.setdefault("singular", str(names["kind"]).lower())
        names.setdefault("listKind", f"{names['kind']}List")
    conv = spec.setdefault("conversion", {})
    if isinstance(conv, dict):
        conv.setdefault("strategy", "None")


def prepare_crd_create(crd: dict[str, Any]) -> None:
    """The strategy's PrepareForCreate: a fresh status recording the storage version."""
    storage = next((v.get("name") for v in (crd.get("spec") or {}).get("versions") or ()
                    if isinstance(v, dict) and v.get("storage")), None)
    crd["status"] = {"acceptedNames": {"kind": "", "plural": ""},
                     "storedVersions": [storage] if storage else []}


def validate_crd(crd: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    meta = crd.get("metadata") or {}
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    plural = names.get("plural") or ""
    name = meta.get("name") or ""
    if name != f"{plural}.{group}":
        errs.append(field.invalid("metadata.name", name,
                                  'must be spec.names.plural+"."+spec.group'))
    if not group:
        errs.append(field.required("spec.group"))
    elif group.count(".") < 1:
        errs.append(field.invalid("spec.group", group, "should be a domain with at least one "
                                                       "dot"))
    else:
        errs += [field.invalid("spec.group", group, m) for m in name_is_dns_subdomain(group)]
    scope = spec.get("scope") or ""
    if not scope:
        errs.append(field.required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        errs.append(field.not_supported("spec.scope", scope, ["Cluster", "Namespaced"]))
    errs += _names(names, "spec.names")
    errs += _versions(spec.get("versions") or [], "spec.versions")
    errs += _conversion(spec.get("conversion") or {}, "spec.conversion")
    return errs


_REVIEW_VERSIONS = ("v1", "v1beta1")


def _conversion(conv: dict[str, Any], path: str) -> list[Cause]:
    """kube's validateCustomResourceConversion; its paths name the internal fields
    (`webhookClientConfig`, `conversionReviewVersions` directly under `conversion`)."""
    errs: list[Cause] = []
    strategy = conv.get("strategy")
    hook = conv.get("webhook")
    if not isinstance(hook, dict):
        hook = {}
    cc, versions = hook.get("clientConfig"), list(hook.get("conversionReviewVersions") or [])
    if strategy not in ("None", "Webhook"):
        return [field.not_supported(f"{path}.strategy", strategy, ["None", "Webhook"])]
    if strategy == "None":
        if cc is not None:
            errs.append(field.forbidden(f"{path}.webhookClientConfig",
                                        "should not be set when strategy is not set to Webhook"))
        if versions:
            errs.append(field.forbidden(f"{path}.conversionReviewVersions",
                                        "should not be set when strategy is not set to Webhook"))
        return errs
    cc_path = f"{path}.webhookClientConfig"
    if not isinstance(cc, dict):
        errs.append(field.required(cc_path, "required when strategy is set to Webhook"))
    elif (cc.get("url") is None) == (cc.get("service") is None):
        errs.append(field.required(cc_path, "exactly one of url or service is required"))
    elif cc.get("url") is not None:
        errs += validate_webhook_url(f"{cc_path}.url", cc["url"])
    else:
        errs += validate_webhook_service(f"{cc_path}.service", cc["service"])
    vpath = f"{path}.conversionReviewVersions"
    if not versions:
        return errs + [field.required(vpath)]
    seen: set[str] = set()
    for i, v in enumerate(versions):
        if v in seen:
            errs.append(field.invalid(f"{vpath}[{i}]", v, "duplicate version"))
            continue
        seen.add(v)
        errs += [field.invalid(f"{vpath}[{i}]", v, m) for m in name_is_dns1035_label(str(v))]
    if not any(v in _REVIEW_VERSIONS for v in versions):
        errs.append(field.invalid(vpath, go_strings([str(v) for v in versions]),
                                  "must include at least one of " + ", ".join(_REVIEW_VERSIONS)))
    return errs


def validate_crd_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_crd(new)
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    if os_.get("group") and ns.get("group") != os_.get("group"):
        errs.append(field.invalid("spec.group", ns.get("group"), "field is immutable"))
    if ((old.get("status") or {}).get("acceptedNames") or {}).get("plural") and \
            (ns.get("names") or {}).get("plural") != (os_.get("names") or {}).get("plural"):
        errs.append(field.invalid("spec.names.plural", (ns.get("names") or {}).get("plural"),
                                  "field is immutable"))
    if ns.get("scope") != os_.get("scope"):
        errs.append(field.invalid("spec.scope", ns.get("scope"), "field is immutable"))
    return errs


def _names(names: dict[str, Any], path: str) -> list[Cause]:
    errs: list[Cause] = []
    for key in ("plural", "singular"):
        v = names.get(key)
        if not v and key == "plural":
            errs.append(field.required(field.child(path, key)))
        elif v:
            errs += [field.invalid(field.child(path, key), v, m)
                     for m in name_is_dns1035_label(v, False)]
    for key in ("kind", "listKind"):
        v = names.get(key)
        if not v and key == "kind":
            errs.append(field.required(field.child(path, key)))
        elif v and not _KIND.match(v):
            errs.append(field.invalid(field.child(path, key), v,
                                      "may have mixed case, but should otherwise match: "
                                      "[a-z]([-a-z0-9]*[a-z0-9])?"))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errs.append(field.invalid(field.child(path, "listKind"), names["listKind"],
                                  "kind and listKind may not be the same"))
    for i, sn in enumerate(names.get("shortNames") or ()):
        errs += [field.invalid(field.index(field.child(path, "shortNames"), i), sn, m)
                 for m in name_is_dns1035_label(sn, False)]
    for i, c in enumerate(names.get("categories") or ()):
        errs += [field.invalid(field.index(field.child(path, "categories"), i), c, m)
                 for m in name_is_dns1035_label(c, False)]
    return errs


def _versions(versions: list[Any], path: str) -> list[Cause]:
    errs: list[Cause] = []
    if not versions:
        return [field.invalid(path, versions, "must have exactly one version marked as storage "
                                              "version")]
    storage = sum(1 for v in versions if isinstance(v, dict) and v.get("storage"))
    if storage != 1:
        errs.append(field.invalid(path, [v.get("name", "") for v in versions
                                         if isinstance(v, dict)],
                                  "must have exactly one version marked as storage version"))
    if not any(isinstance(v, dict) and v.get("served") for v in versions):
        errs.append(field.invalid(path, [v.get("name", "") for v in versions
                                         if isinstance(v, dict)],
                                  "must have at least one served version"))
    seen: set[str] = set()
    for i, v in enumerate(versions):
        p = field.index(path, i)
        if not isinstance(v, dict):
            errs.append(field.invalid(p, v, "must be an object"))
            continue
        name = v.get("name") or ""
        if not name:
            errs.append(field.required(field.child(p, "name")))
        elif name in seen:
            errs.append(field.invalid(path, name, "must appear only once"))
        else:
            errs += [field.invalid(field.child(p, "name"), name, m)
                     for m in name_is_dns1035_label(name, False)]
        seen.add(name)
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        spath = field.child(p, "schema", "openAPIV3Schema")
        if schema is None:
            errs.append(field.required(spath, "schemas are required"))
        elif isinstance(schema, dict):
            errs += _structural(schema, spath, root=True)
        subs = v.get("subresources") or {}
        scale = subs.get("scale")
        if isinstance(scale, dict):
            sp = field.child(p, "subresources", "scale")
            for key in ("specReplicasPath", "statusReplicasPath"):
                val = scale.get(key)
                if not val:
                    errs.append(field.required(field.child(sp, key)))
                elif not jsonpath.is_simple_path(val):
                    errs.append(field.invalid(field.child(sp, key), val,
                                              "should be a valid JSON path"))
        for j, col in enumerate(v.get("additionalPrinterColumns") or ()):
            cp = field.index(field.child(p, "additionalPrinterColumns"), j)
            if not col.get("name"):
                errs.append(field.required(field.child(cp, "name")))
            if col.get("type") not in _COLUMN_TYPES:
                errs.append(field.not_supported(field.child(cp, "type"), col.get("type"),
                                                list(_COLUMN_TYPES)))
            if not col.get("jsonPath"):
                errs.append(field.required(field.child(cp, "JSONPath")))
            else:
                try:
                    jsonpath.parse(col["jsonPath"])
                except jsonpath.JSONPathError:
                    errs.append(field.invalid(field.child(cp, "JSONPath"), col["jsonPath"],
                                              "must be a simple json path starting with ."))
    return errs


def _structural(sch: dict[str, Any], path: str, root: bool = False) -> list[Cause]:
    """Structural schema rules (apiextensions-apiserver/pkg/apiserver/schema/validation.go),
    defaults and CEL rules."""
    errs: list[Cause] = []
    t = sch.get("type")
    if root and t != "object":
        errs.append(field.invalid(field.child(path, "type"), t or "", "must be object")
                    if t else field.required(field.child(path, "type"),
                                             "must not be empty at the root"))
    if t is not None and t not in _TYPES:
        errs.append(field.not_supported(field.child(path, "type"), t, list(_TYPES)))
    if not t and not sch.get("x-kubernetes-int-or-string") and \
            not sch.get("x-kubernetes-preserve-unknown-fields") and not root:
        errs.append(field.required(field.child(path, "type"),
                                   "must not be empty for specified object fields"))
    if "properties" in sch and "additionalProperties" in sch:
        errs.append(field.forbidden(field.child(path, "additionalProperties"),
                                    "additionalProperties and properties are mutual exclusive"))
    if sch.get("additionalProperties") is False:
        errs.append(field.forbidden(field.child(path, "additionalProperties"),
                                    "must not be used"))
    if t == "array" and not isinstance(sch.get("items"), dict):
        errs.append(field.required(field.child(path, "items"),
                                   "must be specified"))
    if sch.get("x-kubernetes-embedded-resource") and t != "object":
        errs.append(field.invalid(field.child(path, "type"), t or "",
                                  "must be object if x-kubernetes-embedded-resource is true"))
    lt = sch.get("x-kubernetes-list-type")
    if lt is not None:
        if lt not in ("atomic", "set", "map"):
            errs.append(field.not_supported(field.child(path, "x-kubernetes-list-type"), lt,
                                            ["atomic", "set", "map"]))
        if lt == "map" and not sch.get("x-kubernetes-list-map-keys"):
            errs.append(field.required(field.child(path, "x-kubernetes-list-map-keys"),
                                       "must not be empty if x-kubernetes-list-type is map"))
    if "default" in sch:
        if root:
            errs.append(field.forbidden(field.child(path, "default"),
                                        "must not be set at the root"))
        else:
            value = copy.deepcopy(sch["default"])
            pruning.apply_defaults(value, sch)
            for e in validator.validate({k: v for k, v in sch.items()
                                         if k != "x-kubernetes-validations"}, value):
                errs.append(field.invalid(field.child(path, "default"), sch["default"],
                                          e["message"]))
    for i, rule in enumerate(sch.get("x-kubernetes-validations") or ()):
        rp = field.index(field.child(path, "x-kubernetes-validations"), i)
        text = rule.get("rule") if isinstance(rule, dict) else None
        if not text:
            errs.append(field.required(field.child(rp, "rule")))
            continue
        problem = cel.compile_error(text)
        if problem:
            errs.append(field.invalid(field.child(rp, "rule"), text, problem))
        if rule.get("messageExpression") and cel.compile_error(rule["messageExpression"]):
            errs.append(field.invalid(field.child(rp, "messageExpression"),
                                      rule["messageExpression"],
                                      cel.compile_error(rule["messageExpression"]) or ""))
    for k, sub in (sch.get("properties") or {}).items():
        if isinstance(sub, dict):
            if root and k == "metadata":
                continue
            errs += _structural(sub, f"{path}.properties[{k}]")
    for key in ("items", "additionalProperties"):
        if isinstance(sch.get(key), dict):
            errs += _structural(sch[key], field.child(path, key))
    return errs
