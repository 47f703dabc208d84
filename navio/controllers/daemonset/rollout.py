"""DaemonSet updates: which pods are up to date, and the RollingUpdate strategy
(pkg/controller/daemon/update.go, v1.32).

Guarantees:
- A pod is up to date when its `controller-revision-hash` is the current revision's, or its
  `pod-template-generation` equals the DaemonSet's `deprecated.daemonset.template.generation`
  (which the API server bumps on every template change).
- `RollingUpdate` replaces out-of-date pods keeping at most `maxUnavailable` unavailable,
  or with `maxSurge` starts the new pod first and deletes the old one once the new is
  available; `OnDelete` leaves that to users.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from navio.controllers.base import Controller
from navio.controllers.controller_revisions import REVISION_HASH_LABEL
from navio.controllers.daemonset.placement import node_should_run, target_node

__all__ = ["TEMPLATE_GENERATION_LABEL", "GENERATION_ANNOTATION", "DaemonSetRollout",
           "ready_since", "available", "by_age", "scaled", "node_pods"]

TEMPLATE_GENERATION_LABEL = "pod-template-generation"
GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
Obj = dict[str, Any]


def _parse_time(ts: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(ts).replace("Z", "+00:00")) if ts else None
    except ValueError:
        return None


def ready_since(pod: Obj) -> datetime | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready" and c.get("status") == "True":
            return _parse_time(c.get("lastTransitionTime")) or datetime.min.replace(tzinfo=timezone.utc)
    return None


def available(pod: Obj, min_ready: int, now: datetime) -> bool:
    since = ready_since(pod)
    return since is not None and (min_ready <= 0 or
                                  (now - since).total_seconds() >= min_ready)


def by_age(pods: list[Obj]) -> list[Obj]:
    """podByCreationTimestampAndPhase: scheduled first, then oldest, then by name."""
    return sorted(pods, key=lambda p: (not (p.get("spec") or {}).get("nodeName"),
                                       p["metadata"].get("creationTimestamp") or "",
                                       p["metadata"]["name"]))


def scaled(value: Any, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value or 0)



def node_pods(pods: list[Obj]) -> dict[str, list[Obj]]:
    """Pods by the node they are on or pinned to."""
    out: dict[str, list[Obj]] = {}
    for p in pods:
        node = target_node(p)
        if node:
            out.setdefault(node, []).append(p)
    return out


class DaemonSetRollout(Controller):
    """The part of DaemonSetController that tells old pods from new and rolls them."""

    async def _sync_nodes(self, key: str, ds: Obj, delete: list[Obj], create: list[str],
                          hash_: str) -> None:
        raise NotImplementedError

    def _generation(self, ds: Obj) -> str | None:
        return (ds["metadata"].get("annotations") or {}).get(GENERATION_ANNOTATION)

    def _updated(self, pod: Obj, ds: Obj, hash_: str) -> bool:
        """util.IsPodUpdated: the pod carries the current revision hash, or the
        `pod-template-generation` the API server counts in the DaemonSet's annotation."""
        labels = pod["metadata"].get("labels") or {}
        generation = self._generation(ds)
        return (bool(hash_) and labels.get(REVISION_HASH_LABEL) == hash_) or \
            (generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == generation)

    def _prune_surge(self, ds: Obj, running: list[Obj], hash_: str) -> list[Obj]:
        new = [p for p in running if self._updated(p, ds, hash_)]
        old = [p for p in running if not self._updated(p, ds, hash_)]
        out = new[1:] + old[1:]
        if new and old:
            if ready_since(old[0]) is None or available(
                    new[0], int(ds["spec"].get("minReadySeconds", 0)),
                    datetime.now(timezone.utc)):
                out.append(old[0])
        return out

    async def _rolling_update(self, key: str, ds: Obj, nodes: list[Obj], hash_: str,
                              pods: list[Obj]) -> None:
        """update.go rollingUpdate: replace old pods within maxUnavailable / maxSurge."""
        by_node = node_pods(pods)
        by_name = {n["metadata"]["name"]: n for n in nodes}
        desired = 0
        for node in nodes:
            if node_should_run(node, ds)[0]:
                desired += 1
                by_node.setdefault(node["metadata"]["name"], [])
        ru = ((ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {})
        surge = scaled(ru.get("maxSurge"), desired)
        unavailable = scaled(ru.get("maxUnavailable", 1), desired)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        min_ready = int(ds["spec"].get("minReadySeconds", 0))
        now = datetime.now(timezone.utc)
        delete: list[Obj] = []
        create: list[str] = []
        if surge == 0:
            n_unavailable, allowed, candidates = 0, [], []
            for on_node in by_node.values():
                found = self._split(ds, on_node, hash_)
                if found is None:
                    n_unavailable += 1
                    continue
                new, old = found
                if (old is None) == (new is None):
                    n_unavailable += 1
                elif new is not None:
                    n_unavailable += not available(new, min_ready, now)
                elif old is not None and not available(old, min_ready, now):
                    allowed.append(old)
                    n_unavailable += 1
                elif old is not None and n_unavailable < unavailable:
                    candidates.append(old)
            room = min(max(unavailable - n_unavailable, 0), len(candidates))
            delete = allowed + candidates[:room]
        else:
            n_surge = n_available = 0
            allowed_nodes: list[str] = []
            candidate_nodes: list[str] = []
            sunset: list[Obj] = []
            for node_name, on_node in by_node.items():
                found = self._split(ds, on_node, hash_)
                if found is None:
                    n_surge += 1
                    continue
                new, old = found
                counted = old if old is not None else new
                if counted is not None and available(counted, min_ready, now):
                    n_available += 1
                if old is None:
                    continue
                should_run = node_name in by_name and node_should_run(by_name[node_name],
                                                                      ds)[0]
                if new is None:
                    if not available(old, min_ready, now):
                        if should_run:
                            allowed_nodes.append(node_name)
                        else:
                            delete.append(old)
                    elif not should_run:
                        sunset.append(old)
                    elif n_surge < surge:
                        candidate_nodes.append(node_name)
                elif not available(new, min_ready, now):
                    n_surge += 1
                else:
                    delete.append(old)
            deletable = min(max(n_available - desired, 0), len(sunset))
            delete += sunset[:deletable]
            room = min(max(surge - n_surge, 0), len(candidate_nodes))
            create = allowed_nodes + candidate_nodes[:room]
        await self._sync_nodes(key, ds, delete, create, hash_)

    def _split(self, ds: Obj, pods: list[Obj], hash_: str
               ) -> tuple[Obj | None, Obj | None] | None:
        """findUpdatedPodsOnNode: (new pod, old pod), or None with duplicates of either."""
        new = old = None
        for p in pods:
            if p["metadata"].get("deletionTimestamp"):
                continue
            if self._updated(p, ds, hash_):
                if new is not None:
                    return None
                new = p
            else:
                if old is not None:
                    return None
                old = p
        return new, old
