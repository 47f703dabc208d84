"""ResourceQuota admission: every create in a namespace charged against its quotas.

As kube's ResourceQuota plugin: the object's charge (`navio.api.resourcequota.usage`) is
added to each matching quota's `status.used` in the same compare-and-swap write that checks
it against `spec.hard`, so concurrent creates cannot both take the last unit: the loser's
write conflicts, is retried on the fresh status, and is refused with kube's 403
`exceeded quota: NAME, requested: pods=1, used: pods=2, limited: pods=2`. A quota whose
status the controller has not filled yet is charged from a count of the API server's own
caches. Usage freed by deletes is given back by the resourcequota controller, which
recomputes `status.used`. Dry runs are checked but not charged.
"""

from __future__ import annotations

import asyncio
import copy
import weakref
from typing import TYPE_CHECKING, Any

from navio.api import errors, resourcequota
from navio.apiserver.limitranger import namespace_objects

if TYPE_CHECKING:
    from navio.apiserver.admission import Request
    from navio.apiserver.resources import Resources

__all__ = ["resource_quota", "computed_usage"]

_CHARGE_ATTEMPTS = 20
_locks: "weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock]" = \
    weakref.WeakValueDictionary()

# Kinds whose usage the caches can recount (the controller's list, too).
COUNTED = (("", "v1", "pods"), ("", "v1", "services"), ("", "v1", "configmaps"),
           ("", "v1", "secrets"), ("", "v1", "persistentvolumeclaims"),
           ("", "v1", "replicationcontrollers"), ("", "v1", "resourcequotas"))


def computed_usage(resources: "Resources", namespace: str, hard: dict[str, Any],
                   quota_spec: dict[str, Any] | None = None) -> dict[str, str]:
    objects = []
    for group, version, plural in COUNTED:
        objects += [(group, plural, o)
                    for o in namespace_objects(resources, plural, namespace, group, version)]
    for name in hard:
        if name.startswith("count/"):
            plural, _, group = name[len("count/"):].partition(".")
            if (group, plural) not in {(g, p) for g, _, p in COUNTED}:
                kind = next((k for k in resources.registry.kinds()
                             if k.plural == plural and k.group == group), None)
                if kind is not None:
                    objects += [(group, plural, o) for o in namespace_objects(
                        resources, plural, namespace, group, kind.version)]
    used = resourcequota.namespace_usage(hard, objects, quota_spec)
    return {k: resourcequota.format_amount(k, v, hard.get(k)) for k, v in used.items()}


async def resource_quota(resources: "Resources", request: "Request") -> None:
    kind = request.kind
    if request.operation != "CREATE" or request.subresource or not kind.namespaced:
        return
    meta = request.obj.get("metadata") or {}
    namespace = meta.get("namespace", "")
    charge = resourcequota.usage(kind.group, kind.plural, request.obj)
    if not charge:
        return
    quotas = sorted(namespace_objects(resources, "resourcequotas", namespace),
                    key=lambda q: q["metadata"].get("name", ""))
    rq_kind = resources.registry.resource("", "v1", "resourcequotas")
    assert rq_kind is not None
    name = meta.get("name", "")

    def forbidden(text: str) -> errors.Forbidden:
        return errors.Forbidden(f'{kind.plural} "{name}" is forbidden: {text}',
                                details={"name": name, "kind": kind.plural})
    for quota in quotas:
        hard = (quota.get("spec") or {}).get("hard") or {}
        if not resourcequota.matches_scopes(quota.get("spec") or {}, kind.group, kind.plural,
                                            request.obj):
            continue
        qname = quota["metadata"]["name"]
        if kind.plural == "pods" and kind.group == "":
            missing = resourcequota.missing_requests(hard, request.obj)
            if missing:
                raise forbidden(f"failed quota: {qname}: {missing}")
        if not resourcequota.tracked(hard, charge):
            continue

        def charged(current: dict[str, Any] | None, hard: dict[str, Any] = hard,
                    qname: str = qname) -> dict[str, Any]:
            new = copy.deepcopy(current or {})
            hard_now = (new.get("spec") or {}).get("hard") or hard
            status = new.setdefault("status", {})
            used = dict(status.get("used") or {})
            if any(k not in used for k in hard_now):
                used = {**computed_usage(resources, namespace, hard_now,
                                         new.get("spec") or {}), **used}
            text = resourcequota.exceeded(qname, hard_now, used, charge)
            if text:
                raise forbidden(text)
            for r in resourcequota.tracked(hard_now, charge):
                used[r] = resourcequota.format_amount(
                    r, resourcequota.parse(used.get(r, "0")) + charge[r], hard_now[r])
            status["hard"] = dict(hard_now)
            status["used"] = used
            return new
        if request.opts.dry_run:
            charged(quota)
            continue
        # One charge at a time per quota in this server (kube's quota evaluator queues them
        # likewise); the compare-and-swap still guards against other writers.
        lock = _locks.get((namespace, qname))
        if lock is None:
            lock = _locks[(namespace, qname)] = asyncio.Lock()
        async with lock:
            for attempt in range(_CHARGE_ATTEMPTS):
                try:
                    await resources.update(rq_kind, namespace, qname, charged, request.opts,
                                           subresource="status", track_fields=False)
                    break
                except errors.Conflict:
                    if attempt == _CHARGE_ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(0.01 * (attempt + 1))
                except errors.NotFound:
                    break   # the quota went away meanwhile
