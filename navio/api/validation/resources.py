"""Resource names and quantities (requests, limits, capacity, quota), as core validation's
validateResourceRequirements / ValidateResourceQuantityValue and core/helper do (v1.32).

Requests are compared with limits exactly (`Fraction`s): a request above its limit reads
`spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu
limit of 1`, on the `requests` path itself as upstream reports it.
"""

from __future__ import annotations

from typing import Any

from navio.api.validation import names
from navio.api.validation.field import Cause, child, duplicate, forbidden, index, invalid, key
from navio.api.validation.field import not_found, required
from navio.api.validation.meta import IS_NEGATIVE
from navio.api.errors import GoValue
from navio.api.quantity import FORMAT_ERROR, Quantity, QuantityError

__all__ = ["validate_resource_requirements", "validate_resource_quantity",
           "validate_resource_name", "validate_container_resource_name", "is_hugepage",
           "is_native", "is_extended", "is_overcommit_allowed", "is_integer_resource",
           "parse_or_error", "STANDARD_RESOURCES", "validate_quota_resource_name",
           "parse_json_quantity", "go_quantity"]

STANDARD_RESOURCES = {
    "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory",
    "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage",
    "pods", "resourcequotas", "services", "replicationcontrollers", "secrets",
    "persistentvolumeclaims", "configmaps", "services.nodeports", "services.loadbalancers",
    "storage", "requests.storage",
}
_STANDARD_CONTAINER = {"cpu", "memory", "ephemeral-storage"}
_INTEGER = {"pods", "resourcequotas", "services", "replicationcontrollers", "secrets",
            "configmaps", "persistentvolumeclaims", "services.nodeports",
            "services.loadbalancers"}
_STANDARD_QUOTA = STANDARD_RESOURCES | {"requests.storage"}


def is_hugepage(name: str) -> bool:
    return name.startswith("hugepages-")


def is_native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def is_extended(name: str) -> bool:
    if is_native(name) or name.startswith("requests."):
        return False
    return not names.is_qualified_name("requests." + name)


def is_overcommit_allowed(name: str) -> bool:
    return is_native(name) and not is_hugepage(name)


def is_integer_resource(name: str) -> bool:
    return name in _INTEGER or is_extended(name)


def validate_resource_name(name: str, path: str) -> list[Cause]:
    errs = [invalid(path, name, m) for m in names.is_qualified_name(name)]
    if errs:
        return errs
    if "/" not in name and not (name in STANDARD_RESOURCES or name.startswith(
            ("hugepages-", "requests.hugepages-"))):
        return [invalid(path, name, "must be a standard resource type or fully qualified")]
    return []


def validate_container_resource_name(name: str, path: str) -> list[Cause]:
    errs = validate_resource_name(name, path)
    if "/" not in name:
        if not (name in _STANDARD_CONTAINER or is_hugepage(name)):
            return errs + [invalid(path, name, "must be a standard resource for containers")]
    elif not is_native(name) and not is_extended(name):
        return errs + [invalid(path, name, "doesn't follow extended resource name standard")]
    return errs


def validate_quota_resource_name(name: str, path: str) -> list[Cause]:
    errs = validate_resource_name(name, path)
    if "/" not in name and name not in _STANDARD_QUOTA and not name.startswith(
            ("requests.hugepages-", "count/")):
        errs.append(invalid(path, name, "must be a standard resource for quota"))
    return errs


def parse_json_quantity(raw: Any) -> Quantity:
    """A quantity as resource.Quantity.UnmarshalJSON reads it: a string (trimmed) or a bare
    JSON number."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise QuantityError(FORMAT_ERROR)
    text = raw if isinstance(raw, str) else (str(raw) if isinstance(raw, int) else repr(raw))
    return Quantity.parse(text.strip())


def go_quantity(q: Quantity) -> GoValue:
    """A resource.Quantity value as `%#v` prints it: the rare "must be an integer" error
    reports the struct, not its string. `s` is the cached text ParseQuantity kept."""
    sign, digits, exponent = q.amount.as_tuple()
    value = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    return GoValue(f"resource.Quantity{{i:resource.int64Amount{{value:{value}, "
                   f"scale:{exponent}}}, d:resource.infDecAmount{{Dec:(*inf.Dec)(nil)}}, "
                   f's:"{q.text}", Format:"{q.format}"}}')


def parse_or_error(raw: Any, path: str) -> tuple[Quantity | None, list[Cause]]:
    """Upstream rejects a malformed quantity while decoding; here it is an Invalid cause."""
    try:
        return parse_json_quantity(raw), []
    except QuantityError as e:
        return None, [invalid(path, raw if isinstance(raw, str) else str(raw), str(e))]


def validate_resource_quantity(name: str, q: Quantity, path: str) -> list[Cause]:
    errs = []
    if q.amount < 0:
        errs.append(invalid(path, str(q), IS_NEGATIVE))
    if is_integer_resource(name) and q.milli_value() % 1000:
        errs.append(invalid(path, go_quantity(q), "must be an integer"))
    return errs


def _hugepage_error(name: str, q: Quantity) -> str | None:
    try:
        page: Quantity | None = Quantity.parse(name[len("hugepages-"):])
    except QuantityError:
        page = None
    ok = (page is not None and page.amount > 0 and page.milli_value() % 1000 == 0
          and q.value() % page.value() == 0)
    return None if ok else f"{q} is not positive integer multiple of {name}"


def validate_resource_requirements(res: dict[str, Any], path: str, claims: set[str],
                                   container: bool = True) -> list[Cause]:
    errs: list[Cause] = []
    lim_path, req_path = child(path, "limits"), child(path, "requests")
    name_fn = validate_container_resource_name if container else validate_resource_name
    limits: dict[str, Quantity] = {}
    lim_cpu_mem = req_cpu_mem = lim_huge = req_huge = False
    for name, raw in (res.get("limits") or {}).items():
        fp = key(lim_path, name)
        errs += name_fn(name, fp)
        q, perr = parse_or_error(raw, fp)
        errs += perr
        if q is None:
            continue
        limits[name] = q
        errs += validate_resource_quantity(name, q, fp)
        if is_hugepage(name):
            lim_huge = True
            msg = _hugepage_error(name, q)
            if msg:
                errs.append(invalid(fp, str(q), msg))
        lim_cpu_mem = lim_cpu_mem or name in ("cpu", "memory")
    for name, raw in (res.get("requests") or {}).items():
        fp = key(req_path, name)
        errs += name_fn(name, fp)
        q, perr = parse_or_error(raw, fp)
        errs += perr
        if q is None:
            continue
        errs += validate_resource_quantity(name, q, fp)
        lim = limits.get(name)
        if lim is not None:
            if q.amount != lim.amount and not is_overcommit_allowed(name):
                errs.append(invalid(req_path, str(q),
                                    f"must be equal to {name} limit of {str(lim)}"))
            elif q.amount > lim.amount:
                errs.append(invalid(req_path, str(q),
                                    f"must be less than or equal to {name} limit of "
                                    f"{str(lim)}"))
        elif not is_overcommit_allowed(name) and name not in (res.get("limits") or {}):
            errs.append(required(lim_path, "Limit must be set for non overcommitable resources"))
        if is_hugepage(name):
            req_huge = True
            msg = _hugepage_error(name, q)
            if msg:
                errs.append(invalid(fp, str(q), msg))
        req_cpu_mem = req_cpu_mem or name in ("cpu", "memory")
    if not lim_cpu_mem and not req_cpu_mem and (req_huge or lim_huge):
        errs.append(forbidden(path, "HugePages require cpu or memory"))
    errs += _claims(res.get("claims"), child(path, "claims"), claims)
    return errs


def _claims(items: Any, path: str, pod_claims: set[str]) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, c in enumerate(items or []):
        name = c.get("name", "")
        p = index(path, i)
        if not name:
            errs.append(required(p))
            continue
        k = name + ("/" + c["request"] if c.get("request") else "")
        if name in seen or k in seen:
            errs.append(duplicate(p, k if name not in seen else name))
        seen.add(k)
        if name not in pod_claims:
            detail = "must be one of the names in pod.spec.resourceClaims"
            detail += (": " + ", ".join(sorted(pod_claims))) if pod_claims else " which is empty"
            e = not_found(p, name)
            e["message"] += f": {detail}"
            errs.append(e)
    return errs
