"""The arithmetic of Deployments, as pure functions over API dicts.

Why: surge and unavailability fenceposts, the new ReplicaSet's size, proportional scaling,
revisions and conditions decide every rollout; kube keeps them in
pkg/controller/deployment/util/deployment_util.go, and so does this module, free of I/O so
that unit tests can pin them down.

Guarantees: results equal kube's for the same inputs (percentages round surge up and
unavailability down; both zero resolves unavailability to 1; proportions round half away from
zero; leftovers go to the largest ReplicaSet). The pod-template-hash is FNV-32a of the
template's canonical JSON (plus the collision count) spelled with kube's SafeEncodeString
alphabet: stable across runs and processes, though not bit-identical to Go's hash of Go
structs.
"""

from __future__ import annotations

import copy
import math
import struct
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from navio.controllers.controller_utils import parse_time

__all__ = [
    "REVISION_ANNOTATION", "REVISION_HISTORY_ANNOTATION", "DESIRED_REPLICAS_ANNOTATION",
    "MAX_REPLICAS_ANNOTATION", "HASH_LABEL", "TIMED_OUT_REASON", "NEW_RS_AVAILABLE_REASON",
    "int_or_percent", "resolve_fenceposts", "max_surge", "max_unavailable", "replicas",
    "is_rolling_update", "new_rs_new_replicas", "get_proportion", "proportional_sizes",
    "is_saturated", "deployment_complete", "deployment_progressing", "deployment_timed_out",
    "new_condition", "get_condition", "set_condition", "remove_condition", "revision",
    "max_revision", "set_new_rs_annotations", "set_replicas_annotations",
    "replicas_annotations_need_update", "equal_ignore_hash", "compute_hash",
    "safe_encode_string", "find_new_rs", "find_old_rss", "filter_active", "sort_by_creation",
    "sort_by_revision", "has_progress_deadline",
    "has_revision_history_limit", "skip_copy_annotation",
]

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO_ANNOTATION = "deprecated.deployment.rollback.to"
HASH_LABEL = "pod-template-hash"
MAX_INT32 = 2**31 - 1

REPLICA_SET_UPDATED_REASON = "ReplicaSetUpdated"
FAILED_RS_CREATE_REASON = "ReplicaSetCreateError"
NEW_RS_REASON = "NewReplicaSetCreated"
FOUND_NEW_RS_REASON = "FoundNewReplicaSet"
NEW_RS_AVAILABLE_REASON = "NewReplicaSetAvailable"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
PAUSED_REASON = "DeploymentPaused"
RESUMED_REASON = "DeploymentResumed"
MIN_AVAILABLE_REASON = "MinimumReplicasAvailable"
MIN_UNAVAILABLE_REASON = "MinimumReplicasUnavailable"

_SKIP_ANNOTATIONS = frozenset({LAST_APPLIED_ANNOTATION, REVISION_ANNOTATION,
                               REVISION_HISTORY_ANNOTATION, DESIRED_REPLICAS_ANNOTATION,
                               MAX_REPLICAS_ANNOTATION, ROLLBACK_TO_ANNOTATION})
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

Obj = dict[str, Any]


def _spec(obj: Obj | None) -> Obj:
    return (obj or {}).get("spec") or {}


def _status(obj: Obj | None) -> Obj:
    return (obj or {}).get("status") or {}


def replicas(obj: Obj | None) -> int:
    """spec.replicas (defaulted to 1 by the API server); 0 for a missing object."""
    if obj is None:
        return 0
    return int(_spec(obj).get("replicas", 1))


def skip_copy_annotation(key: str) -> bool:
    return key in _SKIP_ANNOTATIONS


# ---- fenceposts -------------------------------------------------------------------------

def int_or_percent(value: int | str | None, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent; None counts as 0."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    if not value.endswith("%"):
        raise ValueError("invalid value for IntOrString: invalid type: string is not a "
                         "percentage")
    percent = int(value[:-1])
    scaled = percent * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


def resolve_fenceposts(surge: int | str | None, unavailable: int | str | None,
                       desired: int) -> tuple[int, int]:
    s = int_or_percent(surge, desired, True)
    u = int_or_percent(unavailable, desired, False)
    if s == 0 and u == 0:
        u = 1       # both rounded to zero: allow one unavailable, as kube does
    return s, u


def is_rolling_update(d: Obj) -> bool:
    return ((_spec(d).get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def _rolling(d: Obj) -> Obj:
    return (_spec(d).get("strategy") or {}).get("rollingUpdate") or {}


def max_surge(d: Obj) -> int:
    if not is_rolling_update(d):
        return 0
    r = _rolling(d)
    return resolve_fenceposts(r.get("maxSurge"), r.get("maxUnavailable"), replicas(d))[0]


def max_unavailable(d: Obj) -> int:
    if not is_rolling_update(d) or replicas(d) == 0:
        return 0
    r = _rolling(d)
    u = resolve_fenceposts(r.get("maxSurge"), r.get("maxUnavailable"), replicas(d))[1]
    return min(u, replicas(d))


def has_progress_deadline(d: Obj) -> bool:
    pds = _spec(d).get("progressDeadlineSeconds")
    return pds is not None and int(pds) != MAX_INT32


def has_revision_history_limit(d: Obj) -> bool:
    limit = _spec(d).get("revisionHistoryLimit")
    return limit is not None and int(limit) != MAX_INT32


# ---- sizes ----------------------------------------------------------------------------

def _total(rss: Iterable[Obj | None]) -> int:
    return sum(replicas(rs) for rs in rss if rs is not None)


def new_rs_new_replicas(d: Obj, all_rss: Sequence[Obj | None], new_rs: Obj) -> int:
    """The size the new ReplicaSet may have now (NewRSNewReplicas)."""
    if not is_rolling_update(d):
        return replicas(d)
    surge = int_or_percent(_rolling(d).get("maxSurge"), replicas(d), True)
    current = _total(all_rss)
    max_total = replicas(d) + surge
    if current >= max_total:
        return replicas(new_rs)
    scale_up = min(max_total - current, replicas(d) - replicas(new_rs))
    return replicas(new_rs) + scale_up


def _round(x: float) -> int:
    """Go's math.Round: half away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def _fraction(rs: Obj, d: Obj) -> int:
    if replicas(d) == 0:
        return -replicas(rs)
    deployment_replicas = replicas(d) + max_surge(d)
    annotated = _int_annotation(rs, MAX_REPLICAS_ANNOTATION)
    if annotated is None:
        annotated = int(_status(d).get("replicas") or 0)
    if annotated == 0:
        return 0
    return _round(replicas(rs) * deployment_replicas / annotated) - replicas(rs)


def get_proportion(rs: Obj | None, d: Obj, to_add: int, added: int) -> int:
    if rs is None or replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = _fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def proportional_sizes(d: Obj, active: list[Obj]) -> tuple[dict[str, int], str]:
    """New sizes of the active ReplicaSets when a rolling deployment is scaled mid-rollout,
    and "up"/"down"/"" (the proportional part of DeploymentController.scale)."""
    allowed = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
    to_add = allowed - _total(list(active))
    op = ""
    rss = list(active)
    if to_add > 0:
        rss = _by_size(rss, newer_first=True)
        op = "up"
    elif to_add < 0:
        rss = _by_size(rss, newer_first=False)
        op = "down"
    added = 0
    sizes: dict[str, int] = {}
    for rs in rss:
        if to_add != 0:
            p = get_proportion(rs, d, to_add, added)
            sizes[rs["metadata"]["name"]] = replicas(rs) + p
            added += p
        else:
            sizes[rs["metadata"]["name"]] = replicas(rs)
    if rss and to_add != 0:
        first = rss[0]["metadata"]["name"]
        sizes[first] = max(sizes[first] + to_add - added, 0)
    return {rs["metadata"]["name"]: sizes[rs["metadata"]["name"]] for rs in rss}, op


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    desired = _int_annotation(rs, DESIRED_REPLICAS_ANNOTATION)
    return desired is not None and replicas(rs) == replicas(d) and desired == replicas(d) \
        and int(_status(rs).get("availableReplicas") or 0) == replicas(d)


# ---- status and conditions ---------------------------------------------------------------

def deployment_complete(d: Obj, status: Obj) -> bool:
    want = replicas(d)
    return int(status.get("updatedReplicas") or 0) == want and \
        int(status.get("replicas") or 0) == want and \
        int(status.get("availableReplicas") or 0) == want and \
        int(status.get("observedGeneration") or 0) >= int(d["metadata"].get("generation", 0))


def deployment_progressing(d: Obj, new: Obj) -> bool:
    old = _status(d)

    def g(s: Obj, f: str) -> int:
        return int(s.get(f) or 0)
    old_old = g(old, "replicas") - g(old, "updatedReplicas")
    new_old = g(new, "replicas") - g(new, "updatedReplicas")
    return g(new, "updatedReplicas") > g(old, "updatedReplicas") or new_old < old_old or \
        g(new, "readyReplicas") > g(old, "readyReplicas") or \
        g(new, "availableReplicas") > g(old, "availableReplicas")


def deployment_timed_out(d: Obj, new: Obj, now: float) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(new, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE_REASON:
        return False
    if cond.get("reason") == TIMED_OUT_REASON:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return False
    return since + int(_spec(d)["progressDeadlineSeconds"]) < now


def new_condition(ctype: str, status: str, reason: str, message: str, now: str) -> Obj:
    return {"type": ctype, "status": status, "lastUpdateTime": now,
            "lastTransitionTime": now, "reason": reason, "message": message}


def get_condition(status: Obj, ctype: str) -> Obj | None:
    for c in status.get("conditions") or ():
        if c.get("type") == ctype:
            return c  # type: ignore[no-any-return]
    return None


def set_condition(status: Obj, cond: Obj) -> None:
    """SetDeploymentCondition: no change for the same status and reason; the transition time
    survives a change of reason only."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and \
            current.get("reason") == cond["reason"]:
        return
    cond = dict(cond)
    if current is not None and current.get("status") == cond["status"]:
        cond["lastTransitionTime"] = current.get("lastTransitionTime")
    status["conditions"] = [c for c in status.get("conditions") or ()
                            if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: Obj, ctype: str) -> None:
    conds = [c for c in status.get("conditions") or () if c.get("type") != ctype]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


# ---- revisions and annotations -------------------------------------------------------------

def _int_annotation(obj: Obj, key: str) -> int | None:
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(key)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def revision(obj: Obj | None) -> int:
    """The revision annotation; 0 when absent or unreadable (skipped, as kube does)."""
    if obj is None:
        return 0
    return _int_annotation(obj, REVISION_ANNOTATION) or 0


def max_revision(rss: list[Obj]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def set_replicas_annotations(rs: Obj, desired: int, maximum: int) -> bool:
    ann = rs["metadata"].setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS_ANNOTATION, str(desired)),
                       (MAX_REPLICAS_ANNOTATION, str(maximum))):
        if ann.get(key) != value:
            ann[key] = value
            changed = True
    return changed


def replicas_annotations_need_update(rs: Obj, desired: int, maximum: int) -> bool:
    ann = (rs.get("metadata") or {}).get("annotations") or {}
    return ann.get(DESIRED_REPLICAS_ANNOTATION) != str(desired) or \
        ann.get(MAX_REPLICAS_ANNOTATION) != str(maximum)


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: str, exists: bool,
                           limit_chars: int = 2000) -> bool:
    """Copy the deployment's annotations and raise the revision (SetNewReplicaSetAnnotations);
    True if anything changed. An old revision moves into revision-history."""
    ann = rs["metadata"].setdefault("annotations", {})
    changed = False
    for k, v in ((d.get("metadata") or {}).get("annotations") or {}).items():
        if skip_copy_annotation(k) or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    old = ann.get(REVISION_ANNOTATION)
    try:
        old_int = int(old) if old else 0
        new_int = int(new_revision)
    except ValueError:
        return False
    if old_int < new_int:
        ann[REVISION_ANNOTATION] = new_revision
        changed = True
        if old is not None:
            history = ann.get(REVISION_HISTORY_ANNOTATION, "")
            revs = history.split(",") if history else []
            total = len(history) + len(old) + 1
            while revs and total > limit_chars:
                total -= len(revs.pop(0)) + 1
            if total <= limit_chars:
                ann[REVISION_HISTORY_ANNOTATION] = ",".join(revs + [old])
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


# ---- templates and hashing -----------------------------------------------------------------

def _prune(value: Any) -> Any:
    """Drop empty maps and lists, as Semantic.DeepEqual treats empty and nil alike."""
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def equal_ignore_hash(t1: Obj | None, t2: Obj | None) -> bool:
    def strip(t: Obj | None) -> Any:
        t = copy.deepcopy(t or {})
        labels = (t.get("metadata") or {}).get("labels")
        if labels:
            labels.pop(HASH_LABEL, None)
        return _prune(t)
    return bool(strip(t1) == strip(t2))


def safe_encode_string(s: str) -> str:
    """k8s.io/apimachinery rand.SafeEncodeString: no vowels, no look-alike characters."""
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in s.encode())


def compute_hash(template: Obj, collision_count: int | None) -> str:
    """controller.ComputeHash: FNV-32a of the template (canonical JSON) and collision count."""
    data = orjson.dumps(_prune(template), option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += struct.pack("<I", collision_count & 0xFFFFFFFF)
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return safe_encode_string(str(h))


# ---- selection and ordering ----------------------------------------------------------------

def _created(rs: Obj) -> tuple[float, str]:
    return parse_time(rs["metadata"].get("creationTimestamp")) or 0.0, rs["metadata"]["name"]


def sort_by_creation(rss: list[Obj]) -> list[Obj]:
    """Oldest first, then by name (ReplicaSetsByCreationTimestamp)."""
    return sorted(rss, key=_created)


def sort_by_revision(rss: list[Obj]) -> list[Obj]:
    return sorted(rss, key=lambda rs: (revision(rs), _created(rs)))


def _by_size(rss: list[Obj], newer_first: bool) -> list[Obj]:
    """Largest first; ties newest first (ReplicaSetsBySizeNewer) or oldest first (…Older)."""
    return sorted(sorted(rss, key=_created, reverse=newer_first), key=lambda rs: -replicas(rs))


def find_new_rs(d: Obj, rss: list[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template equals the deployment's (ignoring the hash)."""
    template = _spec(d).get("template")
    for rs in sort_by_creation(rss):
        if equal_ignore_hash(_spec(rs).get("template"), template):
            return rs
    return None


def find_old_rss(d: Obj, rss: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """(old ReplicaSets with replicas, all old ReplicaSets)."""
    new = find_new_rs(d, rss)
    new_uid = new["metadata"]["uid"] if new else None
    all_old = [rs for rs in rss if rs["metadata"]["uid"] != new_uid]
    return [rs for rs in all_old if replicas(rs) != 0], all_old


def filter_active(rss: Iterable[Obj | None]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]
