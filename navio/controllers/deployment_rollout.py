"""How a Deployment moves between ReplicaSets: rolling update, recreate, proportional scaling,
history cleanup and the rollout status (kube's rolling.go, recreate.go, sync.go, progress.go).

Why separate: the controller module owns caches, handlers and ReplicaSet creation; this one
owns the strategies. `Rollouts` is a mixin of `DeploymentController` and uses its `client`,
`recorder`, `queue` and helpers (`get_all_replica_sets`, `update_status`).

Guarantees (beyond kube's arithmetic in deployment_util):
- A rolling update never has more than replicas + maxSurge pods nor fewer than
  replicas - maxUnavailable available pods, counting pods rather than only ReplicaSet specs:
  the surge check counts each other ReplicaSet as max(spec.replicas, status.replicas) (pods
  still being deleted count), and the scale-down check counts min(status.availableReplicas,
  spec.replicas) (pods about to be deleted do not). In steady state both equal kube's counts.
- Recreate scales every old ReplicaSet to zero and creates the new pods only when no old pod
  is left running.
- Old ReplicaSets beyond revisionHistoryLimit are deleted oldest revision first, only when
  they have no pods and their status is current.
- Events: ScalingReplicaSet "Scaled up replica set <rs> to <n> from <m>" (and "down").
"""

from __future__ import annotations

import copy
import logging
import time
from datetime import datetime, timezone
from typing import Any

from navio.api import errors
from navio.client import NORMAL, REPLICASETS
from navio.controllers import deployment_util as du
from navio.controllers.controller_utils import parse_time, ref

__all__ = ["Rollouts", "now_rfc3339", "calculate_status"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(obj: Obj | None) -> Obj:
    return (obj or {}).get("status") or {}


def calculate_status(all_rss: list[Obj | None], new_rs: Obj | None, d: Obj, now: str) -> Obj:
    """The DeploymentStatus the ReplicaSets imply, Available condition included."""
    rss = [rs for rs in all_rss if rs is not None]

    def total(field: str, among: list[Obj]) -> int:
        return sum(int(_status(rs).get(field) or 0) for rs in among)
    available = total("availableReplicas", rss)
    unavailable = max(sum(du.replicas(rs) for rs in rss) - available, 0)
    status: Obj = {
        "observedGeneration": int(d["metadata"].get("generation", 0)),
        "replicas": total("replicas", rss),
        "updatedReplicas": total("replicas", [new_rs] if new_rs else []),
        "readyReplicas": total("readyReplicas", rss),
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
    }
    status = {k: v for k, v in status.items() if v}
    if _status(d).get("collisionCount") is not None:
        status["collisionCount"] = _status(d)["collisionCount"]
    if _status(d).get("conditions"):
        status["conditions"] = copy.deepcopy(_status(d)["conditions"])
    if available >= du.replicas(d) - du.max_unavailable(d):
        du.set_condition(status, du.new_condition("Available", "True", du.MIN_AVAILABLE_REASON,
                                            "Deployment has minimum availability.", now))
    else:
        du.set_condition(status, du.new_condition("Available", "False", du.MIN_UNAVAILABLE_REASON,
                                            "Deployment does not have minimum availability.",
                                            now))
    return status


def _available(rs: Obj) -> int:
    return min(int(_status(rs).get("availableReplicas") or 0), du.replicas(rs))


class Rollouts:
    # Provided by DeploymentController.
    client: Any
    recorder: Any
    queue: Any

    async def get_all_replica_sets(self, d: Obj, rs_list: list[Obj], create: bool
                                   ) -> tuple[Obj | None, list[Obj]]:
        raise NotImplementedError

    async def update_status(self, d: Obj) -> None:
        raise NotImplementedError

    # ---- scaling one ReplicaSet ---------------------------------------------------------

    async def scale_replica_set(self, rs: Obj, new_scale: int, d: Obj, op: str
                                ) -> tuple[bool, Obj]:
        """Set spec.replicas and the desired/max annotations; (scaled, ReplicaSet)."""
        size_changes = du.replicas(rs) != new_scale
        desired, maximum = du.replicas(d), du.replicas(d) + du.max_surge(d)
        if not size_changes and not du.replicas_annotations_need_update(rs, desired, maximum):
            return False, rs
        old_scale = du.replicas(rs)
        body = dict(rs, metadata=dict(rs["metadata"]), spec=dict(rs["spec"],
                                                                 replicas=new_scale))
        body["metadata"]["annotations"] = dict(rs["metadata"].get("annotations") or {})
        du.set_replicas_annotations(body, desired, maximum)
        updated = await self.client.update(REPLICASETS, body)
        if size_changes:
            self.recorder.event(d, NORMAL, "ScalingReplicaSet",
                                f"Scaled {op} replica set {updated['metadata']['name']} to "
                                f"{new_scale} from {old_scale}")
            log.info("replica set scaled", extra={"deployment": ref(d), "replicaset": ref(rs),
                                                   "from": old_scale, "to": new_scale})
        return size_changes, updated

    async def scale_and_record(self, rs: Obj, new_scale: int, d: Obj) -> tuple[bool, Obj]:
        if du.replicas(rs) == new_scale:
            return False, rs
        op = "up" if du.replicas(rs) < new_scale else "down"
        return await self.scale_replica_set(rs, new_scale, d, op)

    # ---- scaling events and paused deployments (sync.go) --------------------------------

    async def sync(self, d: Obj, rs_list: list[Obj]) -> None:
        new_rs, old_rss = await self.get_all_replica_sets(d, rs_list, False)
        await self.scale(d, new_rs, old_rss)
        if (d.get("spec") or {}).get("paused"):
            await self.cleanup(old_rss, d)
        await self.sync_deployment_status(old_rss + [new_rs] if new_rs else old_rss, new_rs, d)

    async def scale(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        target = _active_or_latest(new_rs, old_rss)
        if target is not None:
            if du.replicas(target) != du.replicas(d):
                await self.scale_and_record(target, du.replicas(d), d)
            return
        if du.is_saturated(d, new_rs):
            for old in du.filter_active(list(old_rss)):
                await self.scale_and_record(old, 0, d)
            return
        if du.is_rolling_update(d):
            active = du.filter_active(list(old_rss) + [new_rs])
            sizes, op = du.proportional_sizes(d, active)
            by_name = {rs["metadata"]["name"]: rs for rs in active}
            for name, size in sizes.items():
                await self.scale_replica_set(by_name[name], size, d, op)

    async def cleanup(self, old_rss: list[Obj], d: Obj) -> None:
        """Delete old ReplicaSets beyond revisionHistoryLimit (cleanupDeployment)."""
        if not du.has_revision_history_limit(d):
            return
        alive = [rs for rs in old_rss if not rs["metadata"].get("deletionTimestamp")]
        diff = len(alive) - int(d["spec"]["revisionHistoryLimit"])
        if diff <= 0:
            return
        for rs in du.sort_by_revision(alive)[:diff]:
            st = _status(rs)
            if int(st.get("replicas") or 0) != 0 or du.replicas(rs) != 0 or \
                    int(rs["metadata"].get("generation", 0)) > \
                    int(st.get("observedGeneration") or 0):
                continue
            try:
                await self.client.delete(REPLICASETS, rs["metadata"]["name"],
                                         rs["metadata"].get("namespace"))
            except errors.NotFound:
                continue
            log.info("old replica set deleted", extra={"deployment": ref(d),
                                                        "replicaset": ref(rs)})

    # ---- rolling update (rolling.go) ----------------------------------------------------

    async def rollout_rolling(self, d: Obj, rs_list: list[Obj]) -> None:
        new_rs, old_rss = await self.get_all_replica_sets(d, rs_list, True)
        assert new_rs is not None
        all_rss = old_rss + [new_rs]
        if await self._reconcile_new(all_rss, new_rs, d):
            await self.sync_rollout_status(all_rss, new_rs, d)
            return
        if await self._reconcile_old(all_rss, du.filter_active(list(old_rss)), new_rs, d):
            await self.sync_rollout_status(all_rss, new_rs, d)
            return
        if du.deployment_complete(d, _status(d)):
            await self.cleanup(old_rss, d)
        await self.sync_rollout_status(all_rss, new_rs, d)

    async def _reconcile_new(self, all_rss: list[Obj], new_rs: Obj, d: Obj) -> bool:
        if du.replicas(new_rs) == du.replicas(d):
            return False
        if du.replicas(new_rs) > du.replicas(d):
            return (await self.scale_and_record(new_rs, du.replicas(d), d))[0]
        # Pods of other ReplicaSets still being deleted count against the surge.
        counted = [rs if rs is new_rs else
                   dict(rs, spec=dict(rs["spec"], replicas=max(
                       du.replicas(rs), int(_status(rs).get("replicas") or 0))))
                   for rs in all_rss]
        target = du.new_rs_new_replicas(d, counted, new_rs)
        return (await self.scale_and_record(new_rs, target, d))[0]

    async def _reconcile_old(self, all_rss: list[Obj], old_rss: list[Obj], new_rs: Obj,
                             d: Obj) -> bool:
        if sum(du.replicas(rs) for rs in old_rss) == 0:
            return False
        all_pods = sum(du.replicas(rs) for rs in all_rss)
        min_available = du.replicas(d) - du.max_unavailable(d)
        new_unavailable = du.replicas(new_rs) - int(_status(new_rs).get("availableReplicas")
                                                    or 0)
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        try:
            old_rss, cleaned = await self._cleanup_unhealthy(old_rss, d, max_scaled_down)
            scaled = await self._scale_down_old(old_rss + [new_rs], old_rss, d)
        except (errors.ApiError, ConnectionError) as exc:
            log.info("scaling down old replica sets failed",
                     extra={"deployment": ref(d), "error": str(exc)[:200]})
            return False
        return cleaned + scaled > 0

    async def _cleanup_unhealthy(self, old_rss: list[Obj], d: Obj, max_cleanup: int
                                 ) -> tuple[list[Obj], int]:
        old_rss = du.sort_by_creation(old_rss)
        total = 0
        for i, rs in enumerate(old_rss):
            if total >= max_cleanup:
                break
            available = int(_status(rs).get("availableReplicas") or 0)
            if du.replicas(rs) == 0 or du.replicas(rs) == available:
                continue
            count = min(max_cleanup - total, du.replicas(rs) - available)
            _, old_rss[i] = await self.scale_and_record(rs, du.replicas(rs) - count, d)
            total += count
        return old_rss, total

    async def _scale_down_old(self, all_rss: list[Obj], old_rss: list[Obj], d: Obj) -> int:
        min_available = du.replicas(d) - du.max_unavailable(d)
        available = sum(_available(rs) for rs in all_rss)
        if available <= min_available:
            return 0
        to_scale = available - min_available
        total = 0
        for rs in du.sort_by_creation(old_rss):
            if total >= to_scale:
                break
            if du.replicas(rs) == 0:
                continue
            count = min(du.replicas(rs), to_scale - total)
            await self.scale_and_record(rs, du.replicas(rs) - count, d)
            total += count
        return total

    # ---- recreate (recreate.go) ---------------------------------------------------------

    async def rollout_recreate(self, d: Obj, rs_list: list[Obj],
                               pod_map: dict[str, list[Obj]]) -> None:
        new_rs, old_rss = await self.get_all_replica_sets(d, rs_list, False)
        all_rss = old_rss + [new_rs] if new_rs else list(old_rss)
        scaled_down = False
        for rs in du.filter_active(list(old_rss)):
            scaled_down |= (await self.scale_and_record(rs, 0, d))[0]
        if scaled_down or _old_pods_running(new_rs, old_rss, pod_map):
            await self.sync_rollout_status(all_rss, new_rs, d)
            return
        if new_rs is None:
            new_rs, old_rss = await self.get_all_replica_sets(d, rs_list, True)
            assert new_rs is not None
            all_rss = old_rss + [new_rs]
        await self.scale_and_record(new_rs, du.replicas(d), d)
        if du.deployment_complete(d, _status(d)):
            await self.cleanup(old_rss, d)
        await self.sync_rollout_status(all_rss, new_rs, d)

    # ---- status (sync.go, progress.go) ----------------------------------------------------

    async def sync_deployment_status(self, all_rss: list[Obj], new_rs: Obj | None,
                                     d: Obj) -> None:
        status = calculate_status(list(all_rss), new_rs, d, now_rfc3339())
        if status != _status(d):
            d["status"] = status
            await self.update_status(d)

    async def sync_rollout_status(self, all_rss: list[Obj], new_rs: Obj | None,
                                  d: Obj) -> None:
        now = now_rfc3339()
        status = calculate_status(list(all_rss), new_rs, d, now)
        if not du.has_progress_deadline(d):
            du.remove_condition(status, "Progressing")
        current = du.get_condition(_status(d), "Progressing")
        complete = status.get("replicas") == status.get("updatedReplicas") and \
            current is not None and current.get("reason") == du.NEW_RS_AVAILABLE_REASON
        name = d["metadata"]["name"]
        if du.has_progress_deadline(d) and not complete:
            what = f'ReplicaSet "{new_rs["metadata"]["name"]}"' if new_rs else \
                f'Deployment "{name}"'
            if du.deployment_complete(d, status):
                du.set_condition(status, du.new_condition(
                    "Progressing", "True", du.NEW_RS_AVAILABLE_REASON,
                    f"{what} has successfully progressed.", now))
            elif du.deployment_progressing(d, status):
                cond = du.new_condition("Progressing", "True", du.REPLICA_SET_UPDATED_REASON,
                                        f"{what} is progressing.", now)
                if current is not None:
                    if current.get("status") == "True":
                        cond["lastTransitionTime"] = current.get("lastTransitionTime")
                    du.remove_condition(status, "Progressing")
                du.set_condition(status, cond)
            elif du.deployment_timed_out(d, status, time.time()):
                du.set_condition(status, du.new_condition(
                    "Progressing", "False", du.TIMED_OUT_REASON,
                    f"{what} has timed out progressing.", now))
        failure = _replica_failure(all_rss, new_rs)
        if failure is not None:
            du.set_condition(status, failure)
        else:
            du.remove_condition(status, "ReplicaFailure")
        if status == _status(d):
            self._requeue_stuck(d, status)
            return
        d["status"] = status
        await self.update_status(d)

    def _requeue_stuck(self, d: Obj, status: Obj) -> None:
        """Come back when the progress deadline would pass (requeueStuckDeployment)."""
        current = du.get_condition(_status(d), "Progressing")
        if not du.has_progress_deadline(d) or current is None:
            return
        if du.deployment_complete(d, status) or current.get("reason") == du.TIMED_OUT_REASON:
            return
        since = parse_time(current.get("lastUpdateTime")) or time.time()
        after = since + int(d["spec"]["progressDeadlineSeconds"]) - time.time()
        key = f"{d['metadata'].get('namespace')}/{d['metadata']['name']}"
        if after < 1.0:
            self.queue.add_rate_limited(key)
        else:
            self.queue.add_after(key, after + 1.0)

    async def check_paused_conditions(self, d: Obj) -> None:
        if not du.has_progress_deadline(d):
            return
        cond = du.get_condition(_status(d), "Progressing")
        if cond is not None and cond.get("reason") == du.TIMED_OUT_REASON:
            return
        paused_exists = cond is not None and cond.get("reason") == du.PAUSED_REASON
        paused = bool((d.get("spec") or {}).get("paused"))
        if paused and not paused_exists:
            new = du.new_condition("Progressing", "Unknown", du.PAUSED_REASON,
                                   "Deployment is paused", now_rfc3339())
        elif not paused and paused_exists:
            new = du.new_condition("Progressing", "Unknown", du.RESUMED_REASON,
                                   "Deployment is resumed", now_rfc3339())
        else:
            return
        status = dict(_status(d))
        du.set_condition(status, new)
        d["status"] = status
        await self.update_status(d)


def _active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    """FindActiveOrLatest: the only active ReplicaSet, the newest if none is active, None if
    several are active."""
    if new_rs is None and not old_rss:
        return None
    newest_first = list(reversed(du.sort_by_creation(list(old_rss))))
    active = du.filter_active(newest_first + [new_rs])
    if not active:
        return new_rs if new_rs is not None else newest_first[0]
    return active[0] if len(active) == 1 else None


def _old_pods_running(new_rs: Obj | None, old_rss: list[Obj],
                      pod_map: dict[str, list[Obj]]) -> bool:
    if sum(int(_status(rs).get("replicas") or 0) for rs in old_rss) > 0:
        return True
    new_uid = new_rs["metadata"]["uid"] if new_rs else None
    for uid, pods in pod_map.items():
        if uid == new_uid:
            continue
        for pod in pods:
            if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                return True
    return False


def _replica_failure(all_rss: list[Obj], new_rs: Obj | None) -> Obj | None:
    """The first ReplicaFailure condition, the new ReplicaSet's first (getReplicaFailures)."""
    for rs in ([new_rs] if new_rs else []) + [rs for rs in all_rss if rs is not None]:
        for c in _status(rs).get("conditions") or ():
            if c.get("type") == "ReplicaFailure":
                return {"type": "ReplicaFailure", "status": c.get("status"),
                        "lastUpdateTime": c.get("lastTransitionTime"),
                        "lastTransitionTime": c.get("lastTransitionTime"),
                        "reason": c.get("reason"), "message": c.get("message")}
    return None
