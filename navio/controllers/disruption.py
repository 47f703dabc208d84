"""PodDisruptionBudget status (kube-controller-manager's "disruption" controller).

Why: the Eviction subresource decides from a PDB's status alone, so that status must say how
many of the selected pods are healthy and how many may go. This is
pkg/controller/disruption/disruption.go (v1.32):

- The PDB's pods are those of its namespace matching `spec.selector` (`{}` selects all,
  none selects nothing).
- With an integer `minAvailable`, expectedPods is the number of pods and desiredHealthy the
  integer. With a percentage `minAvailable` or any `maxUnavailable`, expectedPods is the sum of
  the scales of the pods' controllers (ReplicationController, ReplicaSet or its Deployment,
  StatefulSet: `spec.replicas`), percentages rounded up; desiredHealthy = expected -
  maxUnavailable, at least 0. Pods without a controller are reported in an UnmanagedPods
  event; a controller that cannot be found fails the sync.
- currentHealthy counts Ready pods that are not terminating and not in `status.disruptedPods`
  (entries the eviction handler adds; an entry older than two minutes whose pod still exists is
  dropped, with a NotDeleted event on the pod, and the PDB is re-checked when the next entry
  expires). disruptionsAllowed = currentHealthy - desiredHealthy, 0 if negative or nothing
  is expected.
- A pod left with DisruptionTarget=True for two minutes without being deleted (an eviction
  whose delete failed) gets the condition set back to False, by server-side apply as field
  manager DisruptionController (syncStalePodDisruption).
- The status is written (only when it changes) with observedGeneration and the
  DisruptionAllowed condition (SufficientPods/InsufficientPods); a failed sync writes
  disruptionsAllowed 0 with reason SyncFailed and the error as message.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta, timezone
from typing import Any

from navio.api import errors
from navio.api.selectors import label_selector_from_spec
from navio.client import (DEPLOYMENTS, NAMESPACE_INDEX, PDBS, PODS, REPLICASETS, STATEFULSETS,
                          WARNING, ResourceRef)
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.controller_utils import is_pod_ready
from navio.controllers.endpoints import ensure_namespace_index
from navio.controllers.manager import register

__all__ = ["DisruptionController", "scaled_value", "expected_pod_count", "count_healthy",
           "build_disrupted_pod_map", "compute_status", "allowed_condition", "DELETION_TIMEOUT",
           "SyncError", "stale_disruption_after"]

log = logging.getLogger(__name__)

REPLICATIONCONTROLLERS = ResourceRef("", "v1", "replicationcontrollers", True,
                                     "ReplicationController")
DELETION_TIMEOUT = timedelta(minutes=2)
_STALE = "stale-pod:"                 # queue keys of pods whose DisruptionTarget may be stale
Obj = dict[str, Any]


class SyncError(Exception):
    """A sync that cannot compute the status; its text becomes the SyncFailed message."""


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, bool):
        raise SyncError(f"invalid value for IntOrString: invalid type: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            pct = int(value[:-1])
        except ValueError:
            raise SyncError(f"invalid value for IntOrString: invalid value {value!r}") from None
        raw = pct * total / 100
        return math.ceil(raw) if round_up else math.floor(raw)
    raise SyncError("invalid value for IntOrString: invalid type: string is not a "
                    "percentage")


def _parse_time(ts: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return None


def _controller_ref(pod: Obj) -> Obj | None:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def expected_pod_count(pdb: Obj, pods: list[Obj], scale_of: Any
                       ) -> tuple[int, int, list[str]]:
    """getExpectedPodCount: (expectedCount, desiredHealthy, unmanaged pod names).
    `scale_of(controllerRef, namespace)` gives the controller's replicas or None."""
    spec = pdb.get("spec") or {}
    unmanaged: list[str] = []

    def expected_scale() -> int:
        scales: dict[str, int] = {}
        for pod in pods:
            ref = _controller_ref(pod)
            if ref is None:
                unmanaged.append(pod["metadata"]["name"])
                continue
            if ref.get("uid") in scales:
                continue
            scale = scale_of(ref, pdb["metadata"].get("namespace", ""))
            if scale is None:
                raise SyncError(f'found no controllers for pod "{pod["metadata"]["name"]}"')
            scales[ref.get("uid", "")] = scale
        return sum(scales.values())

    if spec.get("maxUnavailable") is not None:
        expected = expected_scale()
        desired = max(0, expected - scaled_value(spec["maxUnavailable"], expected, True))
    elif spec.get("minAvailable") is not None:
        min_available = spec["minAvailable"]
        if isinstance(min_available, int) and not isinstance(min_available, bool):
            expected, desired = len(pods), min_available
        else:
            expected = expected_scale()
            desired = scaled_value(min_available, expected, True)
    else:
        expected, desired = 0, 0
    return expected, desired, unmanaged


def build_disrupted_pod_map(pods: list[Obj], pdb: Obj, now: datetime
                            ) -> tuple[dict[str, str], datetime | None, list[Obj]]:
    """buildDisruptedPodMap: the still-valid `disruptedPods` entries of existing pods, the
    earliest time one expires, and the pods whose entry expired without deletion."""
    recorded = (pdb.get("status") or {}).get("disruptedPods") or {}
    result: dict[str, str] = {}
    recheck: datetime | None = None
    expired: list[Obj] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp") or meta.get("name") not in recorded:
            continue
        when = _parse_time(recorded[meta["name"]])
        if when is None:
            continue
        deadline = when + DELETION_TIMEOUT
        if deadline < now:
            expired.append(pod)
            continue
        recheck = deadline if recheck is None else min(recheck, deadline)
        result[meta["name"]] = recorded[meta["name"]]
    return result, recheck, expired


def count_healthy(pods: list[Obj], disrupted: dict[str, str], now: datetime) -> int:
    """countHealthyPods: Ready, not terminating, not being disrupted."""
    healthy = 0
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        when = _parse_time(disrupted[meta["name"]]) if meta.get("name") in disrupted else None
        if when is not None and when + DELETION_TIMEOUT > now:
            continue
        if is_pod_ready(pod):
            healthy += 1
    return healthy


def allowed_condition(allowed: int, generation: int) -> Obj:
    """The DisruptionAllowed condition pdbhelper.UpdateDisruptionAllowedCondition sets."""
    if allowed > 0:
        return {"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods",
                "message": "", "observedGeneration": generation}
    return {"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods",
            "message": "", "observedGeneration": generation}


def _set_condition(conditions: list[Obj], want: Obj, now: str) -> list[Obj]:
    """meta.SetStatusCondition on a copy: lastTransitionTime moves only with the status."""
    out = [dict(c) for c in conditions]
    for c in out:
        if c.get("type") == want["type"]:
            if c.get("status") != want["status"]:
                c["lastTransitionTime"] = now
            c.update({k: v for k, v in want.items() if k != "type"})
            return out
    out.append({**want, "lastTransitionTime": now})
    return out


def compute_status(pdb: Obj, current_healthy: int, desired_healthy: int, expected: int,
                   disrupted: dict[str, str], now: str) -> Obj | None:
    """updatePdbStatus: the new status, or None when the stored one is already it."""
    allowed = current_healthy - desired_healthy
    if expected <= 0 or allowed <= 0:
        allowed = 0
    status = pdb.get("status") or {}
    generation = int(pdb["metadata"].get("generation") or 0)
    want = allowed_condition(allowed, generation)
    cond = next((c for c in status.get("conditions") or ()
                 if c.get("type") == "DisruptionAllowed"), None)
    if (status.get("currentHealthy") == current_healthy
            and status.get("desiredHealthy") == desired_healthy
            and status.get("expectedPods") == expected
            and status.get("disruptionsAllowed") == allowed
            and (status.get("disruptedPods") or {}) == disrupted
            and status.get("observedGeneration") == generation
            and cond is not None and all(cond.get(k) == v for k, v in want.items()
                                         if k != "message")):
        return None
    new: Obj = {"disruptionsAllowed": allowed, "currentHealthy": current_healthy,
                "desiredHealthy": desired_healthy, "expectedPods": expected,
                "observedGeneration": generation,
                "conditions": _set_condition(status.get("conditions") or [], want, now)}
    if disrupted:
        new["disruptedPods"] = disrupted
    return new


def stale_disruption_after(pod: Obj, now: datetime) -> float | None:
    """nonTerminatingPodHasStaleDisruptionCondition: seconds until the pod's DisruptionTarget
    condition is stale (<= 0: now), None when it has none to clean."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return None
    cond = next((c for c in (pod.get("status") or {}).get("conditions") or ()
                 if c.get("type") == "DisruptionTarget"), None)
    if cond is None or cond.get("status") != "True":
        return None
    since = _parse_time(cond.get("lastTransitionTime")) or now
    return (since + DELETION_TIMEOUT - now).total_seconds()


def _stamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@register("disruption")
class DisruptionController(Controller):
    name = "disruption"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        # disruption.go's recorder names its source "controllermanager", not a controller.
        self.recorder = ctx.recorder_for("controllermanager")
        self.pdbs = ctx.informers.get(PDBS)
        self.pods = ctx.informers.get(PODS)
        self.rcs = ctx.informers.get(REPLICATIONCONTROLLERS)
        self.rss = ctx.informers.get(REPLICASETS)
        self.deployments = ctx.informers.get(DEPLOYMENTS)
        self.statefulsets = ctx.informers.get(STATEFULSETS)
        ensure_namespace_index(self.pdbs)
        ensure_namespace_index(self.pods)
        self.pdbs.add_handler(**self.handlers(self.enqueue))
        self.pods.add_handler(on_add=self._pod, on_update=self._pod_update,
                              on_delete=self._pod)

    def _pod(self, pod: Obj) -> None:
        for key in self._pdbs_for(pod):
            self.queue.add(key)
        self._stale_check(pod)

    def _stale_check(self, pod: Obj) -> None:
        after = stale_disruption_after(pod, datetime.now(timezone.utc))
        if after is not None:
            meta = pod["metadata"]
            self.queue.add_after(f"{_STALE}{meta.get('namespace')}/{meta['name']}",
                                 max(0.0, after))

    def _pod_update(self, old: Obj, new: Obj) -> None:
        self._stale_check(new)
        keys = set(self._pdbs_for(new))
        if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
            keys |= set(self._pdbs_for(old))
        for key in keys:
            self.queue.add(key)

    def _pdbs_for(self, pod: Obj) -> list[str]:
        meta = pod.get("metadata") or {}
        keys = []
        for pdb in self.pdbs.by_index(NAMESPACE_INDEX, meta.get("namespace", "")):
            try:
                selector = label_selector_from_spec((pdb.get("spec") or {}).get("selector"))
            except errors.ApiError:
                continue
            # kube's lister skips empty selectors here, so a `selector: {}` PDB would only
            # follow its pods on resync; navio keeps it current.
            if not selector.matches(meta.get("labels") or {}):
                continue
            keys.append(f"{pdb['metadata']['namespace']}/{pdb['metadata']['name']}")
        return keys

    # -- finders (finders(): rc, rs→deployment, statefulset) -----------------------------------
    def _owned(self, informer: Any, ref: Obj, namespace: str, kind: str,
               group: str) -> Obj | None:
        if ref.get("kind") != kind or ref.get("apiVersion", "").split("/")[0] != group:
            return None
        obj = informer.get(f"{namespace}/{ref.get('name')}")
        if obj is None or obj["metadata"].get("uid") != ref.get("uid"):
            return None
        return obj  # type: ignore[no-any-return]

    def scale_of(self, ref: Obj, namespace: str) -> int | None:
        rc = self._owned(self.rcs, ref, namespace, "ReplicationController", "v1")
        if rc is not None:
            return int((rc.get("spec") or {}).get("replicas", 1))
        rs = self._owned(self.rss, ref, namespace, "ReplicaSet", "apps")
        if rs is not None:
            owner = _controller_ref(rs)
            if owner is not None:
                dep = self._owned(self.deployments, owner, namespace, "Deployment", "apps")
                if dep is not None:
                    return int((dep.get("spec") or {}).get("replicas", 1))
            return int((rs.get("spec") or {}).get("replicas", 1))
        ss = self._owned(self.statefulsets, ref, namespace, "StatefulSet", "apps")
        if ss is not None:
            return int((ss.get("spec") or {}).get("replicas", 1))
        return None

    async def reconcile(self, key: str) -> None:
        if key.startswith(_STALE):
            await self._sync_stale_pod(key[len(_STALE):])
            return
        pdb = self.pdbs.get(key)
        if pdb is None:
            return
        try:
            await self._try_sync(key, pdb)
        except (SyncError, errors.BadRequest) as exc:
            await self._fail_safe(pdb, str(exc))

    async def _try_sync(self, key: str, pdb: Obj) -> None:
        ns = pdb["metadata"].get("namespace", "")
        try:
            selector = label_selector_from_spec((pdb.get("spec") or {}).get("selector"))
        except errors.ApiError as exc:
            raise SyncError(exc.message) from None
        pods = [p for p in self.pods.by_index(NAMESPACE_INDEX, ns)
                if selector.matches((p.get("metadata") or {}).get("labels") or {})]
        try:
            expected, desired, unmanaged = expected_pod_count(pdb, pods, self.scale_of)
        except SyncError as exc:
            self.recorder.event(pdb, WARNING, "CalculateExpectedPodCountFailed",
                                f"Failed to calculate the number of expected pods: {exc}")
            raise
        if unmanaged:
            self.recorder.event(pdb, WARNING, "UnmanagedPods", (
                "Pods selected by this PodDisruptionBudget (selector: "
                f"{_go_selector((pdb.get('spec') or {}).get('selector'))}) were found to be "
                "unmanaged. As a result, the status of the PDB cannot be calculated correctly, "
                "which may result in undefined behavior. To account for these pods please set "
                "\".spec.minAvailable\" field of the PDB to an integer value."))
        now = datetime.now(timezone.utc)
        disrupted, recheck, expired = build_disrupted_pod_map(pods, pdb, now)
        for pod in expired:
            self.recorder.event(pod, WARNING, "NotDeleted",
                                f"Pod was expected by PDB {key} to be deleted but it wasn't")
        healthy = count_healthy(pods, disrupted, now)
        status = compute_status(pdb, healthy, desired, expected, disrupted, _stamp(now))
        if status is not None:
            await self._write(pdb, status)
        if recheck is not None:
            self.queue.add_after(key, max(0.0, (recheck - now).total_seconds()) + 0.01)

    async def _sync_stale_pod(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None:
            return
        now = datetime.now(timezone.utc)
        after = stale_disruption_after(pod, now)
        if after is None:
            return
        if after > 0:
            self.queue.add_after(_STALE + key, after)
            return
        meta = pod["metadata"]
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": meta["name"], "namespace": meta.get("namespace"),
                             "resourceVersion": meta.get("resourceVersion")},
                "status": {"conditions": [{"type": "DisruptionTarget", "status": "False",
                                           "lastTransitionTime": _stamp(now)}]}}
        try:
            await self.client.patch_subresource(PODS, meta["name"], "status", body,
                                                meta.get("namespace"), patch_type="apply",
                                                field_manager="DisruptionController",
                                                force=True)
        except errors.NotFound:
            return
        log.info("stale pod disruption condition reset", extra={"pod": key})

    async def _write(self, pdb: Obj, status: Obj) -> None:
        body = {**pdb, "status": status}
        await self.client.update_status(PDBS, body, pdb["metadata"].get("namespace"))
        log.debug("pdb status written", extra={"pdb": pdb["metadata"]["name"],
                                                "allowed": status["disruptionsAllowed"]})

    async def _fail_safe(self, pdb: Obj, message: str) -> None:
        """failSafe: no disruptions while the status cannot be computed."""
        status = dict(pdb.get("status") or {})
        status["disruptionsAllowed"] = 0
        want = {"type": "DisruptionAllowed", "status": "False", "reason": "SyncFailed",
                "message": message, "observedGeneration": status.get("observedGeneration", 0)}
        status["conditions"] = _set_condition(status.get("conditions") or [], want,
                                              _stamp(datetime.now(timezone.utc)))
        if status != (pdb.get("status") or {}):
            await self._write(pdb, status)


def _go_selector(selector: Obj | None) -> str:
    """The LabelSelector as Go's %v prints a pointer to it (best effort)."""
    if selector is None:
        return "nil"
    labels = " ".join(f"{k}:{v}" for k, v in sorted((selector.get("matchLabels") or {}).items()))
    return f"&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]" \
           f"LabelSelectorRequirement{{}},}}"
