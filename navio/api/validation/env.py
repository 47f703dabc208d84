"""Environment variables and downward-API selectors, validated as core validation's ValidateEnv,
ValidateEnvFrom, validateObjectFieldSelector and validateContainerResourceFieldSelector (v1.32).

Environment variable names follow the RelaxedEnvironmentVariableValidation rule, beta and on
by default in v1.32: any printable ASCII except `=`. Field paths are converted as
pods.ConvertDownwardAPIFieldLabel does (`spec.host` -> `spec.nodeName`) before the allow-list
check, so an unsupported path reads `error converting fieldPath: field label not supported: x`.
"""

from __future__ import annotations

from typing import Any

from navio.api.validation import names
from navio.api.validation.field import Cause, child, index, invalid, not_supported, required
from navio.api.quantity import QuantityError
from navio.api.validation.resources import parse_json_quantity

__all__ = ["validate_env", "validate_env_from", "object_field_selector",
           "resource_field_selector", "ENV_FIELD_PATHS"]

ENV_FIELD_PATHS = {"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                   "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP",
                   "status.podIPs"}
_DOWNWARD_LABELS = {"metadata.annotations", "metadata.labels", "metadata.name",
                    "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.restartPolicy",
                    "spec.serviceAccountName", "spec.schedulerName", "status.phase",
                    "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"}
_RESOURCE_FIELDS = ["limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
                    "requests.ephemeral-storage", "requests.memory"]
_DIVISORS_CPU = {"1m", "1"}
_DIVISORS_BYTES = {"1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi",
                   "1Ei"}


def _split_subscript(p: str) -> tuple[str, str, bool]:
    # fieldpath.SplitMaybeSubscriptedPath: "metadata.labels['x']" -> ("metadata.labels", "x").
    if not p.endswith("']"):
        return p, "", False
    head, sep, sub = p[:-2].partition("['")
    if not sep or not head:
        return p, "", False
    return head, sub, True


def object_field_selector(fs: dict[str, Any], expressions: set[str], path: str) -> list[Cause]:
    api_version, fp = fs.get("apiVersion", ""), fs.get("fieldPath", "")
    if not api_version:
        return [required(child(path, "apiVersion"))]
    if not fp:
        return [required(child(path, "fieldPath"))]
    # pods.ConvertDownwardAPIFieldLabel
    head, sub, ok = _split_subscript(fp)
    err = ""
    if api_version != "v1":
        err = f"unsupported pod version: {api_version}"
    elif ok and head not in ("metadata.annotations", "metadata.labels"):
        err = f"field label does not support subscript: {fp}"
    elif not ok and fp not in _DOWNWARD_LABELS and fp != "spec.host":
        err = f"field label not supported: {fp}"
    if err:
        return [invalid(child(path, "fieldPath"), fp, f"error converting fieldPath: {err}")]
    internal = "spec.nodeName" if fp == "spec.host" else fp
    head, sub, ok = _split_subscript(internal)
    if ok:
        key = sub.lower() if head == "metadata.annotations" else sub
        return [invalid(path, key, m) for m in names.is_qualified_name(key)]
    if internal not in expressions:
        return [not_supported(child(path, "fieldPath"), internal, sorted(expressions))]
    return []


def resource_field_selector(fs: dict[str, Any], path: str, volume: bool) -> list[Cause]:
    errs: list[Cause] = []
    resource = fs.get("resource", "")
    if volume and not fs.get("containerName"):
        errs.append(required(child(path, "containerName")))
    elif not resource:
        errs.append(required(child(path, "resource")))
    elif resource not in _RESOURCE_FIELDS and not resource.startswith(
            ("requests.hugepages-", "limits.hugepages-")):
        errs.append(not_supported(child(path, "resource"), resource, _RESOURCE_FIELDS))
    divisor = fs.get("divisor")
    if divisor is not None:
        try:
            d = parse_json_quantity(divisor)
            text = str(d) if d.amount != 0 else ""
        except QuantityError:
            text = str(divisor)
        if text:
            if resource in ("limits.cpu", "requests.cpu") and text not in _DIVISORS_CPU:
                errs.append(invalid(child(path, "divisor"), resource,
                                    "only divisor's values 1m and 1 are supported with the cpu "
                                    "resource"))
            for kind, res in (("memory", ("limits.memory", "requests.memory")),
                              ("local ephemeral storage", ("limits.ephemeral-storage",
                                                           "requests.ephemeral-storage"))):
                if resource in res and text not in _DIVISORS_BYTES:
                    errs.append(invalid(
                        child(path, "divisor"), resource,
                        "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, "
                        f"1Pi, 1Ei are supported with the {kind} resource"))
    return errs


def _key_selector(s: dict[str, Any], path: str) -> list[Cause]:
    name = s.get("name", "")
    errs = [invalid(child(path, "name"), name, m) for m in names.name_is_dns_subdomain(name)]
    key = s.get("key", "")
    if not key:
        errs.append(required(child(path, "key")))
    else:
        errs += [invalid(child(path, "key"), key, m) for m in names.is_config_map_key(key)]
    return errs


def validate_env(env: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, ev in enumerate(env or []):
        ip = index(path, i)
        name = ev.get("name", "")
        if not name:
            errs.append(required(child(ip, "name")))
        else:
            errs += [invalid(child(ip, "name"), name,
                             m) for m in names.is_relaxed_env_var_name(name)]
        vf = ev.get("valueFrom")
        if vf is None:
            continue
        vp = child(ip, "valueFrom")
        n = 0
        if vf.get("fieldRef") is not None:
            n += 1
            errs += object_field_selector(vf["fieldRef"], ENV_FIELD_PATHS, child(vp, "fieldRef"))
        if vf.get("resourceFieldRef") is not None:
            n += 1
            errs += resource_field_selector(vf["resourceFieldRef"], child(vp, "resourceFieldRef"),
                                            False)
        for k in ("configMapKeyRef", "secretKeyRef"):
            if vf.get(k) is not None:
                n += 1
                errs += _key_selector(vf[k], child(vp, k))
        if n == 0:
            errs.append(invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                        "`configMapKeyRef` or `secretKeyRef`"))
        elif ev.get("value"):
            errs.append(invalid(vp, "", "may not be specified when `value` is not empty"))
        elif n > 1:
            errs.append(invalid(vp, "", "may not have more than one field specified at a time"))
    return errs


def validate_env_from(env_from: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, ev in enumerate(env_from or []):
        ip = index(path, i)
        if ev.get("prefix"):
            errs += [invalid(child(ip, "prefix"), ev["prefix"], m)
                     for m in names.is_relaxed_env_var_name(ev["prefix"])]
        n = 0
        for k in ("configMapRef", "secretRef"):
            ref = ev.get(k)
            if ref is None:
                continue
            n += 1
            if not ref.get("name"):
                errs.append(required(child(ip, k, "name")))
            else:
                errs += [invalid(child(ip, k, "name"), ref["name"], m)
                         for m in names.name_is_dns_subdomain(ref["name"], True)]
        if n == 0:
            errs.append(invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif n > 1:
            errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errs
