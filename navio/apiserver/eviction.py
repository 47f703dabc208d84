"""The Eviction subresource (`POST pods/<name>/eviction`): a delete that budgets may refuse.

Why: `kubectl drain`, the cluster autoscaler and operators evict rather than delete so that a
PodDisruptionBudget can say no. This is kube's EvictionREST.Create
(pkg/registry/core/pod/storage/eviction.go, v1.32):

- A terminal (Succeeded/Failed), Pending or already terminating pod is deleted without looking
  at budgets.
- Budgets are the PDBs of the pod's namespace whose selector (non-empty) matches the pod's
  labels; more than one is a 500 ("This pod has more than one PodDisruptionBudget, which the
  eviction subresource does not support.").
- An unready pod may go without spending the budget when the PDB's
  `unhealthyPodEvictionPolicy` is AlwaysAllow, or (IfHealthyBudget, the default) when the
  budget is currently met (currentHealthy >= desiredHealthy > 0); its delete then pins the pod's
  resourceVersion, and a conflict answers 429 so the client retries.
- Otherwise the budget is checked and spent: a status not yet observed by the controller or
  with no disruptions allowed answers 429 TooManyRequests "Cannot evict pod as it would violate
  the pod's disruption budget." with a DisruptionBudget cause; else `disruptionsAllowed` is
  decremented and the pod recorded in `status.disruptedPods` with an optimistic-concurrency
  status update, re-read and retried on conflict (20 tries, then 504 as kube).
- The pod then gets the DisruptionTarget condition (reason EvictionByEvictionAPI) and is
  deleted with the Eviction's deleteOptions; dry-run (query or body) writes nothing.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from typing import TYPE_CHECKING, Any

from aiohttp import web

from navio.api import errors
from navio.api.registry import Kind
from navio.api.selectors import label_selector_from_spec
from navio.apiserver.resources import WriteOptions

if TYPE_CHECKING:
    from navio.apiserver.handlers import ResourceHandlers

__all__ = ["evict", "too_many_requests", "can_ignore_pdb", "MAX_DISRUPTED_POD_SIZE"]

MAX_DISRUPTED_POD_SIZE = 2000
_RETRIES = 20                         # EvictionsRetry: 20 steps of 10ms
_RETRY_DELAY = 0.01
_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."
_SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "code": 201}


def too_many_requests(detail: str, retry_after: int) -> errors.TooManyRequests:
    """errors.NewTooManyRequests plus the DisruptionBudget cause eviction.go appends."""
    details: dict[str, Any] = {"causes": [{"reason": "DisruptionBudget", "message": detail}]}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    return errors.TooManyRequests(_MESSAGE, details=details)


def can_ignore_pdb(pod: dict[str, Any]) -> bool:
    """A terminal, pending or terminating pod is deleted without consulting budgets."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or \
        bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _should_enforce_rv(pod: dict[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return not (phase in ("Succeeded", "Failed")
                or (pod.get("metadata") or {}).get("deletionTimestamp"))


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def _rv_unset(options: dict[str, Any]) -> bool:
    return not (options.get("preconditions") or {}).get("resourceVersion")


def _with_rv(options: dict[str, Any], rv: str) -> dict[str, Any]:
    out = copy.deepcopy(options)
    out.setdefault("preconditions", {})["resourceVersion"] = rv
    return out


def _delete_options(body: dict[str, Any], query_dry_run: list[str]) -> dict[str, Any]:
    """propagateDryRun: the Eviction's deleteOptions with the request's dryRun folded in."""
    options = body.get("deleteOptions")
    if options is None:
        return {"dryRun": list(query_dry_run)} if query_dry_run else {}
    if not isinstance(options, dict):
        raise errors.BadRequest("the object provided is unrecognized")
    options = dict(options)
    body_dry = list(options.get("dryRun") or [])
    if not body_dry:
        if query_dry_run:
            options["dryRun"] = list(query_dry_run)
        return options
    if query_dry_run and body_dry != list(query_dry_run):
        # A plain error in kube (propagateDryRun), so a 500.
        raise errors.InternalError(f"Non-matching dry-run options in request and content: "
                                   f"[{' '.join(query_dry_run)}] and [{' '.join(body_dry)}]")
    for d in body_dry:
        if d != "All":
            raise errors.BadRequest(f'Invalid dryRun value "{d}": valid values are "All"')
    return options


async def evict(h: "ResourceHandlers", request: web.Request, kind: Kind, ns: str,
                name: str, body: Any, opts: WriteOptions) -> web.Response:
    from navio.apiserver.handlers import json_response
    if not isinstance(body, dict):
        raise errors.BadRequest("the object provided is unrecognized")
    body_name = (body.get("metadata") or {}).get("name") or ""
    if body_name and body_name != name:
        raise errors.BadRequest("name in URL does not match name in Eviction object")
    options = _delete_options(body, request.query.getall("dryRun", []))
    dry_run = bool(options.get("dryRun"))
    del_opts = WriteOptions(dry_run=dry_run, field_manager=opts.field_manager,
                            user_agent=opts.user_agent, user=opts.user)

    pod: dict[str, Any] = {}
    for attempt in range(_RETRIES):
        pod = await h.resources.get(kind, ns, name)
        if not can_ignore_pdb(pod):
            break
        opts_now = options
        if _should_enforce_rv(pod) and _rv_unset(options):
            opts_now = _with_rv(options, pod["metadata"]["resourceVersion"])
        try:
            await _condition_and_delete(h, kind, ns, name, opts_now, del_opts)
        except errors.Conflict:
            if not _rv_unset(options) or attempt == _RETRIES - 1:
                raise
            await asyncio.sleep(_RETRY_DELAY)
            continue
        return json_response(_SUCCESS, 201)

    pdb_kind = h.resources.registry.resource("policy", "v1", "poddisruptionbudgets")
    assert pdb_kind is not None
    pdbs = await _pod_budgets(h, pdb_kind, pod)
    if len(pdbs) > 1:
        raise errors.InternalError("This pod has more than one PodDisruptionBudget, which the "
                                   "eviction subresource does not support.")
    pin_rv = False
    if pdbs:
        pdb = pdbs[0]
        spend = True
        if not _ready(pod):
            policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy")
            status = pdb.get("status") or {}
            if policy == "AlwaysAllow" or (
                    int(status.get("currentHealthy") or 0) >= int(status.get("desiredHealthy") or 0)
                    > 0):
                pin_rv, spend = True, False
        if spend:
            await _spend_budget(h, pdb_kind, pdb, name, dry_run)
    if pin_rv:
        options_final = _with_rv(options, pod["metadata"]["resourceVersion"])
    else:
        options_final = options
    try:
        await _condition_and_delete(h, kind, ns, name, options_final, del_opts)
    except errors.Conflict:
        if pin_rv and _rv_unset(options):
            raise too_many_requests(f"The disruption budget {pdbs[0]['metadata']['name']} is "
                                    f"still being processed by the server.", 10) from None
        raise
    return json_response(_SUCCESS, 201)


async def _pod_budgets(h: "ResourceHandlers", pdb_kind: Kind, pod: dict[str, Any]
                       ) -> list[dict[str, Any]]:
    """getPodDisruptionBudgets: an empty or invalid selector matches nothing here."""
    meta = pod.get("metadata") or {}
    cache = h.resources.cache(pdb_kind)
    await cache.consistent()
    out = []
    for _, pdb in cache.list(meta.get("namespace", "")):
        try:
            selector = label_selector_from_spec((pdb.get("spec") or {}).get("selector"))
        except errors.ApiError:
            continue
        if selector.empty() or not selector.matches(meta.get("labels") or {}):
            continue
        out.append(pdb)
    return out


def _update_allowed_condition(status: dict[str, Any], now: str) -> None:
    """pdbhelper.UpdateDisruptionAllowedCondition through meta.SetStatusCondition."""
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    want = {"type": "DisruptionAllowed", "status": "True" if allowed else "False",
            "reason": "SufficientPods" if allowed else "InsufficientPods", "message": "",
            "observedGeneration": status.get("observedGeneration", 0)}
    set_status_condition(status, want, now)


def set_status_condition(status: dict[str, Any], want: dict[str, Any], now: str) -> None:
    """meta.SetStatusCondition: lastTransitionTime moves only when the status changes."""
    conds = status.setdefault("conditions", [])
    for c in conds:
        if c.get("type") == want["type"]:
            if c.get("status") != want["status"]:
                c["lastTransitionTime"] = now
            c.update({k: v for k, v in want.items() if k != "type"})
            return
    conds.append({**want, "lastTransitionTime": now})


async def _spend_budget(h: "ResourceHandlers", pdb_kind: Kind, pdb: dict[str, Any],
                        pod_name: str, dry_run: bool) -> None:
    """checkAndDecrement under RetryOnConflict."""
    ns, pdb_name = pdb["metadata"].get("namespace", ""), pdb["metadata"]["name"]
    for attempt in range(_RETRIES):
        if attempt:
            pdb = await h.resources.get(pdb_kind, ns, pdb_name)
        status = copy.deepcopy(pdb.get("status") or {})
        if int(status.get("observedGeneration") or 0) < int(pdb["metadata"].get("generation")
                                                            or 0):
            raise too_many_requests(f"The disruption budget {pdb_name} is still being processed "
                                    f"by the server.", 10)
        allowed = int(status.get("disruptionsAllowed") or 0)
        if allowed < 0:
            raise errors.Forbidden(f'poddisruptionbudgets.policy "{pdb_name}" is forbidden: pdb '
                                   f'disruptions allowed is negative')
        if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_POD_SIZE:
            raise errors.Forbidden(f'poddisruptionbudgets.policy "{pdb_name}" is forbidden: '
                                   f'DisruptedPods map too big - too many evictions not '
                                   f'confirmed by PDB controller')
        if allowed == 0:
            raise too_many_requests(
                f"The disruption budget {pdb_name} needs {status.get('desiredHealthy', 0)} "
                f"healthy pods and has {status.get('currentHealthy', 0)} currently", 0)
        status["disruptionsAllowed"] = allowed - 1
        if allowed - 1 == 0:
            _update_allowed_condition(status, h.resources.now())
        if dry_run:
            return
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        status["disruptedPods"] = {**(status.get("disruptedPods") or {}), pod_name: stamp}
        rv = pdb["metadata"]["resourceVersion"]

        def mutate(current: dict[str, Any] | None, status: dict[str, Any] = status,
                   rv: str = rv) -> dict[str, Any]:
            if current is None:
                return {}
            new = copy.deepcopy(current)
            new["status"] = status
            new["metadata"]["resourceVersion"] = rv
            return new
        try:
            await h.resources.update(pdb_kind, ns, pdb_name, mutate, WriteOptions(
                field_manager="kube-apiserver"), subresource="status")
            return
        except errors.Conflict:
            await asyncio.sleep(_RETRY_DELAY)
    raise errors.Timeout(f'couldn\'t update PodDisruptionBudget "{pdb_name}" due to conflicts',
                         details={"retryAfterSeconds": 10})


async def _condition_and_delete(h: "ResourceHandlers", kind: Kind, ns: str, name: str,
                                options: dict[str, Any], opts: WriteOptions) -> None:
    """addConditionAndDeletePod: DisruptionTarget on the pod's status, then the delete (whose
    resourceVersion precondition, if any, moves to the version the condition wrote)."""
    if not opts.dry_run:
        pre = options.get("preconditions") or {}
        now = h.resources.now()

        def mutate(current: dict[str, Any] | None) -> dict[str, Any]:
            if current is None:
                return {}
            meta = current["metadata"]
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise errors.Conflict(
                    f'Operation cannot be fulfilled on Pod "{name}": Precondition failed: '
                    f'UID in precondition: {pre["uid"]}, UID in object meta: {meta.get("uid")}')
            if pre.get("resourceVersion") and pre["resourceVersion"] != \
                    meta.get("resourceVersion"):
                raise errors.Conflict(
                    f'Operation cannot be fulfilled on Pod "{name}": Precondition failed: '
                    f'ResourceVersion in precondition: {pre["resourceVersion"]}, '
                    f'ResourceVersion in object meta: {meta.get("resourceVersion")}')
            new = copy.deepcopy(current)
            new["metadata"].pop("resourceVersion", None)
            conds = new.setdefault("status", {}).setdefault("conditions", [])
            want = {"type": "DisruptionTarget", "status": "True",
                    "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"}
            old = next((c for c in conds if c.get("type") == "DisruptionTarget"), None)
            if old is None:
                conds.append({**want, "lastProbeTime": None, "lastTransitionTime": now})
            else:
                if old.get("status") != "True":
                    old["lastTransitionTime"] = now
                old.update(want)
            return new
        updated, _ = await h.resources.update(kind, ns, name, mutate, WriteOptions(
            field_manager="kube-apiserver"), subresource="status")
        if not _rv_unset(options):
            options = _with_rv(options, updated["metadata"]["resourceVersion"])
    await h.resources.delete(kind, ns, name, options, opts)
