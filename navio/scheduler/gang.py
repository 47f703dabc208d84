"""Gang scheduling: the pods of a PodGroup are bound all together or not at all.

A pod joins group `g` with the label `scheduling.navio.dev/pod-group: g`; the PodGroup
`scheduling.navio.dev/v1alpha1` `g` in the pod's namespace says how many must run together
(`spec.minMember`). When any pending member comes up for scheduling, every pending member
of the group is taken from the queue and placed in one simulation (each assumed before the
next is placed, highest priority first). If the members already bound plus those placed reach
minMember, all placed members are bound; otherwise every assumption is undone, nothing is
bound, and each member is marked unschedulable with the reason, e.g. "0/3 nodes are available:
3 Insufficient cpu. pod group default/train: 3 of 4 pods fit at once (minMember 4)." Members
are retried on any cluster event (a node added, a pod deleted, the PodGroup changed), so a gang
that did not fit binds as soon as room appears. Once minMember members are bound, further
members are scheduled one by one. Gang pods do not preempt.

PodGroup status (written to the `status` subresource when it changes):
`phase` Pending (fewer members exist than minMember, or not tried yet) | Scheduled (minMember
bound) | Unschedulable (last attempt failed); `scheduled` the number of bound members;
`conditions` one `Scheduled` condition with reason and message.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from navio.api import errors
from navio.client import Client, Informer, ResourceRef
from navio.scheduler.podinfo import GANG_LABEL

__all__ = ["POD_GROUPS", "GANG_PLUGIN", "GANG_LABEL", "GangOutcome", "PodGroups",
           "PHASE_PENDING", "PHASE_SCHEDULED", "PHASE_UNSCHEDULABLE"]

log = logging.getLogger(__name__)

POD_GROUPS = ResourceRef("scheduling.navio.dev", "v1alpha1", "podgroups", True, "PodGroup")
GANG_PLUGIN = "Gang"           # the "plugin" named as rejector of a gang that did not fit
PHASE_PENDING, PHASE_SCHEDULED, PHASE_UNSCHEDULABLE = "Pending", "Scheduled", "Unschedulable"


@dataclass
class GangOutcome:
    """What the last attempt of a group decided, for its status."""

    phase: str
    message: str
    reason: str


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fit_message(namespace: str, name: str, fitting: int, min_member: int) -> str:
    return (f"pod group {namespace}/{name}: {fitting} of {min_member} pods fit at once "
            f"(minMember {min_member}).")


def too_few_message(namespace: str, name: str, existing: int, min_member: int) -> str:
    return (f"pod group {namespace}/{name}: {existing} pods exist, fewer than minMember "
            f"{min_member}.")


def not_found_message(namespace: str, name: str) -> str:
    return f'pod group {namespace}/{name}: PodGroup "{name}" not found.'


@dataclass
class PodGroups:
    """The PodGroup informer plus the status writer."""

    client: Client
    informer: Informer
    bound: dict[tuple[str, str], int] = field(default_factory=dict)
    outcomes: dict[tuple[str, str], GangOutcome] = field(default_factory=dict)
    _dirty: set[tuple[str, str]] = field(default_factory=set)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def min_member(self, namespace: str, name: str) -> int | None:
        pg = self.informer.get(f"{namespace}/{name}")
        if pg is None:
            return None
        return max(int((pg.get("spec") or {}).get("minMember") or 1), 1)

    def record(self, namespace: str, name: str, outcome: GangOutcome | None = None,
               bound: int | None = None) -> None:
        key = (namespace, name)
        if outcome is not None:
            self.outcomes[key] = outcome
        if bound is not None:
            self.bound[key] = bound
        self._dirty.add(key)
        self._wake.set()

    def _desired(self, key: tuple[str, str], pg: dict[str, Any]) -> dict[str, Any]:
        min_member = max(int((pg.get("spec") or {}).get("minMember") or 1), 1)
        bound = self.bound.get(key, 0)
        outcome = self.outcomes.get(key)
        if bound >= min_member:
            outcome = GangOutcome(PHASE_SCHEDULED, f"{bound} of {min_member} pods bound.",
                                  "Scheduled")
        elif outcome is None:
            outcome = GangOutcome(PHASE_PENDING, "", "Pending")
        old = (pg.get("status") or {})
        old_cond = next((c for c in old.get("conditions") or ()
                         if c.get("type") == "Scheduled"), None)
        status_value = "True" if outcome.phase == PHASE_SCHEDULED else "False"
        transition = old_cond.get("lastTransitionTime") if old_cond and \
            old_cond.get("status") == status_value else _now()
        return {"phase": outcome.phase, "scheduled": bound,
                "conditions": [{"type": "Scheduled", "status": status_value,
                                "reason": outcome.reason, "message": outcome.message,
                                "lastTransitionTime": transition}]}

    @staticmethod
    def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
        def strip(s: dict[str, Any]) -> Any:
            conds = [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                     for c in s.get("conditions") or ()]
            return (s.get("phase"), s.get("scheduled"), conds)
        return strip(old) == strip(new)

    async def run_status_writer(self) -> None:
        """Write the status of groups marked dirty; repeats until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0.05)         # coalesce a burst of binds into one write
            dirty, self._dirty = self._dirty, set()
            for key in dirty:
                pg = self.informer.get(f"{key[0]}/{key[1]}")
                if pg is None:
                    continue
                status = self._desired(key, pg)
                if self._same(pg.get("status") or {}, status):
                    continue
                await self._write(key, status)

    async def _write(self, key: tuple[str, str], status: dict[str, Any]) -> None:
        ns, name = key
        try:
            await self.client.patch(POD_GROUPS, name, {"status": status}, ns,
                                    subresource="status")
        except errors.NotFound:
            try:          # a kind registered without a status subresource
                await self.client.patch(POD_GROUPS, name, {"status": status}, ns)
            except (errors.ApiError, ConnectionError) as exc:
                log.info("pod group status update failed",
                         extra={"podgroup": f"{ns}/{name}", "error": type(exc).__name__})
        except (errors.ApiError, ConnectionError) as exc:
            log.info("pod group status update failed",
                     extra={"podgroup": f"{ns}/{name}", "error": type(exc).__name__})

