"""Per-kind write rules that are neither defaulting nor validation (kube's REST strategies).

What a create resets, what a main-resource update must not touch (status), what a status
update must not touch (everything else), and which kinds count `metadata.generation`. These
mirror `PrepareForCreate` / `PrepareForUpdate` in kubernetes/pkg/registry/*/strategy.go.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from navio.api import defaults
from navio.api.crd.definition import prepare_crd_create
from navio.api.registry import Kind

__all__ = ["tracks_generation", "prepare_for_create", "prepare_for_update",
           "prepare_status_update", "spec_changed", "DS_TEMPLATE_GENERATION",
           "prepare_ephemeral_containers_update"]

# apps/v1 DaemonSets carry the internal spec.templateGeneration as this annotation (kube's
# v1 conversion); its strategy starts it at 1 and adds 1 whenever spec.template changes.
DS_TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"

# Kinds whose strategies bump metadata.generation on spec changes (pods do not in 1.32).
_GENERATION_KINDS = frozenset({
    ("apps", "Deployment"), ("apps", "ReplicaSet"), ("apps", "DaemonSet"),
    ("apps", "StatefulSet"), ("batch", "Job"), ("batch", "CronJob"),
    ("", "ReplicationController"), ("policy", "PodDisruptionBudget"),
    ("networking.k8s.io", "Ingress"), ("networking.k8s.io", "NetworkPolicy"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
})

# metadata fields the server owns: a client's value on update is replaced by the stored one.
_SERVER_OWNED_META = ("uid", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation", "selfLink")


def tracks_generation(kind: Kind) -> bool:
    return (kind.group, kind.kind) in _GENERATION_KINDS or kind.custom is not None


def prepare_for_create(kind: Kind, obj: dict[str, Any], now: str) -> None:
    """Set what the server owns on a new object (uid, timestamps, generation, initial
    status) in place."""
    meta = obj.setdefault("metadata", {})
    for f in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink",
              "generation"):
        meta.pop(f, None)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now
    if tracks_generation(kind):
        meta["generation"] = 1
    # Status resets, pod QoS, namespace finalizers: kube's per-kind PrepareForCreate.
    defaults.prepare_for_create(kind.group, kind.kind, obj)
    if kind.custom is not None and kind.subresource("status") is not None:
        obj.pop("status", None)        # written through /status only
    elif (kind.group, kind.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        prepare_crd_create(obj)
    if (kind.group, kind.kind) == ("apps", "DaemonSet"):
        _set_template_generation(obj, max(_template_generation(obj), 1))


def _template_generation(obj: dict[str, Any]) -> int:
    """The DaemonSet's template generation (0 when unset or unreadable)."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(DS_TEMPLATE_GENERATION)
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def _set_template_generation(obj: dict[str, Any], generation: int) -> None:
    meta = obj.setdefault("metadata", {})
    meta["annotations"] = {**(meta.get("annotations") or {}),
                           DS_TEMPLATE_GENERATION: str(generation)}


def spec_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether anything but metadata and status differs: what bumps generation."""
    keys = (set(old) | set(new)) - {"metadata", "status", "apiVersion", "kind"}
    return any(old.get(k) != new.get(k) for k in keys)


def prepare_for_update(kind: Kind, new: dict[str, Any], old: dict[str, Any]) -> None:
    """A main-resource update: keep server-owned metadata and (if the kind has a status
    subresource) the stored status; bump generation on a spec change."""
    meta = new.setdefault("metadata", {})
    old_meta = old.get("metadata", {})
    for f in _SERVER_OWNED_META:
        if f in old_meta:
            meta[f] = old_meta[f]
        else:
            meta.pop(f, None)
    if kind.subresource("status") is not None:
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    if tracks_generation(kind) and spec_changed(old, new):
        meta["generation"] = int(old_meta.get("generation", 1)) + 1
    if (kind.group, kind.kind) == _CSR:
        _keep_csr_spec(new, old)
    if (kind.group, kind.kind) == ("apps", "DaemonSet"):
        # Clients cannot set the template generation; a template change bumps it. The new
        # object is compared defaulted, as kube compares after decoding.
        defaulted = copy.deepcopy(new)
        defaults.apply_defaults(kind.group, kind.kind, defaulted)
        template_changed = (old.get("spec") or {}).get("template") != \
            (defaulted.get("spec") or {}).get("template")
        _set_template_generation(new, _template_generation(old) + int(template_changed))


def prepare_ephemeral_containers_update(new: dict[str, Any], old: dict[str, Any]
                                        ) -> dict[str, Any]:
    """A pods/ephemeralcontainers write changes only `spec.ephemeralContainers`: everything
    else is the stored pod's (kube's dropNonEphemeralContainerUpdates)."""
    out = copy.deepcopy(old)
    meta, new_meta = out.setdefault("metadata", {}), new.get("metadata") or {}
    for f in ("name", "namespace", "resourceVersion", "uid"):
        if f in new_meta:
            meta[f] = new_meta[f]
    spec = out.setdefault("spec", {})
    ephemeral = (new.get("spec") or {}).get("ephemeralContainers")
    if ephemeral is None:
        spec.pop("ephemeralContainers", None)
    else:
        spec["ephemeralContainers"] = copy.deepcopy(ephemeral)
    return out


def prepare_status_update(kind: Kind, new: dict[str, Any], old: dict[str, Any]
                          ) -> dict[str, Any]:
    """A /status write: everything but metadata and status comes from the stored object, as
    do labels, owner references and the server-owned metadata (kube's status strategies
    reset spec and labels; annotations written with the status are kept)."""
    result = copy.deepcopy(new)
    for key in set(old) | set(result):
        if key not in ("metadata", "status", "apiVersion", "kind"):
            if key in old:
                result[key] = copy.deepcopy(old[key])
            else:
                result.pop(key, None)
    meta = result.setdefault("metadata", {})
    old_meta = old.get("metadata", {})
    # Custom resources keep all the stored metadata (kube's CR status strategy copies the old
    # object and sets only status; managedFields are tracked afterwards).
    kept = tuple(k for k in set(old_meta) | set(meta) if k != "managedFields") \
        if kind.custom is not None else \
        _SERVER_OWNED_META + ("labels", "ownerReferences", "name", "namespace")
    for f in kept:
        if f in old_meta:
            meta[f] = copy.deepcopy(old_meta[f])
        else:
            meta.pop(f, None)
    if (kind.group, kind.kind) == ("apps", "DaemonSet"):
        _set_template_generation(result, _template_generation(old))
    return result


# -- CertificateSigningRequest (pkg/registry/certificates/certificates/strategy.go) ---------
_CSR = ("certificates.k8s.io", "CertificateSigningRequest")
_DECISIONS = ("Approved", "Denied")


def set_csr_requester(obj: dict[str, Any], username: str, uid: str,
                      groups: tuple[str, ...],
                      extra: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
    """A new CSR records who asked, whatever the body said (csrStrategy.PrepareForCreate)."""
    spec = obj.setdefault("spec", {})
    for f in ("username", "uid", "groups", "extra"):
        spec.pop(f, None)
    spec["username"] = username
    if uid:
        spec["uid"] = uid
    if groups:
        spec["groups"] = list(groups)
    if extra:
        spec["extra"] = {k: list(v) for k, v in extra}
    obj["status"] = {}


def _keep_csr_spec(new: dict[str, Any], old: dict[str, Any]) -> None:
    if "spec" in old:
        new["spec"] = copy.deepcopy(old["spec"])


def _condition_timestamps(new: dict[str, Any], old: dict[str, Any]) -> None:
    """populateConditionTimestamps: new or changed conditions get the current time."""
    import datetime as dt
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    old_by_type = {c.get("type"): c for c in (old.get("status") or {}).get("conditions") or ()}
    for c in (new.get("status") or {}).get("conditions") or ():
        prev = old_by_type.get(c.get("type"))
        if not c.get("lastUpdateTime"):
            c["lastUpdateTime"] = now
        if not c.get("lastTransitionTime"):
            if prev is not None and prev.get("status") == c.get("status") and \
                    prev.get("lastTransitionTime"):
                c["lastTransitionTime"] = prev["lastTransitionTime"]
            else:
                c["lastTransitionTime"] = c["lastUpdateTime"]


def keep_csr_decisions(new: dict[str, Any], old: dict[str, Any]) -> None:
    """A CSR /status write changes the certificate and other conditions, never the spec nor
    the Approved/Denied decisions (csrStatusStrategy)."""
    _keep_csr_spec(new, old)
    status = new.setdefault("status", {})
    conds = [c for c in status.get("conditions") or () if c.get("type") not in _DECISIONS]
    decisions = [c for c in (old.get("status") or {}).get("conditions") or ()
                 if c.get("type") in _DECISIONS]
    if conds or decisions:
        status["conditions"] = decisions + conds
    else:
        status.pop("conditions", None)
    _condition_timestamps(new, old)


def prepare_approval_update(kind: Any, new: dict[str, Any], old: dict[str, Any]
                            ) -> dict[str, Any]:
    """A CSR /approval write changes the conditions only (csrApprovalStrategy)."""
    result = prepare_status_update(kind, new, old)
    _keep_csr_spec(result, old)
    status = copy.deepcopy(old.get("status") or {})
    conditions = (result.get("status") or {}).get("conditions")
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    result["status"] = status
    _condition_timestamps(result, old)
    return result


__all__ += ["set_csr_requester", "keep_csr_decisions", "prepare_approval_update"]
