"""ResourceQuota arithmetic: what an object charges against a quota, and a namespace's usage.

As kube's quota evaluators (pkg/quota/v1/evaluator/core): a pod that has not terminated
charges `pods`, `count/pods` and its effective requests and limits (`requests.cpu`, `cpu`,
`limits.memory`, ...: the larger of the sum over its containers and the largest init container,
plus overhead); a Service charges `services`, `services.nodeports` (per node port) and
`services.loadbalancers`; a claim charges `persistentvolumeclaims` and `requests.storage`;
every object charges `count/<plural>[.<group>]`, and ConfigMaps, Secrets, ReplicationControllers
and ResourceQuotas their legacy names. Pure: no I/O.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterable

from navio.api.quantity import BINARY_SI, DECIMAL_SI, QuantityError, format_quantity, \
    parse_quantity

__all__ = ["usage", "add", "namespace_usage", "exceeded", "format_amount", "parse",
           "tracked", "missing_requests", "matches_scopes"]

Usage = dict[str, Decimal]

_LEGACY_COUNTS = {("", "configmaps"): "configmaps", ("", "secrets"): "secrets",
                  ("", "replicationcontrollers"): "replicationcontrollers",
                  ("", "resourcequotas"): "resourcequotas", ("", "services"): "services",
                  ("", "persistentvolumeclaims"): "persistentvolumeclaims", ("", "pods"): "pods"}
_COMPUTE = ("cpu", "memory", "ephemeral-storage")


def parse(value: Any) -> Decimal:
    try:
        return parse_quantity(str(value))
    except (QuantityError, ValueError):
        return Decimal(0)


def _sum(lists: Iterable[dict[str, Any]]) -> Usage:
    out: Usage = {}
    for rl in lists:
        for k, v in (rl or {}).items():
            out[k] = out.get(k, Decimal(0)) + parse(v)
    return out


def _pod_resources(spec: dict[str, Any], field: str) -> Usage:
    """PodRequests / PodLimits: max(sum of containers, each init container) + overhead."""
    total = _sum(((c.get("resources") or {}).get(field) or {}) for c in spec.get("containers") or ())
    for c in spec.get("initContainers") or ():
        for k, v in (((c.get("resources") or {}).get(field)) or {}).items():
            total[k] = max(total.get(k, Decimal(0)), parse(v))
    for k, v in (spec.get("overhead") or {}).items():
        total[k] = total.get(k, Decimal(0)) + parse(v)
    return total


def _terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def usage(group: str, plural: str, obj: dict[str, Any]) -> Usage:
    """Everything `obj` charges (only the resources a quota names matter)."""
    count = f"count/{plural}" + (f".{group}" if group else "")
    out: Usage = {count: Decimal(1)}
    legacy = _LEGACY_COUNTS.get((group, plural))
    if legacy:
        out[legacy] = Decimal(1)
    spec = obj.get("spec") or {}
    if (group, plural) == ("", "pods"):
        if _terminal(obj):
            return {}
        requests = _pod_resources(spec, "requests")
        limits = _pod_resources(spec, "limits")
        for r in _COMPUTE:
            if r in requests:
                out[f"requests.{r}"] = requests[r]
                out[r] = requests[r]
            if r in limits:
                out[f"limits.{r}"] = limits[r]
        for k, v in requests.items():
            if "/" in k and k not in _COMPUTE:   # extended resources: requests.<name>
                out[f"requests.{k}"] = v
    elif (group, plural) == ("", "services"):
        kind = spec.get("type", "ClusterIP")
        if kind in ("NodePort", "LoadBalancer"):
            out["services.nodeports"] = Decimal(len(spec.get("ports") or ()))
        if kind == "LoadBalancer":
            out["services.loadbalancers"] = Decimal(1)
    elif (group, plural) == ("", "persistentvolumeclaims"):
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        if storage is not None:
            out["requests.storage"] = parse(storage)
            cls = spec.get("storageClassName")
            if cls:
                prefix = f"{cls}.storageclass.storage.k8s.io/"
                out[prefix + "requests.storage"] = parse(storage)
                out[prefix + "persistentvolumeclaims"] = Decimal(1)
    return out


def add(a: Usage, b: Usage, sign: int = 1) -> Usage:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, Decimal(0)) + sign * v
    return out


def tracked(hard: dict[str, Any], charge: Usage) -> list[str]:
    """The resources of `charge` that the quota limits, sorted."""
    return sorted(k for k in charge if k in hard)


def _best_effort(pod: dict[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    for c in list(spec.get("initContainers") or ()) + list(spec.get("containers") or ()):
        res = c.get("resources") or {}
        for field in ("requests", "limits"):
            if any(k in ("cpu", "memory") for k in (res.get(field) or {})):
                return False
    return True


def _scope_matches(scope: str, operator: str, values: list[str],
                   pod: dict[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    if scope == "Terminating":
        return spec.get("activeDeadlineSeconds") is not None
    if scope == "NotTerminating":
        return spec.get("activeDeadlineSeconds") is None
    if scope == "BestEffort":
        return _best_effort(pod)
    if scope == "NotBestEffort":
        return not _best_effort(pod)
    if scope == "PriorityClass":
        name = spec.get("priorityClassName")
        if operator == "Exists":
            return bool(name)
        if operator == "DoesNotExist":
            return not name
        if operator == "In":
            return name in values
        if operator == "NotIn":
            return name not in values
        return False
    if scope == "CrossNamespacePodAffinity":
        affinity = spec.get("affinity") or {}
        for kind in ("podAffinity", "podAntiAffinity"):
            terms = (affinity.get(kind) or {})
            for t in list(terms.get("requiredDuringSchedulingIgnoredDuringExecution") or ()) + \
                    [w.get("podAffinityTerm") or {} for w in
                     terms.get("preferredDuringSchedulingIgnoredDuringExecution") or ()]:
                if t.get("namespaces") or t.get("namespaceSelector") is not None:
                    return True
        return False
    return False


def matches_scopes(quota_spec: dict[str, Any], group: str, plural: str,
                   obj: dict[str, Any]) -> bool:
    """Whether a quota with `scopes` / `scopeSelector` applies to the object: scopes select
    pods only, so a scoped quota never charges other kinds (kube's evaluators)."""
    scopes: list[tuple[str, str, list[str]]] = [
        (s, "Exists", []) for s in quota_spec.get("scopes") or ()]
    for e in ((quota_spec.get("scopeSelector") or {}).get("matchExpressions") or ()):
        scopes.append((e.get("scopeName", ""), e.get("operator", "Exists"),
                       list(e.get("values") or ())))
    if not scopes:
        return True
    if (group, plural) != ("", "pods"):
        return False
    return all(_scope_matches(s, op, vals, obj) for s, op, vals in scopes)


def namespace_usage(hard: dict[str, Any],
                    objects: Iterable[tuple[str, str, dict[str, Any]]],
                    quota_spec: dict[str, Any] | None = None) -> Usage:
    """The usage of every resource in `hard` over (group, plural, obj) triples (only the
    objects the quota's scopes select)."""
    total: Usage = {k: Decimal(0) for k in hard}
    for group, plural, obj in objects:
        if quota_spec and not matches_scopes(quota_spec, group, plural, obj):
            continue
        for k, v in usage(group, plural, obj).items():
            if k in total:
                total[k] += v
    return total


def format_amount(resource: str, amount: Decimal, like: Any = None) -> str:
    """`amount` as the API prints it: binary (Mi, Gi) where the quota's own value is."""
    fmt = BINARY_SI if isinstance(like, str) and like.endswith("i") else DECIMAL_SI
    return format_quantity(amount, fmt)


def exceeded(name: str, hard: dict[str, Any], used: dict[str, Any],
             charge: Usage) -> str | None:
    """kube's "exceeded quota: ..." message when `charge` on top of `used` passes `hard`."""
    resources = tracked(hard, charge)
    over = [r for r in resources if charge[r] > 0 and
            parse(used.get(r, "0")) + charge[r] > parse(hard[r])]
    if not over:
        return None

    def listing(values: dict[str, str]) -> str:
        return ",".join(f"{r}={values[r]}" for r in over)
    requested = {r: format_amount(r, charge[r], hard[r]) for r in over}
    used_s = {r: format_amount(r, parse(used.get(r, "0")), hard[r]) for r in over}
    limited = {r: str(hard[r]) for r in over}
    return (f"exceeded quota: {name}, requested: {listing(requested)}, used: "
            f"{listing(used_s)}, limited: {listing(limited)}")


def missing_requests(hard: dict[str, Any], pod: dict[str, Any]) -> str | None:
    """kube's "must specify ..." when a quota limits a compute resource that some container
    does not request (or limit)."""
    spec = pod.get("spec") or {}
    parts = []
    for r in sorted(hard):
        field, _, base = r.partition(".")
        if r in _COMPUTE:
            field, base = "requests", r
        if field not in ("requests", "limits") or base not in _COMPUTE[:2]:
            continue
        names = [c.get("name", "") for c in list(spec.get("initContainers") or ())
                 + list(spec.get("containers") or ())
                 if base not in (((c.get("resources") or {}).get(field)) or {})]
        if names:
            parts.append(f"{r} for: {','.join(names)}")
    return f"must specify {'; '.join(parts)}" if parts else None
